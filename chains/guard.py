"""The confidence guard: a pure function of one classification (chains/classification.py), run
once per classification.

Order of decisions for the top-1 intent and its confidence ``p`` (thresholds from
``Classification.thresholds``, which each backend sets from its saved model version, settings
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
from chains.classification import Classification
from chains.intent_titles import intent_title
from config.i18n import N_, gettext as _
from models.labels import NON_TOOL_LABELS
from models.labels import OUT_OF_SCOPE as OUT_OF_SCOPE_LABEL
from models.labels import SMALL_TALK as SMALL_TALK_LABEL

CLARIFY_CHOICES = 3
OUT_OF_SCOPE_ANSWER = N_(
    "Sorry, I can only help with banking questions about your accounts, cards, payments, "
    "transfers and top-ups. Could you tell me what you need with your account?"
)


class UnknownChoice(ValueError):
    """A picked clarify choice that was not offered in this conversation."""


class GuardDecision(BaseModel):
    """What the guard decided for one classification.

    ``action``: "route" | "clarify" | "out_of_scope" | "small_talk"; ``answer``: the reply for
    clarify / out_of_scope (empty otherwise); ``choices``: the clarify options;
    ``classification``: the classification decided on.
    """

    action: Literal["route", "clarify", "out_of_scope", "small_talk"]
    answer: str = ""
    choices: list[Choice] = []
    classification: Classification

    def output(self) -> AssistantOutput:
        """The turn's output when the guard stops it (clarify / out_of_scope). Raises
        ``ValueError`` for "route" and "small_talk", whose answers come from elsewhere."""
        if self.action not in ("clarify", "out_of_scope"):
            raise ValueError(f"a {self.action!r} decision has no guard output")
        return AssistantOutput(answer=self.answer, status=self.action, choices=self.choices,
                               **self.classification.output_fields())


def clarify_question(choices: list[Choice]) -> str:
    """The clarifying question naming ``choices`` (1-3 of them) in the customer's words."""
    titles = [c.title for c in choices]
    if len(titles) == 1:
        return _("I want to make sure I help with the right thing. Is this about {title}?").format(title=titles[0])
    listed = _("{first} or {last}").format(first=", ".join(titles[:-1]), last=titles[-1])
    return _("I want to make sure I help with the right thing. Is this about {listed}? Pick one, or tell me "
             "more.").format(listed=listed)


def in_scope_candidates(c: Classification) -> list[str]:
    """The ranking's intents that have a banking tool, best first."""
    return [r.intent for r in c.ranking if r.intent not in NON_TOOL_LABELS]


def guard(meta: Classification | dict[str, Any]) -> GuardDecision:
    """Decide route / clarify / out_of_scope / small_talk for one classification (a
    :class:`Classification`, or the contract's ``response_metadata`` dict).
    Raises ``pydantic.ValidationError`` when a dict lacks intent, confidence or ranking."""
    c = Classification.from_metadata(meta)
    oos_t = c.thresholds.oos_threshold
    clarify_t = max(oos_t, c.thresholds.clarify_threshold)
    if c.intent == OUT_OF_SCOPE_LABEL or c.confidence < oos_t:
        return GuardDecision(action="out_of_scope", answer=_(OUT_OF_SCOPE_ANSWER), classification=c)
    if c.intent == SMALL_TALK_LABEL:
        return GuardDecision(action="small_talk", classification=c)
    if c.confidence < clarify_t:
        choices = [Choice(intent=i, title=_(intent_title(i))) for i in in_scope_candidates(c)[:CLARIFY_CHOICES]]
        if choices:
            return GuardDecision(action="clarify", answer=clarify_question(choices), choices=choices, classification=c)
        return GuardDecision(action="out_of_scope", answer=_(OUT_OF_SCOPE_ANSWER), classification=c)
    return GuardDecision(action="route", classification=c)
