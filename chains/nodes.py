"""The nodes of the conversation graph (chains/graph.py), one small function each, at module level.

Every node takes ``(state, config)`` (or just ``state``) and returns a state update or a
``Command``; none holds anything between calls except :class:`Classify`, which holds the intent
chain it was built with. The order, and why::

    intake   the owner check, the message validated once, the turn's keys reset (TURN_DEFAULTS)
    settle   the one place a pending proposal is decided: an explicit decision (API or button),
             a bare yes/no right after it, or closed as superseded by anything else
    classify one classification of the message alone (and, when that is unsure and the thread
             has an earlier request, one more with it); the guard once per classification
    guard    the guard's decision applied: small talk, clarify, decline, or route to the tool
    tool     the intent's banking tool for the authenticated customer (may propose a change)
    confirm  stop for the customer's answer (LangGraph ``interrupt``); a button goes to settle,
             typed text to intake (it is a new message)
    respond  stream the answer and append it to the conversation
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.types import Command, interrupt

from bank.store import get_engine
from bank.tools import ProposalRefused, run_tool
from bank.transcript import record_turn
from chains.assistant import AssistantOutput, validate_message
from chains.classification import Classification
from chains.confirmation import answer_pending, decide, supersede, yes_or_no
from chains.context import TurnContext
from chains.guard import UnknownChoice, guard, in_scope_candidates
from chains.intent_titles import intent_title
from chains.small_talk import small_talk_reply
from chains.state import TURN_DEFAULTS, AssistantState, Decision, TurnRequest
from models.base import QueryBlocked

STREAM_CHUNK_WORDS = 3
"""Words per streamed answer chunk (``stream_mode="custom"`` events ``{"answer_chunk": str}``)."""
FOLLOW_UP_CANDIDATES = 3
"""How many of the message-alone ranking's in-scope candidates a follow-up's intent must be among."""

BLOCKED_ANSWER = "I can't help with that message. Please rephrase it, or ask me about your account."
NOTHING_PENDING_ANSWER = ("There is nothing waiting for your confirmation in this conversation. "
                          "What would you like to do?")


# ----------------------------------------------------------------------------- helpers
def owner_check(state: AssistantState, config: RunnableConfig) -> int:
    """The authenticated customer, who must be the thread's owner (the customer whose message
    started it). Raises ``PermissionError`` otherwise, before anything is read or resumed."""
    cid = TurnContext.from_config(config).customer_id
    owner = state.get("customer_id")
    if owner is not None and int(owner) != cid:
        raise PermissionError("This conversation belongs to another customer.")
    return cid


def last_human_text(state: AssistantState) -> str:
    """The text of the last ``HumanMessage``. Raises ``ValueError`` when there is none."""
    for m in reversed(state.get("messages") or []):
        if isinstance(m, HumanMessage):
            return m.content if isinstance(m.content, str) else str(m.content)
    raise ValueError("no customer message in the input")


def explicit_decision(value: Any) -> bool | None:
    """``approve`` of a button/API resume value (True/False or ``{"approve": bool}``), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, dict) and isinstance(value.get("approve"), bool):
        return value["approve"]
    return None


def plausible_continuation(alone: Classification, with_context: Classification) -> bool:
    """True when the intent found for "earlier request + this message" is among the top
    :data:`FOLLOW_UP_CANDIDATES` in-scope candidates of the message alone: "what about the new
    one?" after "where is my card" may follow on; "freeze my card and cancel the transfer" after
    "why was I charged twice" may not (the earlier topic would win over a new request)."""
    return with_context.intent in in_scope_candidates(alone)[:FOLLOW_UP_CANDIDATES]


def assistant_message(out: AssistantOutput) -> AIMessage:
    """The assistant's turn as a chat message; its status and intent ride in ``additional_kwargs``
    (the whole output is the turn's ``output``; the state stays small)."""
    return AIMessage(content=out.answer, additional_kwargs={"assistant_output": {"status": out.status, "intent": out.intent}})


def record(state: AssistantState, config: RunnableConfig, out: AssistantOutput) -> None:
    """Append this turn to the conversation's transcript (bank/transcript.py), once per turn:
    by ``respond``, or by ``tool`` when the turn stops for confirmation."""
    request, ctx = state.get("request"), TurnContext.from_config(config)
    if request is None or ctx.thread_id is None:
        return
    said = request.text
    if request.decision is not None and request.decision.resumed:
        said = "[button] " + ("yes" if request.decision.approve else "no")
    record_turn(get_engine(), thread_id=ctx.thread_id, customer_id=ctx.customer_id, customer_text=said,
                answer=out.answer, status=out.status, intent=out.intent)


def with_notice(out: AssistantOutput, notice: str | None) -> AssistantOutput:
    """``out`` with ``notice`` (e.g. "I haven't done the earlier request ...") before its answer."""
    if not notice or out.answer.startswith(notice):
        return out
    return out.model_copy(update={"answer": f"{notice} {out.answer}"})


def about(decided: AssistantOutput, proposal: Classification | None) -> AssistantOutput:
    """A decision's output carrying the classification of the proposal it decides, so the answer
    says what it was about."""
    if proposal is None:
        return decided
    return decided.model_copy(update={k: v for k, v in proposal.output_fields().items() if v is not None})


def answer_chunks(answer: str) -> list[str]:
    """``answer`` cut into chunks of :data:`STREAM_CHUNK_WORDS` words (joined back, they give
    ``answer``)."""
    words = answer.split(" ")
    return [" ".join(words[i:i + STREAM_CHUNK_WORDS]) + (" " if i + STREAM_CHUNK_WORDS < len(words) else "")
            for i in range(0, len(words), STREAM_CHUNK_WORDS)]


def _json(out: AssistantOutput) -> dict[str, Any]:
    return out.model_dump(mode="json")


# ----------------------------------------------------------------------------- nodes
def intake(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
    """Check the owner, validate the new message (raises ``InvalidMessage``), read the request
    once and reset the turn's keys. The previous answer's clarify choices move into the request:
    they count for this message only."""
    cid = owner_check(state, config)
    confirm = state.get("confirm")
    request = TurnRequest(
        text=validate_message(last_human_text(state)),
        decision=Decision(action_id=str(confirm["action_id"]), approve=bool(confirm["approve"])) if confirm else None,
        chosen_intent=state.get("chosen_intent"), offered=state.get("choices") or [],
        offered_for=state.get("clarified"))
    return {**TURN_DEFAULTS, "customer_id": cid, "request": request, "confirm": None, "chosen_intent": None,
            "choices": [], "clarified": None}


def settle(state: AssistantState) -> Command[Literal["respond", "classify"]]:
    """Decide the pending proposal, if any, and close it either way: (a) an explicit decision
    (from any thread: the store checks scope and expiry; a button's, for this thread's
    proposal), (b) a bare yes/no right after it, else (c) superseded: nothing done, and the
    message goes on as a new request. A yes/no with nothing pending says so."""
    cid, request, pending = state["customer_id"], state["request"], state.get("pending")
    cleared: dict[str, Any] = {"pending": None, "proposal": None}
    if request.decision is not None:
        d = request.decision
        if d.resumed:
            out = about(answer_pending(cid, pending, d.approve), state.get("proposal"))
            notice = ""
        else:
            out = decide(cid, d.action_id, d.approve)
            notice = supersede(cid, pending) if pending and pending["action_id"] != d.action_id else ""
        update = {**cleared, "output": _json(out), "notice": notice}
        return Command(goto="respond", update={**update, **({"context": None} if d.resumed and not d.approve else {})})
    reply = yes_or_no(request.text, (pending or {}).get("action"))
    if pending and reply is not None:
        out = about(answer_pending(cid, pending, reply), state.get("proposal"))
        return Command(goto="respond", update={**cleared, "output": _json(out), **({} if reply else {"context": None})})
    if pending:
        return Command(goto="classify", update={**cleared, "notice": supersede(cid, pending)})
    if reply is not None:
        return Command(goto="respond", update={"output": _json(AssistantOutput(answer=NOTHING_PENDING_ANSWER,
                                                                                status="answered"))})
    return Command(goto="classify")


class Classify:
    """The ``classify`` node: the message's classification and the guard's decision on it.

    A picked clarify choice needs no model (it must be one the previous answer offered: else
    :class:`chains.guard.UnknownChoice`). Otherwise the message alone is classified; when the
    guard is unsure (clarify) and the thread has an earlier request (``context``), the two are
    classified together, and that wins only when it routes and the message alone is a
    :func:`plausible_continuation` of it (the answer then says what it was taken to mean).

    ``intent_chain``: the chain of chains/intent.py (default: built on first use, in the node's
    worker thread, since importing backends does file I/O).
    """

    def __init__(self, intent_chain: Runnable | None = None) -> None:
        self._chain, self._lock = intent_chain, threading.Lock()

    def classification(self, text: str, ctx: TurnContext, config: RunnableConfig) -> Classification:
        """One classification of ``text`` with this turn's backend. Raises ``QueryBlocked`` or
        ``BackendUnavailable`` from the backend."""
        with self._lock:
            if self._chain is None:
                from chains.intent import build_intent_chain

                self._chain = build_intent_chain()
        return Classification.from_message(self._chain.invoke([HumanMessage(text)], ctx.intent_config(config)))

    def __call__(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        request, ctx = state["request"], TurnContext.from_config(config)
        if request.chosen_intent:
            if request.chosen_intent not in {c.intent for c in request.offered}:
                raise UnknownChoice(f"{request.chosen_intent[:40]!r} is not one of the choices offered by the "
                                    "previous answer")
            return {"decision": guard(Classification.picked(request.chosen_intent, ctx.backend)),
                    "request": request.model_copy(update={"text": request.offered_for or request.text})}
        try:
            alone = guard(self.classification(request.text, ctx, config))
        except QueryBlocked:
            return {"output": _json(AssistantOutput(answer=BLOCKED_ANSWER, status="blocked", backend=ctx.backend))}
        context = state.get("context")
        if context and alone.action == "clarify":
            joined = guard(self.classification(f"{context} {request.text}", ctx, config))
            if joined.action == "route" and plausible_continuation(alone.classification, joined.classification):
                follow = ("Taking this as a follow-up to your earlier message, about "
                          f"{intent_title(joined.classification.intent)}:")
                return {"decision": joined, "fallback": alone, "contextual": True,
                        "notice": f"{state.get('notice') or ''} {follow}".strip()}
        return {"decision": alone}


def apply_guard(state: AssistantState) -> dict[str, Any]:
    """The guard's decision applied: small talk gets its reply, clarify its question and
    choices (remembered for the next message), out of scope a polite decline; route changes
    nothing (the tool runs next)."""
    decision = state["decision"]
    if decision.action == "small_talk":
        out = AssistantOutput(answer=small_talk_reply(state["request"].text), status="small_talk",
                              **decision.classification.output_fields())
        return {"output": _json(out)}
    if decision.action == "route":
        return {}
    update: dict[str, Any] = {"output": _json(decision.output())}
    if decision.action == "clarify":
        update.update(choices=decision.choices, clarified=state["request"].text)
    return update


def tool(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
    """Run the intent's banking tool for the authenticated customer. An intent inferred from
    context may not propose a state change the message alone did not ask for: then the message
    alone's clarify question is asked instead."""
    decision, request, fallback = state["decision"], state["request"], state.get("fallback")
    intent = decision.classification.intent
    may_propose = not state.get("contextual") or (fallback is not None and fallback.classification.intent == intent)
    try:
        result = run_tool(get_engine(), TurnContext.from_config(config).customer_id, intent, request.text,
                          may_propose=may_propose)
    except ProposalRefused:  # contextual only when the message alone was "clarify": ask that
        return {"output": _json(fallback.output()), "contextual": False, "choices": fallback.choices,
                "clarified": request.text}
    out = AssistantOutput(
        answer=result.answer, status="confirmation_required" if result.pending_confirmation else "answered",
        tool=result.tool, data=result.data, pending_confirmation=result.pending_confirmation,
        **decision.classification.output_fields())
    if not out.pending_confirmation:
        return {"output": _json(out)}
    out = with_notice(out, state.get("notice"))  # the question goes into the conversation before the interrupt
    record(state, config, out)
    return {"output": _json(out), "messages": [assistant_message(out)], "pending": out.pending_confirmation,
            "proposal": decision.classification,
            "context": request.text if not state.get("contextual") else state.get("context")}


def confirm(state: AssistantState, config: RunnableConfig) -> Command[Literal["settle", "intake"]]:
    """Stop for the customer's answer to the proposal (LangGraph ``interrupt``). A button's
    True/False (or ``{"approve": bool}``) goes to settle; text is a new message, so it goes to
    intake. Raises ``ValueError`` for any other resume value."""
    owner_check(state, config)  # before interrupt(): a refused resume leaves no answer behind
    pending = state["pending"]
    reply = interrupt({**pending, "question": state["output"]["answer"]})
    approve = explicit_decision(reply)
    if approve is None:
        if not isinstance(reply, str):
            raise ValueError("resume a confirmation with true/false, {'approve': bool} or the customer's reply text")
        return Command(goto="intake", update={"messages": [HumanMessage(reply)]})
    decision = Decision(action_id=pending["action_id"], approve=approve, resumed=True)
    return Command(goto="settle", update={"request": state["request"].model_copy(update={"decision": decision}),
                                          "notice": ""})


def respond(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
    """Stream the answer (custom events ``{"answer_chunk": str}``), append it to the conversation
    and its transcript; an answered request that reached a tool becomes the thread's context."""
    out = with_notice(AssistantOutput.model_validate(state["output"]), state.get("notice"))
    record(state, config, out)
    writer = get_stream_writer()
    for chunk in answer_chunks(out.answer):
        writer({"answer_chunk": chunk})
    update: dict[str, Any] = {"messages": [assistant_message(out)], "output": _json(out), "notice": ""}
    if out.status == "answered" and out.tool and not state.get("contextual"):
        update["context"] = state["request"].text
    return update


# ----------------------------------------------------------------------------- routing
def after_classify(state: AssistantState) -> Literal["guard", "respond"]:
    """A blocked message is answered at once; everything else goes to the guard."""
    return "respond" if state.get("output") else "guard"


def after_guard(state: AssistantState) -> Literal["tool", "respond"]:
    """Only a "route" decision reaches a tool."""
    return "tool" if state["decision"].action == "route" and not state.get("output") else "respond"


def after_tool(state: AssistantState) -> Literal["confirm", "respond"]:
    """A proposed change stops for confirmation."""
    return "confirm" if (state.get("output") or {}).get("pending_confirmation") else "respond"
