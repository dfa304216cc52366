"""``dispute_charge``: pick the card payment the customer means and propose ``open_dispute``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from bank.models_extra import Dispute
from bank.store import CardTransaction
from bank.tools.base import ToolContext, ToolResult, tool
from bank.tools.formatting import card_label, money, tx_dict
from bank.tools.matching import criteria_in, name_matches
from config.i18n import gettext as _

__all__ = ["dispute_charge", "dispute_candidates", "tx_option", "DISPUTE_DAYS"]

DISPUTE_DAYS = 120
"""How far back a card payment can be disputed from the chat."""


def tx_option(t: CardTransaction) -> str:
    """``Pret A Manger, £6.85, 18 March 2025 10:03``: a choice the customer can pick."""
    return f"{t.merchant}, {money(t.amount, t.currency)}, {t.created_at.day} {t.created_at:%B %Y %H:%M}"


def dispute_candidates(ctx: ToolContext) -> list[CardTransaction]:
    """The customer's card payments (pending or settled, last ``DISPUTE_DAYS`` days) that fit the
    slots ``merchant``, ``amount``, ``date_from``/``date_to``, else what the text names; newest first."""
    rows = ctx.card_txs(kinds=("payment",), statuses=("pending", "settled"), days=DISPUTE_DAYS)
    merchant, raw_amount = ctx.slot("merchant"), ctx.slot("amount")
    start, end = ctx.slot("date_from"), ctx.slot("date_to")
    if not (merchant or raw_amount or start or end):
        crit = criteria_in(ctx.text, ctx.today, sorted({t.merchant for t in rows}), ("at", "from", "on", "with", "by"))
        if crit.name and not any(name_matches(t.merchant, crit.name) for t in rows):
            crit.name = None  # "the charge on my card": no merchant named
        return [t for t in rows if not crit or crit.matches(t.merchant, t.amount, t.created_at.date())]
    try:
        amount = Decimal(raw_amount.replace(",", "")) if raw_amount else None
        lo = date.fromisoformat(start[:10]) if start else None
        hi = date.fromisoformat(end[:10]) if end else None
    except (InvalidOperation, ValueError):
        return []
    return [t for t in rows if (not merchant or name_matches(t.merchant, merchant))
            and (amount is None or amount in (t.amount, t.account_amount))
            and (lo is None or t.created_at.date() >= lo) and (hi is None or t.created_at.date() <= hi)]


@tool("dispute_charge")
def dispute_charge(ctx: ToolContext) -> ToolResult:
    """Propose opening a dispute on one card payment: slot ``transaction_id`` (an id or one of
    the offered options), or ``merchant``/``amount``/``date_from``/``date_to``. Several fit ->
    ``slot_request`` for ``transaction_id`` listing them with dates and amounts; none -> says so."""
    rows = dispute_candidates(ctx)
    chosen = ctx.slot("transaction_id")
    if chosen:
        picked = [t for t in ctx.card_txs(kinds=("payment",), statuses=("pending", "settled"), days=DISPUTE_DAYS)
                  if str(t.id) == chosen or tx_option(t) == chosen]
        rows = picked or []
    if not rows:
        return ctx.result(_("I found no card payment like that in the last {days} days, so no dispute was "
                            "opened. Tell me the shop, the amount or the date.").format(days=DISPUTE_DAYS), {"candidates": []})
    if len(rows) > 1:
        options = [tx_option(t) for t in rows[:8]]
        return ctx.ask("transaction_id", _("Which payment do you want to dispute: {options}?").format(
                           options="; ".join(options)), options,
                       {"candidates": [{"transaction_id": t.id, "label": tx_option(t)} for t in rows[:8]]})
    t = rows[0]
    existing = ctx.session.scalar(select(Dispute).where(Dispute.card_transaction_id == t.id,
                                                        Dispute.status == "open"))
    if existing is not None:
        return ctx.result(_("A dispute (#{id}) is already open on {payment}; nothing new was opened.").format(
                              id=existing.id, payment=tx_option(t)),
                          {"dispute_id": existing.id, "transaction": tx_dict(t)})
    reason = " ".join((ctx.slot("reason") or ctx.text or "").split())[:300]
    desc = _("Open a dispute on the {merchant} payment of {amount} on {day} ({card}).").format(
        merchant=t.merchant, amount=money(t.amount, t.currency), day=f"{t.created_at.day} {t.created_at:%B %Y}",
        card=card_label(t.card))
    action = ctx.propose("open_dispute", {"transaction_id": t.id, "reason": reason}, desc)
    return ctx.result(desc + " " + _("Shall I open it?"), {"transaction": tx_dict(t), "slots": {
        "transaction_id": t.id, "merchant": t.merchant, "amount": t.amount, "currency": t.currency}}, action)


def dispute_offer(rows: list[CardTransaction]) -> str:
    """The sentence the refund / charged-twice / not-recognised answers add when a payment that
    could be disputed exists (text only: nothing is proposed from those tools)."""
    if not rows:
        return ""
    return "\n" + _("If one of these is wrong, I can open a dispute on it: say for example \"dispute the "
                     "{merchant} charge\".").format(merchant=rows[0].merchant)
