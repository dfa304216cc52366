"""The bank's SQL store: SQLAlchemy 2.0 ORM models, engine creation and transactions.

SQLite is the default (a file under ``Settings.home``); PostgreSQL works through its URL
(``BANKING_DATABASE_URL=postgresql+psycopg://...``). The schema is created by the app with
:func:`create_schema` (``Base.metadata.create_all``), so there are no migrations to run.

Money is never a float: amounts are :class:`decimal.Decimal` in Python. On PostgreSQL they are
``NUMERIC(18, scale)`` columns; SQLite has no exact decimal type, so there they are stored as
integers in minor units (``amount * 10**scale``), which keeps SQL ordering and sums exact. NaN,
Infinity, floats, extra decimal places and out-of-range amounts raise :class:`InvalidAmount`
before any SQL, identically on both. Balances change only in SQL (:func:`add_to_balance`:
``balance = balance + :delta``), never by reading in Python and writing back the sum. Timestamps are
timezone-aware UTC ``datetime`` objects in Python whatever the backend.
"""

from __future__ import annotations

import fcntl
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    create_engine,
    event,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base", "Customer", "ApiKey", "Account", "Card", "CardTransaction", "Transfer", "TopUp",
    "DirectDebit", "FxRate", "PendingAction", "Money", "InvalidAmount", "MONEY_DIGITS", "UTCDateTime",
    "utcnow", "add_to_balance", "make_engine", "dispose_engine", "create_schema", "setup_lock", "session_scope", "get_engine",
]


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC ``datetime``."""
    return datetime.now(UTC)


class InvalidAmount(ValueError):
    """A money amount that cannot be stored exactly; raised before any SQL is sent.

    Reasons: a ``float`` (or ``bool``), text that is not a number, NaN, +/-Infinity, more decimal
    places than the column's scale, or a magnitude of ``10**(MONEY_DIGITS - scale)`` or more. The
    same error on SQLite and PostgreSQL.
    """


MONEY_DIGITS = 18
"""Total significant digits of every money column: PostgreSQL ``NUMERIC(18, scale)``, and on
SQLite ``value * 10**scale`` stays below ``10**18`` (inside a signed 64-bit integer)."""


class Money(TypeDecorator):
    """An exact decimal column with ``scale`` digits after the point and ``MONEY_DIGITS`` in all.

    Python side: :class:`~decimal.Decimal`. Values are checked by :meth:`check` on assignment to
    a mapped attribute and again before binding, so NaN, Infinity, floats, extra decimal places
    and out-of-range amounts raise :class:`InvalidAmount` before SQL on every backend.
    PostgreSQL and other backends: ``NUMERIC(18, scale)``. SQLite: ``BIGINT`` holding
    ``value * 10**scale`` (exact; SQLite's NUMERIC affinity would round-trip through binary
    floating point).
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)
        self.limit = Decimal(10) ** (MONEY_DIGITS - scale)  # exclusive bound on |value|
        self.max_value = self.limit - self._quantum

    def check(self, value: Any) -> Decimal:
        """Return ``value`` as a Decimal with exactly ``scale`` places, or raise :class:`InvalidAmount`.

        Accepts Decimal, int and numeric strings (``"12.5"``); refuses float and bool.
        """
        if isinstance(value, (float, bool)) or not isinstance(value, (Decimal, int, str)):
            raise InvalidAmount(f"money must be Decimal, int or str, never {type(value).__name__}")
        try:
            d = Decimal(value)
        except (InvalidOperation, ValueError):
            raise InvalidAmount(f"not an amount: {str(value)[:40]!r}") from None
        if not d.is_finite():
            raise InvalidAmount(f"not a finite amount: {d}")
        if abs(d) >= self.limit:
            raise InvalidAmount(f"amount out of range: |amount| must be below {self.limit:,}")
        q = d.quantize(self._quantum)
        if q != d:
            raise InvalidAmount(f"amount {d} has more than {self.scale} decimal places")
        return q

    def load_dialect_impl(self, dialect):  # noqa: D102 - SQLAlchemy hook
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(MONEY_DIGITS, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect) -> Any:  # noqa: D102
        if value is None:
            return None
        q = self.check(value)
        if dialect.name == "sqlite":
            return int(q.scaleb(self.scale))
        return q

    def process_result_value(self, value: Any, dialect) -> Decimal | None:  # noqa: D102
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale).quantize(self._quantum)
        return Decimal(value).quantize(self._quantum)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware (UTC).

    Naive values are taken to be UTC already. SQLite stores no zone, so the zone is
    attached again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # noqa: D102
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # noqa: D102
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_LINE_BREAKS_AND_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class ThirdPartyText(TypeDecorator):
    """Text that comes from outside the bank (merchant names, payees, creditors, references):
    stored and read as ONE line of plain text. Line breaks and control characters (C0, C1,
    U+2028/2029) become a single space, on write and again on read, so such text can never
    forge an extra line in an answer or send a terminal escape sequence. Markup in it is left as
    typed; every interface shows it as plain text."""

    impl = String
    cache_ok = True

    @staticmethod
    def clean(value: str | None) -> str | None:
        """``value`` on one line: runs of line breaks/control characters -> one space, stripped."""
        return None if value is None else _LINE_BREAKS_AND_CONTROLS.sub(" ", value).strip()

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return self.clean(value)

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return self.clean(value)


class Base(DeclarativeBase):
    """Declarative base of all bank tables."""


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


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    # Write-ahead log: one fsync per commit instead of two (journal + database); synchronous
    # stays FULL, so a committed payment survives a power cut.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


_SCHEMA_READY: set[str] = set()


def make_engine(url: str) -> Engine:
    """Return the (cached, one per URL) SQLAlchemy engine for ``url``.

    SQLite engines get ``check_same_thread=False`` (the web server uses threads) and
    ``PRAGMA foreign_keys=ON`` plus a 5 s busy timeout on every connection. The folder of a
    SQLite file is created if missing. Raises ``sqlalchemy.exc.ArgumentError`` for a malformed URL.
    """
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        parsed = make_url(url)
        kwargs: dict[str, Any] = {"future": True}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False}
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(url, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        _ENGINES[url] = engine
        return engine


def dispose_engine(url: str) -> None:
    """Close every pooled connection of the cached engine for ``url`` and forget it (tests and
    shutdown; a later :func:`make_engine` call creates a new engine)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(url, None)
        _SCHEMA_READY.discard(url)
    if engine is not None:
        engine.dispose()


SETUP_LOCK_KEY = 0x62616E6B5F736574
"""The PostgreSQL advisory lock key (signed 64-bit) of schema creation and demo seeding."""
_SETUP_HELD = threading.local()


@contextmanager
def setup_lock(engine: Engine) -> Iterator[None]:
    """Serialise set-up work (schema creation, demo seeding) between threads, processes and machines.

    PostgreSQL: the session advisory lock ``SETUP_LOCK_KEY`` on a connection of its own; a SQLite
    file: an exclusive ``flock`` on ``<database>.setup-lock``; in-memory SQLite: nothing. Blocks
    until the lock is free, so workers starting together on a fresh database neither race on
    ``CREATE TABLE`` nor insert the demo rows twice. Re-entrant within a thread.
    """
    if getattr(_SETUP_HELD, "depth", 0):
        _SETUP_HELD.depth += 1
        try:
            yield
        finally:
            _SETUP_HELD.depth -= 1
        return
    with ExitStack() as stack:
        if engine.dialect.name == "postgresql":
            conn = stack.enter_context(engine.connect()).execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": SETUP_LOCK_KEY})
            stack.callback(conn.execute, text("SELECT pg_advisory_unlock(:k)"), {"k": SETUP_LOCK_KEY})
        elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            f = stack.enter_context(open(f"{engine.url.database}.setup-lock", "a"))
            fcntl.flock(f, fcntl.LOCK_EX)
            stack.callback(fcntl.flock, f, fcntl.LOCK_UN)
        _SETUP_HELD.depth = 1
        try:
            yield
        finally:
            _SETUP_HELD.depth = 0


def create_schema(engine: Engine) -> None:
    """Create every bank table that does not exist yet (idempotent; safe when several processes
    start at once: see :func:`setup_lock`)."""
    with setup_lock(engine):
        Base.metadata.create_all(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One ORM session = one transaction: commits on success, rolls back on any exception.

    Objects stay readable after the commit (``expire_on_commit=False``).
    """
    session = Session(engine, expire_on_commit=False)
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def get_engine(settings=None, *, create: bool = True) -> Engine:
    """The engine of ``settings.resolved_database_url`` (default: ``get_settings()``).

    With ``create=True`` (default) the schema is created if missing.
    """
    if settings is None:
        from assistant.settings import get_settings

        settings = get_settings()
    url = settings.resolved_database_url
    engine = make_engine(url)
    if create and url not in _SCHEMA_READY:
        create_schema(engine)  # once per URL and process: get_engine() sits on the request path
        _SCHEMA_READY.add(url)
    return engine
