"""Saved payees: finding the one a message means (fuzzy, ``rapidfuzz``) and the ``add_payee`` tool.

A payee is resolved only among THIS customer's saved payees; an unknown name is never paid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process
from sqlalchemy import select

from bank.models_extra import Payee
from bank.tools.base import ToolContext, ToolResult, tool
from bank.tools.matching import name_after, name_matches, names_in_text
from bank.tools.money_rules import clean_iban, currency_problem, mask_iban
from config.i18n import gettext as _

__all__ = ["PayeeMatch", "customer_payees", "resolve_payee", "payee_phrase", "payee_dict", "add_payee"]

PAYEE_PREPOSITIONS = ("to", "pay", "payee")
"""Words before a payee's name in "send £20 to Mark", "pay Northside Energy"."""


@dataclass
class PayeeMatch:
    """The outcome of resolving a name: ``payee`` (exactly one found), ``ambiguous`` (several
    fit: ask which), ``closest`` (none fits: the nearest saved payees, best first)."""

    payee: Payee | None = None
    ambiguous: list[Payee] = field(default_factory=list)
    closest: list[Payee] = field(default_factory=list)


def customer_payees(ctx: ToolContext) -> list[Payee]:
    """The customer's saved payees, oldest first."""
    return list(ctx.session.scalars(select(Payee).where(Payee.customer_id == ctx.customer_id).order_by(Payee.id)))


def payee_dict(p: Payee) -> dict:
    """Facts of a payee, the IBAN masked (``GB29 **** 6819``)."""
    return {"payee_id": p.id, "name": p.name, "iban_masked": mask_iban(p.iban), "currency": p.currency}


def payee_phrase(ctx: ToolContext, payees: list[Payee]) -> str | None:
    """The payee the request names: the ``payee`` slot, else a name after "to"/"pay" in the text,
    else a saved payee's name mentioned in the text."""
    phrase = ctx.slot("payee") or name_after(ctx.text, PAYEE_PREPOSITIONS)
    if phrase:
        return phrase
    mentioned = names_in_text([p.name for p in payees], ctx.text)
    return mentioned[0] if len(mentioned) == 1 else None


def resolve_payee(payees: list[Payee], phrase: str) -> PayeeMatch:
    """Which of ``payees`` ``phrase`` means: the exact name (case-insensitive), else the single
    fuzzy match (``matching.name_matches`` with ``every_word``: every word typed fits the name), else a full-name match scoring 95+ among several;
    several otherwise -> ``ambiguous``; none -> the 3 ``closest`` by ``fuzz.WRatio``."""
    low = phrase.strip().casefold()
    exact = [p for p in payees if p.name.casefold() == low]
    if len(exact) == 1:
        return PayeeMatch(payee=exact[0])
    fits = [p for p in payees if name_matches(p.name, phrase, every_word=True)]
    if len(fits) == 1:
        return PayeeMatch(payee=fits[0])
    if fits:
        strong = [p for p in fits if fuzz.ratio(p.name.casefold(), low) >= 95]
        return PayeeMatch(payee=strong[0]) if len(strong) == 1 else PayeeMatch(ambiguous=fits)
    ranked = process.extract(phrase, {p.id: p.name for p in payees}, scorer=fuzz.WRatio, limit=3)
    by_id = {p.id: p for p in payees}
    return PayeeMatch(closest=[by_id[key] for _name, _score, key in ranked])


def or_list(names: list[str]) -> str:
    """``"A, B or C"``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " " + _("or") + " " + names[-1]


_IBAN_IN_TEXT = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{2,4}){3,8}\b", re.I)


def _iban_phrase(ctx: ToolContext) -> str | None:
    value = ctx.slot("iban")
    if value:
        return value
    m = _IBAN_IN_TEXT.search(ctx.text)
    return m.group(0) if m else None


@tool("add_payee")
def add_payee(ctx: ToolContext) -> ToolResult:
    """Propose saving a new payee: slots ``payee`` (name) and ``iban`` (validated with schwifty),
    optional ``currency``. Missing or invalid details -> ``slot_request``; an IBAN already saved ->
    a plain answer; nothing is stored before the confirmation."""
    name = ctx.slot("payee") or name_after(ctx.text, ("called", "named", "add"))
    if not name:
        return ctx.ask("payee", _("What is the name of the payee you want to add?"))
    name = " ".join(name.split())[:100]
    raw_iban = _iban_phrase(ctx)
    if not raw_iban:
        return ctx.ask("iban", _("What is {name}'s IBAN?").format(name=name), data={"slots": {"payee": name}})
    iban, reason = clean_iban(raw_iban)
    if iban is None:
        return ctx.ask("iban", f"{reason} " + _("Nothing was saved. What is {name}'s IBAN?").format(name=name),
                       data={"slots": {"payee": name}, "iban_error": reason})
    currency = (ctx.slot("currency") or "").upper() or None
    if currency and currency_problem(currency):
        return ctx.ask("currency", f"{currency_problem(currency)} " + _("Which currency does {name} get paid in?").format(name=name),
                       data={"slots": {"payee": name, "iban_masked": mask_iban(iban)}})
    saved = [p for p in customer_payees(ctx) if p.iban == iban]
    slots = {"payee": name, "iban_masked": mask_iban(iban), "currency": currency}
    if saved:
        return ctx.result(_("That IBAN ({iban}) is already saved as your payee {name}; nothing was changed.").format(
                              iban=mask_iban(iban), name=saved[0].name), {"slots": slots, "existing": payee_dict(saved[0])})
    desc = (_("Save {name} ({iban}, {currency}) as a new payee.") if currency
            else _("Save {name} ({iban}) as a new payee.")).format(name=name, iban=mask_iban(iban), currency=currency)
    action = ctx.propose("add_payee", {"name": name, "iban": iban, "currency": currency}, desc)
    return ctx.result(desc + " " + _("Shall I save it?"), {"slots": slots}, action)
