"""The operator's hand-over queue over HTTP (issue 16), beside ``health_router``
(assistant/http_limits/health.py) and included the same way by assistant/server.py.

Routes (operator key only; the dependency given to :func:`tickets_router` answers 401 for a
missing or unknown key and 403 for a customer's key):

- ``GET /operator/tickets``: every open hand-over ticket, oldest first
  (``bank.models_extra.open_tickets``), each with its queue ``position`` (1 = next),
  ``expected_wait_min`` and an excerpt of the conversation (the last :data:`EXCERPT_TURNS`
  entries, each cut to :data:`EXCERPT_CHARS` characters). The transcript is the customer's and
  the assistant's text: it is returned as JSON strings, never as markup; a client shows it as
  plain text.
- ``POST /operator/tickets/{ticket_id}/close``: an operator took the ticket: 200 with the
  closed ticket, 404 for an unknown id, 409 when it was already closed. No body is needed (the
  JSON hygiene middleware still wants ``Content-Type: application/json`` on a POST).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from bank.models_extra import close_ticket, get_ticket, open_tickets
from bank.store import get_engine

__all__ = ["EXCERPT_CHARS", "EXCERPT_TURNS", "OpenTicket", "ClosedTicket", "TicketList", "tickets_router"]

EXCERPT_TURNS = 20
"""How many of the newest transcript entries a listed ticket carries."""
EXCERPT_CHARS = 500
"""At most this many characters of each entry's text (a longer one ends with "…")."""
MAX_TICKET_ID = 2**31 - 1  # PostgreSQL's INTEGER: a larger id cannot exist (and would fail the query)


class TranscriptEntry(BaseModel):
    """One line of the conversation: ``role`` customer | assistant, ``text`` as written (plain)."""

    role: str
    text: str


class OpenTicket(BaseModel):
    """An open hand-over ticket as the operator sees it (times ISO 8601, UTC)."""

    ticket_id: int
    customer_id: int
    thread_id: str
    reason: str
    status: str
    created_at: str
    position: int = Field(..., description="Place in the queue, 1 = next.")
    expected_wait_min: int = Field(..., description="Expected wait in minutes (position x minutes per ticket).")
    transcript_excerpt: list[TranscriptEntry] = Field(..., description="The newest entries of the conversation.")
    transcript_entries: int = Field(..., description="How many entries the whole transcript has.")


class TicketList(BaseModel):
    """Body of ``GET /operator/tickets``: the open tickets, oldest (next) first."""

    tickets: list[OpenTicket]


class ClosedTicket(BaseModel):
    """Body of a successful close."""

    ticket_id: int
    status: str
    closed_at: str | None


def excerpt(transcript: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The newest :data:`EXCERPT_TURNS` entries of ``transcript`` (``[{"role", "text"}]``), each
    text cut to :data:`EXCERPT_CHARS` characters; entries of another shape are read as text."""
    out = []
    for item in transcript[-EXCERPT_TURNS:]:
        role, text = (str(item.get("role", "")), str(item.get("text", ""))) if isinstance(item, dict) else ("", str(item))
        if len(text) > EXCERPT_CHARS:
            text = text[:EXCERPT_CHARS - 1] + "…"
        out.append({"role": role, "text": text})
    return out


def listed(ticket: dict[str, Any]) -> OpenTicket:
    """A ``bank.models_extra.ticket_dict`` (with position) as the listed :class:`OpenTicket`."""
    transcript = ticket.get("transcript") or []
    fields = {k: ticket[k] for k in OpenTicket.model_fields if k in ticket}
    return OpenTicket(**fields, transcript_excerpt=excerpt(transcript), transcript_entries=len(transcript))


def tickets_router(operator: Callable[..., Any]) -> APIRouter:
    """A router with the two operator routes above, each guarded by the FastAPI dependency
    ``operator`` (e.g. ``assistant.server.require_operator``: 401/403 for other callers)."""
    router = APIRouter(prefix="/operator", tags=["operator"], dependencies=[Depends(operator)])

    @router.get("/tickets", response_model=TicketList)
    def list_tickets() -> TicketList:
        """Open hand-over tickets, oldest first, with queue position, expected wait and an
        excerpt of the conversation (plain text)."""
        return TicketList(tickets=[listed(t) for t in open_tickets(get_engine())])

    @router.post("/tickets/{ticket_id}/close", response_model=ClosedTicket,
                 responses={404: {"description": "No such ticket."}, 409: {"description": "Already closed."}})
    def close(ticket_id: str = PathParam(..., pattern=r"^[1-9][0-9]{0,9}$",
                                         description="Decimal digits, no sign or leading zero.")) -> ClosedTicket:
        if int(ticket_id) > MAX_TICKET_ID:
            raise HTTPException(422, "ticket_id is larger than any ticket can be.")
        ticket_id = int(ticket_id)
        """Close an open ticket (an operator took it). 404: unknown id; 409: already closed."""
        engine = get_engine()
        closed = close_ticket(engine, ticket_id)
        ticket = get_ticket(engine, ticket_id)
        if ticket is None:
            raise HTTPException(404, f"No hand-over ticket #{ticket_id}.")
        if not closed:
            raise HTTPException(409, f"Hand-over ticket #{ticket_id} is already {ticket['status']}.")
        return ClosedTicket(ticket_id=ticket_id, status=ticket["status"], closed_at=ticket["closed_at"])

    return router
