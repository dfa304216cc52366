"""Reading and writing the numbers of money amounts (issue 16, 18), with Babel: ``parse_number``
("1,250.50", "12,50", "1.250" by the message's language), ``words_to_number`` ("forty five") and
``format_amount`` (a Decimal with the currency's minor units). Used by ``models.entity_values``."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

def format_amount(number: Decimal, currency: str | None) -> str:
    """``Decimal`` -> plain string with the currency's minor units (Babel) when it has fewer
    decimals ("25" GBP -> "25.00", JPY -> "25"); more decimals than the currency allows are kept as
    written, so the bank can refuse them. No currency: two decimals when fewer are given."""
    from babel.numbers import get_currency_precision

    places = get_currency_precision(currency) if currency else 2
    exp = -number.as_tuple().exponent if number.as_tuple().exponent < 0 else 0
    if exp <= places:
        number = number.quantize(Decimal(1).scaleb(-places))
    return format(number, "f")


_CONTINENTAL = {"es": "es_ES", "fr": "de_DE", "de": "de_DE"}  # fr_FR groups with spaces; "1.250" is de style


def parse_number(s: str, language: str = "en") -> Decimal | None:
    """A number as written, with Babel: a decimal comma ("12,50", "1.250,50") in the de_DE
    convention; "1.250" is 1250 when the message is Spanish, French or German, else 1.25 (en_GB)."""
    from babel.numbers import NumberFormatError, parse_decimal

    continental = re.fullmatch(r"\d{1,3}(?:\.\d{3})*,\d{1,2}|\d+,\d{1,2}", s) or (
        language in _CONTINENTAL and re.fullmatch(r"\d{1,3}(?:\.\d{3})+", s))
    try:
        return parse_decimal(s, locale=_CONTINENTAL.get(language, "de_DE") if continental else "en_GB", strict=True)
    except (NumberFormatError, InvalidOperation):
        return None


def words_to_number(s: str, word_numbers: dict[str, int]) -> Decimal | None:
    """"forty five" -> Decimal(45) with ``word_numbers`` (word -> value); None for other words."""
    total, cur = 0, 0
    for w in re.split(r"[\s-]+", s.lower()):
        if w in ("and",):
            continue
        if w == "a":
            cur = 1
        elif w in word_numbers:
            cur += word_numbers[w]
        elif w == "hundred":
            cur = max(cur, 1) * 100
        elif w == "thousand":
            total, cur = total + max(cur, 1) * 1000, 0
        else:
            return None
    return Decimal(total + cur)
