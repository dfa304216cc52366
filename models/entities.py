"""Backend-independent entity extraction (issue 16): amounts, dates, cards, payees, merchants,
accounts, references (and IBANs) from one customer message, as character spans with parsed values.

``extract_entities(text, now=..., names=...)`` -> ``list[Entity]`` sorted by ``start``; spans never
overlap. Every backend's ``response_metadata["entities"]`` is this list as dicts (``models/base.py``);
the custom model merges its learned span head with these values.

Libraries (why each): Babel for numbers, currency names/symbols and minor units, dateparser for
explicit dates (English only, parsed once per found span, never ``search_dates``), schwifty for
IBAN validation (see ``models.entity_values``), and **rapidfuzz** here: the caller's gazetteer
(``names``: this customer's saved payees and merchants) is matched against the message's word
n-grams with the optimal-string-alignment distance (a swapped pair "Mrak" -> "Mark" is one edit), so
lower-case and misspelt names are found. Names not in the gazetteer come from patterns: a run of
capitalised words ("Mark Thompson", "Pret A Manger", "Booking.com"), "my landlord" (relation words),
in context ("to X", "pay X", "at X", "from X", "X as a payee", "the X charge"). Payee vs merchant:
a known merchant (gazetteer entry seen as a merchant, or a well-known brand below) is a merchant;
else the words around decide ("at", "charge", "dispute" -> merchant; "to", "pay", "payee" -> payee).

Span conventions (the dev set ``evals/data/requests_dev.jsonl`` and the generator share them):
amounts include the currency; date ranges keep "since"/"from ... to"/"between"; a bare "in"/"on" is
not part of the date; cards are the last four digits or the kind word; accounts are the qualifier
("euro", "savings"); payee/merchant spans are the name as written (without "my").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from models import entity_values as ev

LABELS = ("amount", "date", "card", "payee", "merchant", "account", "reference", "iban")


class Entity(BaseModel):
    """One entity: ``label`` (one of ``LABELS``), ``text`` == message[start:end] (character offsets,
    end exclusive), ``value``: amount ``{"amount": "25.00", "currency": "GBP" | None}`` plus
    ``"negative": True`` (signed amount, "-£5") or ``"unknown_currency": True`` ("20 XYZ") when
    so (``models.entity_values.find_amounts``); date
    ``{"from": ISO | None, "to": ISO | None}``; card ``{"last4": "4821"}`` or ``{"kind": "virtual"}``;
    account ``{"currency": "EUR"}`` or ``{"name": "savings"}``; payee/merchant/reference: the text;
    iban: the compact IBAN."""

    label: str
    text: str
    start: int
    end: int
    value: Any = None


KNOWN_MERCHANTS = (
    "Amazon", "Tesco", "Sainsbury's", "Asda", "Lidl", "Aldi", "Waitrose", "Morrisons", "Co-op", "Pret", "Pret A Manger",
    "Starbucks", "Costa", "Greggs", "McDonald's", "KFC", "Nando's", "Uber", "Uber Eats", "Deliveroo", "Just Eat", "Netflix",
    "Spotify", "Apple", "Google", "Steam", "ASOS", "Zara", "H&M", "Primark", "Boots", "Argos", "IKEA", "eBay", "PayPal",
    "Ryanair", "easyJet", "British Airways", "Trainline", "TfL", "Airbnb", "Booking.com", "Expedia", "PureGym", "Gymshark",
    "Currys", "John Lewis", "Marks & Spencer", "M&S", "Whole Foods", "Shell", "BP", "Wetherspoons", "Domino's",
)
RELATIONS = ("landlord", "landlady", "mum", "mom", "dad", "mother", "father", "brother", "sister", "son", "daughter",
             "wife", "husband", "partner", "girlfriend", "boyfriend", "friend", "flatmate", "roommate", "plumber",
             "builder", "cleaner", "babysitter", "nanny", "accountant", "gardener", "electrician", "boss", "colleague",
             "grandma", "grandad", "uncle", "aunt", "cousin", "dentist", "childminder", "tutor")
STOP = frozenset("""i i'd i'm i've i'll me my we you u your it it's hi hey hello please pls send pay transfer top topup
top-up can could would will add new save show list find dispute cancel the a an what whats what's how why is are there this
that talk speak get let connect quick raise open start file any did do does search total put fund reload load move wire
register create set human operator live iban atm ok okay thanks thank no yes actually also and or so but just hmm
sorry is my new payee beneficiary recipient when where who which card account balance refund charge payment
visa mastercard apple google pay ref reference note memo dr. mr mrs ms""".split()) - {"apple", "google"}
FUNCTION_WORDS = frozenset("as a an at in on to of for with from by up off out into onto over under his her their".split())
MERCHANT_CUES = re.compile(r"\b(?:at|spent|spend|spending|bought|purchase[sd]?|dispute[sd]?|charge[sd]?|chargeback|refund(?:ed)?|"
                           r"orders?|subscription|merchant|shop(?:ping)?)\b", re.IGNORECASE)
_PAYMENT_VERB = re.compile(r"\b(?:send|sent|pay|paid|transfer|wire|owe)\b", re.IGNORECASE)
_LOWER_PAYEE = re.compile(r"\b(?:to|pay)\s+([a-z][a-z'-]{2,})(?=\s*(?:$|[,.!?]|\b(?:from|for|with|please|pls|now|today|tomorrow|"
                          r"back)\b|\d|[£€$]))")
NOT_NAMES = frozenset("someone somebody anyone them him her me it us account balance savings everyone people money "
                      "cash euros pounds dollars bill rent".split())
_TOKEN = re.compile(r"[^\W\d_][\w'&.\-]*[\w&]|[^\W\d_]")


@lru_cache(maxsize=64)
def _gazetteer(names: tuple[str, ...]) -> tuple[dict[str, tuple[str, bool]], int]:
    """alias (lower case) -> (canonical name, is_merchant); the longest alias in tokens."""
    out: dict[str, tuple[str, bool]] = {}
    known = {m.lower() for m in KNOWN_MERCHANTS}
    for n in (*KNOWN_MERCHANTS, *names):
        low = n.lower().strip()
        if not low:
            continue
        is_m = low in known or low.split()[0] in known
        out.setdefault(low, (n, is_m))
        first = low.split()[0]
        if n in names and " " in low and len(first) >= 4 and first not in STOP:
            out.setdefault(first, (n, is_m))
    return out, max((len(a.split()) for a in out), default=1)


def _label_for(text: str, start: int, end: int, merchant_hint: bool) -> str:
    if merchant_hint:
        return "merchant"
    before = text[:start].lower().split()[-2:]
    after = text[end:].lower().split()[:1]
    prev = before[-1] if before else ""
    if prev == "my":
        prev = before[0] if len(before) > 1 else ""
    if prev in ("at", "by", "on") or (after and re.match(r"(?:charges?|payments?|transactions?|orders?|rides?|purchases?|"
                                                           r"subscriptions?|refunds?|bill)\b", after[0])):
        return "merchant"
    if prev in ("to", "pay", "paid", "send", "sent", "called", "named", "for", "payee", "beneficiary", "recipient", "add",
                "save", "register", "up", "wire", "transfer"):
        return "payee"
    if prev == "from" and MERCHANT_CUES.search(text):
        return "merchant"
    return "merchant" if MERCHANT_CUES.search(text) and not re.search(r"\b(?:sent|send|transfer|payee)\b", text, re.I) else "payee"


def _name_candidates(text: str, taken: list[tuple[int, int]], names: tuple[str, ...]) -> list[ev.Found]:
    from rapidfuzz.distance import OSA
    from rapidfuzz import process

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b in taken)

    toks = [(m.start(), m.end() - (1 if m.group().endswith(".") and m.group().count(".") == 1 else 0), m.group().rstrip("."))
            for m in _TOKEN.finditer(text)]
    toks = [t for t in toks if free(t[0], t[1])]
    found: list[tuple[int, int, bool, int]] = []  # start, end, merchant_hint, priority
    gaz, longest = _gazetteer(names)
    aliases = list(gaz)
    for i in range(len(toks)):
        for n in range(min(longest, len(toks) - i), 0, -1):
            s, e = toks[i][0], toks[i + n - 1][1]
            if n > 1 and not all(re.fullmatch(r"\s+", text[toks[j][1]:toks[j + 1][0]]) for j in range(i, i + n - 1)):
                continue
            cand = text[s:e].lower()
            if cand in STOP or (n == 1 and len(cand) < 3):
                continue
            if cand in gaz:
                found.append((s, e, gaz[cand][1], 3))
                break
            if len(cand) >= 4 and not any(text[toks[j][0]:toks[j][1]].lower() in STOP | FUNCTION_WORDS for j in range(i, i + n)):
                limit = 1 if len(cand) < 9 else 2
                hit = process.extractOne(cand, aliases, scorer=OSA.distance, score_cutoff=limit)
                if hit and cand[0] == hit[0][0]:
                    found.append((s, e, gaz[hit[0]][1] and (hit[1] == 0 or gaz[hit[0]][0] in names), 2))
                    break
    run: list[tuple[int, int, str]] = []
    for t in [*toks, (len(text) + 1, len(text) + 1, "")]:
        ok = t[2] and (t[2][0].isupper() or t[2] == "A" or (run and t[2] in ("&", "de", "of", "van", "von"))) \
            and t[2].lower() not in STOP and not re.fullmatch(ev._MON + "|" + ev._WD, t[2].lower())
        if ok and (not run or re.fullmatch(r"\s+", text[run[-1][1]:t[0]])):
            run.append(t)
            continue
        while run and run[-1][2] in ("A", "&", "de", "of", "van", "von"):
            run.pop()
        if run:
            found.append((run[0][0], run[-1][1], False, 1))
        run = [t] if ok else []
    for m in re.finditer(r"\bmy\s+(" + "|".join(RELATIONS) + r")\b", text, re.IGNORECASE):
        if free(m.start(1), m.end(1)):
            found.append((m.start(1), m.end(1), False, 4))
    if _PAYMENT_VERB.search(text):
        for m in _LOWER_PAYEE.finditer(text):
            if m.group(1).lower() not in STOP | FUNCTION_WORDS | NOT_NAMES and free(m.start(1), m.end(1)):
                found.append((m.start(1), m.end(1), False, 0))
    out: list[ev.Found] = []
    for s, e, hint, _ in sorted(found, key=lambda f: (-(f[1] - f[0]), -f[3])):
        if free(s, e):
            taken.append((s, e))
            label = "payee" if text[s:e].lower() in RELATIONS else _label_for(text, s, e, hint)
            out.append((s, e, label, text[s:e]))
    return out


def extract_entities(text: str, *, now: datetime, names: Sequence[str] = ()) -> list[Entity]:
    """Entities in ``text`` (see the module docstring), dates relative to ``now``; ``names`` is the
    customer's gazetteer (payee and merchant names). Never raises on odd input: unparseable
    fragments are skipped. Returns entities sorted by start offset, non-overlapping."""
    if not text or not text.strip():
        return []
    taken: list[tuple[int, int]] = []
    found: list[ev.Found] = []
    for finder in (ev.find_ibans, ev.find_references, lambda t: ev.find_dates(t, now), ev.find_cards,
                   ev.find_accounts, ev.find_amounts):
        for s, e, label, value in finder(text):
            if all(e <= a or s >= b for a, b in taken):
                taken.append((s, e))
                found.append((s, e, label, value))
    found.extend(_name_candidates(text, taken, tuple(names)))
    return [Entity(label=lab, text=text[s:e], start=s, end=e, value=v) for s, e, lab, v in sorted(found, key=lambda f: f[0])]
