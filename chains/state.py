"""The state of one conversation thread in the LangGraph graph (chains/graph.py).

A thread's state is checkpointed, keyed by ``thread_id``. Three groups of keys, one TypedDict
each, with a docstring per key:

- :class:`InputState`: what a caller sends with each turn;
- :class:`TurnState`: what one turn works out; ``intake`` resets every key to
  :data:`TURN_DEFAULTS` (derived from this class) at the start of each turn;
- :class:`ThreadState`: what the next turn needs (the owner, the proposal waiting for an answer,
  the clarify choices just offered, the last request that reached a tool).

The values are typed (:class:`chains.classification.Classification`,
:class:`chains.guard.GuardDecision`, :class:`TurnRequest`); ``output`` is the turn's
``AssistantOutput`` as JSON, exactly what every interface returns.
"""

from __future__ import annotations

from typing import Annotated, Any, get_type_hints

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from chains.assistant import Choice
from chains.classification import Classification
from chains.forms import Form
from chains.multi import QueuedRequest
from chains.guard import GuardDecision


RECENT_MESSAGES = 8
"""How many chat messages the state keeps (the transcript table keeps them all, bank/transcript.py)."""


def recent_messages(left: list[AnyMessage], right: list[AnyMessage] | AnyMessage) -> list[AnyMessage]:
    """LangGraph's ``add_messages`` reducer, keeping only the last :data:`RECENT_MESSAGES`: the
    state holds what the next turn needs, so a checkpoint's size does not grow with the
    conversation."""
    return add_messages(left, right)[-RECENT_MESSAGES:]


class InputState(TypedDict, total=False):
    """What a caller sends.

    - ``messages``: the new customer message(s) (the state keeps the last
      :data:`RECENT_MESSAGES`); only the last ``HumanMessage`` is the new request (a dict
      ``{"role": "user", "content": "..."}`` is accepted too). Required.
    - ``confirm``: an explicit decision ``{"action_id": str, "approve": bool}`` on a pending
      action (the API's ``confirm_action_id``/``approve``), or absent.
    - ``chosen_intent``: one of the previous answer's clarify ``choices`` (its intent label).
    """

    messages: Annotated[list[AnyMessage], recent_messages]
    confirm: dict[str, Any] | None
    chosen_intent: str | None


class Decision(BaseModel):
    """A decision on a pending action: ``approve`` for ``action_id``; ``resumed``: it came as the
    resume value of the graph's confirmation interrupt (a button), not as request input."""

    action_id: str
    approve: bool
    resumed: bool = False


class TurnRequest(BaseModel):
    """The turn's request, read once by ``intake``.

    ``text``: the validated message (1-2,000 characters, stripped); the text a tool reads (for a
    picked clarify choice, the message the choices were offered for; for one of several requests
    in a message, that request's part); ``said``: the message as the customer sent it; ``decision``: an explicit
    decision; ``chosen_intent``: a picked clarify choice; ``offered``/``offered_for``: the choices
    the previous answer offered and the message they were offered for.
    """

    text: str
    said: str = ""
    decision: Decision | None = None
    chosen_intent: str | None = None
    offered: list[Choice] = Field(default_factory=list)
    offered_for: str | None = None


class TurnState(TypedDict, total=False):
    """Worked out by one turn (reset by ``intake`` to :data:`TURN_DEFAULTS`).

    - ``request``: the :class:`TurnRequest`.
    - ``decision``: the guard's decision for the classification this turn acts on.
    - ``fallback``: when ``decision`` classified the message together with ``context``, the
      guard's decision for the message alone (asked instead if the tool may not propose).
    - ``contextual``: True when ``decision`` used ``context``.
    - ``output``: this turn's ``AssistantOutput`` as JSON (None until decided).
    - ``notice``: a sentence put before this turn's answer (a proposal closed, a follow-up read).
    - ``entities``: the message's entities (``[{label, text, start, end, value}]``, models/entities.py).
    - ``slots``: the details the tool gets (the open form's, corrected by this message's).
    - ``done``: the outputs (JSON) of the earlier requests of this message already handled this
      turn (several requests in one message, chains/multi.py); the reply tells them all.
    """

    request: TurnRequest | None
    decision: GuardDecision | None
    fallback: GuardDecision | None
    contextual: bool
    output: dict[str, Any] | None
    notice: str
    entities: list[dict[str, Any]] | None
    slots: dict[str, str] | None
    done: list[dict[str, Any]]


class ThreadState(TypedDict, total=False):
    """Kept for the next turn.

    - ``customer_id``: the thread's owner, set from authentication by its first message; any
      other customer is refused on this thread.
    - ``pending``: the proposal shown and waiting for an answer (``{action_id, action,
      description}``), or None. Only the very next message may answer it.
    - ``proposal``: the classification of the request that proposed ``pending`` (a decision's
      answer says what it was about).
    - ``choices``: the clarify choices offered by the last answer (for the next message only).
    - ``clarified``: the message those choices were offered for.
    - ``context``: the last customer message that reached a banking tool (None before any, and
      after a declined proposal).
    - ``form``: the request being filled in (chains/forms.py), or None.
    - ``queue``: the later requests of a multi-request message still to handle, in order.
    - ``language``: the language of this conversation's last turn ("en" | "es" | "fr" | "de"):
      this turn's, set by ``intake`` from the message (config/language.py), the last one kept
      for a message too short to say ("ok", "£20"); answers are written in it.
    - ``misses``: consecutive answers that were a clarify question or a decline (two in a row
      hand the customer over to a person).
    """

    customer_id: int
    pending: dict[str, Any] | None
    proposal: Classification | None
    choices: list[Choice]
    clarified: str | None
    context: str | None
    form: Form | None
    queue: list[QueuedRequest]
    language: str
    misses: int


class AssistantState(InputState, TurnState, ThreadState, total=False):
    """The full thread state: :class:`InputState` + :class:`TurnState` + :class:`ThreadState`."""


_TURN_DEFAULTS_BY_TYPE = {bool: False, str: "", list[dict[str, Any]]: []}
TURN_DEFAULTS: dict[str, Any] = {
    key: _TURN_DEFAULTS_BY_TYPE.get(hint, None) for key, hint in get_type_hints(TurnState).items()}
"""Every :class:`TurnState` key with its start-of-turn value (False, "", [] or None by type)."""

STATE_TYPES: tuple[type, ...] = (Classification, GuardDecision, TurnRequest, Decision, Choice, Form, QueuedRequest)
"""The pydantic types the state holds (the checkpointer's deserialisation allowlist)."""
