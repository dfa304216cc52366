"""``search_transactions``: card payments and transfers by merchant, payee, dates, amount,
direction and card, with totals per currency and the matching rows (newest first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from bank.tools.base import ToolContext, ToolResult, tool
from bank.tools.formatting import day, money, when
from bank.tools.matching import name_after, name_matches
from config.i18n import gettext as _, ngettext

__all__ = ["Row", "search_transactions", "period_words", "MAX_LISTED"]

MAX_LISTED = 10
"""Rows listed in the answer; every match is counted and totalled."""
SEARCH_PREPOSITIONS = ("at", "on", "to", "from", "with", "for")


@dataclass
class Row:
    """One money movement: ``kind`` card | transfer, ``name`` (merchant or beneficiary),
    ``amount``/``currency`` in the ACCOUNT's currency for card rows (what the balance saw) and as
    sent for transfers, ``direction`` out | in, ``card`` (last4 or None)."""

    kind: str
    id: int
    name: str
    amount: Decimal
    currency: str
    direction: str
    created_at: datetime
    status: str
    card: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON facts of the row."""
        return {"kind": self.kind, "id": self.id, "name": self.name, "amount": self.amount, "currency": self.currency,
                "direction": self.direction, "created_at": self.created_at, "status": self.status,
                "card_last4": self.card}


def _rows(ctx: ToolContext) -> list[Row]:
    out = [Row("card", t.id, t.merchant, t.account_amount, t.card.account.currency,
               "in" if t.kind == "refund" else "out", t.created_at, t.status, t.card.last4)
           for t in ctx.card_txs(statuses=("pending", "settled"))]
    out += [Row("transfer", t.id, t.beneficiary_name, t.amount, t.currency,
                "out" if t.direction == "outgoing" else "in", t.created_at, t.status)
            for t in ctx.transfers(direction=None, statuses=("pending", "completed"))]
    return sorted(out, key=lambda r: (r.created_at, r.id), reverse=True)


def _iso(ctx: ToolContext, name: str) -> date | None | str:
    raw = ctx.slot(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return _("{value} is not a date I can use (YYYY-MM-DD).").format(value=repr(raw[:20]))


def _decimal(ctx: ToolContext, name: str) -> Decimal | None | str:
    raw = ctx.slot(name)
    if raw is None:
        return None
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return _("{value} is not an amount I can use.").format(value=repr(raw[:20]))
    return value if value.is_finite() else _("{value} is not an amount I can use.").format(value=repr(raw[:20]))


def period_words(start: date | None, end: date | None, today: date) -> str:
    """`` this month`` / `` last month`` / `` since 3 March 2025`` / `` between A and B`` / ``""``."""
    first = today.replace(day=1)
    last_first = (first - timedelta(days=1)).replace(day=1)
    if start == first and (end is None or end >= today):
        return " " + _("this month")
    if start == last_first and end == first - timedelta(days=1):
        return " " + _("last month")
    if start and end:
        return " " + _("between {start} and {end}").format(start=day(start), end=day(end))
    if start:
        return " " + _("since {start}").format(start=day(start))
    return " " + _("up to {end}").format(end=day(end)) if end else ""


@tool("search_transactions")
def search_transactions(ctx: ToolContext) -> ToolResult:
    """Search the customer's card payments and transfers. Slots: ``merchant``, ``payee``,
    ``date_from``/``date_to`` (ISO, inclusive), ``min_amount``/``max_amount``, ``direction``
    (in | out), ``card`` (last4 or kind). ``data``: ``totals`` (direction -> currency -> sum),
    ``count``, ``rows`` (newest first, at most ``MAX_LISTED``), ``slots``."""
    merchant, payee = ctx.slot("merchant"), ctx.slot("payee")
    free = None if (merchant or payee) else name_after(ctx.text, SEARCH_PREPOSITIONS)
    start, end = _iso(ctx, "date_from"), _iso(ctx, "date_to")
    low, high = _decimal(ctx, "min_amount"), _decimal(ctx, "max_amount")
    for bad in (start, end, low, high):
        if isinstance(bad, str):
            return ctx.result(bad + " " + _("Nothing was searched."))
    direction = (ctx.slot("direction") or "").lower() or None
    if direction not in (None, "in", "out"):
        return ctx.result(_("The direction must be 'in' or 'out'. Nothing was searched."))
    card = (ctx.slot("card") or "").lower() or None
    kinds = {c.last4: c.kind for c in ctx.cards()}
    rows = []
    for r in _rows(ctx):
        if merchant and not (r.kind == "card" and name_matches(r.name, merchant)):
            continue
        if payee and not (r.kind == "transfer" and name_matches(r.name, payee)):
            continue
        if free and not name_matches(r.name, free):
            continue
        on = r.created_at.date()
        if (start and on < start) or (end and on > end):
            continue
        if (low is not None and r.amount < low) or (high is not None and r.amount > high):
            continue
        if direction and r.direction != direction:
            continue
        if card and (r.card is None or (card != r.card and card != kinds.get(r.card))):
            continue
        rows.append(r)
    totals: dict[str, dict[str, Decimal]] = {}
    for r in rows:
        per = totals.setdefault(r.direction, {})
        per[r.currency] = per.get(r.currency, Decimal("0.00")) + r.amount
    names = sorted({r.name for r in rows})
    label = " or ".join(names) if (merchant or payee or free) and names else (merchant or payee or free or "")
    where = (" " + (_("at {name}") if merchant or (rows and rows[0].kind == "card") else _("to {name}")).format(name=label)
             if label else "")
    period = period_words(start, end, ctx.today)
    slots = {"merchant": merchant, "payee": payee or free, "date_from": start, "date_to": end,
             "min_amount": low, "max_amount": high, "direction": direction, "card": card}
    if not rows:
        return ctx.result(_("I found no payments{where}{period}. Try another shop, payee, amount or dates.").format(
                              where=where, period=period), {"totals": {}, "count": 0, "rows": [],
                                                                   "slots": slots})
    parts = []
    for d in ("out", "in"):
        if d in totals:
            n = sum(1 for r in rows if r.direction == d)
            amounts = (" " + _("and") + " ").join(money(v, c) for c, v in sorted(totals[d].items()))
            sentence = (ngettext("You spent {amounts}{where}{period} ({n} payment)",
                                 "You spent {amounts}{where}{period} ({n} payments)", n) if d == "out" else
                        ngettext("You received {amounts}{where}{period} ({n} payment)",
                                 "You received {amounts}{where}{period} ({n} payments)", n))
            parts.append(sentence.format(amounts=amounts, where=where if d == "out" else "", period=period, n=n))
    listed = rows[:MAX_LISTED]
    incoming = " " + _("in")
    lines = [f"- {r.name}, {money(r.amount, r.currency)}{incoming if r.direction == 'in' else ''}, "
             f"{when(r.created_at, ctx.now)} ({r.status})" for r in listed]
    if len(rows) > len(listed):
        lines.append("- " + _("and {n} more").format(n=len(rows) - len(listed)))
    answer = "; ".join(parts) + ".\n" + "\n".join(lines)
    return ctx.result(answer, {"totals": totals, "count": len(rows), "rows": [r.as_dict() for r in listed],
                               "slots": slots})
