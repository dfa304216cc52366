"""The state of one conversation thread in the LangGraph graph (chains/graph.py).

A thread's state is checkpointed after every step, keyed by ``thread_id``, so the next message
of the same thread sees the history (``messages``), the backend chosen for the thread, the
proposal waiting for an answer and the last request that reached a banking tool.
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class InputState(TypedDict, total=False):
    """What a caller sends.

    - ``messages``: the new customer message(s); only the last ``HumanMessage`` is the new
      request (a dict ``{"role": "user", "content": "..."}`` is accepted too). Required.
    - ``confirm``: an explicit decision ``{"action_id": str, "approve": bool}`` on a pending
      action (the API's ``confirm_action_id``/``approve``), or absent.
    - ``chosen_intent``: one of the previous answer's clarify ``choices`` (its intent label).

    Send ``confirm`` and ``chosen_intent`` with every message (None when unused): a run that
    raised leaves its input in the thread, and only a new value replaces it.
    """

    messages: Annotated[list[AnyMessage], add_messages]
    confirm: dict[str, Any] | None
    chosen_intent: str | None


class AssistantState(InputState, total=False):
    """The full thread state.

    - ``customer_id``: the thread's owner, set from authentication by its first message; any
      other customer is refused on this thread.
    - ``message``: the current request, validated (1-2,000 characters, stripped).
    - ``backend``: the intent backend of this thread (the last one a message's config chose).
    - ``classification``: ``response_metadata`` of the contract ``AIMessage`` used for this turn.
    - ``alone``: the classification of the message alone (differs from ``classification`` when
      the message was classified together with ``context``).
    - ``contextual``: True when ``classification`` used ``context``.
    - ``decision``: the guard's ``GuardDecision`` as a dict.
    - ``output``: this turn's ``AssistantOutput`` as a dict.
    - ``pending``: the proposal shown to the customer and waiting for their answer
      (``{action_id, action, description}``), or None. Only the very next message may answer it.
    - ``notice``: a sentence put before this turn's answer (e.g. that a proposal was closed).
    - ``choices``: the clarify choices last offered (``[{intent, title}]``).
    - ``clarified``: the message those choices were offered for (the tool reads it when one is picked).
    - ``context``: the last customer message that reached a banking tool (None before any, and
      after a declined proposal).
    """

    customer_id: int
    message: str
    backend: str
    classification: dict[str, Any] | None
    alone: dict[str, Any] | None
    contextual: bool
    decision: dict[str, Any] | None
    output: dict[str, Any] | None
    pending: dict[str, Any] | None
    notice: str
    choices: list[dict[str, Any]]
    clarified: str | None
    context: str | None
