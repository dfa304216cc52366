"""The state of one conversation thread in the LangGraph graph (chains/graph.py).

A thread's state is checkpointed after every step, keyed by ``thread_id``, so the next message
of the same thread sees the history (``messages``), the backend chosen for the thread and the
last request that reached a banking tool (the context for follow-ups such as "what about the
other card?").
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class InputState(TypedDict):
    """What a caller sends: the new customer message(s). Only the last ``HumanMessage`` is the
    new request; a dict ``{"role": "user", "content": "..."}`` is accepted too."""

    messages: Annotated[list[AnyMessage], add_messages]


class AssistantState(InputState, total=False):
    """The full thread state.

    - ``messages``: the conversation (customer ``HumanMessage``s, assistant ``AIMessage``s whose
      ``additional_kwargs["assistant_output"]`` holds the turn's ``AssistantOutput`` dict).
    - ``customer_id``: the thread's owner, set from authentication by its first message; any
      other customer is refused on this thread.
    - ``message``: the current request, validated (1-2,000 characters, stripped).
    - ``backend``: the intent backend of this thread (the last one a message's config chose).
    - ``classification``: ``response_metadata`` of the contract ``AIMessage`` for this turn.
    - ``contextual``: True when the message was classified together with ``context``.
    - ``decision``: the guard's ``GuardDecision`` as a dict.
    - ``output``: this turn's ``AssistantOutput`` as a dict.
    - ``context``: the last customer message that reached a banking tool (None before any).
    """

    customer_id: int
    message: str
    backend: str
    classification: dict[str, Any] | None
    contextual: bool
    decision: dict[str, Any] | None
    output: dict[str, Any] | None
    context: str | None
