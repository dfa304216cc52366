"""Inference side of the from-scratch WordPiece tokenizer: loading a saved tokenizer.json and
encoding texts to model inputs (token ids, hashed n-gram ids). Training it lives in
``training/tokenizer.py``.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from pathlib import Path

import torch
from tokenizers import Tokenizer

PAD, UNK, MASK = "[PAD]", "[UNK]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, MASK]  # PAD must be id 0


def load_tokenizer(path: Path) -> Tokenizer:
    """Load a tokenizer.json saved by ``Tokenizer.save``. Raises ``ValueError`` if [PAD] is not id 0."""
    tok = Tokenizer.from_file(str(path))
    if tok.token_to_id(PAD) != 0:
        raise ValueError(f"{path}: [PAD] must be token id 0")
    return tok


def encode_batch(tok: Tokenizer, texts: list[str], max_len: int) -> torch.Tensor:
    """Encode texts to a right-padded id tensor of shape (B, T) int64, T = min(longest, max_len)."""
    encs = tok.encode_batch(texts)
    ids = [e.ids[:max_len] or [tok.token_to_id(UNK)] for e in encs]
    T = max(len(i) for i in ids)
    out = torch.zeros(len(ids), T, dtype=torch.long)
    for r, seq in enumerate(ids):
        out[r, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def ngram_features(text: str, n_buckets: int, char_ns: tuple[int, ...] = (3, 4, 5)) -> list[int]:
    """Hashed bag-of-n-grams of one text, in the manner of fastText (Bojanowski et al. 2017,
    "Enriching Word Vectors with Subword Information"; Joulin et al. 2017, "Bag of Tricks for
    Efficient Text Classification"): words, word bigrams and character n-grams of each
    ``<word>``, hashed with CRC-32 into ids 1..n_buckets-1 (0 is padding). Returns a list of ids
    (duplicates kept, so frequent n-grams weigh more)."""
    norm = unicodedata.normalize("NFKD", text.lower())
    words = _WORD.findall("".join(c for c in norm if not unicodedata.combining(c)))
    feats = [f"w:{w}" for w in words]
    feats += [f"b:{a} {b}" for a, b in zip(words, words[1:])]
    for w in words:
        if len(w) < 2:
            continue
        padded = f"<{w}>"
        for n in char_ns:
            feats += [f"c:{padded[i:i + n]}" for i in range(len(padded) - n + 1)]
    return [1 + zlib.crc32(f.encode()) % (n_buckets - 1) for f in feats] or [0]


def encode_ngrams(texts: list[str], n_buckets: int) -> torch.Tensor:
    """Padded n-gram id tensor (B, F) int64 for ``texts`` (F = most n-grams in the batch)."""
    rows = [ngram_features(t, n_buckets) for t in texts]
    F_ = max(len(r) for r in rows)
    out = torch.zeros(len(rows), F_, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def encode_inputs(tok: Tokenizer, texts: list[str], max_len: int, ngram_buckets: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Model inputs for ``texts``: (token ids (B, T) int64, n-gram ids (B, F) int64 or None when
    ``ngram_buckets`` is 0)."""
    ids = encode_batch(tok, texts, max_len)
    return ids, (encode_ngrams(texts, ngram_buckets) if ngram_buckets else None)
