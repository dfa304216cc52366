"""BIO tags of the custom model's learned entity-span head (issue 16; joint intent and entity
recognition as in DIET, Bunk et al. 2020, "DIET: Lightweight Language Understanding for Dialogue
Systems", in its CRF-free variant: one linear layer over the final token states).

Inference side only: the tag vocabulary, encoding with character offsets (HF ``tokenizers``
``Encoding.offsets``), decoding a tag sequence back to character spans, giving a learned span its
value with the rule extractor's parsers (``models.entity_values``), and merging learned spans with
the rules. Aligning gold character spans to tags for training lives in ``training/spans.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tokenizers import Tokenizer

from models import entity_values as ev
from models.tokenizer import encode_ids_offsets

if TYPE_CHECKING:
    import torch

ENTITY_LABELS = ("amount", "date", "card", "payee", "merchant", "account", "reference")
ENTITY_TAGS = ["O", *(f"{p}-{lab}" for lab in ENTITY_LABELS for p in ("B", "I"))]
"""Tag id -> tag: 0 = "O", then "B-<label>", "I-<label>" per label (15 tags)."""

Span = tuple[int, int, str]  # start, end (exclusive, characters), label


def encode_with_offsets(tok: Tokenizer, texts: list[str], max_len: int) -> tuple[torch.Tensor, list[list[tuple[int, int]]]]:
    """Token ids (B, T) int64, right-padded with 0 exactly as ``models.tokenizer.encode_batch``, and
    per row the character offsets (start, end) of its (at most ``max_len``) tokens. (Inference uses
    the numpy ``models.tokenizer.encode_ids_offsets``; torch is imported only here.)"""
    import torch

    ids, offsets = encode_ids_offsets(tok, texts, max_len)
    return torch.from_numpy(ids), offsets


def decode_spans(tag_ids: Sequence[int], offsets: Sequence[tuple[int, int]], tags: Sequence[str] = ENTITY_TAGS,
                 text: str | None = None) -> list[Span]:
    """Tag ids of one row's tokens (only the first ``len(offsets)`` are read) -> character spans.
    A span starts at a ``B-x`` (or at an ``I-x`` not continuing an ``x`` span) and takes the
    following ``I-x`` tokens, and a ``B-x`` token glued to it (no character between: "£" "25"); it
    runs from the first token's start to the last token's end. Without a CRF the head tags each
    token alone, so with ``text`` given, the pieces of one written word (tokens glued letter or
    digit to letter or digit: "m" "##rak", "£1" "##50") are kept together: a piece glued to a span
    joins it whatever its own tag, and a span starting inside a word starts at the word's start."""
    spans: list[list[Any]] = []
    cur: list[Any] | None = None  # [start, end, label]
    word_start, prev_end = -1, -1

    def piece(s: int) -> bool:  # token at s continues the previous token's word
        return text is not None and s == prev_end and s > 0 and text[s - 1].isalnum() and text[s].isalnum()

    for t, (s, e) in zip(tag_ids, offsets):
        if e <= s:
            continue
        tag = tags[int(t)]
        glued = piece(s)
        word_start = word_start if glued else s
        prev_end = e
        if glued and cur is not None and cur[1] == s:
            cur[1] = e
            continue
        if tag == "O":
            cur = None
            continue
        prefix, lab = tag.split("-", 1)
        if cur is not None and cur[2] == lab and (prefix == "I" or s == cur[1]):
            cur[1] = e
            continue
        cur = [word_start if glued else s, e, lab]
        spans.append(cur)
    return [(s, e, lab) for s, e, lab in spans]


def span_value(label: str, text: str, now: datetime) -> Any:
    """The value of a span of ``label`` whose text is ``text``, parsed with the rule extractor's
    parsers (shapes as ``models.entities.Entity``): amount/date/card/account dicts, or None when
    the text does not parse; payee/merchant/reference: the text itself."""
    if label in ("payee", "merchant", "reference"):
        return text
    if label == "amount":
        found = ev.find_amounts(text)
    elif label == "date":
        found = ev.find_dates(text, now)
    elif label == "card":
        if re.fullmatch(r"\d{4}", text.strip()):
            return {"last4": text.strip()}
        found = ev.find_cards(text + " card")
    elif label == "account":
        found = ev.find_accounts(text + " account")
    else:
        return None
    return found[0][3] if found else None


def entities_from_spans(text: str, spans: Sequence[Span], rules: Sequence[dict], now: datetime) -> list[dict]:
    """Learned spans of ``text`` as Entity dicts ``{label, text, start, end, value}``: the value of
    the rule entity with the same span and label when there is one, else ``span_value``. A span
    of amount/date/card/account whose text does not parse is dropped (no usable value: "£" alone,
    "tickets" tagged as an amount)."""
    by_span = {(r["start"], r["end"], r["label"]): r for r in rules}
    out = []
    for s, e, lab in spans:
        rule = by_span.get((s, e, lab))
        value = rule["value"] if rule is not None else span_value(lab, text[s:e], now)
        if value is None:
            continue
        out.append({"label": lab, "text": text[s:e], "start": s, "end": e, "value": value})
    return out


def merge_entities(primary: Sequence[dict], secondary: Sequence[dict]) -> list[dict]:
    """``primary`` entities plus those of ``secondary`` that overlap none of them, sorted by start;
    a ``secondary`` entity whose label the span head does not tag (``iban``) wins over the
    ``primary`` ones it overlaps (the head never learned that label, so its spans there are noise)."""
    def overlaps(a: dict, b: dict) -> bool:
        return a["start"] < b["end"] and b["start"] < a["end"]

    foreign = [r for r in secondary if r["label"] not in ENTITY_LABELS]
    kept = [p for p in primary if not any(overlaps(p, f) for f in foreign)]
    kept += [r for r in secondary if not any(overlaps(r, p) for p in kept)]
    return sorted(kept, key=lambda d: d["start"])
