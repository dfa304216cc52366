"""Forms: a request with details (slots), filled over several messages, corrected, or cancelled.

The banking tool is the form's brain (bank/tools: it resolves the details against the customer's
own data, decides what is missing or wrong and words the question, ``ToolResult.slot_request``);
this module only keeps what the conversation knows between messages:

- :class:`Form`: the open request (its intent, the slots known so far, the slot last asked for
  and the options offered);
- :func:`slots_from_entities`: the entities of a message (models/entities.py) as slot values;
- :func:`continues`: whether a message answers or corrects the open form, or is a new request;
- :func:`is_cancel`: "forget it", "stop", "cancel that" close the form.

Slot names are those of ``bank.tools.base.ToolContext.slots``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, Field
from rapidfuzz import fuzz, process

from bank.tools.formatting import money
from chains.confirmation import superseded_sentence
from chains.intent_titles import intent_title
from config.i18n import N_, gettext as _

FORM_INTENTS = frozenset({"send_money", "add_payee", "top_up_account", "search_transactions", "dispute_charge"})
"""Intents whose tool may ask for details over several messages."""

_CANCEL = re.compile(r"^(ok(ay)?,? )?(please )?(forget (it|that|about it)|stop( it| that)?|cancel( it| that| this)?|"
                     r"never ?mind|don'?t bother|scrap (it|that)|leave it)( please)?[.!]*$", re.I)
FREE_TEXT_SLOTS = frozenset({"payee", "reference", "iban", "merchant"})
"""Slots a short reply fills as it is when nothing else was recognised ("Mark Thompson")."""
MAX_FREE_TEXT_WORDS = 5
OPTION_MATCH = 80
"""rapidfuzz WRatio (0-100) a reply needs to pick one of the offered options."""


class Form(BaseModel):
    """An open request: ``intent``; ``slots`` known so far (slot name -> text); ``asked``: the slot
    the last question asked for (None before any); ``options``: the choices that question
    offered; ``proposed``: the description of the proposal made from these slots and waiting for
    the customer's answer (None while a detail is asked for)."""

    intent: str
    slots: dict[str, str] = Field(default_factory=dict)
    asked: str | None = None
    options: list[str] = Field(default_factory=list)
    proposed: str | None = None


def is_cancel(text: str) -> bool:
    """True for a short "forget it" / "stop" / "cancel that" / "never mind"."""
    return bool(_CANCEL.match(text.strip()))


_IBAN_LIKE = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9 ]{10,32}$", re.I)
_MIN_WORDS = re.compile(r"\b(over|more than|above|at least|greater than|bigger than)\s*$", re.I)
_MAX_WORDS = re.compile(r"\b(under|less than|below|at most|up to|smaller than)\s*$", re.I)


def _amount_slot(text: str, e: dict[str, Any], value: dict[str, Any], intent: str | None) -> tuple[str, str]:
    """The slot an amount entity fills and its value: ``amount`` as the extractor read it (signed
    when it was marked ``negative``: "-£5" -> "-5.00", so the tool refuses it instead of paying 5),
    or for a search ``min_amount``/``max_amount`` after "over"/"under" ("payments over £40")."""
    before = text[:e["start"]] if text and isinstance(e.get("start"), int) else ""
    amount = str(value["amount"])
    if value.get("negative") and not amount.startswith("-"):  # a learned span's value may lack the sign
        amount = "-" + amount
    if intent == "search_transactions":
        if _MIN_WORDS.search(before):
            return "min_amount", amount
        if _MAX_WORDS.search(before):
            return "max_amount", amount
    return "amount", amount


def slots_from_entities(entities: list[dict[str, Any]], intent: str | None = None, text: str = "") -> dict[str, str]:
    """Slot values from a message's entities (``[{label, text, start, end, value}]``; ``text``:
    the message, for the words around an entity): amount -> ``amount`` (+ ``currency`` when said;
    signed when the extractor marked it ``negative``; an ``unknown_currency`` one, "20 XYZ", gives
    that ``currency``, which the tool refuses; "over/under £40" in a search ->
    ``min_amount``/``max_amount``); date -> ``date_from``/``date_to``, card -> ``card``
    (last4 or kind), account -> ``account`` (currency or name), payee/merchant/reference as
    written (a "name" that is an IBAN fills ``iban``). For a payment a merchant-like name is the
    payee; for a dispute a payee may be the merchant (a search keeps them apart: payees are
    transfers, merchants card payments). Two different amounts for one slot ("send £5 and £10")
    give none: the tool asks which."""
    slots: dict[str, str] = {}
    ambiguous: set[str] = set()
    for e in entities:
        label, value = e.get("label"), e.get("value")
        if label in ("payee", "merchant") and _IBAN_LIKE.match(str(e.get("text") or "").strip()):
            label, value = "iban", str(e.get("text")).strip()
        if label == "amount" and isinstance(value, dict):
            if value.get("amount"):
                slot, amount = _amount_slot(text, e, value, intent)
                if slots.get(slot, amount) != amount:  # "send £5 and £10": which one? the tool asks
                    ambiguous.add(slot)
                slots[slot] = amount
            if value.get("currency"):
                slots["currency"] = str(value["currency"])
        elif label == "date" and isinstance(value, dict):
            for key, slot in (("from", "date_from"), ("to", "date_to")):
                if value.get(key):
                    slots[slot] = str(value[key])
        elif label == "card" and isinstance(value, dict):
            card = value.get("last4") or value.get("kind")
            if card:
                slots["card"] = str(card)
        elif label == "account":
            if isinstance(value, dict):
                account = value.get("currency") or value.get("name")
                if account:
                    slots["account"] = str(account)
        elif label in ("payee", "merchant", "reference", "iban"):
            slots[label] = str(value if isinstance(value, str) and value else e.get("text", "")).strip()
    if intent == "send_money" and "merchant" in slots and "payee" not in slots:
        slots["payee"] = slots.pop("merchant")
    if intent == "dispute_charge" and "payee" in slots and "merchant" not in slots:
        slots["merchant"] = slots["payee"]
    return {k: v for k, v in slots.items() if v and k not in ambiguous}


def reply_slots(form: Form, text: str, entities: list[dict[str, Any]]) -> dict[str, str]:
    """The slots a reply to ``form`` gives: its entities; else one of the offered options it names
    (fuzzy, rapidfuzz; the entities that named it give no other slot); else, for a free-text slot that was asked for, the short reply itself."""
    slots = slots_from_entities(entities, form.intent, text)
    if form.asked and form.asked not in slots:
        if form.options:
            best = process.extractOne(text, form.options, scorer=fuzz.WRatio)
            if best and best[1] >= OPTION_MATCH:
                # The words that named the option are not another detail ("4821" for the card
                # ending 4821 is not an amount of 4,821).
                inside = [e for e in entities if str(e.get("text") or "").strip().casefold() not in best[0].casefold()]
                slots = {**slots_from_entities(inside, form.intent, text), form.asked: best[0]}
        elif form.asked in FREE_TEXT_SLOTS and len(text.split()) <= MAX_FREE_TEXT_WORDS:
            slots[form.asked] = text.strip().rstrip(".!?")
    return slots


SHORT_REPLY_WORDS = 4
"""A reply of at most this many words that gives the detail just asked for answers the question,
whatever a classifier makes of it alone ("40 pounds" may read like a top-up)."""


def continues(form: Form, new_slots: dict[str, str], routed_intent: str | None, text: str = "") -> bool:
    """Whether a message continues ``form`` (``routed_intent``: the intent the guard would route
    the message alone to, None when it would not route; ``text``: the message): the same intent
    does; a short reply giving the slot just asked for does; another detail of the form ("no,
    make it 45", "from my euro account") does unless the message is itself another request with
    details ("what did I spend at Pret?"); anything else is a new request."""
    if routed_intent == form.intent:
        return True
    if not new_slots:
        return False
    if form.asked and form.asked in new_slots and len(text.split()) <= SHORT_REPLY_WORDS:
        return True
    return routed_intent is None or routed_intent not in FORM_INTENTS


def merge(known: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """``known`` with every value ``new`` gives replaced ("no, make it 45": the amount changes, the
    payee stays)."""
    return {**known, **{k: v for k, v in new.items() if v}}


SLOT_WORDS = {"amount": N_("the amount"), "currency": N_("the currency"), "payee": N_("the payee"),
              "account": N_("the account"), "card": N_("the card"), "reference": N_("the reference"),
              "iban": N_("the IBAN"), "merchant": N_("the merchant"), "date_from": N_("the start date"),
              "date_to": N_("the end date"), "min_amount": N_("the lowest amount"),
              "max_amount": N_("the highest amount"), "transaction_id": N_("the payment")}
"""How a correction's answer names a changed slot (English; translated where used)."""
_MONEY_SLOTS = frozenset({"amount", "min_amount", "max_amount"})


def _shown(slot: str, value: str, currency: str | None) -> str:
    """A slot value as the customer reads it: an amount with its currency ("£45.00"), else as is."""
    if slot in _MONEY_SLOTS and currency:
        try:
            return money(Decimal(value), currency)
        except (InvalidOperation, ValueError):
            return value
    return value


def changes(known: dict[str, str], new: dict[str, str]) -> list[str]:
    """What ``new`` changes in ``known``, in words, e.g. ``["the amount from £40.00 to £45.00"]``
    (a detail not known before: ``"the reference to rent"``); the currency alone changed is
    named only when no amount is. Values that read the same are no change ("45" for "45.00")."""
    currency_before, currency_after = known.get("currency"), new.get("currency") or known.get("currency")
    out = []
    for slot, value in new.items():
        if not value or slot not in SLOT_WORDS or (slot == "currency" and "amount" in new):
            continue
        after = _shown(slot, value, currency_after)
        before = _shown(slot, known[slot], currency_before) if known.get(slot) else None
        if before is not None and before.casefold() == after.casefold():
            continue
        what = _(SLOT_WORDS[slot])
        out.append(_("{what} from {before} to {after}").format(what=what, before=before, after=after) if before
                   else _("{what} to {after}").format(what=what, after=after))
    return out


def without_proposal(notice: str, form: Form | None) -> tuple[str, bool]:
    """``notice`` without the sentence saying that ``form``'s proposal was closed undone
    (chains/confirmation.py ``superseded_sentence``), and whether it was there: the form's own
    notice words it instead (:func:`correction_notice`, :func:`stopped_notice`)."""
    if form is None or not form.proposed:
        return notice, False
    sentence = superseded_sentence(form.proposed)
    if sentence not in notice:
        return notice, False
    return " ".join(notice.replace(sentence, "").split()), True


def correction_notice(form: Form, new: dict[str, str]) -> str:
    """The sentence before the answer to a correction of ``form``'s waiting proposal: what
    changed and that the earlier proposal was closed, e.g. "I've changed the amount from £40.00
    to £45.00 and closed the earlier proposal without doing it." """
    changed = changes(form.slots, new)
    if not changed:
        return _("I've closed the earlier proposal without doing it.")
    if len(changed) == 1:
        return _("I've changed {change} and closed the earlier proposal without doing it.").format(change=changed[0])
    said = _("{first} and {last}").format(first=", ".join(changed[:-1]), last=changed[-1])
    return _("I've changed {changes}. I've closed the earlier proposal without doing it.").format(changes=said)


def stopped_notice(form: Form, proposal_closed: bool) -> str:
    """The sentence before the answer to a new request while ``form`` was open: the form was
    stopped (and, ``proposal_closed``, its waiting proposal closed) and nothing was done."""
    said = (_("I've stopped the earlier request ({title}) and closed its proposal; nothing was done.") if proposal_closed
            else _("I've stopped the earlier request ({title}); nothing was done."))
    return said.format(title=_(intent_title(form.intent)))
