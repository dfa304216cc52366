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

import functools
import threading
from typing import Any, Callable, Literal

from langchain_core.messages import HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.types import Command, interrupt

from bank.store import get_engine
from bank.tools import ProposalRefused, run_tool
from config.i18n import N_, gettext as _, use_language
from config.language import message_language
from chains.answers import about, answer_chunks, as_json, assistant_message, record, with_notice  # noqa: F401
from chains.assistant import AssistantOutput, validate_message
from chains.classification import Classification
from chains.confirmation import answer_pending, decide, supersede, yes_or_no
from chains.context import TurnContext
from chains.extract import extract, own_entities
from chains.forms import FORM_INTENTS, Form, is_cancel, without_proposal
from chains.guard import GuardDecision, UnknownChoice, guard, in_scope_candidates
from chains.intent_titles import intent_title
from chains.tool_calls import HANDOFF_INTENT, answer_read_only, tool_output, tool_slots
from chains.multi import QueuedRequest, combined_answer, is_multi, split_requests
from chains.small_talk import small_talk_reply
from chains.state import TURN_DEFAULTS, AssistantState, Decision, TurnRequest
from models.base import QueryBlocked

FOLLOW_UP_CANDIDATES = 3
"""How many of the message-alone ranking's in-scope candidates a follow-up's intent must be among."""

BLOCKED_ANSWER = N_("I can't help with that message. Please rephrase it, or ask me about your account.")
NOTHING_OPEN_ANSWER = N_("OK, there is nothing in progress to stop. What would you like to do?")
NOTHING_PENDING_ANSWER = N_("There is nothing waiting for your confirmation in this conversation. "
                            "What would you like to do?")


def speaks(node: Callable[..., Any]) -> Callable[..., Any]:
    """``node`` run in the thread's language (``state["language"]``, set by :func:`intake`):
    the answers it writes come from that language's catalog (config/i18n.py). LangGraph runs
    each node in its own copy of the context, so each node that writes answers sets it."""
    @functools.wraps(node)
    def run(state: AssistantState, *args: Any, **kwargs: Any) -> Any:
        with use_language(state.get("language")):
            return node(state, *args, **kwargs)
    return run


def in_language(out: AssistantOutput, state: AssistantState) -> AssistantOutput:
    """``out`` saying the language it is written in (the thread's, this turn)."""
    return out.model_copy(update={"language": state.get("language") or "en"})


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


# ----------------------------------------------------------------------------- nodes
def intake(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
    """Check the owner, validate the new message (raises ``InvalidMessage``), read the request
    once and reset the turn's keys. The previous answer's clarify choices move into the request:
    they count for this message only."""
    cid = owner_check(state, config)
    confirm = state.get("confirm")
    text = validate_message(last_human_text(state))
    request = TurnRequest(
        text=text, said=text,
        decision=Decision(action_id=str(confirm["action_id"]), approve=bool(confirm["approve"])) if confirm else None,
        chosen_intent=state.get("chosen_intent"), offered=state.get("choices") or [],
        offered_for=state.get("clarified"))
    return {**TURN_DEFAULTS, "customer_id": cid, "request": request, "confirm": None, "chosen_intent": None,
            "choices": [], "clarified": None, "language": message_language(text, state.get("language"))}


def after_decision(state: AssistantState) -> Literal["next", "respond"]:
    """After a proposal is decided: the next queued request of the same message, if any."""
    return "next" if state.get("queue") else "respond"


def dropped(state: AssistantState) -> str:
    """The sentence saying which queued requests were not done (the customer moved on)."""
    queue = state.get("queue") or []
    if not queue:
        return ""
    return _("I also haven't done {requests}: ask again if you still want it.").format(
        requests="; ".join(f'"{q.text}"' for q in queue))


@speaks
def settle(state: AssistantState) -> Command[Literal["respond", "classify", "next"]]:
    """Decide the pending proposal, if any, and close it either way: (a) an explicit decision
    (from any thread: the store checks scope and expiry; a button's, for this thread's
    proposal), (b) a bare yes/no right after it, else (c) superseded: nothing done, and the
    message goes on as a new request (an open form stays open: the message may correct it; the
    queued requests of a multi-request message are dropped, and the answer says so). A decided
    proposal goes on to the next queued request. "forget it" closes an open form. A yes/no with
    nothing pending says so."""
    cid, request, pending = state["customer_id"], state["request"], state.get("pending")
    cleared: dict[str, Any] = {"pending": None, "proposal": None, "form": None}
    if request.decision is not None:
        d = request.decision
        if d.resumed:
            out = about(answer_pending(cid, pending, d.approve), state.get("proposal"))
            notice = ""
        else:
            out = decide(cid, d.action_id, d.approve)
            if out.replayed and pending and pending["action_id"] != d.action_id:
                # a repeated decision on an old action changes nothing: the waiting proposal stays
                return Command(goto="respond", update={"output": as_json(out), "done": []})
            notice = supersede(cid, pending) if pending and pending["action_id"] != d.action_id else ""
        update = {**cleared, "output": as_json(out), "notice": notice, "done": []}
        return Command(goto=after_decision(state),
                       update={**update, **({"context": None} if d.resumed and not d.approve else {})})
    reply = yes_or_no(request.text, (pending or {}).get("action"))
    if pending and reply is not None:
        out = about(answer_pending(cid, pending, reply), state.get("proposal"))
        return Command(goto=after_decision(state), update={**cleared, "output": as_json(out), "done": [],
                                                           **({} if reply else {"context": None})})
    notice = " ".join(n for n in (supersede(cid, pending) if pending else "", dropped(state)) if n)
    cleared["queue"] = []
    form = state.get("form")
    if form is not None and is_cancel(request.text):  # "forget it": the open request is dropped
        notice, closed = without_proposal(notice, form)  # its proposal, if any, is named here once
        said = (_("OK, I've stopped that request ({title}) and closed its proposal; nothing was done.") if closed
                else _("OK, I've stopped that request ({title}); nothing was done."))
        stopped = AssistantOutput(answer=said.format(title=_(intent_title(form.intent))), status="answered")
        return Command(goto="respond", update={**cleared, "output": as_json(stopped), "notice": notice})
    if not pending and not notice and is_cancel(request.text):  # "forget it" with nothing open
        return Command(goto="respond", update={"misses": 0, "output": as_json(AssistantOutput(
            answer=_(NOTHING_OPEN_ANSWER), status="answered"))})
    if pending or notice:  # moved on: closed (a correction keeps the form), handled as a new request
        return Command(goto="classify", update={"pending": None, "proposal": None, "queue": [], "notice": notice})
    if reply is not None:
        return Command(goto="respond", update={"output": as_json(AssistantOutput(answer=_(NOTHING_PENDING_ANSWER),
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
        return self.classifications([text], ctx, config)[0]

    def classifications(self, texts: list[str], ctx: TurnContext, config: RunnableConfig) -> list[Classification]:
        """One classification per text, in one batch (one forward pass for a local model)."""
        with self._lock:
            if self._chain is None:
                from chains.intent import build_intent_chain

                self._chain = build_intent_chain()
        conf = ctx.intent_config(config)
        if len(texts) == 1:
            return [Classification.from_message(self._chain.invoke([HumanMessage(texts[0])], conf))]
        return [Classification.from_message(m) for m in self._chain.batch([[HumanMessage(t)] for t in texts], conf)]

    def __call__(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        with use_language(state.get("language")):
            return self._run(state, config)

    def _run(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        update = self.decide(state, config)
        if "decision" not in update:  # blocked: answered at once
            return update
        return {**update, **extract({**state, **update}, config)}

    def decide(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        """The classification part: the update with the guard's ``decision`` (or a blocked output)."""
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
            return {"output": as_json(AssistantOutput(answer=_(BLOCKED_ANSWER), status="blocked", backend=ctx.backend))}
        parts = split_requests(request.text)
        if len(parts) > 1 and state.get("form") is None:
            decisions = [guard(c) for c in self.classifications(parts, ctx, config)]
            if is_multi(decisions, parts):
                queue = [QueuedRequest(text=p, decision=d) for p, d in zip(parts[1:], decisions[1:])]
                return {"decision": decisions[0], "request": request.model_copy(update={"text": parts[0]}),
                        "queue": queue}
        context = state.get("context")
        if context and alone.action == "clarify" and state.get("form") is None:  # an open form reads it itself
            joined = own_entities(guard(self.classification(f"{context} {request.text}", ctx, config)), alone)
            if joined.action == "route" and plausible_continuation(alone.classification, joined.classification):
                follow = _("Taking this as a follow-up to your earlier message, about {title}:").format(
                    title=_(intent_title(joined.classification.intent)))
                return {"decision": joined, "fallback": alone, "contextual": True,
                        "notice": f"{state.get('notice') or ''} {follow}".strip()}
        return {"decision": alone}


MISSES_BEFORE_HANDOFF = 1
"""A clarify question or decline right after another one hands the customer over to a person."""


@speaks
def apply_guard(state: AssistantState) -> dict[str, Any]:
    """The guard's decision applied: small talk gets its reply, clarify its question and
    choices (remembered for the next message), out of scope a polite decline; route changes
    nothing (the tool runs next). A second clarify/decline in a row routes to the hand-over."""
    decision = state["decision"]
    if decision.action == "small_talk":
        out = AssistantOutput(answer=small_talk_reply(state["request"].text), status="small_talk",
                              **decision.classification.output_fields())
        return {"output": as_json(out)}
    if decision.action == "route":
        return {}
    if (state.get("misses") or 0) >= MISSES_BEFORE_HANDOFF:
        handoff = decision.classification.model_copy(update={"intent": HANDOFF_INTENT})
        return {"decision": GuardDecision(action="route", classification=handoff),
                "slots": {"reason": "The assistant did not understand twice in a row."}}
    update: dict[str, Any] = {"output": as_json(decision.output())}
    if decision.action == "clarify":
        update.update(choices=decision.choices, clarified=state["request"].text)
    return update


@speaks
def tool(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
    """Run the intent's banking tool for the authenticated customer with the turn's slots. An
    intent inferred from context may not propose a state change the message alone did not ask
    for: then the message alone's clarify question is asked instead. A question for a missing
    detail opens (or keeps) the form; a proposal of a form intent keeps it for corrections."""
    decision, request, fallback = state["decision"], state["request"], state.get("fallback")
    intent = decision.classification.intent
    may_propose = not state.get("contextual") or (fallback is not None and fallback.classification.intent == intent)
    try:
        result = run_tool(get_engine(), TurnContext.from_config(config).customer_id, intent, request.text,
                          slots=tool_slots(state, config, intent), may_propose=may_propose)
    except ProposalRefused:  # contextual only when the message alone was "clarify": ask that
        return {"output": as_json(fallback.output()), "contextual": False, "choices": fallback.choices,
                "clarified": request.text}
    out = tool_output(result, decision)
    slots = {k: str(v) for k, v in {**(state.get("slots") or {}), **(result.data.get("slots") or {})}.items()
             if isinstance(v, (str, int, float)) and k not in ("transcript",)}
    form = None
    if result.slot_request:
        form = Form(intent=intent, slots=slots, asked=result.slot_request.get("slot"),
                    options=list(result.slot_request.get("options") or []))
    elif result.pending_confirmation and intent in FORM_INTENTS:
        form = Form(intent=intent, slots=slots, proposed=result.pending_confirmation.get("description"))
    if not out.pending_confirmation:
        return {"output": as_json(out), "form": form}
    done, waiting = answer_read_only(state, config)  # the reply also answers the later read-only requests
    if done:
        out = out.model_copy(update={"answer": combined_answer(done, out.answer)})
    out = in_language(with_notice(out, state.get("notice")), state)  # into the conversation before the interrupt
    # the proposal says its language too: the UI words its buttons in it (assistant/ui_text.py)
    out = out.model_copy(update={"pending_confirmation": {**out.pending_confirmation, "language": out.language}})
    record(state, config, out)
    return {"output": as_json(out), "messages": [assistant_message(out)], "pending": out.pending_confirmation,
            "proposal": decision.classification, "form": form, "done": done, "queue": waiting,
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


@speaks
def respond(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
    """Stream the answer (custom events ``{"answer_chunk": str}``), append it to the conversation
    and its transcript; an answered request that reached a tool becomes the thread's context."""
    out = AssistantOutput.model_validate(state["output"])
    if state.get("done"):
        out = out.model_copy(update={"answer": combined_answer(state["done"], out.answer),
                                     "data": {**out.data, "requests": state["done"] + [as_json(out)]}})
    out = in_language(with_notice(out, state.get("notice")), state)
    record(state, config, out)
    writer = get_stream_writer()
    for chunk in answer_chunks(out.answer):
        writer({"answer_chunk": chunk})
    missed = out.status in ("clarify", "out_of_scope")
    update: dict[str, Any] = {"messages": [assistant_message(out)], "output": as_json(out), "notice": "",
                              "misses": (state.get("misses") or 0) + 1 if missed else 0}
    if out.status == "answered" and out.tool and not state.get("contextual"):
        update["context"] = state["request"].text
    return update


@speaks
def next_request(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
    """Take the next request of a multi-request message from the queue; the one just handled is
    kept in ``done`` (the reply tells it too). A later part may refer to an earlier one's payee."""
    queued, *rest = state["queue"]
    done = [*(state.get("done") or []), state["output"]]
    update = {"request": state["request"].model_copy(update={"text": queued.text, "decision": None}),
              "decision": queued.decision, "queue": rest, "done": done, "output": None}
    return {**update, **extract({**state, **update}, config)}


# ----------------------------------------------------------------------------- routing
def after_classify(state: AssistantState) -> Literal["guard", "respond"]:
    """A blocked message is answered at once; everything else goes to the guard."""
    return "respond" if state.get("output") else "guard"


def after_guard(state: AssistantState) -> Literal["tool", "respond"]:
    """Only a "route" decision reaches a tool."""
    return "tool" if state["decision"].action == "route" and not state.get("output") else "respond"


def after_tool(state: AssistantState) -> Literal["confirm", "next", "respond"]:
    """A proposed change stops for confirmation; otherwise the next queued request, if any."""
    if (state.get("output") or {}).get("pending_confirmation"):
        return "confirm"
    return "next" if state.get("queue") else "respond"
