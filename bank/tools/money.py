"""Moving money: ``send_money`` (pay a saved payee) and ``top_up_account`` (from a linked card).

Both only PROPOSE (``send_payment`` / ``top_up_account`` pending actions); the change runs in
``bank.tools.money_exec`` after the confirmation, where the same money rules are checked again
under row locks. Details come from ``ctx.slots`` (the graph's form), with a light fallback to
the message text (amounts written with a currency sign or word, a name after "to").
"""

from __future__ import annotations

from decimal import Decimal

from bank.store import Account, Card
from bank.tools.base import ToolContext, ToolResult, tool
from bank.tools.formatting import card_label, currencies_in, money
from bank.tools.matching import amounts_in
from config.i18n import gettext as _
from bank.tools.money_rules import (
    convert, currency_problem, mask_iban, parse_amount, payment_problem,
)
from bank.tools.payees import customer_payees, or_list, payee_dict, payee_phrase, resolve_payee

__all__ = ["send_money", "top_up_account", "requested_currency", "requested_amount", "pick_account"]

PAYMENT_FEE = Decimal("0.00")
"""Fee of a payment to a saved payee, in the source account's currency (none, conversion included)."""


def requested_currency(ctx: ToolContext) -> str | None:
    """The ``currency`` slot (upper case), else (a caller that extracted no details) a currency
    sign/word/code in the text, else None."""
    code = ctx.slot("currency")
    if code:
        return code.upper()
    if ctx.details_extracted:
        return None
    found = currencies_in(ctx.text, [a.currency for a in ctx.accounts(open_only=False)] + ctx.currencies())
    return found[0] if found else None


def requested_amount(ctx: ToolContext) -> str | None:
    """The ``amount`` slot as text, else (a caller that extracted no details) the one amount
    written in the text, else None (none written, or several)."""
    raw = ctx.slot("amount")
    if raw:
        return raw
    if ctx.details_extracted:
        return None
    found = amounts_in(ctx.text)
    return str(found[0]) if len(found) == 1 else None  # none, or several ("£5 and £10"): ask


def pick_account(ctx: ToolContext, currency: str | None, purpose: str) -> Account | ToolResult:
    """The source/target account: the ``account`` slot (a currency code) among ALL the customer's
    accounts (a closed one is returned so the caller refuses it plainly), else the open account in
    ``currency``, else the only open account; several open accounts left -> a ``slot_request``
    for ``account`` ("Which account should it come from: GBP or EUR?")."""
    every = ctx.accounts(open_only=False)
    open_ = [a for a in every if a.status == "open"]
    wanted = (ctx.slot("account") or "").upper()
    if wanted:
        named = [a for a in every if a.currency == wanted]
        if named:
            return next((a for a in named if a.status == "open"), named[0])
        return ctx.ask("account", f"You have no {wanted[:12]} account. Which account should {purpose}: "
                       f"{or_list([a.currency for a in open_])}?" if open_ else
                       f"You have no {wanted[:12]} account.", [a.currency for a in open_])
    if not open_:
        return every[0] if every else ctx.result("You have no account, so nothing can be done.")
    if currency:
        same = [a for a in open_ if a.currency == currency]
        if same:
            return same[0]
    if len(open_) == 1:
        return open_[0]
    return ctx.ask("account", f"Which account should {purpose}: {or_list([a.currency for a in open_])}?",
                   [a.currency for a in open_])


@tool("send_money")
def send_money(ctx: ToolContext) -> ToolResult:
    """Propose paying a saved payee: slots ``payee``, ``amount``, ``currency``, ``account``,
    optional ``reference``. Asks (``slot_request``) for a missing or ambiguous detail; refuses
    an unknown payee (listing the closest saved ones) and any amount the money rules forbid."""
    payees = customer_payees(ctx)
    if not payees:
        return ctx.result(_("You have no saved payees yet, so I cannot pay anyone. Add one first with its name and "
                            "IBAN."), {"payees": []})
    phrase = payee_phrase(ctx, payees)
    if not phrase:
        return ctx.ask("payee", _("Who would you like to send money to?"), [p.name for p in payees])
    found = resolve_payee(payees, phrase)
    if found.ambiguous:
        names = [p.name for p in found.ambiguous]
        return ctx.ask("payee", f"{or_list(names)}?", names, {"candidates": [payee_dict(p) for p in found.ambiguous]})
    if found.payee is None:
        closest = [p.name for p in found.closest]
        return ctx.result(_("{phrase} is not one of your saved payees, so I have not paid anyone. Your closest saved "
                            "payees: {closest}. To pay someone new, add them as a payee first (name and IBAN).").format(
                                phrase=phrase, closest=", ".join(closest)), {"payee_unknown": phrase, "closest_payees": closest})
    payee = found.payee
    slots: dict = {"payee": payee.name, "iban_masked": mask_iban(payee.iban)}
    currency = requested_currency(ctx)
    if currency and currency_problem(currency):
        return ctx.result(currency_problem(currency), {"slots": slots})
    raw = requested_amount(ctx)
    if raw is None:
        return ctx.ask("amount", _("How much would you like to send to {payee}?").format(payee=payee.name),
                       data={"slots": slots})
    account = pick_account(ctx, currency, "it come from")
    if isinstance(account, ToolResult):
        account.data = {**account.data, "slots": slots}
        return account
    currency = currency or account.currency
    amount, reason = parse_amount(raw, currency)
    if amount is None:
        return ctx.result(reason, {"slots": {**slots, "currency": currency}})
    slots.update(amount=amount, currency=currency, account=account.currency)
    rate = None
    debit = amount
    if currency != account.currency:
        quote = ctx.fx_rate(currency, account.currency)
        if quote is None:
            return ctx.result(_("I cannot convert {currency} from your {account} account; nothing was set up.").format(
                currency=currency, account=account.currency), {"slots": slots})
        rate = quote[0]
        debit = convert(amount, rate, account.currency)
    problem = payment_problem(ctx.session, account, debit + PAYMENT_FEE, ctx.now)
    if problem:
        return ctx.result(problem, {"slots": slots, "refused": True})
    reference = " ".join((ctx.slot("reference") or "").split())[:140]
    after = account.balance - debit - PAYMENT_FEE
    acur = account.currency
    desc = _("Send {amount} to {payee} ({iban}) from your {account} account").format(
        amount=money(amount, currency), payee=payee.name, iban=mask_iban(payee.iban), account=acur)
    if rate is not None:
        desc += " " + _("({debit} at 1 {currency} = {rate} {account})").format(
            debit=money(debit, acur), currency=currency, rate=rate, account=acur)
    desc += _(", fee {fee}, balance after {after}").format(fee=money(PAYMENT_FEE, acur), after=money(after, acur))
    desc += _(', reference "{reference}".').format(reference=reference) if reference else "."
    params = {"account_id": account.id, "payee_id": payee.id, "payee_name": payee.name, "iban": payee.iban,
              "amount": amount, "currency": currency, "debit_amount": debit, "fx_rate": rate, "fee": PAYMENT_FEE,
              "reference": reference}
    action = ctx.propose("send_payment", params, desc)
    lead = (_("The rate is 1 {currency} = {rate} {account}.").format(currency=currency, rate=rate, account=acur) + " "
            if rate is not None else "")
    slots.update(reference=reference, debit_amount=debit, fx_rate=rate, fee=PAYMENT_FEE, balance_after=after)
    return ctx.result(f"{lead}{desc} " + _("Shall I send it?"), {"slots": slots, "payee": payee_dict(payee)}, action)


def _pick_card(ctx: ToolContext) -> Card | ToolResult:
    wanted = (ctx.slot("card") or "").lower()
    cards = [c for c in ctx.cards() if c.status not in ("cancelled",)]
    if wanted:
        named = [c for c in cards if c.last4 == wanted or c.kind == wanted]
        if len(named) == 1:
            return named[0]
        if not named:
            return ctx.ask("card", f"You have no card matching {wanted[:12]!r}. Which card should pay?",
                           [f"card ending {c.last4}" for c in cards])
        cards = named
    usable = [c for c in cards if c.status == "active"] or cards
    if len(usable) == 1:
        return usable[0]
    if not usable:
        return ctx.result("You have no linked card to top up from.")
    return ctx.ask("card", "Which card should the top-up come from: "
                   + or_list([f"the {card_label(c)}" for c in usable]) + "?", [c.last4 for c in usable])


def card_problem(card: Card, today) -> str | None:
    """Why ``card`` cannot pay a top-up (frozen, expired, not active) or None."""
    if card.status == "frozen":
        return f"Your {card_label(card)} is frozen, so it cannot pay a top-up. Nothing was changed."
    if card.status == "expired" or card.expires_on < today:
        return f"Your {card_label(card)} has expired, so it cannot pay a top-up. Nothing was changed."
    if card.status != "active":
        return f"Your {card_label(card)} is {card.status}, not active, so it cannot pay a top-up. Nothing was changed."
    return None


@tool("top_up_account")
def top_up_account(ctx: ToolContext) -> ToolResult:
    """Propose topping up an account from one of the customer's cards: slots ``amount``,
    ``currency``, ``card`` (last4 or kind), ``account``. A frozen or expired card, a closed
    account or a bad amount is refused plainly."""
    raw = requested_amount(ctx)
    if raw is None:
        return ctx.ask("amount", "How much would you like to top up?")
    card = _pick_card(ctx)
    if isinstance(card, ToolResult):
        return card
    problem = card_problem(card, ctx.today)
    slots: dict = {"card": card.last4}
    if problem:
        return ctx.result(problem, {"slots": slots, "refused": True})
    currency = requested_currency(ctx)
    if currency and currency_problem(currency):
        return ctx.result(currency_problem(currency), {"slots": slots})
    account = card.account if not ctx.slot("account") and not currency else pick_account(ctx, currency, "be topped up")
    if isinstance(account, ToolResult):
        return account
    if account.status != "open":
        return ctx.result(f"Your {account.currency} account is closed, so it cannot be topped up. Nothing was changed.",
                          {"slots": slots, "refused": True})
    if currency and currency != account.currency:
        return ctx.result(f"A top-up is made in the account's currency: your {account.currency} account takes "
                          f"{account.currency}, not {currency}. Nothing was set up.", {"slots": slots})
    amount, reason = parse_amount(raw, account.currency)
    if amount is None:
        return ctx.result(reason, {"slots": slots})
    after = account.balance + amount
    slots.update(amount=amount, currency=account.currency, account=account.currency, balance_after=after)
    desc = (f"Top up your {account.currency} account with {money(amount, account.currency)} from your "
            f"{card_label(card)}, fee {money(Decimal('0'), account.currency)}, balance after "
            f"{money(after, account.currency)}.")
    action = ctx.propose("top_up_account", {"account_id": account.id, "card_id": card.id, "amount": amount,
                                            "currency": account.currency}, desc)
    return ctx.result(f"{desc} Shall I go ahead?", {"slots": slots}, action)
