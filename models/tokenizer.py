"""Inference side of the from-scratch WordPiece tokenizer: loading a saved tokenizer.json and
encoding texts to model inputs (token ids, hashed n-gram ids). Training it lives in
``training/tokenizer.py``.

The encoders build numpy arrays (what ONNX Runtime takes: ``models.onnx_runtime``); the torch
variants (``encode_batch``, ``encode_ngrams``, ``encode_inputs(..., numpy=False)``, for training
and the torch fallback) wrap the same arrays with ``torch.from_numpy``, importing torch only
when called, so that inference runs without importing torch.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Tokenizer

if TYPE_CHECKING:
    import torch

PAD, UNK, MASK = "[PAD]", "[UNK]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, MASK]  # PAD must be id 0


def load_tokenizer(path: Path) -> Tokenizer:
    """Load a tokenizer.json saved by ``Tokenizer.save``. Raises ``ValueError`` if [PAD] is not id 0."""
    tok = Tokenizer.from_file(str(path))
    if tok.token_to_id(PAD) != 0:
        raise ValueError(f"{path}: [PAD] must be token id 0")
    return tok


def _pad(rows: list[list[int]]) -> np.ndarray:
    """Right-pad id lists with 0 into an (N, longest) int64 array."""
    out = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def encode_ids_offsets(tok: Tokenizer, texts: list[str], max_len: int) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """Token ids (B, T) int64 numpy, right-padded with 0, T = min(longest, max_len) (an empty
    encoding becomes one [UNK]), and per row the character offsets (start, end) of its tokens."""
    encs = tok.encode_batch(texts)
    unk = tok.token_to_id(UNK)
    ids = [e.ids[:max_len] or [unk] for e in encs]
    offsets = [list(e.offsets[:max_len]) or [(0, 0)] for e in encs]
    return _pad(ids), offsets


def encode_batch(tok: Tokenizer, texts: list[str], max_len: int) -> torch.Tensor:
    """Encode texts to a right-padded id tensor of shape (B, T) int64, T = min(longest, max_len)."""
    import torch

    return torch.from_numpy(encode_ids_offsets(tok, texts, max_len)[0])


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


def ngram_array(texts: list[str], n_buckets: int) -> np.ndarray:
    """Padded n-gram ids (B, F) int64 numpy for ``texts`` (F = most n-grams in the batch; 0 = padding)."""
    return _pad([ngram_features(t, n_buckets) for t in texts])


def encode_ngrams(texts: list[str], n_buckets: int) -> torch.Tensor:
    """Padded n-gram id tensor (B, F) int64 for ``texts`` (F = most n-grams in the batch)."""
    import torch

    return torch.from_numpy(ngram_array(texts, n_buckets))


def encode_inputs(tok: Tokenizer, texts: list[str], max_len: int, ngram_buckets: int,
                  numpy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None] | tuple[np.ndarray, np.ndarray | None]:
    """Model inputs for ``texts``: (token ids (B, T) int64, n-gram ids (B, F) int64 or None when
    ``ngram_buckets`` is 0); torch tensors, or numpy arrays with ``numpy=True`` (torch not imported)."""
    ids = encode_ids_offsets(tok, texts, max_len)[0]
    grams = ngram_array(texts, ngram_buckets) if ngram_buckets else None
    if numpy:
        return ids, grams
    import torch

    return torch.from_numpy(ids), (None if grams is None else torch.from_numpy(grams))
