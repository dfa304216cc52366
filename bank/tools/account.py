"""Account, identity and general policy tools."""

from __future__ import annotations

from bank.tools.base import ToolContext, ToolResult, tool
from config.i18n import gettext as _
from bank.tools.formatting import card_label, join_lines, money, topup_dict, topup_line, transfer_dict, transfer_line

SUPPORTED_COUNTRIES = "the UK, the 27 EU countries, Iceland, Liechtenstein, Norway and Switzerland"


@tool("terminate_account")
def terminate_account(ctx: ToolContext) -> ToolResult:
    """Propose closing the account when every balance is zero and nothing is pending."""
    accounts = ctx.accounts()
    if not accounts:
        return ctx.result("Your accounts are already closed.", {"accounts": []})
    non_zero = [a for a in accounts if a.balance != 0]
    pending = ctx.transfers(direction=None, statuses=("pending",))
    pending_tx = ctx.card_txs(statuses=("pending",))
    pending_top = ctx.top_ups(statuses=("pending",))
    data = {"accounts": [{"account_id": a.id, "currency": a.currency, "balance": a.balance} for a in accounts],
            "pending_transfers": len(pending), "pending_card_transactions": len(pending_tx),
            "pending_top_ups": len(pending_top)}
    if non_zero:
        return ctx.result("Before closing, every balance must be zero. Still to move out: "
                          + ", ".join(money(a.balance, a.currency) for a in non_zero)
                          + ". Transfer it to another account in your name (or exchange it and transfer), then ask "
                            "me again.", data)
    if pending or pending_tx or pending_top:
        return ctx.result("Your balances are zero, but some payments are still pending; once they have cleared "
                          "(usually within a few days) I can close the account.", data)
    cards = ctx.cards(statuses=("ordered", "shipped", "active", "frozen"))
    action = ctx.propose("terminate_account", {"account_ids": [a.id for a in accounts]},
                         "Close all your accounts, cancel your cards and direct debits.")
    return ctx.result("Your balances are zero and nothing is pending, so the account can be closed. This cancels "
                      + (f"your {', '.join(card_label(c) for c in cards)} and " if cards else "")
                      + "any direct debits, and cannot be undone. Shall I close it?", data, action)


@tool("edit_personal_details")
def edit_personal_details(ctx: ToolContext) -> ToolResult:
    """How to change personal details."""
    return ctx.result("You can change your address, email and phone number in the app under Profile > Personal "
                      "details. A new name (for example after marriage) needs a photo of an official document in "
                      "the new name; we check it, usually within a day.", {})


@tool("passcode_forgotten")
def passcode_forgotten(ctx: ToolContext) -> ToolResult:
    """Resetting a forgotten app passcode."""
    return ctx.result("On the app's login screen choose 'Forgot passcode'. We send a link to your email address; "
                      "open it on the same phone, confirm with a selfie if asked, and choose a new passcode. We "
                      "will never ask you for your passcode.", {})


@tool("lost_or_stolen_phone")
def lost_or_stolen_phone(ctx: ToolContext) -> ToolResult:
    """What to do when the phone with the app is lost or stolen."""
    active = ctx.cards(statuses=("active",))
    answer = ("Your app is protected by your passcode, but act fast: log in on another device or on the web, "
              "sign out the lost phone under Security > Devices, and freeze your cards if someone might use them "
              "(through Apple Pay or Google Pay, for example). Then block the SIM with your mobile operator.")
    if active:
        answer += f" Active cards: {', '.join(card_label(c) for c in active)}; tell me if you want them frozen."
    return ctx.result(answer, {"active_cards": [c.id for c in active]})


@tool("age_limit")
def age_limit(ctx: ToolContext) -> ToolResult:
    """Minimum age."""
    return ctx.result("You must be 18 or over to open an account. Children aged 6 to 17 can have a junior account "
                      "opened and managed by a parent or guardian from the parent's app.", {"min_age": 18})


@tool("why_verify_identity")
def why_verify_identity(ctx: ToolContext) -> ToolResult:
    """Why identity checks are required."""
    return ctx.result("As a regulated bank we must know who our customers are, to stop fraud, identity theft and "
                      "money laundering. We check every new customer, and sometimes again later, for example when "
                      "your details or your use of the account change.", {})


@tool("verify_my_identity")
def verify_my_identity(ctx: ToolContext) -> ToolResult:
    """How to verify identity."""
    return ctx.result("In the app go to Profile > Verify identity: take a photo of a valid passport, national ID "
                      "card or driving licence, then a short selfie video. Most checks finish within minutes, a "
                      "few take up to a day.", {})


@tool("unable_to_verify_identity")
def unable_to_verify_identity(ctx: ToolContext) -> ToolResult:
    """What to do when identity verification fails."""
    return ctx.result("Verification usually fails on the photo: use good light, no glare, all four corners of the "
                      "document visible, and a document that has not expired. The name must match your profile. "
                      "You can try again in the app; after three failed tries, our team reviews it by hand within "
                      "two working days.", {})


@tool("verify_source_of_funds")
def verify_source_of_funds(ctx: ToolContext) -> ToolResult:
    """Where money in the account came from (recent top-ups and incoming transfers) and why we may ask."""
    tops = ctx.top_ups(statuses=("completed",), limit=5)
    incoming = ctx.transfers(direction="incoming", statuses=("completed", "pending"), limit=5)
    lines = [topup_line(t, ctx.now) for t in tops] + [transfer_line(t, ctx.now) for t in incoming]
    answer = ("Money comes into your account from top-ups and incoming transfers. "
              + ("Recent ones:\n" + join_lines(lines) + "\n" if lines else "I see none recently. ")
              + "We sometimes have to ask where money came from (a payslip, a sale contract, a bank statement); "
                "this is a legal duty, and you can upload the document in the app.")
    return ctx.result(answer, {"top_ups": [topup_dict(t) for t in tops],
                               "incoming_transfers": [transfer_dict(t) for t in incoming]})


@tool("country_support")
def country_support(ctx: ToolContext) -> ToolResult:
    """Where customers can live, and where the card works."""
    return ctx.result(f"You can open an account if you live in {SUPPORTED_COUNTRIES}. The card itself works in "
                      "nearly every country where Visa is accepted; we cannot support payments in countries under "
                      "international sanctions.", {"residence": SUPPORTED_COUNTRIES})


@tool("fiat_currency_support")
def fiat_currency_support(ctx: ToolContext) -> ToolResult:
    """Currencies we hold and exchange (from the fx_rates table)."""
    known = ctx.currencies()
    have = sorted({a.currency for a in ctx.accounts()})
    return ctx.result(f"You can hold and exchange these currencies: {', '.join(known)}. Your accounts are in "
                      f"{', '.join(have) or 'no currency yet'}. The card pays in any currency; we convert at the "
                      "card network's rate.", {"currencies": known, "account_currencies": have})


@tool("supported_cards_and_currencies")
def supported_cards_and_currencies(ctx: ToolContext) -> ToolResult:
    """Cards accepted for top-ups and currencies supported."""
    known = ctx.currencies()
    return ctx.result("You can top up with Visa or Mastercard debit and credit cards in your own name (not American "
                      f"Express or prepaid cards). Currencies you can hold and top up in: {', '.join(known)}.",
                      {"currencies": known, "card_networks": ["Visa", "Mastercard"]})


@tool("card_acceptance")
def card_acceptance(ctx: ToolContext) -> ToolResult:
    """Where the card is accepted."""
    return ctx.result("Our card is a Visa debit card, so it works wherever Visa is accepted, in shops and online, "
                      "in any currency. Some merchants such as car rental firms or petrol pumps with a deposit may "
                      "refuse debit cards; gambling and sanctioned countries are blocked.", {"network": "Visa"})


@tool("atm_support")
def atm_support(ctx: ToolContext) -> ToolResult:
    """Which cash machines work."""
    return ctx.result("Any cash machine showing the Visa logo works, in any country. Withdrawals are free up to "
                      "£200 (or the equivalent) a month; after that we charge 2%. The machine's owner may add a fee "
                      "shown on screen.", {"network": "Visa", "free_allowance_gbp": "200.00"})


@tool("apple_pay_or_google_pay")
def apple_pay_or_google_pay(ctx: ToolContext) -> ToolResult:
    """Apple Pay / Google Pay support."""
    cards = ctx.cards(statuses=("active",))
    return ctx.result("Yes, both work. In the app open a card and tap 'Add to Apple Wallet' or 'Add to Google "
                      "Pay'. Virtual cards can be added as soon as they are created."
                      + (f" Cards you can add now: {', '.join(card_label(c) for c in cards)}." if cards else ""),
                      {"cards": [c.id for c in cards]})


@tool("visa_or_mastercard")
def visa_or_mastercard(ctx: ToolContext) -> ToolResult:
    """Which card network."""
    return ctx.result("All our cards, physical, virtual and disposable, are Visa debit cards.", {"network": "Visa"})


def _sum(values, zero):
    return sum(values, start=zero)


@tool("check_balance")
def check_balance(ctx: ToolContext) -> ToolResult:
    """Balances of the customer's open accounts, one per currency, with what is still pending.

    Per account, each only when non-zero: pending card payments and cash withdrawals (money going
    out), pending refunds and incoming transfers (money coming in), and pending outgoing transfers
    (already taken from the balance). ``data["accounts"]`` holds the same sums as strings.
    """
    accounts = ctx.accounts()
    if not accounts:
        return ctx.result(_("You have no open account, so there is no balance to show."), {"accounts": []})
    pending_tx = ctx.card_txs(statuses=("pending",))
    transfers = ctx.transfers(direction=None, statuses=("pending",))
    lines, facts = [], []
    for a in accounts:
        zero = a.balance * 0
        txs = [t for t in pending_tx if t.card.account_id == a.id]
        spent = [t for t in txs if t.kind != "refund"]
        held = _sum((t.account_amount + (t.fee or zero) for t in spent), zero)
        refunds = _sum((t.account_amount for t in txs if t.kind == "refund"), zero)
        out = _sum((t.amount + (t.fee or zero) for t in transfers
                    if t.account_id == a.id and t.direction == "outgoing"), zero)
        incoming = _sum((t.amount for t in transfers if t.account_id == a.id and t.direction == "incoming"), zero)
        notes = []
        if held:
            what = (_("{amount} of card payments and cash withdrawals still pending")
                    if any(t.kind == "cash_withdrawal" for t in spent) and any(t.kind != "cash_withdrawal" for t in spent)
                    else _("{amount} of cash withdrawals still pending")
                    if all(t.kind == "cash_withdrawal" for t in spent) else _("{amount} of card payments still pending"))
            notes.append(what.format(amount=money(held, a.currency)))
        if out:
            notes.append(_("{amount} of outgoing transfers pending, already taken from this balance").format(
                amount=money(out, a.currency)))
        if refunds:
            notes.append(_("{amount} of refunds on the way in").format(amount=money(refunds, a.currency)))
        if incoming:
            notes.append(_("{amount} of incoming transfers on the way").format(amount=money(incoming, a.currency)))
        lines.append(_("{currency} account: {amount}").format(currency=a.currency, amount=money(a.balance, a.currency))
                     + (f" ({'; '.join(notes)})" if notes else ""))
        facts.append({"account_id": a.id, "currency": a.currency, "balance": a.balance,
                      "pending_card_payments": held, "pending_refunds": refunds,
                      "pending_outgoing_transfers": out, "pending_incoming_transfers": incoming})
    return ctx.result(_("Your balances:") + "\n" + join_lines(lines), {"accounts": facts})


RECENT_TRANSACTIONS = 8


@tool("recent_transactions")
def recent_transactions(ctx: ToolContext) -> ToolResult:
    """The latest card payments, withdrawals, transfers and top-ups, newest first (date, merchant or
    payee, amount, state)."""
    rows: list[tuple] = []
    for t in ctx.card_txs(limit=RECENT_TRANSACTIONS):
        what = {"cash_withdrawal": f"cash withdrawal at {t.merchant}", "refund": f"refund from {t.merchant}"}.get(
            t.kind, t.merchant)
        amount = t.amount if t.kind == "refund" else -t.amount
        rows.append((t.created_at, what, money(amount, t.currency), t.status,
                     {"type": t.kind, "merchant": t.merchant, "amount": amount, "currency": t.currency}))
    for t in ctx.transfers(direction=None, limit=RECENT_TRANSACTIONS):
        sign = -1 if t.direction == "outgoing" else 1
        what = ("transfer to " if t.direction == "outgoing" else "transfer from ") + t.beneficiary_name
        rows.append((t.created_at, what, money(sign * t.amount, t.currency), t.status,
                     {"type": "transfer", "payee": t.beneficiary_name, "amount": sign * t.amount,
                      "currency": t.currency}))
    for t in ctx.top_ups(limit=RECENT_TRANSACTIONS):
        rows.append((t.created_at, "top-up", money(t.amount, t.currency), t.status,
                     {"type": "top_up", "amount": t.amount, "currency": t.currency}))
    rows.sort(key=lambda r: r[0], reverse=True)
    rows = rows[:RECENT_TRANSACTIONS]
    if not rows:
        return ctx.result("There are no transactions on your accounts yet.", {"transactions": []})
    lines = [f"{r[0]:%d %b}: {r[1]}, {r[2]} ({r[3]})" for r in rows]
    data = {"transactions": [{**r[4], "date": r[0], "status": r[3]} for r in rows]}
    return ctx.result(f"Your last {len(rows)} transactions:\n" + join_lines(lines), data)
