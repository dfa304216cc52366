"""The Chainlit app in front of the LangGraph graph (start it with ``python -m assistant.ui``).

- Login: Chainlit's password callback checks the demo customers' passwords (scrypt) or, with the
  user name ``api-key``, a customer's API key. The customer id travels in the signed Chainlit
  user and is the only identity the graph gets (``configurable["customer_id"]``).
- One graph thread per chat session; the answer streams from the graph's ``respond`` node
  (``stream_mode="custom"``); each turn shows a collapsible step with the classification
  (intent, confidence, top-3, backend, latency) and a child step with the tool call and result.
- Chat settings offer only the backends that are available now; a change applies to the next
  message (passed as ``configurable["backend"]``).
- State-changing tools stop at the graph's interrupt; "Yes"/"No" buttons (Chainlit actions) or
  a typed reply resume it.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from typing import Any

import chainlit as cl
from chainlit.input_widget import Select
from langchain_core.messages import HumanMessage
from langgraph.types import Command
from sqlalchemy import select

from bank.auth import authenticate_key, authenticate_password
from bank.store import Customer, get_engine, session_scope
from chains.graph import apending_confirmation, build_graph, open_async_checkpointer
from assistant.settings import get_settings
from assistant.ui import API_KEY_USERNAMES, STARTERS, classification_markdown, tool_markdown
from chains.backends import available_backends
from models.base import BackendUnavailable

_graph: Any = None
_graph_lock = asyncio.Lock()
_stack = AsyncExitStack()


async def get_graph() -> Any:
    """The process-wide graph with the async checkpointer (opened on first use)."""
    global _graph
    async with _graph_lock:
        if _graph is None:
            saver = await _stack.enter_async_context(open_async_checkpointer())
            _graph = build_graph(checkpointer=saver)
    return _graph


def _username(customer_id: int) -> str:
    with session_scope(get_engine()) as s:
        return s.execute(select(Customer.username).where(Customer.id == customer_id)).scalar_one()


@cl.password_auth_callback
async def login(username: str, password: str) -> cl.User | None:
    """Demo customer password, or user name ``api-key`` + a customer API key; None refuses."""
    engine = get_engine()
    via = "password"
    principal = await asyncio.to_thread(authenticate_password, engine, username, password)
    if principal is None and (username or "").strip().lower() in API_KEY_USERNAMES:
        principal = await asyncio.to_thread(authenticate_key, engine, password)
        via = "api_key"
    if principal is None or principal.customer_id is None:
        return None
    name = await asyncio.to_thread(_username, principal.customer_id)
    return cl.User(identifier=name, display_name=principal.name,
                   metadata={"customer_id": principal.customer_id, "login": via})


def offered_backends() -> list[str]:
    """Backends available now (e.g. gemini only with GOOGLE_API_KEY), in registry order."""
    return [name for name, info in available_backends().items() if info["available"]]


@cl.set_starters
async def starters(user: cl.User | None = None, language: str | None = None) -> list[cl.Starter]:
    return [cl.Starter(label=label, message=message) for label, message in STARTERS]


@cl.on_chat_start
async def start() -> None:
    user: cl.User = cl.user_session.get("user")
    cl.user_session.set("customer_id", int(user.metadata["customer_id"]))
    cl.user_session.set("thread_id", f"ui-{uuid.uuid4()}")
    offered = await asyncio.to_thread(offered_backends)
    default = get_settings().backend
    backend = default if default in offered else (offered[0] if offered else default)
    cl.user_session.set("backend", backend)
    cl.user_session.set("offered", offered)
    if offered:
        await cl.ChatSettings([
            Select(id="backend", label="Intent backend", values=offered, initial_value=backend,
                   description="Which model recognises your request (takes effect on the next message)."),
        ]).send()


@cl.on_settings_update
async def settings_update(settings: dict[str, Any]) -> None:
    backend = settings.get("backend")
    if backend in (cl.user_session.get("offered") or []):
        cl.user_session.set("backend", backend)


def _config() -> dict[str, Any]:
    return {"configurable": {"thread_id": cl.user_session.get("thread_id"),
                             "customer_id": cl.user_session.get("customer_id"),
                             "backend": cl.user_session.get("backend")}}


async def _clear_actions() -> None:
    for action in cl.user_session.get("actions") or []:
        await action.remove()
    cl.user_session.set("actions", [])


async def _show_steps(state: dict[str, Any], output: dict[str, Any], message: cl.Message) -> None:
    """The turn's collapsible steps, attached to (and shown with) the assistant ``message``."""
    intent = output.get("intent")
    parent = cl.Step(name=f"intent: {intent}" if intent else "confirmation", type="llm", show_input=False,
                     parent_id=message.id)
    parent.input = state.get("message") or ""
    parent.output = classification_markdown(output, contextual=bool(state.get("contextual")))
    await parent.send()
    if output.get("tool"):
        child = cl.Step(name=f"tool: {output['tool']}", type="tool", parent_id=parent.id, show_input="json")
        child.input = {"intent": intent, "customer": "authenticated customer", "message": state.get("message")}
        child.output = tool_markdown(output)
        await child.send()


async def run_turn(payload: Any) -> None:
    """Run one graph turn (a new message or a resume), streaming the answer into the chat."""
    graph = await get_graph()
    config = _config()
    answer: cl.Message | None = None
    state: dict[str, Any] = {}
    interrupted: dict[str, Any] | None = None
    try:
        async for mode, data in graph.astream(payload, config, stream_mode=["updates", "custom"]):
            if mode == "updates":
                for node, update in data.items():
                    if node == "__interrupt__":
                        interrupted = update[0].value
                    elif isinstance(update, dict):
                        state.update(update)
            elif mode == "custom" and "answer_chunk" in data:
                if answer is None:  # first chunk: the message, then its steps, then the stream
                    answer = await cl.Message(content="").send()
                    await _show_steps(state, state.get("output") or {}, answer)
                await answer.stream_token(data["answer_chunk"])
    except (ValueError, PermissionError, LookupError, BackendUnavailable) as e:
        await cl.ErrorMessage(content=f"Sorry, I could not do that: {e}").send()
        return
    if interrupted:
        actions = [
            cl.Action(name="confirm", payload={"approve": True, "action_id": interrupted["action_id"]},
                      label="Yes, do it", tooltip=interrupted["description"]),
            cl.Action(name="confirm", payload={"approve": False, "action_id": interrupted["action_id"]},
                      label="No, leave it"),
        ]
        cl.user_session.set("actions", actions)
        question = await cl.Message(content=interrupted["question"], actions=actions).send()
        await _show_steps(state, state.get("output") or {}, question)
        return
    if answer is not None:
        await answer.update()


@cl.on_message
async def on_message(message: cl.Message) -> None:
    graph = await get_graph()
    pending = await apending_confirmation(graph, _config())
    if pending:  # a typed reply answers the waiting confirmation (or becomes a new request)
        await _clear_actions()
        await run_turn(Command(resume=message.content))
    else:
        await run_turn({"messages": [HumanMessage(message.content)]})


@cl.action_callback("confirm")
async def on_confirm(action: cl.Action) -> None:
    graph = await get_graph()
    pending = await apending_confirmation(graph, _config())
    await _clear_actions()
    if not pending or pending["action_id"] != action.payload.get("action_id"):
        await cl.Message(content="That request is no longer waiting for an answer.").send()
        return
    await run_turn(Command(resume={"approve": bool(action.payload.get("approve"))}))
