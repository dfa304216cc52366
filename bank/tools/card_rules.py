"""The card rules the tools state AND enforce: how many cards a customer may hold, and the fee
of an extra physical card.

The same functions answer the proposal ("you have 2 of 3", "this card costs £5.00") and are
checked again when the order is confirmed, inside the confirmation's transaction and under the
lock of the customer's account rows (``bank.tools.actions``), so concurrent confirmations can
neither pass a cap nor skip the fee.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bank.store import Card

__all__ = ["MAX_PHYSICAL_CARDS", "PHYSICAL_HELD", "MAX_VIRTUAL_CARDS", "VIRTUAL_HELD", "MAX_DISPOSABLE_PER_DAY",
           "EXTRA_PHYSICAL_CARD_FEE", "FEE_MERCHANT", "count_cards", "physical_card_fee", "cap_problem"]

MAX_PHYSICAL_CARDS = 3
PHYSICAL_HELD = ("active", "ordered", "shipped")
"""Physical cards that count towards the cap (and make the next one an extra, charged card)."""
MAX_VIRTUAL_CARDS = 5
VIRTUAL_HELD = ("active", "frozen")
"""Virtual cards that count towards the cap."""
MAX_DISPOSABLE_PER_DAY = 20
EXTRA_PHYSICAL_CARD_FEE = Decimal("5.00")
"""In the account's own currency (£5, €5, $5)."""
FEE_MERCHANT = "Extra physical card fee"
"""The ``merchant`` text of the ``kind="fee"`` card transaction that records the fee."""


def count_cards(s: Session, customer_id: int, kind: str, statuses: tuple[str, ...] | None = None,
                since: datetime | None = None) -> int:
    """How many of the customer's cards of ``kind`` have one of ``statuses`` (any when None) and
    were ordered at or after ``since`` (any time when None)."""
    q = select(func.count()).select_from(Card).where(Card.customer_id == customer_id, Card.kind == kind)
    if statuses is not None:
        q = q.where(Card.status.in_(statuses))
    if since is not None:
        q = q.where(Card.ordered_at >= since)
    return int(s.scalar(q) or 0)


def physical_card_fee(s: Session, customer_id: int) -> Decimal:
    """The fee of one more (non-replacement) physical card: 0.00 when the customer holds no
    physical card active or on its way, else :data:`EXTRA_PHYSICAL_CARD_FEE`. Replacements of lost,
    stolen, compromised or expiring cards are free and do not use this."""
    held = count_cards(s, customer_id, "physical", PHYSICAL_HELD)
    return EXTRA_PHYSICAL_CARD_FEE if held else Decimal("0.00")


def cap_problem(s: Session, customer_id: int, kind: str, now: datetime) -> str | None:
    """Why one more card of ``kind`` may not be created now (a sentence fragment with the current
    count), or None when it may: at most 3 physical cards active or on their way, 5 virtual cards
    active or frozen, 20 disposable cards created per (UTC) day."""
    if kind == "physical":
        n = count_cards(s, customer_id, "physical", PHYSICAL_HELD)
        if n >= MAX_PHYSICAL_CARDS:
            return f"you already have {n} physical cards active or on their way, the most you can hold is {MAX_PHYSICAL_CARDS}"
    elif kind == "virtual":
        n = count_cards(s, customer_id, "virtual", VIRTUAL_HELD)
        if n >= MAX_VIRTUAL_CARDS:
            return f"you already have {n} virtual cards, the most you can hold is {MAX_VIRTUAL_CARDS}"
    elif kind == "disposable":
        n = count_cards(s, customer_id, "disposable", since=datetime.combine(now.date(), time.min, now.tzinfo))
        if n >= MAX_DISPOSABLE_PER_DAY:
            return f"you have already created {n} disposable cards today, the most is {MAX_DISPOSABLE_PER_DAY} a day"
    return None
