"""The request and response of one assistant turn, shared by every interface.

The turn itself is decided in one place, the LangGraph graph in chains/graph.py; this module
only says what goes in (:class:`AssistantInput`) and what comes out (:class:`AssistantOutput`),
and which messages are acceptable (:func:`validate_message`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, field_validator, model_validator

from chains.classification import RankedIntent

MAX_MESSAGE_CHARS = 2000

ALLOWED_FORMAT_CHARS = frozenset(
    "\u200d\u200c\ufe0f\ufe0e\u200e\u200f\u061c\ufeff" + "".join(chr(c) for c in range(0xE0020, 0xE0080)))
"""Unicode format (Cf) characters that are part of ordinary text: the zero-width joiner and
non-joiner (emoji sequences such as the family emoji, Persian/Indic text), the emoji/text
variation selectors, the left-to-right / right-to-left / Arabic letter marks used in Hebrew and
Arabic text, a byte-order mark, and the tag characters of subdivision flags (the England and
Scotland flag emoji). Every other format character (bidi overrides and isolates, zero-width
spaces, ...) is refused."""

Status = Literal[
    "answered", "clarify", "out_of_scope", "small_talk", "confirmation_required",
    "confirmed", "declined", "failed", "expired", "superseded", "blocked", "error", "slot_required", "handoff",
]


class InvalidMessage(ValueError):
    """A customer message that cannot be handled (empty, too long, invalid characters); the
    message says why."""


def validate_message(text: str, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    """Return ``text`` stripped.

    Raises :class:`InvalidMessage` (a ``ValueError``, with the reason) when it is not a string, empty or whitespace-only,
    longer than ``max_chars`` characters, contains a lone surrogate (invalid UTF-16 half, e.g.
    ``"\\ud83d"``), a control character (category Cc other than tab/newline/carriage return),
    or a format character (category Cf) other than :data:`ALLOWED_FORMAT_CHARS`.
    """
    if not isinstance(text, str):
        raise InvalidMessage("message must be a string")
    stripped = text.strip()
    if not stripped:
        raise InvalidMessage("message is empty")
    if len(text) > max_chars:
        raise InvalidMessage(f"message is {len(text)} characters long; the limit is {max_chars}")
    if any(unicodedata.category(c) == "Cs" for c in text):
        raise InvalidMessage("message contains an invalid character (a lone UTF-16 surrogate)")
    bad = [c for c in text if (unicodedata.category(c) == "Cc" and c not in "\t\n\r")
           or (unicodedata.category(c) == "Cf" and c not in ALLOWED_FORMAT_CHARS)]
    if bad:
        raise InvalidMessage(f"message contains control characters ({', '.join(repr(c) for c in bad[:3])})")
    return stripped


class AssistantRequest(BaseModel):
    """The wire shape of a /assistant request item, as the HTTP routes declare it: JSON types
    only, so that a ``/batch`` item whose content is unacceptable (an empty or too long message,
    an approve without an action) still reaches the turn and answers as that item's error
    instead of failing the whole batch. :class:`AssistantInput` adds every content check."""

    message: str = Field(..., description="The customer's message (1-2,000 characters).")
    confirm_action_id: str | None = Field(
        None, description="A pending action to decide on (from a previous answer's pending_confirmation; "
        "at most 64 characters); needs approve."
    )
    approve: StrictBool | None = Field(None, description="With confirm_action_id: true confirms, false declines "
                                       "(a JSON boolean; nothing else is read as a decision).")
    chosen_intent: str | None = Field(
        None, description="One of the previous answer's clarify choices (its 'intent'), picked by the customer "
        "(at most 64 characters)."
    )
    conversation_id: str | None = Field(
        None, description="Which of the customer's conversations this message belongs to (default: one per "
        "customer; 1-64 characters of A-Z a-z 0-9 _ . -).",
    )


_CONVERSATION_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class AssistantInput(AssistantRequest):
    """Request body of /assistant, checked: optionally an explicit decision on a pending action
    (``confirm_action_id`` with ``approve``), a clarify choice, or a conversation (ids at most 64
    characters). Raises pydantic's ``ValidationError`` with the reason per field. The message
    itself is validated once, by the turn (:func:`validate_message` in the graph's ``intake``)."""

    @field_validator("confirm_action_id", "chosen_intent")
    @classmethod
    def _short_id(cls, v: str | None) -> str | None:
        if v is not None and len(v) > 64:
            raise ValueError(f"at most 64 characters (got {len(v)})")
        return v

    @field_validator("conversation_id")
    @classmethod
    def _conversation(cls, v: str | None) -> str | None:
        if v is not None and not _CONVERSATION_ID.fullmatch(v):
            raise ValueError("1-64 characters of A-Z a-z 0-9 _ . -")
        return v

    @model_validator(mode="after")
    def _decision(self) -> "AssistantInput":
        if self.confirm_action_id is None:
            if self.approve is not None:
                raise ValueError("approve needs confirm_action_id (the pending action to decide on)")
            return self
        if not self.confirm_action_id.strip():
            raise ValueError("confirm_action_id is empty; send the action_id of the pending confirmation")
        if self.approve is None:
            raise ValueError("with confirm_action_id, set approve: true to confirm or false to decline")
        return self


class Choice(BaseModel):
    """A clarify option: the intent ``label`` and its ``title`` in the customer's words."""

    intent: str
    title: str


class AssistantOutput(BaseModel):
    """Response of /assistant.

    ``status``: answered | clarify (see ``choices``) | out_of_scope | small_talk |
    confirmation_required (see ``pending_confirmation``) | confirmed | declined | failed |
    expired | superseded (what actually happened to a pending action; a replayed decision reports
    the stored outcome with ``replayed`` true) | blocked (the model provider's safety filter
    refused the message) | error (a batch item that failed; see ``error``) | slot_required (the
    request needs one more detail: ``slot_request`` ``{slot, question, options}``; the next
    message fills it) | handoff (passed to a person: ``data["handoff"]`` has the ticket and the
    queue position).
    ``language``: the language the answer is written in, "en" | "es" | "fr" | "de": the
    message's, or for a message too short to say ("ok", "sí" aside) the conversation's last
    (config/language.py). ``latency_ms``: the classification latency in ms. ``arm``: the routing arm that answered
    (a backend, ``backend@version`` of a rollout, or ``cascade``; chains/routing.py).
    """

    answer: str
    status: Status
    intent: str | None = None
    confidence: float | None = None
    ranking: list[RankedIntent] = []
    backend: str | None = None
    model_version: str | None = None
    latency_ms: float | None = None
    arm: str | None = None
    tool: str | None = None
    data: dict[str, Any] = {}
    pending_confirmation: dict[str, Any] | None = None
    choices: list[Choice] = []
    slot_request: dict[str, Any] | None = None
    replayed: bool = False
    error: dict[str, Any] | None = None
    language: Literal["en", "es", "fr", "de"] = "en"
