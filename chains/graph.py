"""THE conversation turn, written once as a LangGraph ``StateGraph`` of the module-level nodes in
chains/nodes.py. Every interface runs it through assistant/conversations.py (LangServe
``/assistant/*``, ``banking-assistant chat``/``ask``, the Chainlit UI) or ``langgraph dev``
(langgraph.json)::

    START -> intake -> settle --(decided | yes/no with nothing pending | "forget it")--> respond -> END
                         | nothing pending, or closed as superseded       (or next, below)
                         v
                       classify: intent(s) + entities; an open form continued or closed
                         |  --(blocked by the provider)---------------------------------> respond
                         v
                       guard --(small talk | clarify | out of scope)--------------------> respond
                         | route (a second miss in a row: to the hand-over)
                         v
                       tool --(answered, or a question for a missing detail)------------> respond
                         | proposes a state change            | more requests queued
                         v                                    v
                       confirm: interrupt(...)               next: the next request --> guard
                         | resumed with True/False or {"approve": bool} (buttons) -----> settle
                         | resumed with text (a new message) ---------------------------> intake

Forms (chains/forms.py): a request with details fills its slots over several messages; the
tool asks for what is missing (``status: "slot_required"``), corrections change the open
request, "forget it" closes it. Several requests in one message (chains/multi.py) are handled in
the order written, state changes confirmed one at a time.

Confirmation safety (chains/confirmation.py, decided only in ``settle``): a proposal is decided
only by an explicit decision (input ``confirm``: ``{"action_id", "approve"}``, or a button's
resume value) or by a bare yes/no as the very next message of the same thread. Any other next
message closes it as ``superseded`` and is handled as a new request. A "yes" in another thread
finds nothing pending there and changes nothing.

Follow-ups: when the message alone is in scope but unsure (clarify) and the thread has an
earlier request that reached a tool, the two are classified together; that result is used only
if it routes and the message alone is a plausible continuation of it
(:func:`chains.nodes.plausible_continuation`), and the answer says what the message was taken
to mean; its tool may not propose a state change unless the message alone has the same top
intent.

Identity: the customer comes from authentication only (chains/identity.py); a thread belongs to
the customer whose message started it. Backend: ``config["configurable"]["backend"]`` of each
request (chains/context.py). Memory: a checkpointer keyed by ``thread_id`` (chains/checkpoint.py).
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import Runnable
from langgraph.graph import END, START, StateGraph

from chains.assistant import AssistantInput, AssistantOutput
from chains.nodes import (
    Classify, after_classify, after_guard, after_tool, apply_guard, confirm, intake, next_request, respond, settle,
    tool,
)
from chains.state import AssistantState, InputState


def build_graph(checkpointer: Any = None, intent_chain: Runnable | None = None):
    """Compile the conversation graph drawn in the module docstring.

    ``checkpointer``: a LangGraph checkpointer (chains/checkpoint.py); None compiles without one
    (LangGraph server supplies its own; confirmation needs one). ``intent_chain``: default
    ``build_intent_chain()`` (configurable ``backend``); tests pass a fake backend.

    Input (:class:`chains.state.InputState`); resume a confirmation with ``Command(resume=True |
    False | {"approve": bool} | "reply text")``. Output state: ``output`` is the turn's
    ``AssistantOutput`` as JSON. Raises ``InvalidMessage`` for an invalid message,
    ``PermissionError`` without an authenticated customer or on another customer's thread,
    ``ActionNotFoundError``/``ActionExpiredError`` for an explicit decision on an unknown/expired
    action, ``UnknownChoice`` for a choice not offered, ``BackendUnavailable`` when the chosen
    backend cannot answer.
    """
    g = StateGraph(AssistantState, input_schema=InputState)
    g.add_node("intake", intake)
    g.add_node("settle", settle)
    g.add_node("classify", Classify(intent_chain))
    g.add_node("guard", apply_guard)
    g.add_node("tool", tool)
    g.add_node("confirm", confirm)
    g.add_node("next", next_request)
    g.add_node("respond", respond)
    g.add_edge(START, "intake")
    g.add_edge("intake", "settle")
    g.add_conditional_edges("classify", after_classify)
    g.add_conditional_edges("guard", after_guard)
    g.add_conditional_edges("tool", after_tool)
    g.add_edge("next", "guard")
    g.add_edge("respond", END)
    return g.compile(checkpointer=checkpointer, name="banking_assistant")


def message_input(text: str, chosen_intent: str | None = None) -> dict[str, Any]:
    """The graph input for a customer message (and a picked clarify choice). Both optional keys
    are always sent (None when absent): the thread's channels keep the last value, and the next
    input must overwrite them."""
    return {"messages": [HumanMessage(text)], "confirm": None, "chosen_intent": chosen_intent or None}


def graph_input(req: AssistantInput) -> dict[str, Any]:
    """The graph input for a request: :func:`message_input` plus the explicit decision
    (``confirm_action_id`` + ``approve``)."""
    out = message_input(req.message, req.chosen_intent)
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
