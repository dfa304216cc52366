"""Money, date, card, account, reference and IBAN rules behind ``models.entities`` (issue 16).

Each finder takes the message and returns ``(start, end, label, value)`` tuples; ``models.entities``
resolves overlaps and builds ``Entity`` objects. Libraries (why each):

- **Babel** (``babel.numbers``): number parsing (``models.amount_numbers``: en_GB, or de_DE-style decimal commas and "1.250" in a Spanish, French or German message) ("1,250.50" -> Decimal), the ISO
  4217 code list, currency display names ("Swiss francs", "US dollars") and symbols, and each
  currency's minor units (GBP 2, JPY 0) to format the amount. Colloquial words ("quid", "bucks",
  "a tenner") are not in CLDR, so a short table adds them. Spelled-out numbers ("two hundred") are
  not parsed by Babel either: a 20-word table below does it (no well-kept small library; ``word2number``
  is unmaintained).
- **dateparser** (``DateDataParser``, languages ``["en"]`` only, created once, lazily): explicit
  dates found by the pattern below ("3 March", "March 3rd", "the 14th", "01/03/2025", weekdays,
  "yesterday"), relative to ``now`` and preferring the past. Its ``search_dates`` is not used (slow and
  greedy); only spans the pattern found are parsed. Calendar periods ("last month", "this week",
  "in March", "last 30 days") are computed here as ranges, because dateparser returns one instant.
- **schwifty** validates IBAN candidates (checksum and country length).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from models.amount_numbers import format_amount, parse_number, words_to_number

Found = tuple[int, int, str, object]

# --- money ------------------------------------------------------------------------------------
COLLOQUIAL = {"pound": "GBP", "pounds": "GBP", "quid": "GBP", "sterling": "GBP", "pound sterling": "GBP",
              "euro": "EUR", "euros": "EUR", "dollar": "USD", "dollars": "USD", "buck": "USD", "bucks": "USD",
              "p": "GBP:pence", "pence": "GBP:pence", "cents": "EUR:cents"}
SLANG = {"a tenner": ("10", "GBP"), "a fiver": ("5", "GBP"), "a grand": ("1000", None), "tenner": ("10", "GBP"),
         "fiver": ("5", "GBP")}
SYMBOLS = {"£": "GBP", "€": "EUR", "$": "USD", "¥": "JPY"}
COMMON_CODES = {"GBP", "EUR", "USD", "CHF", "PLN", "SEK", "NOK", "DKK", "JPY", "CAD", "AUD", "THB", "CZK", "HUF"}
WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
WORD_NUMBERS.update({w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())})
SCALES = {"hundred": 100, "thousand": 1000, "k": 1000}
NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d{1,3}(?:\.\d{3})+,\d{1,2}(?!\d)|\d+,\d{1,2}(?![\d,])|\d+(?:\.\d+)?"
"""1,250.50 | 1.250,50 | 12,50 (decimal comma) | 12.50 and 1.250 (read by ``models.amount_numbers.parse_number``)."""
_WORDNUM = r"(?:a|" + "|".join(sorted(WORD_NUMBERS, key=len, reverse=True)) + r")(?:[\s-]+(?:and[\s]+)?(?:" + \
    "|".join([*WORD_NUMBERS, "hundred", "thousand"]) + r"))*"


@lru_cache(maxsize=1)
def currency_names() -> dict[str, str]:
    """Lower-case currency words -> ISO code: Babel's English display names (singular and plural)
    plus the colloquial table. Built once."""
    from babel import Locale
    from babel.numbers import get_currency_name

    out: dict[str, str] = {}
    for code in Locale("en").currencies:
        for count in (1, 2):
            out[get_currency_name(code, count=count, locale="en").lower()] = code
    out.update({k: v for k, v in COLLOQUIAL.items()})
    return out


@lru_cache(maxsize=1)
def currency_codes() -> frozenset[str]:
    """The ISO 4217 codes Babel knows (upper case)."""
    from babel import Locale

    return frozenset(Locale("en").currencies)


_AMOUNT_RE = re.compile(
    rf"(?P<sym>[£€$¥])\s?(?P<n1>{NUM})(?P<k1>k\b)?"
    rf"|\b(?P<code1>(?i:{'|'.join(sorted(COMMON_CODES))})|(?-i:[A-Z]{{3}}))\s?(?P<n2>{NUM})\b"
    rf"|(?<![\w.,])(?P<n3>{NUM})(?P<k3>k\b)?(?:\s?(?P<sym3>[£€$])|\s?(?P<cur3>[A-Za-z]+(?:\s[A-Za-z]+)?)\b)?"
    r"|\b(?P<slang>a\s+tenner|a\s+fiver|a\s+grand|tenner|fiver)\b"
    rf"|\b(?P<words>{_WORDNUM})\s+(?P<wcur>[A-Za-z]+(?:\s[A-Za-z]+)?)\b",
    re.IGNORECASE,
)
_BARE_NEXT = re.compile(r"\s*(?:$|[,.!?;)]|(?:to|for|from|into|onto|on|pls|please|plz|via|using|with|now|today|"
                        r"tomorrow|and|back|instead|each|in|at|over|under)\b)", re.IGNORECASE)
_BARE_PREV = re.compile(r"(?:ending|ends|card|number|no\.?|#|last|past|the|of|iban|ref|reference|in)\s*$", re.IGNORECASE)
_MINUS = re.compile(r"(?:(?<![\w.,])[-\u2212]|\bminus\s+)$", re.IGNORECASE)
"""A sign just before an amount: "-£5", "-20", "minus 20 pounds" (not the hyphen of "10-20")."""
_CODE_LIKE = re.compile(r"[A-Z]{3}")


def _currency_word(word: str | None) -> tuple[str | None, int]:
    """(code, characters of ``word`` used) for the longest leading currency word, else (None, 0)."""
    if not word:
        return None, 0
    names = currency_names()
    parts = word.split()
    for n in (2, 1):
        cand = " ".join(parts[:n])
        if len(parts) >= n and cand.lower() in names:
            return names[cand.lower()], len(cand)
        if len(parts) >= n and n == 1 and (cand.upper() in COMMON_CODES or (cand.isupper() and cand in currency_codes())):
            return cand.upper(), len(cand)
    return None, 0


_GLUED_AFTER = re.compile(r"[0-9_]|[.,][0-9]|[eExX][0-9]")


def _glued(text: str, start: int, end: int) -> bool:
    """True when the amount found at ``text[start:end]`` is only part of a longer token ("£1e9",
    "1e9 pounds", "£1_000", "£10.5.3", "£0x10"): such a token is not an amount we can read, so
    none is taken (the tool asks for it instead of proposing a different sum)."""
    return bool(_GLUED_AFTER.match(text, end)) or (start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_."))


def find_amounts(text: str, language: str | None = None) -> list[Found]:
    """Money in ``text``: "£25", "EUR 1,250.50", "25 quid", "twenty pounds", "50p", "a tenner", a
    bare "45" where it reads as an amount (not a card, date, count). Value
    ``{"amount": "25.00", "currency": "GBP" | None}`` plus markers, present only when true, so the
    bank refuses the amount instead of paying another: ``"negative"`` (a minus sign or "minus" just
    before it, outside the span as the span head tags it; ``amount`` signed: "-5.00") and
    ``"unknown_currency"`` (three capital letters that are no ISO 4217 code: "20 XYZ", span included).
    ``language``: the message's ("en" | "es" | "fr" | "de"; detected with ``config.language`` when
    None and a number like "1.250" needs it)."""
    out: list[Found] = []
    if language is None:
        language = "en"
        if re.search(r"\d\.\d{3}(?!\d)", text):
            from config.language import detect

            language = detect(text) or "en"
    for m in _AMOUNT_RE.finditer(text):
        start, end, cur, num, unknown = m.start(), m.end(), None, None, False
        if m.group("sym"):
            cur, num = SYMBOLS[m.group("sym")], parse_number(m.group("n1"), language)
            if num is not None and m.group("k1"):
                num *= 1000
        elif m.group("code1"):
            code = m.group("code1")
            if not (code.upper() in COMMON_CODES or (code.isupper() and code in currency_codes())):
                continue
            cur, num = code.upper(), parse_number(m.group("n2"), language)
        elif m.group("n3"):
            num = parse_number(m.group("n3"), language)
            if num is not None and m.group("k3"):
                num *= 1000
            if m.group("sym3"):
                cur = SYMBOLS[m.group("sym3")]
            else:
                cur, used = _currency_word(m.group("cur3"))
                word = (m.group("cur3") or "").split(" ")[0]
                if not cur and _CODE_LIKE.fullmatch(word) and word not in currency_codes():
                    cur, used, unknown = word, 3, True  # "20 XYZ": a currency code we do not know
                end = m.start("cur3") + used if cur else m.end("n3") + (1 if m.group("k3") else 0)
                if not cur:
                    if not _BARE_NEXT.match(text, end) or _BARE_PREV.search(text[:start]):
                        continue
                    if re.match(r"\s*(?:st|nd|rd|th)\b", text[end:]) or re.fullmatch(r"(19|20)\d\d", m.group("n3")):
                        continue
        elif m.group("words"):
            cur, used = _currency_word(m.group("wcur"))
            if not cur:
                continue
            num, end = words_to_number(m.group("words"), WORD_NUMBERS), m.start("wcur") + used
        else:
            amt, cur = SLANG[re.sub(r"\s+", " ", m.group("slang").lower())]
            num = Decimal(amt)
        if num is None or _glued(text, start, end):
            continue
        if cur and ":" in cur:
            cur, _ = cur.split(":")
            num = num / 100
        negative = bool(_MINUS.search(text[:start])) and num > 0
        value = {"amount": format_amount(-num if negative else num, None if unknown else cur), "currency": cur,
                 **({"negative": True} if negative else {}), **({"unknown_currency": True} if unknown else {})}
        out.append((start, end, "amount", value))
    return out


# --- cards, accounts, references, IBANs ---------------------------------------------------------
_CARD_RE = re.compile(r"\b(?:ending|ends|ending in|ends in|ending with|last (?:4|four)(?: digits)?(?: are| of)?|"
                      r"card(?: number)?(?: no\.?)?)\s*(?:in\s+|with\s+|is\s+|:\s*)?[*x•\s]*(?P<d>\d{4})\b"
                      r"|\b(?P<kind>virtual|physical|plastic|disposable)\b", re.IGNORECASE)
_ACCOUNT_RE = re.compile(r"\b(?P<q>[A-Za-z]{3}|euro|euros|pound|pounds|sterling|dollar|dollars|savings|main|current|joint|"
                         r"business|everyday)\s+account\b|\bfrom\s+(?:my\s+)?(?P<n>savings|main|current)\b", re.IGNORECASE)
_REF_RE = re.compile(r"\b(?:ref(?:erence)?|memo|note)\b\s*[:\-]?\s*(?:\"(?P<q1>[^\"]+)\"|“(?P<q2>[^”]+)”|'(?P<q3>[^']+)'|"
                     r"(?P<w>[^\s,.;!?\"'][^,.;!?\"]*?))(?=\s*(?:[,.;!?\"]|$|\band\b))", re.IGNORECASE)
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,3})?\b")


def find_cards(text: str) -> list[Found]:
    """"the one ending 4821" -> span "4821", ``{"last4": "4821"}``; "my virtual card" -> span
    "virtual", ``{"kind": "virtual"}`` (plastic -> physical, disposable -> virtual)."""
    out: list[Found] = []
    for m in _CARD_RE.finditer(text):
        if m.group("d"):
            out.append((m.start("d"), m.end("d"), "card", {"last4": m.group("d")}))
        else:
            k = m.group("kind").lower()
            if not re.match(r"\s+(?:card|one|debit card)\b", text[m.end():], re.IGNORECASE):
                continue
            out.append((m.start(), m.end(), "card", {"kind": {"plastic": "physical", "disposable": "virtual"}.get(k, k)}))
    return out


def find_accounts(text: str) -> list[Found]:
    """"my euro account" -> span "euro", ``{"currency": "EUR"}``; "from savings" -> ``{"name": "savings"}``."""
    out: list[Found] = []
    for m in _ACCOUNT_RE.finditer(text):
        g = "q" if m.group("q") else "n"
        word = m.group(g)
        code, _ = _currency_word(word)
        if code is None and len(word) == 3 and word.upper() in currency_codes() and word.upper() == word:
            code = word
        if code is None and g == "q" and word.lower() not in ("savings", "main", "current", "joint", "business", "everyday"):
            continue
        value = {"currency": code} if code else {"name": word.lower()}
        out.append((m.start(g), m.end(g), "account", value))
    return out


def find_references(text: str) -> list[Found]:
    """"with reference rent march" / 'ref "INV-1"' -> the reference text (the quoted part when quoted)."""
    out: list[Found] = []
    for m in _REF_RE.finditer(text):
        g = next(k for k in ("q1", "q2", "q3", "w") if m.group(k))
        val = m.group(g).strip()
        if g == "w" and re.match(r"(?:number|code|for|is|of)\b", val, re.IGNORECASE):
            continue
        s = m.start(g) + (len(m.group(g)) - len(m.group(g).lstrip()))
        out.append((s, s + len(val), "reference", val))
    return out


def find_ibans(text: str) -> list[Found]:
    """IBANs (spaces allowed) that schwifty validates -> label ``iban``, value the compact IBAN."""
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    out: list[Found] = []
    for m in _IBAN_RE.finditer(text):
        try:
            out.append((m.start(), m.end(), "iban", IBAN(m.group()).compact))
        except (SchwiftyException, ValueError):
            continue
    return out


# --- dates ----------------------------------------------------------------------------------------
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
_MON = r"(?:january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|" \
       r"jun|jul|aug|sept|sep|oct|nov|dec)\.?"
_WD = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_DN = r"\d{1,2}(?:st|nd|rd|th)?"
_CORE = (rf"(?:today|yesterday|tomorrow|tonight|this morning"
         rf"|(?:this|last|next|past|previous)\s+(?:week|month|year|weekend)"
         rf"|(?:last|past|previous)\s+\d+\s+(?:days?|weeks?|months?)"
         rf"|\d+\s+(?:days?|weeks?|months?)\s+ago"
         rf"|(?:last|this|next)\s+{_WD}|{_WD}"
         rf"|{_DN}\s+(?:of\s+)?{_MON}(?:\s+\d{{4}})?|{_MON}\s+{_DN}(?:,?\s+\d{{4}})?"
         rf"|(?:last|this|next)\s+{_MON}|{_MON}(?:\s+\d{{4}})?"
         rf"|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}|the\s+\d{{1,2}}(?:st|nd|rd|th))")
_DATE_RE = re.compile(rf"\b(?:between\s+(?P<b1>{_DN})\s+and\s+(?P<b2>{_DN}\s+{_MON})"
                      rf"|(?P<kw2>between|from)\s+(?P<x>{_CORE})\s+(?:and|to|until|till|-)\s+(?P<y>{_CORE})"
                      rf"|(?P<kw>since|after|before|until|till)\s+(?P<z>{_CORE})|(?P<c>{_CORE}))(?![\w])", re.IGNORECASE)


@lru_cache(maxsize=1)
def _parser():
    from dateparser.date import DateDataParser

    return DateDataParser(languages=["en"], settings={"PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False})


def _month_range(y: int, m: int) -> tuple[date, date]:
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return date(y, m, 1), nxt - timedelta(days=1)


def _minus_months(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 - n, 12)
    return date(y, m + 1, min(d.day, _month_range(y, m + 1)[1].day))


def resolve_core(s: str, now: datetime) -> tuple[date, date] | None:
    """One date expression -> (first day, last day), relative to ``now``; None when unparseable."""
    t, today = re.sub(r"\s+", " ", s.lower().strip()), now.date()
    mon = today - timedelta(days=today.weekday())
    periods = {"today": (today, today), "tonight": (today, today), "this morning": (today, today),
               "yesterday": (today - timedelta(1),) * 2, "tomorrow": (today + timedelta(1),) * 2,
               "this week": (mon, today), "last week": (mon - timedelta(7), mon - timedelta(1)),
               "previous week": (mon - timedelta(7), mon - timedelta(1)), "next week": (mon + timedelta(7), mon + timedelta(13)),
               "this weekend": (mon + timedelta(5), mon + timedelta(6)), "last weekend": (mon - timedelta(2), mon - timedelta(1)),
               "this month": (today.replace(day=1), today), "this year": (date(today.year, 1, 1), today),
               "last year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
               "previous year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))}
    if t in periods:
        return periods[t]
    if t in ("last month", "previous month", "past month"):
        y, m0 = divmod(today.year * 12 + today.month - 2, 12)
        return _month_range(y, m0 + 1)
    if t == "next month":
        y, m = divmod(today.year * 12 + today.month, 12)
        return _month_range(y, m + 1)
    m = re.fullmatch(r"(?:the )?(?:last|past|previous) (\d+) (day|week|month)s?", t)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        start = _minus_months(today, n) if unit == "month" else today - timedelta(days=n * (7 if unit == "week" else 1))
        return start, today
    m = re.fullmatch(rf"(?:(last|this|next) )?({_MON})(?: (\d{{4}}))?", t)
    if m:
        idx = next(i for i, name in enumerate(MONTHS) if name.startswith(m.group(2).rstrip(".")[:3])) + 1
        year = int(m.group(3)) if m.group(3) else today.year
        if not m.group(3) and (m.group(1) != "this") and (idx > today.month or (m.group(1) == "last" and idx == today.month)):
            year -= 1
        if m.group(1) == "next" and idx <= today.month:
            year = today.year + 1
        return _month_range(year, idx)
    m = re.fullmatch(rf"(last|this|next) ({_WD})", t)
    if m:
        target = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"].index(m.group(2))
        back = (today.weekday() - target) % 7
        d = today - timedelta(days=back or (7 if m.group(1) == "last" else 0)) if m.group(1) != "next" \
            else today + timedelta(days=(target - today.weekday()) % 7 or 7)
        return d, d
    if re.fullmatch(_WD, t):
        d = today - timedelta(days=(today.weekday() - ["monday", "tuesday", "wednesday", "thursday", "friday",
                                                        "saturday", "sunday"].index(t)) % 7)
        return d, d
    data = _parser().get_date_data(re.sub(r"^the ", "", t), date_formats=None)
    if data is None or data.date_obj is None:
        return None
    d = data.date_obj.date() if isinstance(data.date_obj, datetime) else data.date_obj
    if d > today and not re.search(r"\d{4}", t) and "tomorrow" not in t and "next" not in t:
        d = d.replace(year=d.year - 1) if data.period != "month" else d
    return d, d


def find_dates(text: str, now: datetime) -> list[Found]:
    """Dates and ranges -> ``{"from": ISO | None, "to": ISO | None}``: "yesterday", "last month"
    (the whole previous month), "in March" (span "March", the whole month), "since Monday" (Monday
    to today), "before 3 May" (open start), "from 1 May to 31 May", "between 1 and 15 March"."""
    out: list[Found] = []
    for m in _DATE_RE.finditer(text):
        if m.group("c") and m.group("c").lower() == "may" and m.group("c") != "May":
            continue  # the verb
        if m.group("b1"):
            r2 = resolve_core(m.group("b2"), now)
            r1 = resolve_core(re.sub(r"^\d+(?:st|nd|rd|th)?", m.group("b1").rstrip("stndrh"), m.group("b2")), now)
            rng = (r1[0], r2[1]) if r1 and r2 else None
        elif m.group("kw2"):
            a, b = resolve_core(m.group("x"), now), resolve_core(m.group("y"), now)
            rng = (a[0], b[1]) if a and b else None
        elif m.group("kw"):
            z, kw = resolve_core(m.group("z"), now), m.group("kw").lower()
            if z is None:
                rng = None
            elif kw == "since":
                rng = (z[0], now.date())
            elif kw == "after":
                rng = (z[1] + timedelta(1), now.date())
            elif kw == "before":
                rng = (None, z[0] - timedelta(1))
            else:
                rng = (None, z[1])
        else:
            rng = resolve_core(m.group("c"), now)
        if rng is None:
            continue
        val = {"from": rng[0].isoformat() if rng[0] else None, "to": rng[1].isoformat() if rng[1] else None}
        out.append((m.start(), m.end(), "date", val))
    return out
