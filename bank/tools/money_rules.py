"""The money rules of payments and top-ups, shared by the tools (when proposing) and the
executors (again, under row locks, when the confirmation runs).

Currencies and their minor units come from Babel's CLDR data (``babel.numbers.is_currency``,
``get_currency_precision``); IBANs are checked with ``schwifty``. Each check returns a plain
customer-facing reason (a ``str``) or None; nothing here changes data except :func:`lock_accounts`,
which only takes row locks.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import get_currency_precision, is_currency
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy import select
from sqlalchemy.orm import Session

from bank.models_extra import PaymentDetail
from bank.store import Account, Transfer
from bank.tools.formatting import money
from config.i18n import gettext as _

__all__ = ["DEFAULT_DAILY_OUTGOING_LIMIT", "daily_outgoing_limit", "currency_problem", "parse_amount",
           "minor_units", "convert", "outgoing_today", "payment_problem", "lock_accounts", "clean_iban",
           "mask_iban"]

DEFAULT_DAILY_OUTGOING_LIMIT = Decimal("1000")
"""Used when the settings cannot be read: the most that may leave one account per UTC day, in
that account's currency."""


def daily_outgoing_limit() -> Decimal:
    """``Settings.daily_outgoing_limit`` (env ``BANKING_DAILY_OUTGOING_LIMIT``), in the source
    account's currency; read at each call (tests change it with ``get_settings.cache_clear()``)."""
    try:
        from config.settings import get_settings  # lazy, like bank.store.get_engine

        return Decimal(str(get_settings().daily_outgoing_limit))
    except (ImportError, AttributeError):
        return DEFAULT_DAILY_OUTGOING_LIMIT


def currency_problem(code: str | None) -> str | None:
    """Why ``code`` is not a currency the bank can use (None when it is an ISO 4217 code)."""
    if not code or len(code) != 3 or not code.isalpha() or not is_currency(code.upper()):
        return _("I don't know the currency {code}, so nothing was set up.").format(code=repr(str(code)[:12]))
    return None


def minor_units(currency: str) -> int:
    """Decimal places of ``currency`` (GBP 2, JPY 0), from CLDR via Babel."""
    return get_currency_precision(currency.upper())


def parse_amount(raw: str | Decimal | int, currency: str) -> tuple[Decimal | None, str | None]:
    """``(amount, None)`` for a valid amount in ``currency``, else ``(None, reason)``.

    Valid: a finite number above zero with at most the currency's minor units (``"1,250.50"``
    accepted; ``"0"``, ``"-5"``, ``"10.555"`` for GBP, ``"abc"`` refused). ``currency`` must be
    valid already (:func:`currency_problem`).
    """
    text = str(raw).strip().replace(",", "").replace(" ", "")
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None, _("{raw} is not an amount I can use.").format(raw=repr(str(raw)[:20]))
    if not value.is_finite():
        return None, _("{raw} is not an amount I can use.").format(raw=repr(str(raw)[:20]))
    if value <= 0:
        return None, _("The amount must be more than zero; nothing was set up.")
    places = minor_units(currency)
    if value != value.quantize(Decimal(1).scaleb(-places)):
        if places == 0:
            return None, _("{currency} amounts have no decimal places ({text} has more); nothing was set up.").format(
                currency=currency.upper(), text=text)
        return None, _("{currency} amounts have at most {places} decimal places ({text} has more); nothing was set "
                       "up.").format(currency=currency.upper(), places=places, text=text)
    if value >= Decimal(10) ** 12:
        return None, _("That amount is too large; nothing was set up.")
    if value != value.quantize(Decimal("0.01")):  # a 3-place currency (KWD): the ledger keeps 2
        return None, _("I can only pay amounts with at most 2 decimal places; nothing was set up.")
    return value.quantize(Decimal("0.01")), None


def convert(amount: Decimal, rate: Decimal, to_currency: str) -> Decimal:
    """``amount * rate`` rounded half-up to ``to_currency``'s minor units (at least 2 places kept
    for the 2-place money columns)."""
    places = minor_units(to_currency)
    return (amount * rate).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP).quantize(Decimal("0.01"))


def outgoing_today(session: Session, account_id: int, now: datetime) -> Decimal:
    """What left ``account_id`` today (UTC) through outgoing transfers that are pending or
    completed, in the account's currency (a converted payment counts its ``debit_amount``)."""
    start = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    rows = session.execute(
        select(Transfer, PaymentDetail.debit_amount).outerjoin(PaymentDetail, PaymentDetail.transfer_id == Transfer.id)
        .where(Transfer.account_id == account_id, Transfer.direction == "outgoing",
               Transfer.status.in_(("pending", "completed")), Transfer.created_at >= start)).all()
    return sum((debit if debit is not None else t.amount + (t.fee or 0) for t, debit in rows), Decimal("0.00"))


def payment_problem(session: Session, account: Account, debit: Decimal, now: datetime) -> str | None:
    """Why ``debit`` (account currency, fee included) may not leave ``account`` now: the account
    is closed, the balance is short, or today's outgoing total would pass the daily limit."""
    cur = account.currency
    if account.status != "open":
        return _("Your {cur} account is closed, so nothing can be paid from it; nothing was changed.").format(cur=cur)
    if debit > account.balance:
        return _("That is more than your {cur} balance ({balance}): {needed} would be needed. Nothing was "
                 "changed.").format(cur=cur, balance=money(account.balance, cur), needed=money(debit, cur))
    limit = daily_outgoing_limit()
    sent = outgoing_today(session, account.id, now)
    if sent + debit > limit:
        left = max(limit - sent, Decimal("0"))
        return _("That would pass your daily limit of {limit} for payments out of your {cur} account ({sent} "
                 "already sent today, {left} left). Nothing was changed.").format(
            limit=money(limit, cur), cur=cur, sent=money(sent, cur), left=money(left, cur))
    return None


def lock_accounts(session: Session, customer_id: int) -> dict[int, Account]:
    """Lock all the customer's account rows (``SELECT ... FOR UPDATE`` in id order, re-read), the
    same rows in the same order as the card actions in ``bank.tools.actions``, so payments, top-ups,
    card actions and closing the account serialise without deadlocks. On SQLite the confirmation's
    claim already holds the database's write lock."""
    rows = session.scalars(select(Account).where(Account.customer_id == customer_id).order_by(Account.id)
                           .with_for_update().execution_options(populate_existing=True))
    return {a.id: a for a in rows}


def clean_iban(raw: str) -> tuple[str | None, str | None]:
    """``(compact IBAN, None)`` when ``raw`` is a valid IBAN (schwifty: country, length, bank
    format, checksum), else ``(None, reason)``."""
    try:
        return IBAN(raw).compact, None
    except SchwiftyException as exc:
        why = str(exc).rstrip(".") or "it is not a valid IBAN"
        return None, f"{raw.strip()[:40]!r} is not a valid IBAN ({why[0].lower() + why[1:]})."


def mask_iban(iban: str) -> str:
    """``GB29 **** 6819``: country and check digits, then the last 4 characters."""
    iban = iban.replace(" ", "")
    return f"{iban[:4]} **** {iban[-4:]}" if len(iban) > 8 else iban
