"""Card tools: delivery, activation, loss, freezing, PIN, expiry, new cards, card fees."""

from __future__ import annotations

from datetime import timedelta

from bank.store import Card
from bank.tools.base import ToolContext, ToolResult, tool
from bank.tools.formatting import card_dict, card_label, day, join_lines, money, tx_dict, tx_line, when
from config.i18n import gettext as _

DELIVERY_POLICY = ("Cards usually arrive 3 to 7 working days after they are sent within the UK and the EEA, "
                   "and within 14 working days elsewhere.")
NEW_CARD_FEE = ("The first physical card is free; each further physical card costs £5 (or the same in your account "
                "currency). Replacing a lost, stolen, compromised or expiring card is free.")
EXPIRY_WINDOW_DAYS = 60


def cards_in_transit(ctx: ToolContext) -> list[Card]:
    """The customer's physical cards ordered or shipped, oldest first."""
    return ctx.cards(statuses=("ordered", "shipped"), kinds=("physical",))


@tool("card_arrival")
def card_arrival(ctx: ToolContext) -> ToolResult:
    """Where is my card: status, shipping date and expected delivery of cards on their way."""
    cards = cards_in_transit(ctx)
    if not cards:
        active = ctx.cards(statuses=("active",))
        return ctx.result(
            _("There is no card on its way to you at the moment.") + " "
            + (_("Your active cards: {cards}.").format(cards=", ".join(card_label(c) for c in active)) + " "
               if active else "")
            + _("If you ordered one recently and it is missing, I can order a new one for you."),
            {"cards_in_transit": [], "active_cards": [card_dict(c) for c in active]})
    lines = []
    late = []
    for c in cards:
        if c.status == "shipped":
            line = _("{card}: sent {when} ({day})").format(card=card_label(c), when=when(c.shipped_at, ctx.now),
                                                           day=day(c.shipped_at))
        else:
            line = _("{card}: ordered {when}, not sent yet").format(card=card_label(c), when=when(c.ordered_at, ctx.now))
        if c.expected_delivery:
            line += _(", expected by {day}").format(day=day(c.expected_delivery))
            if c.expected_delivery < ctx.today:
                late.append(c)
        lines.append(line + ".")
    answer = _("Your card is on its way:") + "\n" + join_lines(lines)
    if late:
        answer += "\n" + _("It is now past the expected date. If it has not arrived within 7 more days, tell me and "
                           "I will freeze it and send a replacement free of charge.")
    else:
        answer += "\n" + (_("Once it arrives, you can activate it here or in the app.") if len(cards) == 1 else
                          _("Once they arrive, you can activate them here or in the app."))
    return ctx.result(answer, {"cards_in_transit": [card_dict(c) for c in cards], "late": [c.id for c in late]})


@tool("card_delivery_estimate")
def card_delivery_estimate(ctx: ToolContext) -> ToolResult:
    """How long delivery takes, with the expected date of any card already on its way."""
    cards = cards_in_transit(ctx)
    answer = DELIVERY_POLICY
    if cards:
        parts = []
        for c in cards:
            if c.expected_delivery:
                days_left = (c.expected_delivery - ctx.today).days
                rel = f"in {days_left} day{'s' if days_left != 1 else ''}" if days_left > 0 else (
                    "today" if days_left == 0 else f"{-days_left} days ago")
                parts.append(f"your {card_label(c)} ({c.status}) is expected by {day(c.expected_delivery)} ({rel})")
            else:
                parts.append(f"your {card_label(c)} is {c.status}")
        answer += " Right now " + "; ".join(parts) + "."
    return ctx.result(answer, {"cards_in_transit": [card_dict(c) for c in cards],
                               "delivery_working_days": {"uk_eea": [3, 7], "elsewhere_max": 14}})


@tool("activate_my_card")
def activate_my_card(ctx: ToolContext) -> ToolResult:
    """Propose activating a card that has been sent (newest first)."""
    shipped = ctx.cards(statuses=("shipped",))
    if shipped:
        card = shipped[-1]
        pending = ctx.propose("activate_card", {"card_id": card.id},
                              f"Activate your {card_label(card)} (sent {day(card.shipped_at)}).")
        return ctx.result(
            f"Your {card_label(card)} was sent {when(card.shipped_at, ctx.now)}. Only activate it once it is in "
            "your hands. Shall I activate it now?",
            {"card": card_dict(card)}, pending)
    ordered = ctx.cards(statuses=("ordered",))
    if ordered:
        c = ordered[-1]
        return ctx.result(f"Your {card_label(c)} has been ordered but not sent yet, so it cannot be activated. "
                          + (f"Expected delivery: {day(c.expected_delivery)}." if c.expected_delivery else ""),
                          {"card": card_dict(c)})
    active = ctx.cards(statuses=("active",))
    return ctx.result("You have no card waiting for activation. "
                      + (f"Already active: {', '.join(card_label(c) for c in active)}." if active else ""),
                      {"active_cards": [card_dict(c) for c in active]})


@tool("card_linking")
def card_linking(ctx: ToolContext) -> ToolResult:
    """Link (add back) a card to the app: unfreeze a found card or activate a newly arrived one."""
    frozen = ctx.cards(statuses=("frozen",))
    if frozen:
        c = frozen[-1]
        pending = ctx.propose("unfreeze_card", {"card_id": c.id}, f"Unfreeze your {card_label(c)}.")
        return ctx.result(f"Your {card_label(c)} is frozen. If you have found it and it is safe, I can unfreeze "
                          "it so it works again in the app and in shops. Shall I?", {"card": card_dict(c)}, pending)
    shipped = ctx.cards(statuses=("shipped",))
    if shipped:
        c = shipped[-1]
        pending = ctx.propose("activate_card", {"card_id": c.id}, f"Activate your {card_label(c)}.")
        return ctx.result(f"A new card arrives already linked to your account; it only needs activating. "
                          f"Shall I activate your {card_label(c)}?", {"card": card_dict(c)}, pending)
    return ctx.result("Cards we send you are linked to your account automatically; they show in the app under "
                      "Cards once activated. Cards from other banks can be added under Top up > Cards to top up "
                      "with them.", {"cards": [card_dict(c) for c in ctx.cards()]})


def _freeze_and_replace(ctx: ToolContext, cards: list[Card], why: str, what: str = "card") -> ToolResult:
    """Propose freezing ``cards`` and ordering replacements; when there are none, say which
    ``what`` (e.g. "physical card") was looked for and list the customer's cards."""
    if not cards:
        others = ctx.cards()
        virtual = any(c.kind != "physical" and c.status == "active" for c in others)
        hint = ("\nA virtual card cannot be lost; if you think its details are known to someone, tell me your "
                "card details may be compromised and I can freeze it." if what == "physical card" and virtual else "")
        return ctx.result(f"You have no active {what} that needs blocking ({why})."
                          + ("\nYour cards:\n" + join_lines([f"{card_label(c)} ({c.status})" for c in others])
                             if others else "") + hint,
                          {"cards": [card_dict(c) for c in others]})
    labels = ", ".join(card_label(c) for c in cards)
    pending = ctx.propose(
        "freeze_card", {"card_ids": [c.id for c in cards], "order_replacement": True},
        _("Freeze {cards} and order a replacement for each.").format(cards=labels))
    offer = (_("I can freeze your {cards} straight away so nobody can use it, and order a replacement with a new "
               "number (free when a card is lost, stolen or compromised). Shall I do that?") if len(cards) == 1 else
             _("I can freeze your {cards} straight away so nobody can use them, and order a replacement with a new "
               "number (free when a card is lost, stolen or compromised). Shall I do that?"))
    return ctx.result(offer.format(cards=labels), {"cards": [card_dict(c) for c in cards]}, pending)


@tool("lost_or_stolen_card")
def lost_or_stolen_card(ctx: ToolContext) -> ToolResult:
    """Propose freezing the active physical card(s) and ordering replacements."""
    return _freeze_and_replace(ctx, ctx.cards(statuses=("active",), kinds=("physical",)), "lost or stolen",
                               "physical card")


@tool("card_swallowed")
def card_swallowed(ctx: ToolContext) -> ToolResult:
    """A cash machine kept the card: propose freezing it and ordering a replacement."""
    res = _freeze_and_replace(ctx, ctx.cards(statuses=("active",), kinds=("physical",)), "kept by an ATM",
                              "physical card")
    if res.pending_confirmation:
        res.answer = ("A card kept by a cash machine is destroyed by the machine's bank and cannot be returned. "
                      + res.answer)
    return res


@tool("compromised_card")
def compromised_card(ctx: ToolContext) -> ToolResult:
    """Propose freezing every active card (details may be known to others) and replacing them."""
    res = _freeze_and_replace(ctx, ctx.cards(statuses=("active",)), "possibly compromised")
    if res.pending_confirmation:
        recent = ctx.card_txs(kinds=("payment", "cash_withdrawal"), days=30, limit=5)
        res.answer += (" Then check your recent payments; any you do not recognise can be disputed." if recent
                       else "")
        res.data = {**res.data, "recent_transactions": [tx_dict(t) for t in recent]}
    return res


def _card_problems(ctx: ToolContext, cards: list[Card]) -> list[str]:
    out = []
    for c in cards:
        if c.status == "frozen":
            out.append(f"your {card_label(c)} is frozen")
        elif c.status == "expired" or c.expires_on < ctx.today:
            out.append(f"your {card_label(c)} expired on {day(c.expires_on)}")
        elif c.status in ("ordered", "shipped"):
            out.append(f"your {card_label(c)} is not activated yet")
        elif c.status == "cancelled":
            continue
        if c.status == "active" and c.pin_blocked:
            out.append(f"the PIN of your {card_label(c)} is blocked (chip and PIN and ATMs will fail)")
    return out


def _not_working(ctx: ToolContext, kinds: tuple[str, ...], what: str) -> ToolResult:
    cards = [c for c in ctx.cards(kinds=kinds) if c.status != "cancelled"]
    if not cards:
        return ctx.result(f"You have no {what}. You can order one here.", {"cards": []})
    problems = _card_problems(ctx, cards)
    declined = ctx.card_txs(statuses=("declined",), days=14, limit=10)
    declined = [t for t in declined if t.card.kind in kinds]
    data = {"cards": [card_dict(c) for c in cards], "problems": problems,
            "latest_declined": tx_dict(declined[0]) if declined else None}
    parts = []
    if problems:
        parts.append("I found this: " + "; ".join(problems) + ".")
    if declined:
        t = declined[0]
        parts.append(f"Your latest declined payment was {tx_line(t, ctx.now)}: {t.decline_reason or 'no reason given'}.")
    if not parts:
        parts.append(f"Your {', '.join(card_label(c) for c in cards)} "
                     f"{'is' if len(cards) == 1 else 'are'} active with no blocks on our side. The problem may be "
                     "the merchant's terminal or website; try again, or try chip and PIN instead of contactless.")
    pending = None
    frozen = [c for c in cards if c.status == "frozen"]
    if frozen:
        pending = ctx.propose("unfreeze_card", {"card_id": frozen[-1].id}, f"Unfreeze your {card_label(frozen[-1])}.")
        parts.append(f"If you froze it yourself and it is safe, I can unfreeze your {card_label(frozen[-1])} now. Shall I?")
    return ctx.result(" ".join(parts), data, pending)


@tool("card_not_working")
def card_not_working(ctx: ToolContext) -> ToolResult:
    """Check the physical cards' status (frozen, expired, not activated, PIN blocked) and declines."""
    return _not_working(ctx, ("physical",), "physical card")


@tool("virtual_card_not_working")
def virtual_card_not_working(ctx: ToolContext) -> ToolResult:
    """Check the virtual/disposable cards' status and their latest declined payment."""
    return _not_working(ctx, ("virtual", "disposable"), "virtual card")


@tool("contactless_not_working")
def contactless_not_working(ctx: ToolContext) -> ToolResult:
    """Contactless: whether it is switched on per card, card status, and the usual limits."""
    cards = ctx.cards(statuses=("active", "frozen", "shipped"), kinds=("physical",))
    off = [c for c in cards if not c.contactless_enabled]
    problems = _card_problems(ctx, cards)
    parts = []
    if off:
        parts.append(f"Contactless is switched off for your {', '.join(card_label(c) for c in off)}; "
                     "you can switch it on in the app under Card settings > Contactless.")
    if problems:
        parts.append("Also: " + "; ".join(problems) + ".")
    if not parts:
        parts.append("Contactless is on for your cards.")
    parts.append("A new card needs one chip and PIN payment before contactless works, terminals ask for the PIN "
                 "from time to time for security, and a single contactless payment is capped at £100 (€50 in "
                 "some countries).")
    return ctx.result(" ".join(parts), {"cards": [card_dict(c) for c in cards],
                                        "contactless_off": [c.id for c in off]})


@tool("pin_blocked")
def pin_blocked(ctx: ToolContext) -> ToolResult:
    """Which cards have a blocked PIN and how to unblock it."""
    blocked = [c for c in ctx.cards(statuses=("active", "frozen")) if c.pin_blocked]
    how = ("To unblock it, open the app, go to the card, choose 'Unblock PIN' and confirm with your passcode; "
           "then use the card once at a cash machine with the right PIN. Three wrong attempts block it again.")
    if blocked:
        declined = [t for t in ctx.card_txs(statuses=("declined",), days=30, limit=5) if t.card.pin_blocked]
        answer = f"Yes, the PIN of your {', '.join(card_label(c) for c in blocked)} is blocked. {how}"
        if declined:
            answer += f" It was blocked after a wrong PIN on {tx_line(declined[0], ctx.now)}."
        return ctx.result(answer, {"blocked_cards": [card_dict(c) for c in blocked],
                                   "declined": [tx_dict(t) for t in declined]})
    return ctx.result("None of your cards has a blocked PIN right now. If a terminal says it is blocked, try "
                      "once at a cash machine; if that fails, tell me. " + how, {"blocked_cards": []})


@tool("change_pin")
def change_pin(ctx: ToolContext) -> ToolResult:
    """How to change the PIN (at a cash machine that offers it), and whether one is blocked."""
    blocked = [c for c in ctx.cards(statuses=("active",)) if c.pin_blocked]
    answer = ("You can see your current PIN in the app (Card > Show PIN). To change it, use any cash machine that "
              "offers 'PIN services' with your card; the new PIN works straight away. Avoid easy ones like 1234 "
              "or your birth year.")
    if blocked:
        answer += f" Note: the PIN of your {', '.join(card_label(c) for c in blocked)} is blocked; unblock it in the app first."
    return ctx.result(answer, {"pin_blocked_cards": [c.id for c in blocked]})


@tool("get_physical_card")
def get_physical_card(ctx: ToolContext) -> ToolResult:
    """Where to find the PIN of a new physical card (it is never posted)."""
    cards = ctx.cards(statuses=("ordered", "shipped", "active"), kinds=("physical",))
    answer = ("For security we never post the PIN. It is in the app: open the card and choose 'Show PIN' "
              "(you will confirm with your passcode or fingerprint).")
    transit = [c for c in cards if c.status in ("ordered", "shipped")]
    if transit:
        c = transit[-1]
        answer += f" Your {card_label(c)} is {c.status}" + (
            f" and should arrive by {day(c.expected_delivery)}." if c.expected_delivery else ".")
    return ctx.result(answer, {"cards": [card_dict(c) for c in cards]})


@tool("card_about_to_expire")
def card_about_to_expire(ctx: ToolContext) -> ToolResult:
    """Expiry dates; propose ordering a replacement for an active card expiring within 60 days."""
    cards = ctx.cards(statuses=("active", "frozen"))
    soon = sorted((c for c in cards if c.expires_on <= ctx.today + timedelta(days=EXPIRY_WINDOW_DAYS)),
                  key=lambda c: c.expires_on)
    expired = ctx.cards(statuses=("expired",))
    data = {"cards": [card_dict(c) for c in cards], "expiring_soon": [card_dict(c) for c in soon],
            "expired": [card_dict(c) for c in expired]}
    already = {c.replaces_card_id for c in ctx.cards(statuses=("ordered", "shipped", "active")) if c.replaces_card_id}
    soon_unreplaced = [c for c in soon if c.id not in already]
    tail = f" (Your {', '.join(card_label(c) for c in expired)} has already expired.)" if expired else ""
    if soon_unreplaced:
        c = soon_unreplaced[0]
        pending = ctx.propose("order_replacement_card", {"card_id": c.id},
                              f"Order a replacement for your {card_label(c)} expiring on {day(c.expires_on)}.")
        return ctx.result(
            f"Your {card_label(c)} expires on {day(c.expires_on)} ({(c.expires_on - ctx.today).days} days). "
            "A replacement for an expiring card is free. Shall I order it now? It arrives in 3 to 7 working days "
            "and the old card keeps working until it expires." + tail, data, pending)
    if soon:
        return ctx.result(f"A replacement for your {card_label(soon[0])} is already on its way." + tail, data)
    lines = [f"{card_label(c)}: expires {day(c.expires_on)}" for c in cards]
    return ctx.result("None of your cards expires in the next 60 days. We send a new card automatically about "
                      "a month before expiry.\n" + join_lines(lines) + tail, data)


@tool("card_payment_fee_charged")
def card_payment_fee_charged(ctx: ToolContext) -> ToolResult:
    """Card payments that carried a fee, and when payments are charged a fee."""
    fees = [t for t in ctx.card_txs(kinds=("payment",), days=60) if t.fee and t.fee > 0]
    return ctx.policy_answer(
        "Card payments are free in any currency on weekdays. At weekends we add 1% to payments in a foreign "
        "currency, because markets are closed.",
        "Payments with a fee", fees, lambda t: f"{tx_line(t, ctx.now)}: fee {money(t.fee, t.card.account.currency)}",
        tx_dict, "payments_with_fee", empty=" None of your card payments in the last 60 days had a fee.")


@tool("cash_withdrawal_charge")
def cash_withdrawal_charge(ctx: ToolContext) -> ToolResult:
    """Cash withdrawal fees: the free allowance and the withdrawals that carried a fee."""
    month_start = ctx.now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    w = [t for t in ctx.card_txs(kinds=("cash_withdrawal",), statuses=("settled", "pending"), days=60)]
    fees = [t for t in w if t.fee and t.fee > 0]
    this_month = [t for t in w if t.created_at >= month_start]
    return ctx.policy_answer(
        "Cash withdrawals are free up to £200 (or the equivalent) a month; above that we charge 2% of the amount, "
        "at least £1. Some cash machines add their own fee, shown on screen before you accept.",
        "Withdrawals with our fee", fees,
        lambda t: f"{tx_line(t, ctx.now)}: fee {money(t.fee, t.card.account.currency)}", tx_dict,
        "withdrawals_with_fee", extra_data={"withdrawals_this_month": [tx_dict(t) for t in this_month],
                                            "free_allowance_gbp": "200.00"})
