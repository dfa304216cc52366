"""Several requests in one message ("freeze my card and tell me my balance").

:func:`split_requests` cuts a message at its joining words ("and", "then", "also", ";", ", and");
the conversation accepts the split only when every part is a request of its own (the guard
routes each part, to different intents; chains/nodes.py ``Classify``). The parts are then
handled in the order written: read-only ones answered in the same reply, state changes
proposed one at a time (the rest wait in the thread's ``queue``), nothing dropped without saying
so. :func:`carry_over` lets a later part refer to an earlier one's payee ("cancel the transfer to
Mark and send him £20 instead").
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from chains.guard import GuardDecision

_JOINS = re.compile(r"\s*(?:,\s*)?\b(?:and then|and also|and|then|also|plus)\b\s*|\s*;\s*", re.I)
"""Joining words. A sentence boundary alone does not split ("Where is my new card? It still
hasn't arrived" is one request); "... balance? Also freeze my card" splits at "Also"."""
MIN_PART_WORDS = 2
MAX_PARTS = 4
PRONOUNS = frozenset({"him", "her", "them"})


class QueuedRequest(BaseModel):
    """A request of a multi-request message waiting its turn: its ``text`` and the guard's
    ``decision`` on it."""

    text: str
    decision: GuardDecision


def split_requests(text: str) -> list[str]:
    """The parts of ``text`` between joining words, each of at least :data:`MIN_PART_WORDS`
    words (a shorter piece stays with the part before it), at most :data:`MAX_PARTS`; ``[text]``
    when there is nothing to split."""
    pieces = [p.strip(" ,.") for p in _JOINS.split(text) if p and p.strip(" ,.")]
    parts: list[str] = []
    for piece in pieces:
        if parts and len(piece.split()) < MIN_PART_WORDS:
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    return parts if 2 <= len(parts) <= MAX_PARTS else [text]


REPEAT_MIN_WORDS = 3
"""A request repeated in one message ("send £5 to Mark and send £6 to Lena") counts as two only
when every part has at least this many words ("send £5 and £10 to Mark" is one, unclear, request)."""


def is_multi(decisions: list[GuardDecision], parts: list[str] | None = None) -> bool:
    """True when every part routes, to pairwise different intents, or the same intent repeated
    with every part (``parts``) a full request of :data:`REPEAT_MIN_WORDS` words or more."""
    intents = [d.classification.intent for d in decisions]
    if len(decisions) < 2 or not all(d.action == "route" for d in decisions):
        return False
    return len(set(intents)) == len(intents) or all(len(p.split()) >= REPEAT_MIN_WORDS for p in parts or [])


def carry_over(slots: dict[str, str], text: str, previous: dict[str, str]) -> dict[str, str]:
    """``slots`` of a later part, with the earlier part's payee when this part says "him", "her"
    or "them" and names none."""
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
    if "payee" not in slots and words & PRONOUNS and previous.get("payee"):
        return {**slots, "payee": previous["payee"]}
    return slots


def resolve_pronouns(queue: list[QueuedRequest], payee: str | None) -> list[QueuedRequest]:
    """The queued requests with "him"/"her"/"them" replaced by ``payee`` (the first request's
    payee: "cancel the transfer to Mark and send him £20 instead" queues "send Mark £20
    instead"). Done when the message is split, since the first request's details are gone by
    the time a later one runs (after its confirmation, in another turn)."""
    if not payee:
        return queue
    pattern = re.compile(r"\b(" + "|".join(sorted(PRONOUNS)) + r")\b", re.I)
    return [q.model_copy(update={"text": pattern.sub(payee, q.text)}) if pattern.search(q.text) else q for q in queue]


def combined_answer(done: list[dict[str, Any]], last: str) -> str:
    """The answers of the parts handled this turn (``done``: their outputs as JSON), then ``last``."""
    return "\n\n".join([*(d["answer"] for d in done), last])
