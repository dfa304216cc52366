"""The assistant chain: message -> classify -> guard -> route -> tool -> answer.

Input: ``{"message": str, "confirm_action_id": str | None, "approve": bool | None}``.
The customer comes from ``config["configurable"]["customer_id"]``, which only the interfaces set,
from authentication (the HTTP layer refuses any request body that sets it). The backend comes from
``config["configurable"]["backend"]`` (see chains/intent.py).

Guard (see training/thresholds.py for how the thresholds are chosen): top-1 confidence below
``oos_threshold`` -> a polite out-of-scope reply; below ``clarify_threshold`` -> a clarifying
question naming the top candidates; otherwise the intent's tool runs.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from pydantic import BaseModel, Field, field_validator, model_validator

from bank import tools
from bank.store import get_engine
from assistant.settings import get_settings
from chains.backends import get_backend
from chains.intent import build_intent_chain
from models.base import BackendUnavailable

MAX_MESSAGE_CHARS = 2000
YES = re.compile(r"^\s*(yes|y|yeah|yep|sure|ok(ay)?|confirm(ed)?|please do|do it|go ahead)\b", re.I)
NO = re.compile(r"^\s*(no|n|nope|cancel|don'?t|do not|stop)\b", re.I)
OUT_OF_SCOPE_ANSWER = (
    "Sorry, I can only help with banking questions about your accounts, cards, payments, "
    "transfers and top-ups. Could you tell me what you need with your account?"
)


def validate_message(text: str, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    """Return ``text`` stripped. Raises ``ValueError`` (with the reason) when it is empty or
    whitespace-only, longer than ``max_chars`` characters, or contains control characters
    (Unicode category Cc other than tab/newline, or Cf format characters)."""
    if not isinstance(text, str):
        raise ValueError("message must be a string")
    stripped = text.strip()
    if not stripped:
        raise ValueError("message is empty")
    if len(text) > max_chars:
        raise ValueError(f"message is {len(text)} characters long; the limit is {max_chars}")
    bad = [c for c in text if (unicodedata.category(c) == "Cc" and c not in "\t\n\r") or unicodedata.category(c) == "Cf"]
    if bad:
        raise ValueError(f"message contains control characters ({', '.join(repr(c) for c in bad[:3])})")
    return stripped


class AssistantInput(BaseModel):
    """Request body of /assistant: the customer's message, optionally a confirmation decision."""

    message: str = Field(..., description="The customer's message (1-2,000 characters).")
    confirm_action_id: str | None = Field(None, description="Pending action to decide on (from a previous answer).")
    approve: bool | None = Field(
        None, description="With confirm_action_id: true confirms, false declines; when omitted, read from a "
        "yes/no message."
    )

    @field_validator("message")
    @classmethod
    def _check(cls, v: str) -> str:
        return validate_message(v)

    @model_validator(mode="after")
    def _decision(self) -> "AssistantInput":
        if self.confirm_action_id is None:
            if self.approve is not None:
                raise ValueError("approve needs confirm_action_id (the pending action to decide on)")
            return self
        if self.approve is None:
            self.approve = yes_or_no(self.message)
            if self.approve is None:
                raise ValueError("with confirm_action_id, set approve (true/false) or answer 'yes' or 'no'")
        return self


class RankedIntent(BaseModel):
    intent: str
    confidence: float


class AssistantOutput(BaseModel):
    """Response of /assistant. ``status``: answered | clarify | out_of_scope |
    confirmation_required | confirmed | declined | failed (what actually happened to a pending
    action: a replayed decision reports the stored outcome). ``latency_ms`` is the
    classification latency (ms)."""

    answer: str
    status: Literal["answered", "clarify", "out_of_scope", "confirmation_required", "confirmed", "declined", "failed"]
    intent: str | None = None
    confidence: float | None = None
    ranking: list[RankedIntent] = []
    backend: str | None = None
    model_version: str | None = None
    latency_ms: float | None = None
    tool: str | None = None
    data: dict[str, Any] = {}
    pending_confirmation: dict[str, Any] | None = None


def intent_title(label: str) -> str:
    """Human-readable name of an intent label: 'card_arrival' -> 'card arrival'."""
    return label.rstrip("?").replace("_", " ").strip().lower()


def thresholds_for(backend: str) -> tuple[float, float]:
    """(oos_threshold, clarify_threshold) for a backend: the settings override when set, else the
    values saved with the backend's model (``thresholds`` attribute), else (0.0, 0.0)."""
    s = get_settings()
    saved: dict[str, float] = {}
    try:
        saved = dict(getattr(get_backend(backend), "thresholds", {}) or {})
    except (KeyError, BackendUnavailable):  # unknown or unloadable backend: settings only
        saved = {}
    oos = s.oos_threshold if s.oos_threshold is not None else float(saved.get("oos_threshold", 0.0))
    clarify = s.confidence_threshold if s.confidence_threshold is not None else float(saved.get("clarify_threshold", oos))
    return oos, max(oos, clarify)


def customer_id_from(config: RunnableConfig | None) -> int:
    """The authenticated customer id in ``config["configurable"]["customer_id"]``; raises
    ``PermissionError`` when absent (interfaces set it from authentication only)."""
    cid = ((config or {}).get("configurable") or {}).get("customer_id")
    if cid is None:
        raise PermissionError("No authenticated customer for this request.")
    return int(cid)


class GuardDecision(BaseModel):
    """What the confidence guard decided for one classification.

    ``action``: "route" (run the intent's tool), "clarify" (ask which of the top candidates) or
    "out_of_scope" (decline politely); ``answer`` is the reply for the last two (empty for
    "route"); ``base`` holds the classification fields every :class:`AssistantOutput` carries
    (intent, confidence, ranking, backend, model_version, latency_ms).
    """

    action: Literal["route", "clarify", "out_of_scope"]
    answer: str = ""
    base: dict[str, Any]

    def output(self) -> AssistantOutput:
        """The turn's output when the guard stops it (clarify / out_of_scope)."""
        if self.action == "route":
            raise ValueError("a routed decision has no guard output; run the tool")
        return AssistantOutput(answer=self.answer, status=self.action, **self.base)


def guard(classification: AIMessage) -> GuardDecision:
    """Apply the confidence guard (thresholds from :func:`thresholds_for`) to a contract
    ``AIMessage``: below ``oos_threshold`` -> out_of_scope, below ``clarify_threshold`` ->
    clarify (naming the top-3 candidates), otherwise route to the intent's tool."""
    meta = classification.response_metadata
    base = dict(
        intent=meta["intent"],
        confidence=meta["confidence"],
        ranking=meta["ranking"],
        backend=meta.get("backend"),
        model_version=meta.get("model_version"),
        latency_ms=meta.get("latency_ms"),
    )
    oos_t, clarify_t = thresholds_for(meta.get("backend", "custom"))
    if meta["confidence"] < oos_t:
        return GuardDecision(action="out_of_scope", answer=OUT_OF_SCOPE_ANSWER, base=base)
    if meta["confidence"] < clarify_t:
        top = [intent_title(r["intent"]) for r in meta["ranking"][:3]]
        question = (
            "I want to make sure I help with the right thing. Is your question about "
            + ", ".join(f"'{t}'" for t in top[:-1])
            + f" or '{top[-1]}'?"
        )
        return GuardDecision(action="clarify", answer=question, base=base)
    return GuardDecision(action="route", base=base)


def run_intent_tool(customer_id: int, decision: GuardDecision, message: str) -> AssistantOutput:
    """Run the banking tool of a routed ``decision`` for ``customer_id`` (one transaction).

    Status is "confirmation_required" when the tool proposed a state-changing action (nothing
    has changed yet; see :func:`decide`), else "answered". Raises ``ValueError`` for an unknown
    intent, ``LookupError`` for an unknown customer.
    """
    result = tools.run_tool(get_engine(), customer_id, decision.base["intent"], message)
    return AssistantOutput(
        answer=result.answer,
        status="confirmation_required" if result.pending_confirmation else "answered",
        tool=result.tool,
        data=result.data,
        pending_confirmation=result.pending_confirmation,
        **decision.base,
    )


def guard_and_route(classification: AIMessage, message: str, customer_id: int) -> AssistantOutput:
    """Apply the confidence guard to a contract ``AIMessage`` and run the chosen tool."""
    decision = guard(classification)
    if decision.action != "route":
        return decision.output()
    return run_intent_tool(customer_id, decision, message)


def yes_or_no(text: str) -> bool | None:
    """True for a short affirmative reply ("yes", "ok, do it"), False for a short negative one
    ("no", "cancel"), None for anything else (including replies of 40+ characters)."""
    if len(text) >= 40:
        return None
    if YES.match(text):
        return True
    if NO.match(text):
        return False
    return None


def reply_to_pending(customer_id: int, message: str) -> AssistantOutput | None:
    """When ``message`` is a short yes/no and the customer has a pending action, decide it
    (see :func:`decide`); otherwise None (the message is a new request)."""
    answer = yes_or_no(message)
    if answer is None:
        return None
    pending = tools.latest_pending_action(get_engine(), customer_id)
    if not pending:
        return None
    return decide(customer_id, pending["action_id"], answer)


def decide(customer_id: int, action_id: str, approve: bool) -> AssistantOutput:
    """Confirm or decline a pending action (idempotent; see bank/tools.confirm_action)."""
    result = tools.confirm_action(get_engine(), customer_id, action_id, approve)
    # The stored outcome, not the request: a replayed "yes" on a declined action stays declined.
    status = result.data.get("status") or ("confirmed" if approve else "declined")
    return AssistantOutput(answer=result.answer, status=status, tool=result.tool, data=result.data)


def build_assistant_chain(intent_chain: Runnable | None = None) -> Runnable:
    """The whole turn as one runnable: ``AssistantInput | dict`` -> ``AssistantOutput``.

    Raises ``ValueError`` for an invalid message, ``PermissionError`` without an authenticated
    customer, ``LookupError`` for an unknown pending action, ``BackendUnavailable`` when the
    selected backend cannot answer.
    """
    intent_chain = intent_chain or build_intent_chain()

    def turn(inp: AssistantInput | dict, config: RunnableConfig) -> AssistantOutput:
        req = inp if isinstance(inp, AssistantInput) else AssistantInput.model_validate(inp)
        cid = customer_id_from(config)
        if req.confirm_action_id:
            return decide(cid, req.confirm_action_id, req.approve)
        replied = reply_to_pending(cid, req.message)
        if replied is not None:
            return replied
        classification = intent_chain.invoke([HumanMessage(req.message)], config)
        return guard_and_route(classification, req.message, cid)

    return RunnableLambda(turn, name="banking_assistant").with_types(
        input_type=AssistantInput, output_type=AssistantOutput
    )
