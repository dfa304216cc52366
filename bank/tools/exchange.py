"""Exchange-rate tools: a card payment's or cash withdrawal's rate, today's rates, exchanging in the
app and its charge (split from ``bank.tools.payments``)."""

from __future__ import annotations

from decimal import Decimal

from bank.tools.base import ToolContext, ToolResult, tool
from bank.tools.formatting import currencies_in, join_lines, tx_dict, tx_line, when
from config.i18n import gettext as _


def _wrong_rate(ctx: ToolContext, kind: str, what: str) -> ToolResult:
    rows = [t for t in ctx.card_txs(kinds=(kind,), days=60) if t.fx_rate is not None][:5]
    if not rows:
        return ctx.result(_("None of your recent card payments was in a foreign currency, so no exchange rate "
                            "applied.") if kind == "payment" else
                          _("None of your recent cash withdrawals was in a foreign currency, so no exchange rate "
                            "applied."),
                          {"converted": []})
    lines, facts = [], []
    for t in rows:
        acc_cur = t.card.account.currency
        market = ctx.fx_rate(t.currency, acc_cur)
        diff = None
        line = _("{tx}: rate applied 1 {currency} = {rate} {account}").format(
            tx=tx_line(t, ctx.now), currency=t.currency, rate=f"{t.fx_rate:.6f}", account=acc_cur)
        if market:
            diff = ((t.fx_rate / market[0] - 1) * 100).quantize(Decimal("0.01"))
            line += _(", today's rate {rate} ({diff}%)").format(rate=f"{market[0]:.6f}", diff=f"{diff:+}")
        lines.append(line)
        facts.append({**tx_dict(t), "market_rate": market[0] if market else None, "difference_pct": diff})
    title = (_("Exchange rates on your recent card payments:") if kind == "payment"
             else _("Exchange rates on your recent cash withdrawals:"))
    answer = (title + "\n" + join_lines(lines) + "\n"
              + _("We convert at the card network's rate at the moment the payment is authorised, so it differs from "
              "today's rate as markets move. At weekends we add 1% because markets are closed. A cash machine "
              "abroad that offers to convert for you uses its own (usually worse) rate: always choose to be "
              "charged in the local currency."))
    return ctx.result(answer, {"converted": facts})


@tool("card_payment_wrong_exchange_rate")
def card_payment_wrong_exchange_rate(ctx: ToolContext) -> ToolResult:
    """Compare the rate applied to foreign-currency card payments with the stored market rate."""
    return _wrong_rate(ctx, "payment", "card payment")


@tool("wrong_exchange_rate_for_cash_withdrawal")
def wrong_exchange_rate_for_cash_withdrawal(ctx: ToolContext) -> ToolResult:
    """Compare the rate applied to foreign-currency withdrawals with the stored market rate."""
    return _wrong_rate(ctx, "cash_withdrawal", "cash withdrawal")


@tool("exchange_rate")
def exchange_rate(ctx: ToolContext) -> ToolResult:
    """Current exchange rates from the fx_rates table (the currencies named in the message, or the
    customer's main currency against the others)."""
    known = ctx.currencies()
    wanted = currencies_in(ctx.text, known)
    accounts = ctx.accounts()
    home = accounts[0].currency if accounts else "GBP"
    if len(wanted) >= 2:
        pairs = [(wanted[0], wanted[1])]
    elif len(wanted) == 1:
        pairs = [(home, wanted[0])] if wanted[0] != home else [(home, c) for c in known if c != home]
    else:
        pairs = [(home, c) for c in known if c != home]
    rates = []
    for b, q in pairs:
        r = ctx.fx_rate(b, q)
        if r:
            rates.append({"base": b, "quote": q, "rate": r[0], "updated_at": r[1]})
    if not rates:
        return ctx.result(_("I have no rate for that pair. We exchange {currencies}.").format(
                              currencies=", ".join(known)),
                          {"rates": [], "currencies": known})
    lines = [f"1 {r['base']} = {r['rate']:.4f} {r['quote']}" for r in rates]
    answer = (_("Current rates:") + "\n" + join_lines(lines) + "\n"
              + _("(updated {when}). Card payments and exchanges in the app use this rate on weekdays; at weekends "
                  "1% is added.").format(when=when(rates[0]['updated_at'], ctx.now)))
    return ctx.result(answer, {"rates": rates, "currencies": known})


@tool("exchange_via_app")
def exchange_via_app(ctx: ToolContext) -> ToolResult:
    """Exchanging between currencies in the app."""
    known = ctx.currencies()
    have = sorted({a.currency for a in ctx.accounts()})
    return ctx.result(_("Yes: in the app choose Exchange, pick the two currencies and the amount; the money "
                        "moves between your accounts at once. We exchange {currencies}. Your accounts: {accounts}; "
                        "a new currency account is opened automatically on the first exchange.").format(
                          currencies=", ".join(known), accounts=", ".join(have) or _("none")), {"currencies": known, "account_currencies": have})


@tool("exchange_charge")
def exchange_charge(ctx: ToolContext) -> ToolResult:
    """Fees for exchanging money."""
    return ctx.result(_("Exchanges are free on weekdays up to £1,000 (or the equivalent) a month; above that we "
                      "charge 0.5%. At weekends we add 1% to the rate because markets are closed. Less common "
                      "currencies (such as THB) carry an extra 1% at all times."),
                      {"free_monthly_gbp": "1000.00", "over_limit_pct": "0.5", "weekend_markup_pct": "1.0"})
