"""THE conversation turn, written once as a LangGraph ``StateGraph``. Every interface runs it:
LangServe ``/assistant/*`` (assistant/server.py), ``banking-assistant chat``/``ask``
(assistant/cli.py), the Chainlit UI (assistant/ui_app.py) and ``langgraph dev`` (langgraph.json)::

    START -> classify --(explicit decision | yes/no to the proposal just shown |
                 |       small talk | nothing pending)-------------------------> respond -> END
                 v
               guard --(clarify | out_of_scope | small_talk)---------------------> respond
                 | route
                 v
               tool  --(no state change)------------------------------------------> respond
                 | proposes a state change (freeze card, cancel transfer, ...)
                 v
              confirm: interrupt({action_id, action, description, question})
                 | resumed with True/False or {"approve": bool} (buttons) -> decide -> respond
                 | resumed with text, or new input instead of a resume ------> classify

Confirmation safety (chains/confirmation.py): a proposal is decided only by an explicit decision
(input ``confirm``: ``{"action_id", "approve"}``, or a button's resume value) or by a bare yes/no
as the very next message of the same thread. Any other next message closes it as
``superseded`` and is handled as a new request. A "yes" in another thread (another browser tab,
the CLI, the HTTP API) finds nothing pending there and changes nothing.

Follow-ups: when the message alone is in scope but unsure (clarify) and the thread has an
earlier request that reached a tool, the two are classified together; that result is used only
if it passes the guard and the message alone is a plausible continuation of it
(:func:`plausible_continuation`), and the answer then says what the message was taken to mean;
its tool may not propose a state change unless the message alone
has the same top intent (``may_propose``).

Identity: the customer comes from authentication only (:func:`authenticated_customer_id`); a thread belongs
to the customer whose message started it. Backend: ``config["configurable"]["backend"]`` of each
request (the setting's default when a request names none; never remembered per thread). Memory: a checkpointer keyed by ``thread_id`` (:func:`open_checkpointer`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from tenacity import AsyncRetrying, Retrying, retry_if_exception, stop_after_attempt, wait_incrementing

from assistant.settings import get_settings
from bank.store import get_engine
from bank.tools import ProposalRefused, run_tool
from chains.assistant import AssistantInput, AssistantOutput, validate_message
from chains.confirmation import answer_pending, decide, supersede, yes_or_no
from chains.guard import CLASSIFICATION_FIELDS, NON_TOOL_LABELS, GuardDecision, UnknownChoice, guard
from chains.intent_titles import intent_title
from chains.identity import authenticated_customer_id
from chains.intent import build_intent_chain
from chains.small_talk import small_talk_reply
from chains.state import AssistantState, InputState
from models.base import QueryBlocked

STREAM_CHUNK_WORDS = 3
"""Words per streamed answer chunk (``stream_mode="custom"`` events ``{"answer_chunk": str}``)."""

BLOCKED_ANSWER = "I can't help with that message. Please rephrase it, or ask me about your account."
NOTHING_PENDING_ANSWER = ("There is nothing waiting for your confirmation in this conversation. "
                          "What would you like to do?")


# ----------------------------------------------------------------------------- identity
def owner_check(state: AssistantState, config: RunnableConfig) -> int:
    """The authenticated customer, who must be the thread's owner (the customer whose message
    started it). Raises ``PermissionError`` otherwise, before anything is read or resumed."""
    cid = authenticated_customer_id(config)
    owner = state.get("customer_id")
    if owner is not None and int(owner) != cid:
        raise PermissionError("This conversation belongs to another customer.")
    return cid


def _last_human_text(state: AssistantState) -> str:
    for m in reversed(state.get("messages") or []):
        if isinstance(m, HumanMessage):
            return m.content if isinstance(m.content, str) else str(m.content)
    raise ValueError("no customer message in the input")


def _assistant_message(out: AssistantOutput) -> AIMessage:
    """The assistant's turn as a chat message; the full output rides in ``additional_kwargs``."""
    return AIMessage(content=out.answer, additional_kwargs={"assistant_output": out.model_dump(mode="json")})


FOLLOW_UP_CANDIDATES = 3
"""How many of the message-alone ranking's in-scope candidates a follow-up's intent must be among."""


def plausible_continuation(alone: dict[str, Any], with_context: dict[str, Any]) -> bool:
    """True when the intent found for "earlier request + this message" (``with_context``, a
    classification's ``response_metadata``) is among the top :data:`FOLLOW_UP_CANDIDATES` in-scope
    candidates of the message alone (``alone``): "what about the new one?" after "where is my
    card" may follow on; "freeze my card and cancel the transfer" after "why was I charged twice"
    may not (the earlier topic would win over a new request)."""
    candidates = [r["intent"] for r in alone.get("ranking") or [] if r["intent"] not in NON_TOOL_LABELS]
    return with_context.get("intent") in candidates[:FOLLOW_UP_CANDIDATES]


def _explicit_decision(value: Any) -> bool | None:
    """``approve`` of a button/API resume value (True/False or ``{"approve": bool}``), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, dict) and isinstance(value.get("approve"), bool):
        return value["approve"]
    return None


# ----------------------------------------------------------------------------- the graph
def build_graph(checkpointer: Any = None, intent_chain: Runnable | None = None):
    """Compile the conversation graph.

    ``checkpointer``: a LangGraph checkpointer (see :func:`open_checkpointer`); None compiles
    without one (LangGraph server supplies its own; confirmation needs one).
    ``intent_chain``: default ``build_intent_chain()`` (configurable ``backend``); tests pass a
    fake backend with fixed rankings.

    Input (:class:`chains.state.InputState`): ``{"messages": [HumanMessage | {"role": "user",
    "content": str}], "confirm": {"action_id": str, "approve": bool} | None, "chosen_intent":
    str | None}``; resume a confirmation with ``Command(resume=True | False | {"approve": bool} |
    "reply text")``. Output state: ``output`` is the turn's ``AssistantOutput`` dict.

    Raises ``ValueError`` for an invalid message, ``PermissionError`` without an authenticated
    customer or on another customer's thread, ``ActionNotFoundError``/``ActionExpiredError`` for
    an explicit decision on an unknown/expired action, ``BackendUnavailable`` when the chosen
    backend cannot answer.
    """
    chains: list[Runnable] = [intent_chain] if intent_chain is not None else []

    def classify_text(text: str, backend: str, config: RunnableConfig) -> dict[str, Any]:
        if not chains:  # built lazily, in the node's worker thread: importing backends does file I/O
            chains.append(build_intent_chain())
        conf = {**(config.get("configurable") or {}), "backend": backend}
        return chains[0].invoke([HumanMessage(text)], {**config, "configurable": conf}).response_metadata

    def classify(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        """Validate the new message; settle the proposal it may answer; else classify it (with
        the thread's context when the message alone is in scope but unsure)."""
        cid = owner_check(state, config)
        text = validate_message(_last_human_text(state))
        conf = config.get("configurable") or {}
        backend = conf.get("backend") or get_settings().backend  # per request, never remembered
        pending, explicit, chosen = state.get("pending"), state.get("confirm"), state.get("chosen_intent")
        turn: dict[str, Any] = {"customer_id": cid, "message": text, "backend": backend, "classification": None,
                                "alone": None, "decision": None, "output": None, "contextual": False,
                                "pending": None, "confirm": None, "chosen_intent": None, "notice": "",
                                "choices": [], "clarified": None}  # choices count for the next message only

        def done(out: AssistantOutput, **more: Any) -> dict[str, Any]:
            return {**turn, "output": out.model_dump(mode="json"), **more}

        if explicit:  # (a) an explicit decision, from any thread: the store checks scope and expiry
            out = decide(cid, str(explicit["action_id"]), bool(explicit["approve"]))
            if pending and pending["action_id"] != explicit["action_id"]:
                turn["notice"] = supersede(cid, pending)
            return done(out)
        reply = yes_or_no(text, (pending or {}).get("action"))
        if pending:
            if reply is not None:  # (b) a bare yes/no right after the proposal
                decided = _with_classification(answer_pending(cid, pending, reply), state.get("output"))
                return done(decided, **({} if reply else {"context": None}))
            turn["notice"] = supersede(cid, pending)  # moved on: closed, and handled as a new request
        elif reply is not None:
            return done(AssistantOutput(answer=NOTHING_PENDING_ANSWER, status="answered"))
        if chosen:
            offered = {c["intent"]: c for c in (state.get("choices") or [])}
            if chosen not in offered:
                raise UnknownChoice(f"{chosen[:40]!r} is not one of the choices offered by the previous answer")
            meta = {"intent": chosen, "confidence": 1.0, "ranking": [{"intent": chosen, "confidence": 1.0}],
                    "backend": backend, "model_version": None, "latency_ms": 0.0,
                    "thresholds": {"oos_threshold": 0.0, "clarify_threshold": 0.0}, "chosen": True}
            return {**turn, "classification": meta, "alone": meta, "message": state.get("clarified") or text}
        try:
            meta = classify_text(text, backend, config)
        except QueryBlocked:
            return done(AssistantOutput(answer=BLOCKED_ANSWER, status="blocked", backend=backend))
        context = state.get("context")
        if context and guard(meta).action == "clarify":
            with_context = classify_text(f"{context} {text}", backend, config)
            if guard(with_context).action == "route" and plausible_continuation(meta, with_context):
                follow = f"Taking this as a follow-up to your earlier message, about {intent_title(with_context['intent'])}:"
                return {**turn, "classification": with_context, "alone": meta, "contextual": True,
                        "notice": f"{turn['notice']} {follow}".strip()}
        return {**turn, "classification": meta, "alone": meta}

    def guard_node(state: AssistantState) -> dict[str, Any]:
        """The confidence guard (chains/guard.py): route, clarify, small talk or decline."""
        decision = guard(state["classification"])
        update: dict[str, Any] = {"decision": decision.model_dump(mode="json")}
        if decision.action == "small_talk":
            out = AssistantOutput(answer=small_talk_reply(state["message"]), status="small_talk", **decision.base)
            update["output"] = out.model_dump(mode="json")
        elif decision.action != "route":
            update["output"] = decision.output().model_dump(mode="json")
            if decision.action == "clarify":
                update["choices"] = [c.model_dump() for c in decision.choices]
                update["clarified"] = state["message"]
        return update

    def tool(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        """Run the intent's banking tool for the authenticated customer. An intent inferred from
        context may not propose a state change the message alone did not ask for."""
        decision = GuardDecision.model_validate(state["decision"])
        intent = decision.base["intent"]
        may_propose = not state.get("contextual") or (state.get("alone") or {}).get("intent") == intent
        try:
            result = run_tool(get_engine(), authenticated_customer_id(config), intent, state["message"], may_propose=may_propose)
        except ProposalRefused:  # contextual only when the message alone was "clarify": ask that
            fallback = guard(state["alone"])
            return {"output": fallback.output().model_dump(mode="json"), "contextual": False,
                    "choices": [c.model_dump() for c in fallback.choices], "clarified": state["message"]}
        out = AssistantOutput(
            answer=result.answer, status="confirmation_required" if result.pending_confirmation else "answered",
            tool=result.tool, data=result.data, pending_confirmation=result.pending_confirmation, **decision.base)
        if out.pending_confirmation:
            out = _with_notice(out, state.get("notice"))
        update: dict[str, Any] = {"output": out.model_dump(mode="json")}
        if out.pending_confirmation:  # the question goes into the conversation before the interrupt
            update["messages"] = [_assistant_message(out)]
            update["pending"] = out.pending_confirmation
            update["context"] = state["message"] if not state.get("contextual") else state.get("context")
        return update

    def confirm(state: AssistantState, config: RunnableConfig) -> Command[Literal["respond", "classify"]]:
        """Stop for the customer's answer to the proposal (LangGraph ``interrupt``). A button's
        True/False decides it; text goes back to classify, which applies the yes/no rule."""
        cid = owner_check(state, config)  # before interrupt(): a refused resume leaves no answer behind
        pending = state["pending"]
        reply = interrupt({**pending, "question": state["output"]["answer"]})
        approve = _explicit_decision(reply)
        if approve is None:
            if not isinstance(reply, str):
                raise ValueError("resume a confirmation with true/false, {'approve': bool} or the customer's reply text")
            return Command(goto="classify", update={"messages": [HumanMessage(reply)]})
        decided = _with_classification(answer_pending(cid, pending, approve), state.get("output"))
        update: dict[str, Any] = {"output": decided.model_dump(mode="json"), "pending": None, "notice": ""}
        if not approve:
            update["context"] = None
        return Command(goto="respond", update=update)

    def respond(state: AssistantState) -> dict[str, Any]:
        """Stream the answer (custom events) and append it to the conversation."""
        out = _with_notice(AssistantOutput.model_validate(state["output"]), state.get("notice"))
        _stream_answer(out.answer)
        update: dict[str, Any] = {"messages": [_assistant_message(out)], "output": out.model_dump(mode="json"),
                                  "notice": ""}
        if out.status == "answered" and out.tool and not state.get("contextual"):
            update["context"] = state["message"]
        return update

    def after_classify(state: AssistantState) -> Literal["guard", "respond"]:
        return "respond" if state.get("output") else "guard"

    def route(state: AssistantState) -> Literal["tool", "respond"]:
        return "tool" if (state.get("decision") or {}).get("action") == "route" else "respond"

    def after_tool(state: AssistantState) -> Literal["confirm", "respond"]:
        return "confirm" if (state.get("output") or {}).get("pending_confirmation") else "respond"

    g = StateGraph(AssistantState, input_schema=InputState)
    g.add_node("classify", classify)
    g.add_node("guard", guard_node)
    g.add_node("tool", tool)
    g.add_node("confirm", confirm)
    g.add_node("respond", respond)
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", after_classify)
    g.add_conditional_edges("guard", route)
    g.add_conditional_edges("tool", after_tool)
    g.add_edge("respond", END)
    return g.compile(checkpointer=checkpointer, name="banking_assistant")


def answer_chunks(answer: str) -> list[str]:
    """``answer`` cut into chunks of :data:`STREAM_CHUNK_WORDS` words (joined back, they give
    ``answer``)."""
    words = answer.split(" ")
    return [" ".join(words[i:i + STREAM_CHUNK_WORDS]) + (" " if i + STREAM_CHUNK_WORDS < len(words) else "")
            for i in range(0, len(words), STREAM_CHUNK_WORDS)]


def _stream_answer(answer: str) -> None:
    """Send ``answer`` as custom stream events ``{"answer_chunk": str}`` (seen by
    ``stream_mode="custom"``), see :func:`answer_chunks`."""
    writer = get_stream_writer()
    for chunk in answer_chunks(answer):
        writer({"answer_chunk": chunk})


def _with_classification(decided: AssistantOutput, proposal: dict[str, Any] | None) -> AssistantOutput:
    """A decision's output carrying the classification of the proposal it decides (intent,
    confidence, ranking, backend, model version, latency), so the answer says what it was about."""
    if not proposal:
        return decided
    keep = {k: proposal[k] for k in CLASSIFICATION_FIELDS if proposal.get(k) is not None}
    return AssistantOutput.model_validate({**decided.model_dump(mode="json"), **keep})


def _with_notice(out: AssistantOutput, notice: str | None) -> AssistantOutput:
    """``out`` with ``notice`` (e.g. "I haven't done the earlier request ...") before its answer."""
    if not notice or out.answer.startswith(notice):
        return out
    return out.model_copy(update={"answer": f"{notice} {out.answer}"})


def graph_input(req: AssistantInput) -> dict[str, Any]:
    """The graph input for an API/CLI request: the message, the explicit decision
    (``confirm_action_id`` + ``approve``) and the picked clarify choice. Both keys are always
    sent (None when absent): a run that failed leaves its input in the thread's channels, and
    the next input must overwrite them."""
    out: dict[str, Any] = {"messages": [HumanMessage(req.message)], "confirm": None,
                           "chosen_intent": req.chosen_intent or None}
    if req.confirm_action_id:
        out["confirm"] = {"action_id": req.confirm_action_id, "approve": bool(req.approve)}
    return out


def turn_output(state: dict[str, Any]) -> AssistantOutput:
    """The :class:`AssistantOutput` of the turn that ended in ``state`` (the graph's return
    value; a turn that stopped for confirmation ends with its proposal)."""
    return AssistantOutput.model_validate(state["output"])


def make_graph():
    """The graph served by ``langgraph dev`` (see langgraph.json): compiled without a
    checkpointer, since LangGraph server persists threads itself."""
    return build_graph()


# ----------------------------------------------------------------------------- checkpointers
def checkpoint_path() -> Path:
    """The default SQLite checkpoint file: ``<BANKING_HOME>/graph/checkpoints.sqlite``."""
    return get_settings().home / "graph" / "checkpoints.sqlite"


def _postgres_url() -> str | None:
    url = get_settings().resolved_database_url
    if url.startswith(("postgresql", "postgres")):
        # SQLAlchemy URLs name the driver ("postgresql+psycopg://"); libpq wants "postgresql://".
        return "postgresql://" + url.split("://", 1)[1]
    return None


def _postgres_module(name: str):
    try:
        import importlib

        return importlib.import_module(name)
    except ImportError as e:  # pragma: no cover - depends on the optional package
        raise RuntimeError(
            "BANKING_DATABASE_URL is PostgreSQL: install the checkpointer with "
            "`pip install langgraph-checkpoint-postgres`"
        ) from e


SETUP_ATTEMPTS = 5


def _is_setup_race(exc: BaseException) -> bool:
    """True for the errors two processes get when both create the checkpointer's tables at once
    (PostgreSQL's duplicate type/relation on ``CREATE TABLE IF NOT EXISTS``)."""
    return type(exc).__name__ in ("UniqueViolation", "DuplicateTable", "DuplicateObject")


def _setup_retries() -> dict[str, Any]:
    """tenacity arguments for the checkpointer's idempotent ``setup()``: retried (up to
    :data:`SETUP_ATTEMPTS` times, 0.2 s more wait each time) when another worker creating the same
    tables at the same moment makes it fail. A lock is no help here: its migrations use
    ``CREATE INDEX CONCURRENTLY``, which waits for every open statement, a waiting lock included."""
    return {"retry": retry_if_exception(_is_setup_race), "stop": stop_after_attempt(SETUP_ATTEMPTS),
            "wait": wait_incrementing(start=0.2, increment=0.2), "reraise": True}


@contextmanager
def open_checkpointer() -> Iterator[Any]:
    """A synchronous checkpointer for the thread memory (SQLite file, or PostgreSQL when the
    database URL is PostgreSQL), created on first use; closed on exit."""
    pg = _postgres_url()
    if pg:
        mod = _postgres_module("langgraph.checkpoint.postgres")
        with mod.PostgresSaver.from_conn_string(pg) as saver:
            Retrying(**_setup_retries())(saver.setup)
            yield saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        yield SqliteSaver(conn)
    finally:
        conn.close()


@asynccontextmanager
async def open_async_checkpointer() -> AsyncIterator[Any]:
    """The asynchronous counterpart of :func:`open_checkpointer` (for ``ainvoke``/``astream``)."""
    pg = _postgres_url()
    if pg:
        mod = _postgres_module("langgraph.checkpoint.postgres.aio")
        async with mod.AsyncPostgresSaver.from_conn_string(pg) as saver:
            await AsyncRetrying(**_setup_retries())(saver.setup)
            yield saver
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield saver


def pending_confirmation(graph: Any, config: RunnableConfig) -> dict[str, Any] | None:
    """The confirmation a thread is waiting for (``{action_id, action, description, question}``),
    or None. ``config`` carries the ``thread_id``."""
    snap = graph.get_state(config)
    for intr in getattr(snap, "interrupts", ()) or ():
        return intr.value
    return None


async def apending_confirmation(graph: Any, config: RunnableConfig) -> dict[str, Any] | None:
    """Async :func:`pending_confirmation`."""
    snap = await graph.aget_state(config)
    for intr in getattr(snap, "interrupts", ()) or ():
        return intr.value
    return None
