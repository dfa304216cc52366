"""Transfer and top-up tools."""

from __future__ import annotations

from bank.store import Transfer
from bank.tools.base import ToolContext, ToolResult, tool
from bank.tools.formatting import day, join_lines, money, topup_dict, topup_line, transfer_dict, transfer_line, when
from bank.tools.matching import criteria_in

TRANSFER_TIMING = ("Transfers in pounds within the UK and in euros within SEPA usually arrive within minutes, at "
                   "the latest the next working day; international (SWIFT) transfers take 1 to 5 working days.")


@tool("pending_transfer")
def pending_transfer(ctx: ToolContext) -> ToolResult:
    """Outgoing transfers still pending, with the usual timing."""
    rows = ctx.transfers(statuses=("pending",))
    if not rows:
        return ctx.result("You have no pending transfer. " + TRANSFER_TIMING, {"pending": []})
    return ctx.result("Pending transfers:\n" + join_lines([transfer_line(t, ctx.now) for t in rows]) + "\n"
                      + TRANSFER_TIMING + " A new payee can add a security check of up to 24 hours.",
                      {"pending": [transfer_dict(t) for t in rows]})


def _failed(ctx: ToolContext, intro: str) -> ToolResult:
    rows = ctx.transfers(statuses=("failed",), limit=5)
    if not rows:
        return ctx.result("None of your transfers failed. If one is stuck, it may still be pending: "
                          + TRANSFER_TIMING, {"failed": []})
    t = rows[0]
    answer = (f"{intro} {transfer_line(t, ctx.now)}. The reason: {t.failure_reason or 'not given by the other bank'}. "
              f"The {money(t.amount, t.currency)} is back in your account. Check the payee's details with them "
              "before sending again.")
    return ctx.result(answer, {"latest_failed": transfer_dict(t), "failed": [transfer_dict(x) for x in rows]})


@tool("failed_transfer")
def failed_transfer(ctx: ToolContext) -> ToolResult:
    """The latest failed transfer and its reason."""
    return _failed(ctx, "Your latest failed transfer:")


@tool("declined_transfer")
def declined_transfer(ctx: ToolContext) -> ToolResult:
    """The latest declined (failed) transfer and its reason."""
    return _failed(ctx, "Your latest declined transfer:")


def _ask_which(ctx: ToolContext, rows: list[Transfer], intro: str) -> ToolResult:
    lines = [f"{transfer_line(t, ctx.now)} ({day(t.created_at)})" for t in rows]
    return ctx.result(f"{intro}\n" + join_lines(lines) + "\nWhich one should I cancel? Tell me the payee, the "
                      "amount or the date. Nothing was changed.",
                      {"candidates": [transfer_dict(t) for t in rows], "pending": [transfer_dict(t) for t in rows]})


def _propose_cancel(ctx: ToolContext, t: Transfer, pending: list[Transfer]) -> ToolResult:
    action = ctx.propose("cancel_transfer", {"transfer_id": t.id},
                         f"Cancel the transfer of {money(t.amount, t.currency)} to {t.beneficiary_name}.")
    answer = (f"Your transfer of {money(t.amount, t.currency)} to {t.beneficiary_name} ({when(t.created_at, ctx.now)}) "
              "is still pending, so it can be cancelled and the money returned to your balance. Shall I cancel it?")
    if len(pending) > 1:
        answer += f" ({len(pending) - 1} other pending transfer{'s' if len(pending) > 2 else ''} stay as they are.)"
    return ctx.result(answer, {"transfer": transfer_dict(t), "pending": [transfer_dict(x) for x in pending]}, action)


@tool("cancel_transfer")
def cancel_transfer(ctx: ToolContext) -> ToolResult:
    """Propose cancelling the pending outgoing transfer the message means.

    A payee (fuzzy, ``"to Mark"``), amount (``£250``) or date (``yesterday``) in the message
    selects among the customer's outgoing transfers: exactly one pending match -> proposed; several
    -> listed, and the customer is asked which; a match that is no longer pending, or none at all
    -> said plainly, nothing proposed. Without such details: the only pending transfer is proposed,
    several are listed to choose from.
    """
    rows = ctx.transfers(statuses=("pending",))
    outgoing = ctx.transfers()
    wanted = criteria_in(ctx.text, ctx.today, sorted({t.beneficiary_name for t in outgoing}), ("to", "payee"))
    if wanted:
        matches = [t for t in outgoing if wanted.matches(t.beneficiary_name, t.amount, t.created_at.date())]
        live = [t for t in matches if t.status == "pending"]
        if len(live) == 1:
            return _propose_cancel(ctx, live[0], rows)
        if live:
            return _ask_which(ctx, live, f"You have {len(live)} pending transfers {wanted.describe('to')}:")
        what = wanted.describe("to")
        if matches:
            t = matches[0]
            answer = (f"Your transfer {transfer_line(t, ctx.now)} is {t.status}, not pending, so it cannot be "
                      "cancelled. Nothing was changed.")
            if t.status == "completed":
                answer += (" It has already reached the payee's bank; ask the payee to send it back, or we can ask "
                           "their bank to recall it (not guaranteed).")
        else:
            answer = f"I found no transfer {what}, so nothing was changed."
        if rows:
            answer += " Your pending transfers:\n" + join_lines([transfer_line(t, ctx.now) for t in rows])
        return ctx.result(answer, {"matches": [transfer_dict(t) for t in matches],
                                   "pending": [transfer_dict(t) for t in rows], "looked_for": what})
    if not rows:
        done = ctx.transfers(statuses=("completed",), limit=1)
        answer = "You have no pending transfer, and a completed transfer cannot be cancelled."
        if done:
            answer += (f" Your latest, {transfer_line(done[0], ctx.now)}, has already reached the payee's bank; "
                       "ask the payee to send it back, or we can ask their bank to recall it (not guaranteed).")
        return ctx.result(answer, {"pending": [], "latest_completed": transfer_dict(done[0]) if done else None})
    if len(rows) > 1:
        return _ask_which(ctx, rows, f"You have {len(rows)} pending transfers:")
    return _propose_cancel(ctx, rows[0], rows)


@tool("transfer_not_received_by_recipient")
def transfer_not_received_by_recipient(ctx: ToolContext) -> ToolResult:
    """Status of the latest outgoing transfers, for a payee who says nothing arrived."""
    rows = ctx.transfers(limit=3)
    if not rows:
        return ctx.result("You have not sent any transfer yet.", {"transfers": []})
    t = rows[0]
    if t.status == "completed":
        answer = (f"Your transfer of {money(t.amount, t.currency)} to {t.beneficiary_name} left us "
                  f"{when(t.completed_at or t.created_at, ctx.now)} to account {t.beneficiary_iban}. The payee's "
                  "bank may take up to one more working day to show it. If it is still missing after that, send "
                  "them the transfer confirmation from the app, or ask us to trace it.")
    elif t.status == "pending":
        answer = f"Your transfer to {t.beneficiary_name} is still pending on our side. " + TRANSFER_TIMING
    elif t.status == "failed":
        answer = (f"Your transfer to {t.beneficiary_name} failed: {t.failure_reason or 'no reason given'}. "
                  "The money is back in your account.")
    else:
        answer = f"Your transfer to {t.beneficiary_name} was cancelled, so it was never sent."
    return ctx.result(answer, {"latest": transfer_dict(t), "transfers": [transfer_dict(x) for x in rows]})


@tool("transfer_timing")
def transfer_timing(ctx: ToolContext) -> ToolResult:
    """How long transfers take, with any pending ones."""
    rows = ctx.transfers(statuses=("pending",))
    return ctx.policy_answer(TRANSFER_TIMING, "Pending now", rows, lambda t: transfer_line(t, ctx.now),
                             transfer_dict, "pending")


@tool("transfer_fee_charged")
def transfer_fee_charged(ctx: ToolContext) -> ToolResult:
    """Transfer fees and the transfers that carried one."""
    fees = [t for t in ctx.transfers(direction=None) if t.fee and t.fee > 0]
    return ctx.policy_answer(
        "Transfers in the local currency (pounds in the UK, euros in SEPA) are free. International SWIFT "
        "transfers cost £3 (or the equivalent), and the payee's or an intermediary bank may take their own fee.",
        "Transfers with a fee", fees, lambda t: f"{transfer_line(t, ctx.now)}: fee {money(t.fee, t.currency)}",
        transfer_dict, "transfers_with_fee", empty=" None of your transfers had a fee from us.")


@tool("beneficiary_not_allowed")
def beneficiary_not_allowed(ctx: ToolContext) -> ToolResult:
    """Why a payee can be refused, with the latest failed transfer."""
    rows = ctx.transfers(statuses=("failed",), limit=1)
    answer = ("A payee can be refused when the account details do not match the name (Confirmation of Payee), the "
              "account is closed, the country or bank is one we cannot send to, or our security checks flag the "
              "payee. Check the details with the payee and try again.")
    if rows:
        answer += f" Your latest failed transfer ({transfer_line(rows[0], ctx.now)}): {rows[0].failure_reason}."
    return ctx.result(answer, {"latest_failed": transfer_dict(rows[0]) if rows else None})


@tool("transfer_into_account")
def transfer_into_account(ctx: ToolContext) -> ToolResult:
    """How to move money in by bank transfer."""
    accounts = ctx.accounts()
    return ctx.result("To add money by bank transfer, open the account in the app, choose 'Account details' and "
                      "send from your other bank to that IBAN or sort code and account number, in your own name. "
                      "Transfers by bank transfer are free and usually arrive within minutes (at the latest the "
                      f"next working day). Your accounts: {', '.join(a.currency for a in accounts) or 'none'}.",
                      {"account_currencies": [a.currency for a in accounts]})


@tool("receiving_money")
def receiving_money(ctx: ToolContext) -> ToolResult:
    """Receiving money (salary, payments) and incoming transfers on their way."""
    incoming = ctx.transfers(direction="incoming", limit=5)
    return ctx.policy_answer(
        "Yes, anyone can pay you, including your employer: give them the account details from the app "
        "(Account > Account details). Money in a currency you hold goes straight into that account; other "
        "currencies are converted to your main currency at our rate.",
        "Recent incoming transfers", incoming, lambda t: f"{transfer_line(t, ctx.now)} ({t.status})",
        transfer_dict, "incoming")


@tool("balance_not_updated_after_bank_transfer")
def balance_not_updated_after_bank_transfer(ctx: ToolContext) -> ToolResult:
    """Incoming transfers and bank-transfer top-ups still pending."""
    incoming = ctx.transfers(direction="incoming", statuses=("pending",))
    tops = ctx.top_ups(methods=("bank_transfer",), statuses=("pending",))
    if not incoming and not tops:
        return ctx.result("I see no incoming bank transfer on its way. Check with the sender that they used the "
                          "exact account details from the app; a transfer with a wrong reference or name can be "
                          "returned to them.", {"incoming_pending": [], "top_ups_pending": []})
    lines = [transfer_line(t, ctx.now) for t in incoming] + [topup_line(t, ctx.now) for t in tops]
    return ctx.result("These are on their way and will show in your balance once they clear:\n" + join_lines(lines)
                      + "\nBank transfers usually clear within a few hours and at the latest the next working day.",
                      {"incoming_pending": [transfer_dict(t) for t in incoming],
                       "top_ups_pending": [topup_dict(t) for t in tops]})


@tool("balance_not_updated_after_cheque_or_cash_deposit")
def balance_not_updated_after_cheque_or_cash_deposit(ctx: ToolContext) -> ToolResult:
    """Cash or cheque deposits still pending."""
    tops = ctx.top_ups(methods=("cash_or_cheque",), statuses=("pending",))
    timing = "Cash paid in at a partner shop clears within 2 working days; a cheque takes up to 5 working days."
    if not tops:
        return ctx.result("I see no cash or cheque deposit in progress. " + timing, {"pending": []})
    return ctx.result("Deposits still clearing:\n" + join_lines([topup_line(t, ctx.now) for t in tops]) + "\n" + timing,
                      {"pending": [topup_dict(t) for t in tops]})


# -- top-ups ----------------------------------------------------------------------------------

@tool("pending_top_up")
def pending_top_up(ctx: ToolContext) -> ToolResult:
    """Top-ups still pending, with the usual time per method."""
    rows = ctx.top_ups(statuses=("pending",))
    timing = ("Card top-ups are usually instant (a few may take up to an hour for a security check); bank "
              "transfers the same or next working day; cash and cheques 2 to 5 working days.")
    if not rows:
        return ctx.result("You have no pending top-up. " + timing, {"pending": []})
    return ctx.result("Pending top-ups:\n" + join_lines([topup_line(t, ctx.now) for t in rows]) + "\n" + timing,
                      {"pending": [topup_dict(t) for t in rows]})


@tool("top_up_failed")
def top_up_failed(ctx: ToolContext) -> ToolResult:
    """The latest failed top-up and its reason."""
    rows = ctx.top_ups(statuses=("failed",), limit=3)
    if not rows:
        return ctx.result("None of your top-ups failed. A failing card top-up is usually refused by the card's own "
                          "bank, or the card is not in your name.", {"failed": []})
    t = rows[0]
    return ctx.result(f"Your top-up of {topup_line(t, ctx.now)} failed: {t.failure_reason or 'no reason given'}. "
                      "Nothing was taken from the paying card. Try another card in your name, or top up by bank "
                      "transfer.", {"latest_failed": topup_dict(t), "failed": [topup_dict(x) for x in rows]})


@tool("top_up_reverted")
def top_up_reverted(ctx: ToolContext) -> ToolResult:
    """Reverted top-ups and why they are reverted."""
    rows = ctx.top_ups(statuses=("reverted",), limit=3)
    if not rows:
        return ctx.result("None of your top-ups was reverted.", {"reverted": []})
    t = rows[0]
    return ctx.result(f"Your top-up of {topup_line(t, ctx.now)} was reverted: {t.failure_reason or 'no reason given'}. "
                      "The money went back to the paying card, usually within 3 to 5 working days. Ask that card's "
                      "bank why it reversed the payment, or use another card in your own name.",
                      {"latest_reverted": topup_dict(t), "reverted": [topup_dict(x) for x in rows]})


@tool("verify_top_up")
def verify_top_up(ctx: ToolContext) -> ToolResult:
    """Why and how a card used for top-ups is verified."""
    card_tops = ctx.top_ups(methods=("card",), limit=3)
    return ctx.policy_answer(
        "To protect you, the first time you top up with a card we may ask you to verify it: we place a small "
        "temporary charge with a code in its description; find the code on that card's statement and enter it "
        "in the app. The charge disappears within a few days.",
        "Your latest card top-ups", card_tops, lambda t: f"{topup_line(t, ctx.now)} ({t.status})", topup_dict,
        "card_top_ups")


@tool("top_up_limits")
def top_up_limits(ctx: ToolContext) -> ToolResult:
    """Top-up limits."""
    return ctx.result("You can top up at least £10 at a time; card top-ups up to £10,000 a day; your balance can "
                      "hold at most £100,000 (or the equivalent). Bank transfers have no daily limit from us.",
                      {"min": "10.00", "card_daily_max": "10000.00", "max_balance": "100000.00", "currency": "GBP"})


@tool("topping_up_by_card")
def topping_up_by_card(ctx: ToolContext) -> ToolResult:
    """How to top up with a card."""
    return ctx.result("In the app choose Top up, add a debit or credit card in your own name and the amount. The "
                      "money is usually there at once. Apple Pay and Google Pay work for top-ups too.", {})


@tool("top_up_by_card_charge")
def top_up_by_card_charge(ctx: ToolContext) -> ToolResult:
    """Card top-up fees, and fees paid on past card top-ups."""
    tops = [t for t in ctx.top_ups(methods=("card",)) if t.fee and t.fee > 0]
    return ctx.policy_answer(
        "Topping up with a debit card issued in the UK or the EEA is free. Credit cards and cards issued "
        "elsewhere cost 0.7% of the amount.",
        "Card top-ups where you paid a fee", tops,
        lambda t: f"{topup_line(t, ctx.now)}: fee {money(t.fee, t.currency)}", topup_dict,
        "top_ups_with_fee", empty=" You have not paid a fee on a card top-up.")


@tool("top_up_by_bank_transfer_charge")
def top_up_by_bank_transfer_charge(ctx: ToolContext) -> ToolResult:
    """Bank transfer top-up fees."""
    return ctx.result("Topping up by bank transfer is free from our side. Your other bank may charge for sending, "
                      "especially for international transfers.", {"fee": "0.00"})


@tool("top_up_by_cash_or_cheque")
def top_up_by_cash_or_cheque(ctx: ToolContext) -> ToolResult:
    """Topping up with cash or a cheque."""
    pending = ctx.top_ups(methods=("cash_or_cheque",), statuses=("pending",))
    return ctx.policy_answer(
        "You can pay cash in at partner shops (PayPoint in the UK) with the barcode in the app: 1.5% fee, cleared "
        "within 2 working days. Cheques in pounds can be posted to us with the form from the app; they clear in "
        "up to 5 working days.",
        "Still clearing", pending, lambda t: topup_line(t, ctx.now), topup_dict, "pending")


@tool("automatic_top_up")
def automatic_top_up(ctx: ToolContext) -> ToolResult:
    """Auto top-up."""
    return ctx.result("Auto top-up adds money from your card when your balance falls below an amount you choose. "
                      "Switch it on in the app under Top up > Auto top-up and set the threshold and the amount "
                      "(up to £1,000 per top-up).", {"max_auto_top_up": "1000.00"})
