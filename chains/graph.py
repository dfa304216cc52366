"""The conversation as a LangGraph ``StateGraph``: classify -> guard -> route -> tool -> respond.

Same pieces as the assistant chain (chains/assistant.py: ``guard``, ``run_intent_tool``,
``decide``, ``reply_to_pending``); this module only wires them into a graph with memory and
human confirmation::

    START -> classify --(yes/no to a pending action)--------------------------> respond -> END
                 |
                 v
               guard --(clarify | out_of_scope)-----------------------------> respond
                 | route
                 v
               tool  --(no state change)-------------------------------------> respond
                 | proposes a state change (freeze card, cancel transfer, ...)
                 v
              confirm: interrupt({action_id, action, description, question})
                 | resumed with True/False, {"approve": bool} or the customer's reply text
                 +-- yes -> decide(approve=True) ------------------------------> respond
                 +-- no  -> decide(approve=False): nothing changes -----------> respond
                 +-- anything else: the proposal is declined and the reply is
                     handled as a new request -------------------------------> classify

Identity: the customer id comes from the authenticated session only: under ``langgraph dev`` /
LangGraph server from the auth handler (assistant/graph_auth.py puts ``customer_id`` on
``config["configurable"]["langgraph_auth_user"]``), in-process (Chainlit UI, tests) from
``config["configurable"]["customer_id"]`` set by the interface after login.

Backend: ``config["configurable"]["backend"]`` on a message chooses the intent backend for that
message and, remembered in the thread state, for the thread's later messages.

Memory: a checkpointer keyed by ``thread_id`` (``config["configurable"]["thread_id"]``):
:func:`open_checkpointer` / :func:`open_async_checkpointer` give SQLite under
``BANKING_HOME/graph/checkpoints.sqlite`` by default and PostgreSQL when ``BANKING_DATABASE_URL``
is a PostgreSQL URL (needs ``pip install langgraph-checkpoint-postgres``). Follow-ups: when a
message alone does not pass the guard (clarify / out of scope) and the thread has an earlier
request that reached a tool, the message is classified again together with that request
("I lost my card" + "what about the other one?") and used when that passes the guard.
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

from bank.tools import ActionExpiredError, ActionNotFoundError
from assistant.settings import get_settings
from chains.state import AssistantState, InputState
from chains.assistant import (
    AssistantOutput, GuardDecision, decide, guard, reply_to_pending, run_intent_tool, validate_message, yes_or_no,
)
from chains.intent import build_intent_chain

STREAM_CHUNK_WORDS = 3
"""Words per streamed answer chunk (``stream_mode="custom"`` events ``{"answer_chunk": str}``)."""



# ----------------------------------------------------------------------------- identity, config
def customer_id_of(config: RunnableConfig) -> int:
    """The authenticated customer of a run.

    Under LangGraph server the auth handler's user (``configurable["langgraph_auth_user"]``,
    whose ``customer_id`` it set) wins; a different ``configurable["customer_id"]`` sent by the
    client raises ``PermissionError``. In-process, ``configurable["customer_id"]`` (set by the
    interface from its login) is used. No customer (or an operator key): ``PermissionError``.
    """
    conf = (config or {}).get("configurable") or {}
    user = conf.get("langgraph_auth_user")
    claimed = conf.get("customer_id")
    if user is not None:
        try:
            cid = user["customer_id"]
        except (KeyError, TypeError):
            cid = None
        if cid is None:
            raise PermissionError("This identity is not a customer; only customers can chat.")
        if claimed is not None and int(claimed) != int(cid):
            raise PermissionError("customer_id cannot be set by the caller; it comes from authentication.")
        return int(cid)
    if claimed is None:
        raise PermissionError("No authenticated customer for this conversation.")
    return int(claimed)


def owner_check(state: AssistantState, config: RunnableConfig) -> int:
    """The authenticated customer, who must be the thread's owner (the customer whose message
    started it). Raises ``PermissionError`` otherwise, before anything is read or resumed."""
    cid = customer_id_of(config)
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


def _meta_message(meta: dict[str, Any]) -> AIMessage:
    return AIMessage(content=meta["intent"], response_metadata=meta)


# ----------------------------------------------------------------------------- the graph
def build_graph(checkpointer: Any = None, intent_chain: Runnable | None = None):
    """Compile the conversation graph.

    ``checkpointer``: a LangGraph checkpointer (see :func:`open_checkpointer`); None compiles
    without one (LangGraph server supplies its own; confirmation interrupts need one).
    ``intent_chain``: default ``build_intent_chain()`` (configurable ``backend``).

    Input: ``{"messages": [HumanMessage | {"role": "user", "content": str}]}``; resume a
    confirmation with ``Command(resume=True | False | {"approve": bool} | "reply text")``.
    Output state: see :class:`chains.state.AssistantState`; ``output`` is the turn's
    ``AssistantOutput`` dict. Raises ``ValueError`` for an invalid message, ``PermissionError``
    without an authenticated customer, ``BackendUnavailable`` when the chosen backend cannot answer.
    """
    chains: list[Runnable] = [intent_chain] if intent_chain is not None else []

    def classify_text(text: str, backend: str, config: RunnableConfig) -> dict[str, Any]:
        if not chains:  # built lazily, in the node's worker thread: importing backends does file I/O
            chains.append(build_intent_chain())
        conf = {**(config.get("configurable") or {}), "backend": backend}
        return chains[0].invoke([HumanMessage(text)], {**config, "configurable": conf}).response_metadata

    def classify(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        """Validate the new message; answer a bare yes/no to a pending action; else classify it
        (again with the thread's context when the message alone does not pass the guard)."""
        cid = owner_check(state, config)
        text = validate_message(_last_human_text(state))
        conf = config.get("configurable") or {}
        backend = conf.get("backend") or state.get("backend") or get_settings().backend
        turn: dict[str, Any] = {"customer_id": cid, "message": text, "backend": backend, "classification": None, "decision": None,
                                "output": None, "contextual": False}
        replied = reply_to_pending(cid, text)
        if replied is not None:
            return {**turn, "output": replied.model_dump(mode="json")}
        meta = classify_text(text, backend, config)
        context = state.get("context")
        if context and guard(_meta_message(meta)).action != "route":
            with_context = classify_text(f"{context} {text}", backend, config)
            if guard(_meta_message(with_context)).action == "route":
                return {**turn, "classification": with_context, "contextual": True}
        return {**turn, "classification": meta}

    def guard_node(state: AssistantState) -> dict[str, Any]:
        """The confidence guard (chains.assistant.guard): route, clarify or decline."""
        decision = guard(_meta_message(state["classification"]))
        update: dict[str, Any] = {"decision": decision.model_dump(mode="json")}
        if decision.action != "route":
            update["output"] = decision.output().model_dump(mode="json")
        return update

    def tool(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        """Run the intent's banking tool for the authenticated customer."""
        decision = GuardDecision.model_validate(state["decision"])
        out = run_intent_tool(customer_id_of(config), decision, state["message"])
        update: dict[str, Any] = {"output": out.model_dump(mode="json")}
        if out.pending_confirmation:  # the question goes into the conversation before the interrupt
            update["messages"] = [_assistant_message(out)]
            update["context"] = state["message"] if not state.get("contextual") else state.get("context")
        return update

    def confirm(state: AssistantState, config: RunnableConfig) -> Command[Literal["respond", "classify"]]:
        """Stop for the customer's confirmation of the proposed change (LangGraph ``interrupt``)."""
        cid = owner_check(state, config)  # before interrupt(): a refused resume leaves no answer behind
        out = state["output"]
        pending = out["pending_confirmation"]
        reply = interrupt({**pending, "question": out["answer"]})
        messages: list[HumanMessage] = []
        if isinstance(reply, bool):
            approve = reply
        elif isinstance(reply, dict) and isinstance(reply.get("approve"), bool):
            approve = reply["approve"]
        elif isinstance(reply, str):
            messages = [HumanMessage(reply)]
            approve = yes_or_no(validate_message(reply))
        else:
            raise ValueError("resume a confirmation with true/false, {'approve': bool} or the customer's reply text")
        try:
            if approve is None:
                # Not an answer to the question: nothing is changed, the reply is a new request.
                decide(cid, pending["action_id"], False)
                return Command(goto="classify", update={"messages": messages})
            decided = decide(cid, pending["action_id"], approve)
        except (ActionNotFoundError, ActionExpiredError) as e:
            # Finish the step (a failed step would replay this answer on the next resume).
            decided = AssistantOutput(answer=f"Nothing was changed: {e}", status="declined")
            if approve is None:
                return Command(goto="classify", update={"messages": messages})
        keep = {k: out.get(k) for k in ("intent", "confidence", "ranking", "backend", "model_version", "latency_ms")}
        merged = {**decided.model_dump(mode="json"), **keep, "tool": decided.tool}
        return Command(goto="respond", update={"messages": messages, "output": merged})

    def respond(state: AssistantState) -> dict[str, Any]:
        """Stream the answer (custom events) and append it to the conversation."""
        out = AssistantOutput.model_validate(state["output"])
        writer = get_stream_writer()
        words = out.answer.split(" ")
        for i in range(0, len(words), STREAM_CHUNK_WORDS):
            writer({"answer_chunk": " ".join(words[i:i + STREAM_CHUNK_WORDS]) + (" " if i + STREAM_CHUNK_WORDS < len(words) else "")})
        update: dict[str, Any] = {"messages": [_assistant_message(out)]}
        if out.status == "answered" and not state.get("contextual"):
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


@contextmanager
def open_checkpointer() -> Iterator[Any]:
    """A synchronous checkpointer for the thread memory (SQLite file, or PostgreSQL when the
    database URL is PostgreSQL), created on first use; closed on exit."""
    pg = _postgres_url()
    if pg:
        mod = _postgres_module("langgraph.checkpoint.postgres")
        with mod.PostgresSaver.from_conn_string(pg) as saver:
            saver.setup()
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
            await saver.setup()
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
