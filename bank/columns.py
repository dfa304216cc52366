"""Column types of the bank's tables: exact money, UTC timestamps, one-line third-party text.

Money is never a float: amounts are :class:`decimal.Decimal` in Python. On PostgreSQL they are
``NUMERIC(18, scale)`` columns; SQLite has no exact decimal type, so there they are stored as
integers in minor units (``amount * 10**scale``), which keeps SQL ordering and sums exact. NaN,
Infinity, floats, extra decimal places and out-of-range amounts raise :class:`InvalidAmount`
before any SQL, identically on both. Timestamps are timezone-aware UTC ``datetime`` objects in
Python whatever the backend. The ORM models using these types are in :mod:`bank.store`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, DateTime, Numeric, String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

__all__ = ["utcnow", "InvalidAmount", "MONEY_DIGITS", "Money", "UTCDateTime", "ThirdPartyText"]


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
    """Declarative base of all bank tables (bank/store.py, bank/models_extra.py,
    bank/transcript.py); ``create_schema`` (bank/engine.py) creates what its metadata holds."""
