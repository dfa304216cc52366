"""The customer's language, per message: English, Spanish, French or German (issue 18).

A leaf module (no project imports), so models/, bank/ and chains/ can all use it. Detection is
``lingua-language-detector`` (statistical n-gram models shipped in the wheel), one detector
restricted to :data:`LANGUAGES`, built once on first use.

Very short or unsure messages ("ok", "ta", "yes", "£20", "si") say nothing about the language:
:func:`detect` returns None for them and :func:`message_language` keeps the conversation's
last language (else English). A one- or two-word message is first looked up in
:data:`SHORT_WORDS` ("hola", "merci", "danke": words the n-gram models are unsure of on their
own).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

LANGUAGES = ("en", "es", "fr", "de")
"""The languages the assistant answers in (ISO 639-1)."""
DEFAULT_LANGUAGE = "en"

MIN_CONFIDENCE = 0.5
"""The top language's lingua confidence (0-1, the four confidences sum to 1) above which a
message of three or more words says its language."""
MIN_CONFIDENCE_SHORT = 0.6
"""The same for a message of one or two words ("oui" 0.62 counts, "non" 0.58 does not)."""
MIN_CONFIDENCE_LOOSE = 0.33
MIN_MARGIN_LOOSE = 0.09
"""A message of four or more words may also count when its top language is at least
``MIN_CONFIDENCE_LOOSE`` and ``MIN_MARGIN_LOOSE`` ahead of the second ("Quel est mon solde ?":
0.36 vs 0.25)."""
MIN_LETTERS = 2

SHORT_WORDS: dict[str, str] = {
    "hola": "es", "gracias": "es", "adiós": "es", "adios": "es", "sí": "es", "vale": "es", "claro": "es",
    "bonjour": "fr", "merci": "fr", "oui": "fr", "salut": "fr", "d'accord": "fr", "bonsoir": "fr",
    "hallo": "de", "danke": "de", "nein": "de", "ja": "de", "tschüss": "de", "genau": "de",
}
"""One-word answers and greetings with a clear language (a message of one or two words whose
first word is here takes that language)."""

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_NAME = re.compile(r"(?<=\S)(\s+)[^\W\d_a-zà-ÿ][\w'-]*")
_MONEY_WORD = re.compile(r"\b(euros?|pounds?|dollars?|quid|eur|gbp|usd)\b", re.I)
"""Names (a capitalised word after the first: "pay Carlos 30 euros") and currency words say
nothing about the language and pull the n-gram models towards Spanish or French: they are
removed before detection (German nouns go too; the rest of a German sentence is enough)."""
_lock = threading.Lock()
_detector = None


def _get_detector():
    """The lingua detector for :data:`LANGUAGES`, built once (thread-safe)."""
    global _detector
    with _lock:
        if _detector is None:
            from lingua import Language, LanguageDetectorBuilder

            _detector = LanguageDetectorBuilder.from_languages(
                Language.ENGLISH, Language.SPANISH, Language.FRENCH, Language.GERMAN).build()
        return _detector


@lru_cache(maxsize=4096)
def detect_scored(text: str) -> tuple[str | None, float]:
    """``(language, confidence)`` of one message: ``language`` one of :data:`LANGUAGES`, or None
    when the message is too short or the detector unsure (see the module docstring);
    ``confidence`` the top language's lingua confidence (0-1; 1.0 for a :data:`SHORT_WORDS`
    hit, 0.0 for a message without letters). Never raises for a string."""
    text = _MONEY_WORD.sub(" ", _NAME.sub(" ", text.replace("\u2019", "'")))
    words = _WORD.findall(text.lower())
    if sum(len(w) for w in words) < MIN_LETTERS:
        return None, 0.0
    if len(words) <= 2 and words[0] in SHORT_WORDS:
        return SHORT_WORDS[words[0]], 1.0
    values = _get_detector().compute_language_confidence_values(text)
    if not values:
        return None, 0.0
    top = values[0]
    second = values[1].value if len(values) > 1 else 0.0
    code = top.language.iso_code_639_1.name.lower()
    needed = MIN_CONFIDENCE_SHORT if len(words) <= 2 else MIN_CONFIDENCE
    if top.value >= needed or (len(words) >= 4 and top.value >= MIN_CONFIDENCE_LOOSE
                               and top.value - second >= MIN_MARGIN_LOOSE):
        return code, float(top.value)
    return None, float(top.value)


def detect(text: str) -> str | None:
    """The language of ``text`` (one of :data:`LANGUAGES`), or None when it does not say."""
    return detect_scored(text)[0]


def message_language(text: str, previous: str | None = None) -> str:
    """The language to answer ``text`` in: its detected language, else ``previous`` (the
    conversation's last language, when it is one of :data:`LANGUAGES`), else English."""
    found = detect(text)
    if found:
        return found
    return previous if previous in LANGUAGES else DEFAULT_LANGUAGE
