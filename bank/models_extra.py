"""Bank tables added for payments, disputes and hand-over (issue 16), beside ``bank.store``.

* :class:`Payee`: a customer's saved beneficiary (name, IBAN validated with ``schwifty``).
* :class:`PaymentDetail`: what a payment to a payee adds to its ``transfers`` row (reference,
  the amount taken from the source account when the payment is in another currency, the rate).
* :class:`Dispute`: a dispute opened on one card transaction.
* :class:`HandoffTicket`: a hand-over to a person, with the conversation so far.

The tables join ``bank.store.Base.metadata``; ``bank/__init__.py`` imports this module, so
``create_schema`` creates them whenever any ``bank`` module is imported.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Engine, ForeignKey, Integer, String, Text, UniqueConstraint, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from bank.store import Base, Money, ThirdPartyText, UTCDateTime, session_scope, utcnow

__all__ = ["Payee", "PaymentDetail", "Dispute", "HandoffTicket", "HANDOFF_MINUTES_PER_TICKET",
           "queue_position", "open_tickets", "close_ticket", "get_ticket", "ticket_dict"]

HANDOFF_MINUTES_PER_TICKET = 4
"""Expected minutes an operator needs per open ticket ahead in the queue (the expected wait)."""


class Payee(Base):
    """A saved beneficiary of one customer: ``name`` (one line), ``iban`` (compact, upper case,
    validated with schwifty before it is stored), ``currency`` (ISO 4217 or None: any)."""

    __tablename__ = "payees"
    __table_args__ = (UniqueConstraint("customer_id", "iban"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(ThirdPartyText(200))
    iban: Mapped[str] = mapped_column(String(34))
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PaymentDetail(Base):
    """Extra facts of a payment made by ``send_payment`` (one row per ``transfers`` row).

    ``debit_amount``: what left the source account, in the ACCOUNT's currency (equal to
    ``amount + fee`` without conversion); ``fx_rate``: account-currency units per 1 payment-currency
    unit, NULL without conversion; ``reference``: the customer's payment reference ('' if none).
    """

    __tablename__ = "payment_details"
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id", ondelete="CASCADE"), primary_key=True)
    payee_id: Mapped[int | None] = mapped_column(ForeignKey("payees.id", ondelete="SET NULL"), default=None)
    reference: Mapped[str] = mapped_column(ThirdPartyText(140), default="")
    debit_amount: Mapped[Decimal] = mapped_column(Money(2))
    fx_rate: Mapped[Decimal | None] = mapped_column(Money(6), default=None)


class Dispute(Base):
    """A dispute on one of the customer's card transactions. ``status``: open | resolved | rejected."""

    __tablename__ = "disputes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    card_transaction_id: Mapped[int] = mapped_column(ForeignKey("card_transactions.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(ThirdPartyText(300), default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HandoffTicket(Base):
    """A request to talk to a person. ``thread_id``: the chat thread ('' when unknown);
    ``transcript``: the conversation so far, a list of ``{"role", "text"}`` dicts; ``status``:
    open | closed."""

    __tablename__ = "handoff_tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    thread_id: Mapped[str] = mapped_column(String(200), default="")
    transcript: Mapped[list] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


def queue_position(session: Session, ticket: HandoffTicket) -> int:
    """1-based place of an open ``ticket`` among all open tickets (oldest first; 0 when closed)."""
    if ticket.status != "open":
        return 0
    ahead = session.scalar(select(func.count()).select_from(HandoffTicket).where(
        HandoffTicket.status == "open", HandoffTicket.id < ticket.id))
    return int(ahead or 0) + 1


def ticket_dict(t: HandoffTicket, position: int | None = None) -> dict[str, Any]:
    """Facts of a ticket (ISO timestamps; ``closed_at`` None while open); ``position`` and the
    expected wait when given."""
    out: dict[str, Any] = {"ticket_id": t.id, "customer_id": t.customer_id, "thread_id": t.thread_id,
                           "reason": t.reason, "status": t.status, "created_at": t.created_at.isoformat(),
                           "closed_at": t.closed_at.isoformat() if t.closed_at else None,
                           "transcript": list(t.transcript or [])}
    if position is not None:
        out["position"] = position
        out["expected_wait_min"] = position * HANDOFF_MINUTES_PER_TICKET
    return out


def open_tickets(engine: Engine) -> list[dict[str, Any]]:
    """Every open hand-over ticket, oldest first, for the operator: :func:`ticket_dict` with
    ``position`` (1 = next) and ``expected_wait_min``."""
    with session_scope(engine) as s:
        rows = list(s.scalars(select(HandoffTicket).where(HandoffTicket.status == "open")
                              .order_by(HandoffTicket.id)))
        return [ticket_dict(t, i) for i, t in enumerate(rows, start=1)]


def get_ticket(engine: Engine, ticket_id: int) -> dict[str, Any] | None:
    """:func:`ticket_dict` of one ticket (with its queue ``position``, 0 when closed), or None
    when no ticket has that id."""
    with session_scope(engine) as s:
        t = s.get(HandoffTicket, ticket_id)
        return None if t is None else ticket_dict(t, queue_position(s, t))


def close_ticket(engine: Engine, ticket_id: int) -> bool:
    """Close an open ticket (an operator took it). True when this call closed it, False when it
    was not open or does not exist."""
    with session_scope(engine) as s:  # one conditional UPDATE: of concurrent closes exactly one matches
        done = s.execute(update(HandoffTicket).where(HandoffTicket.id == ticket_id, HandoffTicket.status == "open")
                         .values(status="closed", closed_at=utcnow()))
        return done.rowcount == 1


def _validate_money_on_set() -> None:
    """``bank.store`` checks Money attributes on assignment for its own tables; do the same here."""
    from sqlalchemy import event

    from bank.store import _check_money_on_set

    for attr in (PaymentDetail.debit_amount, PaymentDetail.fx_rate):
        event.listen(attr, "set", _check_money_on_set(attr.property.columns[0].type), retval=True)


_validate_money_on_set()
