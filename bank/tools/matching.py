"""Picking out what a customer's message names: a payee or merchant, an amount, a date.

The tools use these only to choose among the customer's OWN rows (which transfer to cancel,
which merchant's charges to check), never to decide whose data to read. Names are matched
fuzzily with ``rapidfuzz`` (typos and partial names such as "Mark" or "Tompson" for
"Mark Thompson" match; "Jane" does not).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from rapidfuzz import fuzz

__all__ = ["NAME_MATCH_SCORE", "name_after", "name_matches", "names_in_text", "amounts_in", "dates_in",
           "Criteria", "criteria_in"]

NAME_MATCH_SCORE = 85
"""Least ``rapidfuzz.fuzz.ratio`` (0-100) between a word of the message and a word of a name."""

_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_STOP = {
    "a", "an", "the", "my", "me", "i", "it", "its", "this", "that", "these", "those", "them", "him", "her", "us",
    "you", "your", "their", "our", "his", "be", "do", "get", "have", "know", "see", "make", "find", "please",
    "cancel", "stop", "undo", "reverse", "send", "sent", "pay", "paid", "transfer", "transfers", "payment",
    "payments", "money", "cash", "card", "cards", "account", "bank", "charged", "charge", "twice", "double",
    "someone", "somebody", "anyone", "yesterday", "today", "tonight", "tomorrow", "last", "ago", "earlier",
    "recently", "now", "again", "back", "morning", "afternoon", "evening", "week", "month", "year", "day", "days",
    "hour", "hours", "minutes", "on", "of", "for", "from", "at", "with", "and", "or", "in", "to", "by", "is", "was",
    "which", "who", "what", "why", "when", "because", "since", "so", "just", "same", "time", "times", "shop",
    "store", "statement", "app", "online", "there", "here", "one", "ones", "apple", "google", "contactless",
    "chip", "pin", "atm", *_MONTHS, *_WEEKDAYS,
}
_INNER_OK = {"a", "and", "of", "the", "&"}
"""Words allowed INSIDE a name after its first word (``Pret A Manger``, ``Bank of America``)."""
_GENERIC = {"the", "and", "ltd", "limited", "plc", "llc", "inc", "gmbh", "co", "uk", "a", "of", "&"}
"""Words of a stored name too common to identify it on their own."""
_WORD = re.compile(r"[A-Za-z][A-Za-z'&.\-]*")


def _norm_words(text: str) -> list[str]:
    return [w for w in re.sub(r"[^a-z0-9&]+", " ", text.lower().replace("'", "")).split() if w]


def name_after(text: str, prepositions: tuple[str, ...]) -> str | None:
    """The first name-like phrase (1-4 words, as typed) after one of ``prepositions`` in ``text``.

    ``"cancel the transfer I made to Mark Thompson"`` with ``("to",)`` -> ``"Mark Thompson"``
    (``"to cancel"`` is skipped: a verb or pronoun never starts a name). None when there is none.
    """
    pattern = re.compile(r"\b(?:%s)\s+" % "|".join(map(re.escape, prepositions)), re.I)
    for m in pattern.finditer(text):
        words: list[str] = []
        for w in text[m.end():].split():
            token = _WORD.fullmatch(w.strip(",.!?;:()\"")) and w.strip(",.!?;:()\"")
            low = token.lower().strip(".") if token else ""
            if not token or (low in _STOP and not (words and low in _INNER_OK)) or len(words) == 4:
                break
            words.append(token)
            if w != token:  # punctuation after the word ends the phrase
                break
        while words and words[-1].lower() in _INNER_OK:
            words.pop()
        if words:
            return " ".join(words)[:60]
    return None


def _significant(words: list[str]) -> list[str]:
    return [w for w in words if len(w) >= 3 and w not in _GENERIC]


def name_matches(name: str, phrase: str, *, every_word: bool = False) -> bool:
    """True when ``phrase`` (typed by the customer) names the stored ``name``: the whole phrase is
    close to the whole name, or one of its words is close (``fuzz.ratio >= NAME_MATCH_SCORE``) to a
    significant word of the name (3+ letters, not ``Ltd``/``UK``/...).

    ``every_word=True`` (payees: a person or business the customer pays): EVERY significant word
    of the phrase must be close to a word of the name, so "Mark", "Tompson" and "jane doo" still
    name "Mark Thompson" and "Jane Doe", but "Oakwood Homes" does not name "Oakwood Lettings"
    (a different second word is a different payee)."""
    n_words, p_words = _norm_words(name), _norm_words(phrase)
    if not n_words or not p_words:
        return False
    if fuzz.ratio(" ".join(n_words), " ".join(p_words)) >= NAME_MATCH_SCORE:
        return True
    wanted, stored = _significant(p_words), _significant(n_words)
    close = [any(fuzz.ratio(p, n) >= NAME_MATCH_SCORE for n in stored) for p in wanted]
    return bool(close) and (all(close) if every_word else any(close))


def names_in_text(names: list[str], text: str) -> list[str]:
    """Those of ``names`` that the free ``text`` mentions without a preposition before them
    (``"cancel the Mark Thompson transfer"``): a significant word of the name (4+ letters) close
    to a word of the text that is not a common word. Order of ``names`` kept, no repeats."""
    words = [w for w in _norm_words(text) if len(w) >= 4 and w not in _STOP]
    out: list[str] = []
    for name in names:
        sig = [n for n in _significant(_norm_words(name)) if len(n) >= 4]
        if name not in out and any(fuzz.ratio(w, n) >= 90 for w in words for n in sig):
            out.append(name)
    return out


_AMOUNT = re.compile(
    r"(?P<sym>[£€$])\s?(?P<a>\d[\d,]*(?:\.\d{1,2})?)"
    r"|(?P<b>\d[\d,]*(?:\.\d{1,2})?)\s?(?:pounds?|quid|euros?|dollars?|gbp|eur|usd)\b"
    r"|(?<![\d.])(?P<c>\d[\d,]*\.\d{2})(?![\d.])", re.I)


_GLUED_AFTER = re.compile(r"[0-9_]|[.,][0-9]|[eExX][0-9]")


def amounts_in(text: str) -> list[Decimal]:
    """Money amounts written in ``text`` (``£250``, ``250 pounds``, ``250.00``), in order. Bare
    whole numbers are not amounts (they may be dates)."""
    out: list[Decimal] = []
    for m in _AMOUNT.finditer(text):
        if _GLUED_AFTER.match(text, m.end()) or (m.start() > 0 and (text[m.start() - 1].isalnum() or text[m.start() - 1] in "_.")):
            continue  # part of a longer token ("£1e9", "£1_000", "£10.5.3"): not an amount we can read
        raw = (m.group("a") or m.group("b") or m.group("c")).replace(",", "")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            continue
        if value not in out:
            out.append(value)
    return out


def _month(word: str) -> int | None:
    word = word.lower()
    for i, m in enumerate(_MONTHS, start=1):
        if len(word) >= 3 and m.startswith(word):
            return i
    return None


def _past_date(today: date, month: int, day: int) -> date | None:
    for year in (today.year, today.year - 1):
        try:
            d = date(year, month, day)
        except ValueError:
            return None
        if d <= today:
            return d
    return None


def dates_in(text: str, today: date) -> list[date]:
    """Past dates named in ``text``: today, yesterday, ``N days ago``, a weekday (its latest
    occurrence, today included), ``14 March`` / ``March 14`` (this year, or last year when that is
    still to come) and ISO ``2025-03-14``. In order, no repeats."""
    low = text.lower()
    found: list[date] = []

    def add(d: date | None) -> None:
        if d is not None and d <= today and d not in found:
            found.append(d)

    if re.search(r"\btoday\b", low):
        add(today)
    if re.search(r"\byesterday\b", low):
        add(today - timedelta(days=1))
    for m in re.finditer(r"\b(\d{1,3}) days? ago\b", low):
        add(today - timedelta(days=int(m.group(1))))
    for i, name in enumerate(_WEEKDAYS):
        if re.search(rf"\b{name}\b", low):
            add(today - timedelta(days=(today.weekday() - i) % 7))
    for m in re.finditer(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]{3,9})\b", low):
        month = _month(m.group(2))
        if month:
            add(_past_date(today, month, int(m.group(1))))
    for m in re.finditer(r"\b([a-z]{3,9})\s+(\d{1,2})(?:st|nd|rd|th)?\b", low):
        month = _month(m.group(1))
        if month:
            add(_past_date(today, month, int(m.group(2))))
    for m in re.finditer(r"\b(\d{4})-(\d{2})-(\d{2})\b", low):
        with contextlib.suppress(ValueError):  # "2026-02-31" is no date: not a criterion
            add(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    return found


@dataclass
class Criteria:
    """What a message says about the row it means: ``name`` (a phrase after a preposition, as
    typed), ``mentioned`` (stored names the text mentions without one), ``amounts`` and ``dates``."""

    name: str | None = None
    mentioned: list[str] = field(default_factory=list)
    amounts: list[Decimal] = field(default_factory=list)
    dates: list[date] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.name or self.mentioned or self.amounts or self.dates)

    def matches(self, name: str, amount: Decimal, on: date) -> bool:
        """True when a row with this ``name``, ``amount`` and date ``on`` fits every criterion given."""
        if self.name is not None and not name_matches(name, self.name):
            return False
        if self.name is None and self.mentioned and name not in self.mentioned:
            return False
        if self.amounts and amount not in self.amounts:
            return False
        return not self.dates or on in self.dates

    def describe(self, prep: str) -> str:
        """``"to Mark Thompson of £250.00 made on 14 March 2025"``-style words for an answer
        (``prep``: "to" or "at"; amounts without currency)."""
        parts = []
        if self.name or self.mentioned:
            parts.append(f"{prep} {self.name or ' or '.join(self.mentioned)}")
        if self.amounts:
            parts.append("of " + " or ".join(f"{a:,.2f}" for a in self.amounts))
        if self.dates:
            parts.append("made on " + " or ".join(f"{d.day} {d:%B %Y}" for d in self.dates))
        return " ".join(parts)


def criteria_in(text: str, today: date, names: list[str], prepositions: tuple[str, ...]) -> Criteria:
    """The :class:`Criteria` of ``text``: the phrase after one of ``prepositions``; failing that,
    which of the customer's stored ``names`` it mentions; plus its amounts and dates."""
    phrase = name_after(text, prepositions)
    return Criteria(name=phrase, mentioned=[] if phrase else names_in_text(names, text),
                    amounts=amounts_in(text), dates=dates_in(text, today))
