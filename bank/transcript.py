"""The conversation transcript: one row per turn, appended once, outside the graph's state.

The graph's checkpointed state keeps only what the next turn needs (chains/state.py: the last
few messages); the whole conversation lives here, read by a hand-over ticket (the conversation
so far) and by operators. Customer text and answers are third-party-free plain text stored with
line breaks and control characters removed (``ThirdPartyText``), never rendered as markup.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from bank.store import Base, UTCDateTime, session_scope, utcnow


class TranscriptTurn(Base):
    """One turn of a conversation: what the customer sent and what the assistant answered.

    ``thread_id``: the conversation (graph thread); ``customer_id``: its owner; ``customer_text``:
    the message (or "[button] yes/no" for a button decision); ``answer``: the reply;
    ``status``/``intent``: the turn's outcome.
    """

    __tablename__ = "transcript_turns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(200), index=True)
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    customer_text: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    intent: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def record_turn(engine: Engine, *, thread_id: str, customer_id: int, customer_text: str, answer: str,
                status: str, intent: str | None = None) -> None:
    """Append one turn (one INSERT, its own transaction)."""
    with session_scope(engine) as s:
        s.add(TranscriptTurn(thread_id=thread_id, customer_id=customer_id, customer_text=customer_text,
                             answer=answer, status=status, intent=intent))


def transcript(engine: Engine, thread_id: str, customer_id: int, *, limit: int = 200) -> list[dict[str, str]]:
    """The last ``limit`` turns of ``thread_id`` owned by ``customer_id``, oldest first:
    ``[{"customer": str, "assistant": str, "status": str, "at": ISO 8601}]``."""
    with session_scope(engine) as s:
        rows = s.scalars(select(TranscriptTurn).where(TranscriptTurn.thread_id == thread_id,
                                                      TranscriptTurn.customer_id == customer_id)
                         .order_by(TranscriptTurn.id.desc()).limit(limit)).all()
    return [{"customer": r.customer_text, "assistant": r.answer, "status": r.status, "at": r.created_at.isoformat()}
            for r in reversed(rows)]


def delete_before(engine: Engine, cutoff: datetime) -> int:
    """Delete turns older than ``cutoff`` (the retention sweep); returns how many."""
    with session_scope(engine) as s:
        return s.execute(delete(TranscriptTurn).where(TranscriptTurn.created_at < cutoff)).rowcount or 0
