"""``talk_to_human``: a hand-over ticket with the conversation so far, opened at once (it moves
no money, so it needs no confirmation), answered with the queue position and expected wait."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bank.models_extra import HANDOFF_MINUTES_PER_TICKET, HandoffTicket, queue_position
from bank.tools.base import ToolContext, ToolResult, tool
from config.i18n import gettext as _

__all__ = ["talk_to_human", "normalise_transcript"]

MAX_TRANSCRIPT_TURNS = 200


def normalise_transcript(value: Any, text: str) -> list[dict[str, str]]:
    """The ``transcript`` slot as ``[{"role", "text"}]`` (roles customer | assistant, at most
    ``MAX_TRANSCRIPT_TURNS`` entries, newest kept), ending with the current message ``text``.

    Accepted: ``bank.transcript.transcript`` turns (``{"customer", "assistant", ...}``, each giving
    two entries), ``{"role", "text"}`` dicts, strings (the customer's), one string, or nothing.
    """
    if isinstance(value, str):
        value = [value] if value.strip() else []
    out: list[dict[str, str]] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and ("customer" in item or "assistant" in item):
            out += [{"role": role, "text": str(item[role])[:4000]} for role in ("customer", "assistant")
                    if item.get(role)]
        elif isinstance(item, dict):
            out.append({"role": str(item.get("role", "customer"))[:20], "text": str(item.get("text", ""))[:4000]})
        else:
            out.append({"role": "customer", "text": str(item)[:4000]})
    if text and not (out and out[-1] == {"role": "customer", "text": text[:4000]}):
        out.append({"role": "customer", "text": text[:4000]})
    return out[-MAX_TRANSCRIPT_TURNS:]


@tool("talk_to_human")
def talk_to_human(ctx: ToolContext) -> ToolResult:
    """Open (or, for the same thread, refresh) a hand-over ticket. Slots: ``transcript`` (the
    conversation so far: it replaces a refreshed ticket's; without it the message is appended),
    ``thread_id``, ``reason``. ``data["handoff"]``: ``{ticket_id, position,
    expected_wait_min}``; the graph sets the turn's status."""
    transcript = normalise_transcript(ctx.slots.get("transcript"), ctx.text)
    thread_id = (ctx.slot("thread_id") or "")[:200]
    reason = (ctx.slot("reason") or ctx.text or "asked for a person")[:1000]
    ticket = None
    if thread_id:
        ticket = ctx.session.scalar(select(HandoffTicket).where(
            HandoffTicket.customer_id == ctx.customer_id, HandoffTicket.thread_id == thread_id,
            HandoffTicket.status == "open"))
    if ticket is None:
        ticket = HandoffTicket(customer_id=ctx.customer_id, thread_id=thread_id, transcript=transcript, reason=reason,
                               status="open", created_at=ctx.now)
        ctx.session.add(ticket)
    elif "transcript" in ctx.slots:
        ticket.transcript = transcript  # the caller passed the whole conversation again
    else:
        ticket.transcript = [*(ticket.transcript or []), *transcript][-MAX_TRANSCRIPT_TURNS:]
    ctx.session.flush()
    position = queue_position(ctx.session, ticket)
    wait = position * HANDOFF_MINUTES_PER_TICKET
    answer = _("I've passed our conversation to a member of our team (ticket #{ticket}). You are number {position} in "
               "the queue; the expected wait is about {wait} minutes. They will see what we've discussed.").format(
        ticket=ticket.id, position=position, wait=wait)
    return ctx.result(answer, {"handoff": {"ticket_id": ticket.id, "position": position, "expected_wait_min": wait}})
