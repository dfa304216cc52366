"""The bank's SQL store: the SQLAlchemy 2.0 ORM models and the one balance update.

Balances change only in SQL (:func:`add_to_balance`: ``balance = balance + :delta``), never by
reading in Python and writing back the sum. The column types (exact :class:`Money`, UTC
timestamps, one-line third-party text) are in :mod:`bank.columns`; engines, sessions and schema
creation in :mod:`bank.engine`. Both are re-exported here, the import path most callers use.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, UniqueConstraint, event, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from bank.columns import MONEY_DIGITS, Base, InvalidAmount, Money, ThirdPartyText, UTCDateTime, utcnow
from bank.engine import create_schema, dispose_engine, get_engine, make_engine, session_scope, setup_lock

__all__ = [
    "Base", "Customer", "ApiKey", "Account", "Card", "CardTransaction", "Transfer", "TopUp",
    "DirectDebit", "FxRate", "PendingAction", "Money", "InvalidAmount", "MONEY_DIGITS", "UTCDateTime",
    "ThirdPartyText", "utcnow", "add_to_balance", "make_engine", "dispose_engine", "create_schema", "setup_lock",
    "session_scope", "get_engine",
]


class Customer(Base):
    """A bank customer. ``username`` is the UI login; ``password_hash`` is scrypt (see auth)."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    accounts: Mapped[list[Account]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    cards: Mapped[list[Card]] = relationship(back_populates="customer", cascade="all, delete-orphan")


class ApiKey(Base):
    """An API key, stored only as the SHA-256 hex digest of the key string.

    ``customer_id`` is NULL for operator keys (``role='operator'``).
    """

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=True)
    role: Mapped[str] = mapped_column(String(16))  # customer | operator
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Account(Base):
    """A currency account (``currency`` ISO 4217; ``balance`` Decimal, 2 places)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[Decimal] = mapped_column(Money(2), default=Decimal("0"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    customer: Mapped[Customer] = relationship(back_populates="accounts")


class Card(Base):
    """A payment card.

    ``kind``: physical | virtual | disposable. ``status``: ordered | shipped | active | frozen |
    expired | cancelled. ``replaces_card_id`` links a replacement to the card it replaces.
    """

    __tablename__ = "cards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    last4: Mapped[str] = mapped_column(String(4))
    kind: Mapped[str] = mapped_column(String(16), default="physical")
    status: Mapped[str] = mapped_column(String(16), default="active")
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    expected_delivery: Mapped[date | None] = mapped_column(Date, default=None)
    expires_on: Mapped[date] = mapped_column(Date)
    pin_blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    contactless_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    replaces_card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"), default=None)

    customer: Mapped[Customer] = relationship(back_populates="cards")
    account: Mapped[Account] = relationship()


class CardTransaction(Base):
    """A card payment, cash withdrawal or refund.

    ``amount``/``currency``: in the merchant's currency; ``account_amount``: in the account's
    currency; ``fx_rate``: account-currency units per 1 merchant-currency unit applied
    (``account_amount = amount * fx_rate``, before ``fee``), NULL when no conversion. ``status``: pending | settled |
    declined | reverted. ``kind``: payment | cash_withdrawal | refund | fee (a bank fee, such as an
    extra physical card: ``amount = account_amount`` = the fee, in the account currency).
    """

    __tablename__ = "card_transactions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    merchant: Mapped[str] = mapped_column(ThirdPartyText(200))
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    amount: Mapped[Decimal] = mapped_column(Money(2))
    currency: Mapped[str] = mapped_column(String(3))
    account_amount: Mapped[Decimal] = mapped_column(Money(2))
    fx_rate: Mapped[Decimal | None] = mapped_column(Money(6), default=None)
    fee: Mapped[Decimal] = mapped_column(Money(2), default=Decimal("0"))
    status: Mapped[str] = mapped_column(String(16))
    decline_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    kind: Mapped[str] = mapped_column(String(20), default="payment")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    card: Mapped[Card] = relationship()


class Transfer(Base):
    """A bank transfer. ``direction``: outgoing | incoming. ``status``: pending | failed |
    completed | cancelled. An outgoing pending transfer has already been debited from the
    balance (the money is reserved); cancelling it credits the amount back.
    """

    __tablename__ = "transfers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(10), default="outgoing")
    beneficiary_name: Mapped[str] = mapped_column(ThirdPartyText(200))
    beneficiary_iban: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Money(2))
    currency: Mapped[str] = mapped_column(String(3))
    fee: Mapped[Decimal] = mapped_column(Money(2), default=Decimal("0"))
    status: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    account: Mapped[Account] = relationship()


class TopUp(Base):
    """A top-up. ``method``: card | bank_transfer | cash_or_cheque. ``status``: pending |
    completed | failed | reverted. ``fee`` in the account currency.
    """

    __tablename__ = "top_ups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Money(2))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    fee: Mapped[Decimal] = mapped_column(Money(2), default=Decimal("0"))
    failure_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    account: Mapped[Account] = relationship()


class DirectDebit(Base):
    """A direct debit mandate. ``status``: active | cancelled."""

    __tablename__ = "direct_debits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    creditor: Mapped[str] = mapped_column(ThirdPartyText(200))
    reference: Mapped[str] = mapped_column(ThirdPartyText(100), default="")
    amount: Mapped[Decimal] = mapped_column(Money(2))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    account: Mapped[Account] = relationship()


class FxRate(Base):
    """An exchange rate: 1 ``base`` = ``rate`` ``quote`` (6 decimal places)."""

    __tablename__ = "fx_rates"
    __table_args__ = (UniqueConstraint("base", "quote"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Money(6))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingAction(Base):
    """A state-changing action proposed by a tool, waiting for the customer's confirmation.

    ``status``: pending | confirmed | declined | expired | failed (confirmed, but its
    preconditions no longer held, so nothing changed). ``result`` holds the outcome returned
    to every later confirmation of the same id (idempotency).
    """

    __tablename__ = "pending_actions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[dict | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


def _check_money_on_set(money_type: Money):
    def check(_target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
        return None if value is None else money_type.check(value)

    return check


def _validate_money_attributes() -> None:
    """Check every Money-typed mapped attribute on assignment (constructor keywords included)."""
    for mapper in Base.registry.mappers:
        for prop in mapper.column_attrs:
            col_type = prop.columns[0].type
            if isinstance(col_type, Money):
                event.listen(getattr(mapper.class_, prop.key), "set", _check_money_on_set(col_type), retval=True)


_validate_money_attributes()


def add_to_balance(session: Session, account_id: int, delta: Decimal | int | str) -> Decimal:
    """Atomically add ``delta`` (account currency, may be negative) to one account's balance.

    Runs ``UPDATE accounts SET balance = balance + :delta WHERE id = :id`` in SQL (the database
    takes the row lock, so concurrent changes never lose an update) and returns the new balance
    as a Decimal (2 places). The loaded :class:`Account` object in ``session`` is refreshed.

    Raises :class:`InvalidAmount` when ``delta`` is not a valid amount or the new balance would
    leave the money range (nothing changes), and ``LookupError`` when the account does not exist.
    """
    money_type: Money = Account.__table__.c.balance.type
    delta = money_type.check(delta)
    new_balance = Account.balance + delta
    stmt = (update(Account).where(Account.id == account_id,
                                  new_balance.between(-money_type.max_value, money_type.max_value))
            .values(balance=new_balance).returning(Account.balance)
            .execution_options(synchronize_session=False))
    balance = session.execute(stmt).scalar_one_or_none()
    if balance is None:
        if session.get(Account, account_id) is None:
            raise LookupError(f"no account {account_id}")
        raise InvalidAmount(f"the new balance would be out of range (|balance| below {money_type.limit:,})")
    loaded = session.identity_map.get(session.identity_key(Account, account_id))
    if loaded is not None:
        session.expire(loaded, ["balance"])
    return balance
