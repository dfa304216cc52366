"""The confidence guard: a pure function of one classification (the contract's
``response_metadata``).

Order of decisions for the top-1 intent and its confidence ``p`` (thresholds from
``meta["thresholds"]``, which each backend sets from its saved model version, settings
overriding; see models/base.py):

1. the learned ``out_of_scope`` label, or ``p < oos_threshold`` -> "out_of_scope" (a polite decline);
2. the learned ``small_talk`` label -> "small_talk" (a short friendly reply, chains/small_talk.py);
3. ``p < clarify_threshold`` -> "clarify": a question naming the top-3 in-scope candidates in the
   customer's words, offered as ``choices``;
4. otherwise "route": the intent's banking tool runs.

The thresholds are chosen per model version on validation data plus a tuning half of CLINC150's
out-of-scope queries (training/thresholds.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from chains.assistant import AssistantOutput, Choice
from chains.intent_titles import intent_title
from models.labels import NON_TOOL_LABELS
from models.labels import OUT_OF_SCOPE as OUT_OF_SCOPE_LABEL
from models.labels import SMALL_TALK as SMALL_TALK_LABEL

CLARIFY_CHOICES = 3
OUT_OF_SCOPE_ANSWER = (
    "Sorry, I can only help with banking questions about your accounts, cards, payments, "
    "transfers and top-ups. Could you tell me what you need with your account?"
)
CLASSIFICATION_FIELDS = ("intent", "confidence", "ranking", "backend", "model_version", "latency_ms", "arm")


class UnknownChoice(ValueError):
    """A picked clarify choice that was not offered in this conversation."""


class GuardDecision(BaseModel):
    """What the guard decided for one classification.

    ``action``: "route" | "clarify" | "out_of_scope" | "small_talk"; ``answer``: the reply for
    clarify / out_of_scope (empty otherwise); ``choices``: the clarify options; ``base``: the
    classification fields every :class:`AssistantOutput` carries (intent, confidence, ranking,
    backend, model_version, latency_ms, arm).
    """

    action: Literal["route", "clarify", "out_of_scope", "small_talk"]
    answer: str = ""
    choices: list[Choice] = []
    base: dict[str, Any]

    def output(self) -> AssistantOutput:
        """The turn's output when the guard stops it (clarify / out_of_scope). Raises
        ``ValueError`` for "route" and "small_talk", whose answers come from elsewhere."""
        if self.action not in ("clarify", "out_of_scope"):
            raise ValueError(f"a {self.action!r} decision has no guard output")
        return AssistantOutput(answer=self.answer, status=self.action, choices=self.choices, **self.base)


def clarify_question(choices: list[Choice]) -> str:
    """The clarifying question naming ``choices`` (1-3 of them) in the customer's words."""
    titles = [c.title for c in choices]
    if len(titles) == 1:
        return f"I want to make sure I help with the right thing. Is this about {titles[0]}?"
    listed = ", ".join(titles[:-1]) + f" or {titles[-1]}"
    return f"I want to make sure I help with the right thing. Is this about {listed}? Pick one, or tell me more."


def guard(meta: dict[str, Any]) -> GuardDecision:
    """Decide route / clarify / out_of_scope / small_talk for one classification ``meta`` (the
    contract's ``response_metadata``: intent, confidence, ranking, thresholds, ...).
    Raises ``KeyError`` when ``meta`` lacks intent, confidence or ranking."""
    base = {k: meta.get(k) for k in CLASSIFICATION_FIELDS}
    base["ranking"] = meta["ranking"]
    th = meta.get("thresholds") or {}
    oos_t = float(th.get("oos_threshold", 0.0))
    clarify_t = max(oos_t, float(th.get("clarify_threshold", oos_t)))
    intent, p = meta["intent"], float(meta["confidence"])
    if intent == OUT_OF_SCOPE_LABEL or p < oos_t:
        return GuardDecision(action="out_of_scope", answer=OUT_OF_SCOPE_ANSWER, base=base)
    if intent == SMALL_TALK_LABEL:
        return GuardDecision(action="small_talk", base=base)
    if p < clarify_t:
        candidates = [r["intent"] for r in meta["ranking"] if r["intent"] not in NON_TOOL_LABELS]
        choices = [Choice(intent=c, title=intent_title(c)) for c in candidates[:CLARIFY_CHOICES]]
        if choices:
            return GuardDecision(action="clarify", answer=clarify_question(choices), choices=choices, base=base)
        return GuardDecision(action="out_of_scope", answer=OUT_OF_SCOPE_ANSWER, base=base)
    return GuardDecision(action="route", base=base)
