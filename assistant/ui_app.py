"""The Chainlit app in front of the LangGraph conversation graph (start it with
``banking-assistant ui`` or ``python -m assistant.ui``).

- Login: Chainlit's password callback checks the demo customers' passwords (scrypt) or, with the
  user name ``api-key``, a customer's API key. The customer id travels in the signed Chainlit
  user and is the only identity the graph gets (``configurable["customer_id"]``).
- History: Chainlit's SQLAlchemy data layer on the project's database keeps every conversation
  (thread) of a customer; a reload or a second device lists them, and Chainlit lets only the
  thread's author open or resume it. The graph thread is ``ui-<Chainlit thread id>``, so a resumed
  conversation keeps its memory and a confirmation still waiting gets its buttons again.
- Each answer streams from the graph's ``respond`` node (``stream_mode="custom"``) as safe
  Markdown (assistant/ui.py ``answer_markdown``: third-party text cannot become a link or an
  image), led by a plain "Understood: ..." line when the request reached a banking tool.
- Operator tools (``BANKING_UI_OPERATOR_TOOLS=true``, a staff deployment): a settings panel
  with the technical-details switch (intent label, confidence, top-3, backend, model version,
  latency, tool data as a collapsible step under each answer) and the intent backend. A
  customer UI (the default) sends no settings panel, ignores a crafted settings update and
  always uses the bank's default backend.
- Titles: a conversation is named by its first request that reached a banking tool ("A card
  that hasn't arrived"), not by its first message ("hi"), as soon as that turn is answered.
- Clarifying questions carry one button per choice (plus "Something else"); a click sends the
  chosen intent (graph input ``chosen_intent``) with the original message.
- A question for a missing detail (status ``slot_required``, e.g. "Mark Thompson or Mark
  Ellis?") carries one button per option of its ``slot_request``; a click sends the option's text
  as the customer's next message (echoed as their reply). A hand-over (status ``handoff``) is
  its answer alone: the answer names the ticket, the queue position and the expected wait once.
- State-changing tools stop at the graph's interrupt; buttons worded for the action and the
  number of cards (or a typed yes/no) resume it with ``{"approve": bool}``; the choice is echoed
  in the chat as the customer's reply.
- The operator's settings list every intent backend: the available ones to choose from, the
  unavailable ones disabled with the reason in plain words.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import chainlit as cl
from chainlit.data import get_data_layer
from chainlit.input_widget import Select, Switch
from langgraph.types import Command
from sqlalchemy import select

from assistant.errors import view_of
from assistant.http_limits.login import LoginThrottle
from assistant.ui_history import TITLE_KEY, HistoryDataLayer, data_layer_for  # noqa: F401 - re-exported
from config.settings import get_settings
from assistant.ui import (
    API_KEY_USERNAMES, STARTERS, backend_options, button_label, clarify_choices, confirmation_labels,
    create_chainlit_tables, escape_markdown, message_markdown, settings_choice, slot_options, technical_markdown,
    thread_title,
)
from bank.auth import authenticate_key, authenticate_password
from bank.store import Customer, get_engine, session_scope
from chains.backends import available_backends
from assistant.conversations import Conversations, run_config
from chains.graph import message_input
from models.base import BackendUnavailable

logger = logging.getLogger(__name__)

conversations = Conversations()
_login_throttle = LoginThrottle(get_settings().auth_failures_per_key_per_minute, get_settings().rate_limit_storage)
"""The one conversation holder (assistant/conversations.py), with its async checkpointer."""
_background: set[asyncio.Task] = set()

RESUME_DELAY_S = 1.0
"""Seconds after a resumed conversation's history is sent before a waiting question is asked again."""

DETAILS_STEP = "Technical details"
"""Name of the operator-view step under each answer."""


@cl.data_layer
def data_layer() -> HistoryDataLayer:
    """The conversation-history store on the project's database (called once by Chainlit)."""
    create_chainlit_tables(get_engine())
    return data_layer_for(get_settings().resolved_database_url)


# ----------------------------------------------------------------------------- login, session
def _username(customer_id: int) -> str:
    with session_scope(get_engine()) as s:
        return s.execute(select(Customer.username).where(Customer.id == customer_id)).scalar_one()


@cl.password_auth_callback
async def login(username: str, password: str) -> cl.User | None:
    """Demo customer password, or user name ``api-key`` + a customer API key; None refuses
    (also while the user name is throttled after failed logins: assistant/http_limits/login.py)."""
    if not _login_throttle.allowed(username):
        return None
    engine = get_engine()
    via = "password"
    principal = await asyncio.to_thread(authenticate_password, engine, username, password)
    if principal is None and (username or "").strip().lower() in API_KEY_USERNAMES:
        principal = await asyncio.to_thread(authenticate_key, engine, password)
        via = "api_key"
    if principal is None or principal.customer_id is None:
        _login_throttle.failed(username)
        return None
    name = await asyncio.to_thread(_username, principal.customer_id)
    return cl.User(identifier=name, display_name=principal.name,
                   metadata={"customer_id": principal.customer_id, "login": via})


@cl.set_starters
async def starters(user: cl.User | None = None, language: str | None = None) -> list[cl.Starter]:
    return [cl.Starter(label=label, message=message) for label, message in STARTERS]


def _operator() -> bool:
    """Whether this UI offers the operator tools (``BANKING_UI_OPERATOR_TOOLS``)."""
    return bool(get_settings().ui_operator_tools)


async def _open_session() -> None:
    """Session state from the login and the Chainlit thread, then (operator tools only) the
    settings panel; a customer gets no panel and the bank's default backend."""
    user: cl.User = cl.user_session.get("user")
    cl.user_session.set("customer_id", int(user.metadata["customer_id"]))
    cl.user_session.set("thread_id", f"ui-{cl.context.session.thread_id}")
    if not _operator():
        cl.user_session.set("backend", None)
        cl.user_session.set("details", False)
        return
    options = backend_options(await asyncio.to_thread(available_backends))
    offered = [o["name"] for o in options if o["available"]]
    default = get_settings().backend
    backend = cl.user_session.get("backend") or (default if default in offered else (offered[0] if offered else default))
    cl.user_session.set("backend", backend)
    cl.user_session.set("offered", offered)
    cl.user_session.set("details", bool(cl.user_session.get("details")))
    widgets: list[Any] = [
        Switch(id="details", label="Show technical details (for bank staff)", initial=cl.user_session.get("details"),
               description="Adds what the assistant recognised (intent, confidence, model, timing) under each answer."),
    ]
    if offered:
        widgets.append(Select(id="backend", label="Assistant model",
                              items={o["title"]: o["name"] for o in options if o["available"]},
                              initial_value=backend,
                              description="Which model reads your messages (from your next message on)."))
    for o in options:
        if not o["available"]:
            widgets.append(Switch(id=f"unavailable_{o['name']}", label=f"{o['title']}: not available", initial=False,
                                  disabled=True, description=o["reason"]))
    await cl.ChatSettings(widgets).send()


@cl.on_chat_start
async def start() -> None:
    await _open_session()


@cl.on_chat_resume
async def resume(thread: dict[str, Any]) -> None:
    """A conversation opened again (reload, another device): same graph thread; a confirmation
    still waiting is asked again with its buttons, and so is an open request's question with
    options (status slot_required)."""
    await _open_session()
    pending = await conversations.apending(_config())
    snap = await (await conversations.agraph()).aget_state(_config())
    values = snap.values or {}
    output = values.get("output") or {}
    if not pending and not (values.get("form") and slot_options(output)):
        return

    async def ask_again() -> None:
        # Chainlit replaces the chat with the stored history after this hook returns; a
        # message sent now would be wiped, so ask once that history is on the screen.
        await asyncio.sleep(RESUME_DELAY_S)
        if pending:
            await _ask_confirmation(pending, output)
        else:
            await _offer_options(output, cl.Message(content=message_markdown(output, output.get("answer") or "")))

    task = asyncio.create_task(ask_again())
    _background.add(task)  # a strong reference until it is done (asyncio keeps only a weak one)
    task.add_done_callback(_background.discard)


@cl.on_settings_update
async def settings_update(settings: dict[str, Any]) -> None:
    """Operator tools only: the backend and details switch chosen in the panel."""
    operator = _operator()
    backend, details = settings_choice(settings, cl.user_session.get("offered") or [], operator=operator)
    if backend:
        cl.user_session.set("backend", backend)
    cl.user_session.set("details", details)


def _config() -> dict[str, Any]:
    backend = cl.user_session.get("backend") if _operator() else None  # the operator's choice; else the default
    return run_config(cl.user_session.get("thread_id"), cl.user_session.get("customer_id"), backend)


# ----------------------------------------------------------------------------- one turn
async def _clear_actions() -> None:
    for action in cl.user_session.get("actions") or []:
        await action.remove()
    cl.user_session.set("actions", [])


async def _show_details(state: dict[str, Any], output: dict[str, Any], message: cl.Message) -> None:
    """The operator view of the turn: a collapsible step under ``message`` (setting on only)."""
    if not (_operator() and cl.user_session.get("details")):
        return
    step = cl.Step(name=DETAILS_STEP, type="tool", show_input=False, parent_id=message.id)
    step.output = technical_markdown(output, contextual=bool(state.get("contextual")))
    await step.send()


async def _ask_confirmation(pending: dict[str, Any], output: dict[str, Any]) -> cl.Message:
    yes, no = confirmation_labels(pending, output.get("data"))
    actions = [
        cl.Action(name="confirm", payload={"approve": True, "action_id": pending["action_id"], "label": yes},
                  label=yes, tooltip=pending.get("description", ""), icon="check"),
        cl.Action(name="confirm", payload={"approve": False, "action_id": pending["action_id"], "label": no},
                  label=no, icon="x"),
    ]
    cl.user_session.set("actions", actions)
    return await cl.Message(content=message_markdown(output, pending.get("question") or pending.get("description", "")),
                            actions=actions).send()


async def _offer_choices(output: dict[str, Any], message: cl.Message) -> None:
    choices = clarify_choices(output)
    if not choices:
        return
    actions = [cl.Action(name="choose_intent", payload={"intent": c["intent"], "label": button_label(c["title"])},
                         label=button_label(c["title"])) for c in choices]
    actions.append(cl.Action(name="choose_other", payload={}, label="Something else", icon="message-circle"))
    cl.user_session.set("actions", actions)
    message.actions = actions
    await message.update()


async def _offer_options(output: dict[str, Any], message: cl.Message) -> None:
    """One button per option of a question for a missing detail (status slot_required)."""
    options = slot_options(output)
    if not options:
        return
    actions = [cl.Action(name="choose_option", payload={"text": o}, label=o) for o in options]
    cl.user_session.set("actions", actions)
    message.actions = actions
    await (message.update() if message.created_at else message.send())


async def run_turn(payload: Any) -> None:
    """Run one graph turn (a new message or a resume), streaming the answer into the chat."""
    answer: cl.Message | None = None
    raw = ""
    state: dict[str, Any] = {}
    interrupted: dict[str, Any] | None = None
    try:
        async for mode, data in conversations.astream(payload, _config(), ["updates", "custom"]):
            if mode == "updates":
                for node, update in data.items():
                    if node == "__interrupt__":
                        interrupted = update[0].value
                    elif isinstance(update, dict):
                        state.update(update)
            elif mode == "custom" and "answer_chunk" in data:
                if answer is None:
                    answer = await cl.Message(content="").send()
                raw += data["answer_chunk"]
                await answer.stream_token(message_markdown(state.get("output") or {}, raw), is_sequence=True)
    except Exception as e:  # noqa: BLE001 - every error gets the customer sentence of assistant/errors.py
        view = view_of(e)
        if view.http_status >= 500 and not isinstance(e, BackendUnavailable):
            logger.exception("chat turn failed")
        await cl.ErrorMessage(content=escape_markdown(view.customer_text)).send()
        return
    output = state.get("output") or {}
    await _title_thread(output)
    if interrupted:
        question = await _ask_confirmation(interrupted, output)
        await _show_details(state, output, question)
        return
    if answer is None:
        return
    await answer.update()
    await _show_details(state, output, answer)
    if output.get("status") == "clarify":
        await _offer_choices(output, answer)
    elif output.get("status") == "slot_required":
        await _offer_options(output, answer)


async def _title_thread(output: dict[str, Any]) -> None:
    """Name the conversation after the first understood request (:func:`thread_title`), once."""
    title = thread_title(output)
    if not title or cl.user_session.get(TITLE_KEY):
        return
    cl.user_session.set(TITLE_KEY, title)
    layer = get_data_layer()
    if isinstance(layer, HistoryDataLayer):
        await layer.set_title(cl.context.session.thread_id, title)
        # The sidebar re-reads the conversation list on this event (the title shows at once).
        await cl.context.emitter.emit("first_interaction", {"interaction": title,
                                                            "thread_id": cl.context.session.thread_id})


async def _echo(label: str) -> None:
    """Show the customer's button choice in the chat as their own reply."""
    user: cl.User = cl.user_session.get("user")
    await cl.Message(content=label, type="user_message", author=user.display_name or user.identifier).send()


async def _send_text(text: str) -> None:
    """``text`` as the customer's next message: it answers a waiting confirmation (or becomes a
    new request there), else it is a new message (which fills an open request's detail)."""
    pending = await conversations.apending(_config())
    if pending:
        await run_turn(Command(resume=text))
    else:
        await run_turn(message_input(text))


@cl.on_message
async def on_message(message: cl.Message) -> None:
    await _clear_actions()
    await _send_text(message.content)


@cl.action_callback("choose_option")
async def on_option(action: cl.Action) -> None:
    """A clicked option of a question for a missing detail, sent as the customer's reply."""
    text = str(action.payload.get("text") or "")
    await _clear_actions()
    if not text.strip():
        return
    await _echo(text)
    await _send_text(text)


@cl.action_callback("confirm")
async def on_confirm(action: cl.Action) -> None:
    pending = await conversations.apending(_config())
    await _clear_actions()
    await _echo(action.payload.get("label") or ("Yes" if action.payload.get("approve") else "No"))
    if not pending or pending["action_id"] != action.payload.get("action_id"):
        await cl.Message(content="That request is no longer waiting for an answer, so nothing was changed.").send()
        return
    await run_turn(Command(resume={"approve": bool(action.payload.get("approve"))}))


@cl.action_callback("choose_intent")
async def on_choose(action: cl.Action) -> None:
    await _clear_actions()
    await _echo(action.payload["label"])
    await run_turn(message_input(action.payload["label"], chosen_intent=action.payload["intent"]))


@cl.action_callback("choose_other")
async def on_other(action: cl.Action) -> None:
    await _clear_actions()
    await _echo("Something else")
    await cl.Message(content="Please tell me in a few words what you need, for example "
                             "\"my card payment was declined\".").send()
