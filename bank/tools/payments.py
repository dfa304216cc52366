"""Card payment, cash withdrawal, refund and direct debit tools (exchange rates: ``bank.tools.exchange``)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bank.store import CardTransaction
from bank.tools.base import ToolContext, ToolResult, tool
from bank.tools.formatting import join_lines, money, tx_dict, tx_line, when
from bank.tools.disputes import dispute_offer
from bank.tools.matching import criteria_in, name_matches
from config.i18n import N_, gettext as _, ngettext

DUPLICATE_WINDOW = timedelta(minutes=30)
"""Two card transactions at the same merchant for the same amount within this window count as a
possible double charge."""
REVIEW_DAYS = 30


def _latest_declined(ctx: ToolContext, kind: str, what: str) -> ToolResult:
    rows = ctx.card_txs(kinds=(kind,), statuses=("declined",), days=90, limit=5)
    if not rows:
        return ctx.result(_("I see no declined card payment in the last 90 days. If a card payment fails right "
                            "now, check that the card is active and not frozen, and that your balance covers it.")
                          if kind == "payment" else
                          _("I see no declined cash withdrawal in the last 90 days. If a cash withdrawal fails right "
                            "now, check that the card is active and not frozen, and that your balance covers it."),
                          {"declined": []})
    t = rows[0]
    latest = (_("Your latest declined card payment was {tx}. The reason: {reason}.") if kind == "payment"
              else _("Your latest declined cash withdrawal was {tx}. The reason: {reason}."))
    answer = latest.format(tx=tx_line(t, ctx.now), reason=t.decline_reason or _("the merchant gave no reason"))
    if len(rows) > 1:
        n = len(rows) - 1
        answer += " " + (ngettext("({n} other declined card payment in the last 90 days.)",
                                  "({n} other declined card payments in the last 90 days.)", n)
                         if kind == "payment" else
                         ngettext("({n} other declined cash withdrawal in the last 90 days.)",
                                  "({n} other declined cash withdrawals in the last 90 days.)", n)).format(n=n)
    return ctx.result(answer, {"latest_declined": tx_dict(t), "declined": [tx_dict(x) for x in rows]})


@tool("declined_card_payment")
def declined_card_payment(ctx: ToolContext) -> ToolResult:
    """The latest declined card payment and its reason."""
    return _latest_declined(ctx, "payment", "card payment")


@tool("declined_cash_withdrawal")
def declined_cash_withdrawal(ctx: ToolContext) -> ToolResult:
    """The latest declined cash withdrawal and its reason."""
    return _latest_declined(ctx, "cash_withdrawal", "cash withdrawal")


def _pending(ctx: ToolContext, kind: str, what: str, timing: str) -> ToolResult:
    rows = ctx.card_txs(kinds=(kind,), statuses=("pending",))
    if not rows:
        none = _("You have no pending card payments.") if kind == "payment" else _("You have no pending cash withdrawals.")
        return ctx.result(f"{none} {_(timing)}", {"pending": []})
    title = _("Pending card payments:") if kind == "payment" else _("Pending cash withdrawals:")
    return ctx.result(title + "\n" + join_lines([tx_line(t, ctx.now) for t in rows]) + "\n" + _(timing),
                      {"pending": [tx_dict(t) for t in rows]})


@tool("pending_card_payment")
def pending_card_payment(ctx: ToolContext) -> ToolResult:
    """Pending card payments and how long they usually stay pending."""
    return _pending(ctx, "payment", "card payment",
                    N_("A payment stays pending until the shop claims it, usually within 1 to 3 working days. If it "
                    "is never claimed, the amount goes back to your balance after 7 days."))


@tool("pending_cash_withdrawal")
def pending_cash_withdrawal(ctx: ToolContext) -> ToolResult:
    """Pending cash withdrawals and the usual settling time."""
    return _pending(ctx, "cash_withdrawal", "cash withdrawal",
                    N_("The cash machine's bank normally confirms a withdrawal within 1 to 2 working days; abroad "
                    "it can take up to 5."))


@tool("Refund_not_showing_up")
def refund_not_showing_up(ctx: ToolContext) -> ToolResult:
    """Refunds on their way (pending) and when they usually arrive."""
    pending = ctx.card_txs(kinds=("refund",), statuses=("pending",))
    done = ctx.card_txs(kinds=("refund",), statuses=("settled",), days=30)
    timing = _("A refund appears once the shop sends it through the card network, normally within 5 working "
              "days of the shop approving it (sometimes up to 10).")
    if pending:
        answer = _("These refunds are on their way:") + "\n" + join_lines([tx_line(t, ctx.now) for t in pending]) + "\n" + timing
    else:
        answer = _("I see no refund on its way yet, so the shop has not sent it. Ask the shop for proof "
                   "(an acquirer reference number); if they have sent it more than 10 working days ago, we can "
                   "trace it.") + " " + timing
    return ctx.result(answer, {"pending_refunds": [tx_dict(t) for t in pending],
                               "recent_refunds": [tx_dict(t) for t in done]})


@tool("request_refund")
def request_refund(ctx: ToolContext) -> ToolResult:
    """How to get a refund for a card payment (shop first, then a dispute)."""
    recent = ctx.card_txs(kinds=("payment",), statuses=("settled",), days=REVIEW_DAYS, limit=5)
    res = ctx.policy_answer(
        _("Ask the shop first: only the shop can send a refund back to your card. If the shop refuses or does not "
        "answer within 15 days, open a dispute in the app from the payment (Payment > Something's wrong) and we "
        "will claim it back through the card network."),
        _("Your recent card payments"), recent, lambda t: tx_line(t, ctx.now), tx_dict, "recent_payments",
        extra_data={"dispute_offer": [t.id for t in recent]})
    res.answer += dispute_offer(recent)
    return res


@tool("reverted_card_payment?")
def reverted_card_payment(ctx: ToolContext) -> ToolResult:
    """Card payments that were reverted (returned to the balance) and why that happens."""
    rows = ctx.card_txs(statuses=("reverted",), days=90)
    why = _("A payment is reverted when the shop cancels it before claiming it, or when the shop never claims "
           "it within 7 days; the money is back in your balance, and you may need to pay the shop again.")
    if not rows:
        return ctx.result(_("None of your card payments was reverted in the last 90 days.") + " " + why, {"reverted": []})
    return ctx.result(_("Reverted payments (the money is back in your balance):") + "\n"
                      + join_lines([tx_line(t, ctx.now) for t in rows]) + "\n" + why,
                      {"reverted": [tx_dict(t) for t in rows]})


def _review(ctx: ToolContext, kind: str, what: str) -> ToolResult:
    rows = ctx.card_txs(kinds=(kind,), statuses=("pending", "settled"), days=REVIEW_DAYS, limit=8)
    advice = _("Merchants sometimes use a different name than their shop sign. If one is really not yours, "
              "tell me: I can freeze the card and order a new one, and we will dispute the payment.")
    if not rows:
        none = (_("I see no card payments in the last {days} days.") if kind == "payment"
                else _("I see no cash withdrawals in the last {days} days."))
        return ctx.result(none.format(days=REVIEW_DAYS), {"recent": []})
    title = (_("Your card payments in the last {days} days:") if kind == "payment"
             else _("Your cash withdrawals in the last {days} days:"))
    return ctx.result(title.format(days=REVIEW_DAYS) + "\n"
                      + join_lines([_("{tx} ({status}, card ending {last4})").format(
                          tx=tx_line(t, ctx.now), status=t.status, last4=t.card.last4) for t in rows])
                      + "\n" + advice + (dispute_offer(rows) if kind == "payment" else ""),
                      {"recent": [tx_dict(t) for t in rows],
                       **({"dispute_offer": [t.id for t in rows]} if kind == "payment" else {})})


@tool("card_payment_not_recognised")
def card_payment_not_recognised(ctx: ToolContext) -> ToolResult:
    """Recent card payments to review."""
    return _review(ctx, "payment", "card payment")


@tool("cash_withdrawal_not_recognised")
def cash_withdrawal_not_recognised(ctx: ToolContext) -> ToolResult:
    """Recent cash withdrawals to review."""
    return _review(ctx, "cash_withdrawal", "cash withdrawal")


def find_duplicates(rows: list[CardTransaction], window: timedelta = DUPLICATE_WINDOW) -> list[tuple[CardTransaction, CardTransaction]]:
    """Pairs (earlier, later) of non-declined, non-reverted transactions with the same merchant,
    amount and currency made within ``window`` of each other."""
    live = sorted((t for t in rows if t.status in ("pending", "settled")), key=lambda t: t.created_at)
    pairs = []
    for i, a in enumerate(live):
        for b in live[i + 1:]:
            if b.created_at - a.created_at > window:
                break
            if (a.merchant, a.amount, a.currency, a.kind) == (b.merchant, b.amount, b.currency, b.kind):
                pairs.append((a, b))
    return pairs


def _duplicate_lines(ctx: ToolContext, pairs: list[tuple[CardTransaction, CardTransaction]]) -> list[str]:
    lines = []
    for a, b in pairs:
        gap = int((b.created_at - a.created_at).total_seconds() // 60)
        lines.append(ngettext("{merchant}: {amount} twice, {n} minute apart, {when} ",
                              "{merchant}: {amount} twice, {n} minutes apart, {when} ", gap).format(
                         merchant=a.merchant, amount=money(a.amount, a.currency), n=gap,
                         when=when(a.created_at, ctx.now))
                     + (_("(both {status})").format(status=a.status) if a.status == b.status
                        else _("({first} and {second})").format(first=a.status, second=b.status)))
    return lines


def _pairs_data(pairs: list[tuple[CardTransaction, CardTransaction]]) -> list[dict]:
    return [{"first": tx_dict(a), "second": tx_dict(b)} for a, b in pairs]


CHARGE_PREPOSITIONS = ("at", "from", "by", "with", "on")
"""Words before a merchant's name in "charged twice at Tesco"."""


@tool("transaction_charged_twice")
def transaction_charged_twice(ctx: ToolContext) -> ToolResult:
    """Find possible double charges: same merchant and amount within 30 minutes (last 60 days).

    When the message names a merchant (``"charged twice at Tesco"``, matched fuzzily against the
    customer's merchants) only that merchant's charges are checked: its duplicates, or a plain
    statement that none was found there; duplicates at other merchants are then listed apart,
    labelled as other merchants (``data["other_merchant_duplicates"]``).
    """
    rows = [t for t in ctx.card_txs(days=60) if t.kind != "fee"]
    pairs = find_duplicates(rows)
    merchants = sorted({t.merchant for t in rows})
    wanted = criteria_in(ctx.text, ctx.today, merchants, CHARGE_PREPOSITIONS)
    named = ([m for m in merchants if name_matches(m, wanted.name)] if wanted.name else wanted.mentioned)
    if not (wanted.name or named):
        return _charged_twice_answer(ctx, pairs, {"duplicates": _pairs_data(pairs)})
    label = " or ".join(named) if named else wanted.name
    mine = [p for p in pairs if p[0].merchant in named]
    others = [p for p in pairs if p[0].merchant not in named]
    data = {"merchant": label, "duplicates": _pairs_data(mine), "other_merchant_duplicates": _pairs_data(others)}
    if mine:
        res = _charged_twice_answer(ctx, mine, data)
        if others:
            res.answer += "\n" + _("At other merchants:") + "\n" + join_lines(_duplicate_lines(ctx, others))
        return res
    there = [t for t in rows if t.merchant in named and t.status in ("pending", "settled")]
    data["payments_at_merchant"] = [tx_dict(t) for t in there]
    answer = _("I found no duplicate charge at {merchant} in the last 60 days (same shop, same amount within 30 "
               "minutes).").format(merchant=label)
    if there:
        answer += " " + _("Your payments there:") + "\n" + join_lines([f"{tx_line(t, ctx.now)} ({t.status})" for t in there])
        if any(t.status == "pending" for t in there):
            answer += "\n" + _("A pending payment is one charge waiting for the shop to claim it, not a second charge.")
    else:
        answer += " " + _("I see no payment at {merchant} in that time.").format(merchant=label)
    if others:
        answer += ("\n" + _("Separately, at other merchants, this looks like a double charge:") + "\n"
                   + join_lines(_duplicate_lines(ctx, others)))
    return ctx.result(answer, data)


def _charged_twice_answer(ctx: ToolContext, pairs: list[tuple[CardTransaction, CardTransaction]],
                          data: dict) -> ToolResult:
    if not pairs:
        return ctx.result(_("I found no double charge in the last 60 days (same shop, same amount within 30 "
                            "minutes). If you paid twice on purpose, both are genuine."), data)
    pending_dup = any(b.status == "pending" for _, b in pairs)
    answer = _("It looks like you were charged twice:") + "\n" + join_lines(_duplicate_lines(ctx, pairs)) + "\n"
    answer += (_("A pending duplicate usually disappears within 7 days once the shop claims only one.") + " "
               if pending_dup else "")
    answer += _("For a settled double charge, ask the shop to refund one of them; if they do not, open a dispute "
               "on the second payment in the app and we will claim it back.")
    answer += dispute_offer([b for _, b in pairs if b.kind == "payment"])
    return ctx.result(answer, {**data, "dispute_offer": [b.id for _, b in pairs if b.kind == "payment"]})


@tool("extra_charge_on_statement")
def extra_charge_on_statement(ctx: ToolContext) -> ToolResult:
    """Fees on recent card payments, withdrawals, transfers and top-ups."""
    lines, items = [], []
    for t in ctx.card_txs(days=60):
        if t.kind == "fee":  # a bank fee of its own (e.g. an extra physical card)
            lines.append(_("{tx}: fee {fee}").format(tx=tx_line(t, ctx.now),
                                                     fee=money(t.account_amount, t.card.account.currency)))
            items.append(tx_dict(t))
        elif t.fee and t.fee > 0:
            lines.append(_("{tx}: fee {fee}").format(tx=tx_line(t, ctx.now), fee=money(t.fee, t.card.account.currency)))
            items.append(tx_dict(t))
    for tr in ctx.transfers(direction=None):
        if tr.fee and tr.fee > 0:
            lines.append(_("transfer of {amount} to {payee}: fee {fee}").format(
                amount=money(tr.amount, tr.currency), payee=tr.beneficiary_name, fee=money(tr.fee, tr.currency)))
            items.append({"transfer_id": tr.id, "fee": tr.fee})
    for tu in ctx.top_ups():
        if tu.fee and tu.fee > 0:
            lines.append(_("top-up of {amount}: fee {fee}").format(amount=money(tu.amount, tu.currency),
                                                                    fee=money(tu.fee, tu.currency)))
            items.append({"top_up_id": tu.id, "fee": tu.fee})
    pending_small = [t for t in ctx.card_txs(statuses=("pending",), days=14) if t.amount <= Decimal("2.00")]
    answer = (_("Fees I found:") + "\n" + join_lines(lines)) if lines else _("I found no fee on your recent statement.")
    answer += " " + _("A small extra amount (often £1 or €1) can also be a temporary check by a shop or hotel to see "
               "that the card works; it disappears within a few days.")
    return ctx.result(answer, {"fees": items, "small_pending_checks": [tx_dict(t) for t in pending_small]})


@tool("wrong_amount_of_cash_received")
def wrong_amount_of_cash_received(ctx: ToolContext) -> ToolResult:
    """Recent cash withdrawals, to dispute a machine that gave less cash than charged."""
    rows = ctx.card_txs(kinds=("cash_withdrawal",), statuses=("pending", "settled"), days=REVIEW_DAYS, limit=5)
    return ctx.policy_answer(
        _("If a cash machine gave you less than you asked for, the difference is usually returned automatically "
        "within a few days once the machine is balanced. If not, open a dispute on the withdrawal in the app and "
        "say how much you received."),
        _("Your recent withdrawals"), rows, lambda t: f"{tx_line(t, ctx.now)} ({t.status})", tx_dict,
        "recent_withdrawals")


@tool("direct_debit_payment_not_recognised")
def direct_debit_payment_not_recognised(ctx: ToolContext) -> ToolResult:
    """Direct debits collected recently, flagging mandates set up in the last 30 days."""
    debits = ctx.direct_debits()
    if not debits:
        return ctx.result(_("You have no direct debits."), {"direct_debits": []})
    new = [d for d in debits if d.created_at >= ctx.now - timedelta(days=30)]
    lines = []
    for d in debits:
        line = _("{creditor} (ref {reference}): {amount}").format(
            creditor=d.creditor, reference=d.reference, amount=money(d.amount, d.currency))
        if d.last_collected_at:
            line += _(", last collected {when}").format(when=when(d.last_collected_at, ctx.now))
        if d in new:
            line += _(" - set up recently")
        lines.append(line)
    answer = _("Your direct debits:") + "\n" + join_lines(lines)
    answer += ("\n" + _("A company can only set up a direct debit with your account details and permission. If one is "
               "not yours, cancel it in the app and claim the money back: direct debit payments you did not "
               "authorise are refundable under the Direct Debit Guarantee."))
    facts = [{"direct_debit_id": d.id, "creditor": d.creditor, "reference": d.reference, "amount": d.amount,
              "currency": d.currency, "status": d.status, "created_at": d.created_at,
              "last_collected_at": d.last_collected_at, "new": d in new} for d in debits]
    return ctx.result(answer, {"direct_debits": facts})
