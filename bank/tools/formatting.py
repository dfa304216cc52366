"""Customer-facing wording of the banking tools' facts: amounts, dates, relative times, one-line
summaries of cards, transactions, transfers and top-ups, their JSON-ready fact dicts, and the
currencies a message names.

Pure functions of the rows they are given (no queries): every row comes from a customer-scoped
query of :class:`bank.tools.base.ToolContext`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bank.store import Card, CardTransaction, TopUp, Transfer
from config.i18n import N_, format_day, format_money, gettext as _, ngettext

__all__ = ["money", "day", "when", "card_label", "jsonable", "card_dict", "tx_dict", "transfer_dict", "topup_dict",
           "tx_line", "transfer_line", "topup_line", "join_lines", "currencies_in"]

_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def money(amount: Decimal, currency: str) -> str:
    """``£1,234.50`` for GBP/EUR/USD, ``3,000.00 THB`` otherwise; in Spanish, French or German
    the locale's format (``1.234,50 €``, Babel; config/i18n.py)."""
    local = format_money(amount, currency)
    if local is not None:
        return local
    sym = _SYMBOLS.get(currency)
    text = f"{amount:,.2f}"
    if sym:
        return f"-{sym}{text[1:]}" if text.startswith("-") else f"{sym}{text}"
    return f"{text} {currency}"


def day(d: date | datetime) -> str:
    """``Friday 14 March 2025`` (``viernes, 14 de marzo de 2025`` in Spanish: Babel's full date)."""
    return format_day(d) or f"{d:%A} {d.day} {d:%B %Y}"


def when(dt: datetime, now: datetime) -> str:
    """A short relative time: ``35 minutes ago``, ``3 hours ago``, ``2 days ago``, or a date."""
    delta = now - dt
    if delta < timedelta(minutes=1):
        return _("just now")
    if delta < timedelta(hours=1):
        n = int(delta.total_seconds() // 60)
        return ngettext("{n} minute ago", "{n} minutes ago", n).format(n=n)
    if delta < timedelta(days=1):
        n = int(delta.total_seconds() // 3600)
        return ngettext("{n} hour ago", "{n} hours ago", n).format(n=n)
    if delta < timedelta(days=14):
        return ngettext("{n} day ago", "{n} days ago", delta.days).format(n=delta.days)
    return _("on {day}").format(day=day(dt))


_CARD_LABELS = {"physical": N_("physical card ending {last4}"), "virtual": N_("virtual card ending {last4}"),
                "disposable": N_("disposable card ending {last4}")}


def card_label(card: Card) -> str:
    """``physical card ending 4821`` (in the current language; an unknown kind is named as stored)."""
    label = _CARD_LABELS.get(card.kind)
    if label is None:
        return f"{card.kind} card ending {card.last4}"
    return _(label).format(last4=card.last4)


def jsonable(obj: Any) -> Any:
    """Recursively convert Decimal -> str, date/datetime -> ISO string, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    return obj


def card_dict(c: Card) -> dict[str, Any]:
    """Facts of a card (no full card number is ever stored)."""
    return {"card_id": c.id, "last4": c.last4, "kind": c.kind, "status": c.status, "ordered_at": c.ordered_at,
            "shipped_at": c.shipped_at, "expected_delivery": c.expected_delivery, "expires_on": c.expires_on,
            "pin_blocked": c.pin_blocked, "contactless_enabled": c.contactless_enabled,
            "replaces_card_id": c.replaces_card_id}


def tx_dict(t: CardTransaction) -> dict[str, Any]:
    """Facts of a card transaction."""
    return {"transaction_id": t.id, "card_last4": t.card.last4, "merchant": t.merchant, "country": t.country,
            "kind": t.kind, "amount": t.amount, "currency": t.currency, "account_amount": t.account_amount,
            "account_currency": t.card.account.currency, "fx_rate": t.fx_rate, "fee": t.fee, "status": t.status,
            "decline_reason": t.decline_reason, "created_at": t.created_at, "settled_at": t.settled_at}


def transfer_dict(t: Transfer) -> dict[str, Any]:
    """Facts of a transfer."""
    return {"transfer_id": t.id, "direction": t.direction, "beneficiary_name": t.beneficiary_name,
            "beneficiary_iban": t.beneficiary_iban, "amount": t.amount, "currency": t.currency, "fee": t.fee,
            "status": t.status, "failure_reason": t.failure_reason, "created_at": t.created_at,
            "completed_at": t.completed_at}


def topup_dict(t: TopUp) -> dict[str, Any]:
    """Facts of a top-up."""
    return {"top_up_id": t.id, "method": t.method, "amount": t.amount, "currency": t.currency, "fee": t.fee,
            "status": t.status, "failure_reason": t.failure_reason, "created_at": t.created_at,
            "completed_at": t.completed_at}


def tx_line(t: CardTransaction, now: datetime) -> str:
    """``Tesco Metro, £23.45, 1 hour ago`` (+ the account amount when converted)."""
    s = f"{t.merchant}, {money(t.amount, t.currency)}"
    if t.currency != t.card.account.currency:
        s += f" ({money(t.account_amount, t.card.account.currency)})"
    return f"{s}, {when(t.created_at, now)}"


def transfer_line(t: Transfer, now: datetime) -> str:
    """``£250.00 to Mark Thompson, 3 hours ago``."""
    prep = "to" if t.direction == "outgoing" else "from"
    return f"{money(t.amount, t.currency)} {prep} {t.beneficiary_name}, {when(t.created_at, now)}"


def topup_line(t: TopUp, now: datetime) -> str:
    """``€200.00 by bank transfer, 6 hours ago``."""
    method = {"card": "by card", "bank_transfer": "by bank transfer", "cash_or_cheque": "by cash or cheque"}
    return f"{money(t.amount, t.currency)} {method.get(t.method, t.method)}, {when(t.created_at, now)}"


def join_lines(lines: list[str]) -> str:
    """Bullet the lines, one per row."""
    return "\n".join(f"- {line}" for line in lines)


_CURRENCY_WORDS = {
    "pound": "GBP", "pounds": "GBP", "sterling": "GBP", "£": "GBP", "euro": "EUR", "euros": "EUR", "€": "EUR",
    "dollar": "USD", "dollars": "USD", "$": "USD", "franc": "CHF", "francs": "CHF", "yen": "JPY",
    "baht": "THB", "zloty": "PLN",
}


def currencies_in(text: str, known: Iterable[str]) -> list[str]:
    """Currency codes mentioned in ``text`` (ISO codes, names or symbols), in order, no repeats.

    Used only to pick which rate to show; never to identify anyone.
    """
    known = {k.upper() for k in known}
    found: list[str] = []
    for tok in re.findall(r"[A-Za-z]+|[£€$]", text):
        code = tok.upper() if tok.upper() in known and (len(tok) == 3) else _CURRENCY_WORDS.get(tok.lower())
        if code and code in known and code not in found:
            found.append(code)
    return found
