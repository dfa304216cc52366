"""Answers in the customer's language: gettext message catalogs and locale formats (issue 18).

A leaf module (no project imports) used by bank/ and chains/. English is the source language:
every user-facing sentence is written in English in the code, wrapped in :func:`gettext`
(``_``), and translated by the catalogs ``config/locales/<lang>/LC_MESSAGES/messages.po``
(es, fr, de). The catalogs are compiled at load time, in memory, with Babel
(``read_po`` + ``write_mo``), so no generated ``.mo`` file is kept anywhere.

**The current language is a context variable**, not a parameter: the answers are built deep
inside the banking tools and the conversation's helpers (dozens of functions), and threading a
``language`` argument through every tool signature would change the tool registry's API for
one concern. The conversation graph sets it from the thread state at the start of each node
(chains/nodes.py ``speaks``; LangGraph runs every node in a copy of the caller's context, so a
value set in one node never leaks into another turn or thread). Outside a node it is English.

A sentence with values is translated first, then formatted: ``_("Your balance is {amount}.")
.format(amount=...)``: the catalogs keep the ``{name}`` fields. A constant defined at import
time is marked with :func:`N_` (no translation yet) and translated where it is used.
"""

from __future__ import annotations

import gettext as _gettext
import io
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from config.language import DEFAULT_LANGUAGE, LANGUAGES

LOCALE_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
LOCALES = {"en": "en_GB", "es": "es_ES", "fr": "fr_FR", "de": "de_DE"}
"""The Babel locale of each answer language (amounts and dates; English answers keep the
project's own formats, see :func:`format_money`)."""

_current: ContextVar[str] = ContextVar("banking_language", default=DEFAULT_LANGUAGE)
_lock = threading.Lock()
_translations: dict[str, _gettext.NullTranslations] = {}


def current_language() -> str:
    """The language answers are written in now ("en" | "es" | "fr" | "de")."""
    return _current.get()


@contextmanager
def use_language(language: str | None) -> Iterator[str]:
    """Answer in ``language`` inside the block (None or an unknown code: English). Yields the
    language used."""
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    token = _current.set(lang)
    try:
        yield lang
    finally:
        _current.reset(token)


def catalog_path(language: str) -> Path:
    """The ``.po`` catalog of ``language``."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_translations(language: str) -> _gettext.NullTranslations:
    """The compiled catalog of ``language`` (cached; English: no translation). Compiled in
    memory from the ``.po`` with Babel. Raises ``FileNotFoundError`` when a language of
    :data:`LANGUAGES` has no catalog (a packaging error, not a customer's)."""
    cached = _translations.get(language)  # every answer string comes here: no lock once compiled
    if cached is not None:
        return cached
    with _lock:
        if language in _translations:
            return _translations[language]
        if language == DEFAULT_LANGUAGE or language not in LANGUAGES:
            tr: _gettext.NullTranslations = _gettext.NullTranslations()
        else:
            from babel.messages.mofile import write_mo
            from babel.messages.pofile import read_po

            with catalog_path(language).open("rb") as f:
                catalog = read_po(f, locale=language, domain=DOMAIN)
            buf = io.BytesIO()
            write_mo(buf, catalog, use_fuzzy=False)
            buf.seek(0)
            tr = _gettext.GNUTranslations(buf)
        _translations[language] = tr
        return tr


def gettext(message: str) -> str:
    """``message`` (English) in the current language; itself when untranslated."""
    return load_translations(current_language()).gettext(message)


_ = gettext


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n`` in the current language (its plural rules)."""
    return load_translations(current_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs without translating it (constants defined at import
    time; translate them with :func:`gettext` where they are used)."""
    return message


def format_money(amount: Decimal | float | int, currency: str) -> str | None:
    """``amount`` in ``currency`` the current language's way ("20,00 €" in es/fr/de, "£1,234.50"
    English is not done here: returns None for English, whose callers keep their own format)."""
    lang = current_language()
    if lang == DEFAULT_LANGUAGE:
        return None
    from babel.numbers import format_currency

    return format_currency(amount, currency, locale=LOCALES[lang])


def format_day(d: date | datetime) -> str | None:
    """A date the current language's way ("viernes, 14 de marzo de 2025"); None for English
    (callers keep "Friday 14 March 2025")."""
    lang = current_language()
    if lang == DEFAULT_LANGUAGE:
        return None
    from babel.dates import format_date

    return format_date(d, format="full", locale=LOCALES[lang])
