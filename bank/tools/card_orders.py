"""Card ordering tools: a spare or new physical card, virtual and disposable cards.

Each proposes an ``order_card`` action with the count and the fee the customer would pay; the
same rules (``bank.tools.card_rules``) are checked again when it is confirmed.
"""

from __future__ import annotations

from bank.tools.base import ToolContext, ToolResult, tool
from bank.tools.formatting import card_dict, card_label, day, money
from bank.tools.card_rules import (
    MAX_DISPOSABLE_PER_DAY, MAX_PHYSICAL_CARDS, MAX_VIRTUAL_CARDS, PHYSICAL_HELD, VIRTUAL_HELD, cap_problem,
    physical_card_fee,
)
from bank.tools.cards import DELIVERY_POLICY, NEW_CARD_FEE, cards_in_transit


def _propose_order(ctx: ToolContext, kind: str, intro: str) -> ToolResult:
    """Propose an ``order_card`` on the first open account, quoting its fee (physical cards; the
    quote is stored in the action's params and is the most the confirmation may charge)."""
    accounts = ctx.accounts()
    if not accounts:
        return ctx.result("You have no open account to attach a card to.", {})
    acc = accounts[0]
    problem = cap_problem(ctx.session, ctx.customer_id, kind, ctx.now)
    if problem:
        return ctx.result(f"I cannot add one: {problem}.", {"kind": kind, "cap_reached": True,
                                                           "cards": [card_dict(c) for c in ctx.cards()]})
    desc = {"physical": "Order a new physical card", "virtual": "Create a new virtual card",
            "disposable": "Create a disposable virtual card"}[kind] + f" on your {acc.currency} account"
    params: dict = {"kind": kind, "account_id": acc.id}
    if kind == "physical":
        fee = physical_card_fee(ctx.session, ctx.customer_id)
        params["fee"] = fee
        desc += f" (fee {money(fee, acc.currency)})" if fee else " (free)"
        intro += (f" This one costs {money(fee, acc.currency)}, taken from your {acc.currency} balance "
                  f"({money(acc.balance, acc.currency)}) when you confirm." if fee else " This one is free.")
    pending = ctx.propose("order_card", params, desc + ".")
    return ctx.result(intro + " Shall I go ahead?", {**params, "cards": [card_dict(c) for c in ctx.cards()]},
                      pending)


@tool("getting_spare_card")
def getting_spare_card(ctx: ToolContext) -> ToolResult:
    """Propose ordering an additional physical card (at most 3 active or on their way; £5 each
    after the first)."""
    have = len(ctx.cards(statuses=PHYSICAL_HELD, kinds=("physical",)))
    if have >= MAX_PHYSICAL_CARDS:
        return ctx.result(f"You already have the maximum of {MAX_PHYSICAL_CARDS} physical cards (active or on "
                          "their way).", {"physical_cards": have})
    return _propose_order(ctx, "physical", f"You have {have} physical card{'s' if have != 1 else ''}. You can "
                          f"hold up to {MAX_PHYSICAL_CARDS}. " + NEW_CARD_FEE + " I can order an extra one.")


@tool("order_physical_card")
def order_physical_card(ctx: ToolContext) -> ToolResult:
    """Propose ordering a physical card, unless one is already on its way (or the cap is reached)."""
    transit = cards_in_transit(ctx)
    if transit:
        c = transit[-1]
        return ctx.result(f"A {card_label(c)} is already {c.status}"
                          + (f", expected by {day(c.expected_delivery)}." if c.expected_delivery else ".")
                          + " " + DELIVERY_POLICY, {"cards_in_transit": [card_dict(x) for x in transit]})
    return _propose_order(ctx, "physical", "We deliver to your home address in the UK, the EEA and Switzerland. "
                          + NEW_CARD_FEE + " " + DELIVERY_POLICY)


@tool("getting_virtual_card")
def getting_virtual_card(ctx: ToolContext) -> ToolResult:
    """Propose creating a virtual card (free, usable at once; at most 5 active or frozen)."""
    have = len(ctx.cards(statuses=VIRTUAL_HELD, kinds=("virtual",)))
    return _propose_order(ctx, "virtual", "Virtual cards are free and ready to use online or in Apple Pay / "
                          f"Google Pay straight away; you can have up to {MAX_VIRTUAL_CARDS} (you have {have}).")


@tool("get_disposable_virtual_card")
def get_disposable_virtual_card(ctx: ToolContext) -> ToolResult:
    """Propose creating a disposable virtual card."""
    return _propose_order(ctx, "disposable", "A disposable virtual card gets new card details after every "
                          "payment, which makes it safe for shops you do not know.")


@tool("disposable_card_limits")
def disposable_card_limits(ctx: ToolContext) -> ToolResult:
    """Limits of disposable virtual cards."""
    n = len(ctx.cards(statuses=("active",), kinds=("disposable",)))
    return ctx.result("Each disposable card works for one payment, then its details change automatically. You "
                      f"can create up to {MAX_DISPOSABLE_PER_DAY} a day. They cannot be used for recurring payments, cash withdrawals "
                      f"or refunds to the same card details. You have {n} active disposable card{'s' if n != 1 else ''}.",
                      {"active_disposable_cards": n, "max_per_day": MAX_DISPOSABLE_PER_DAY})
