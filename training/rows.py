"""The training rows of one custom-model run (``training.custom``): BANKING77 rows, the CLINC150
extras and generated requests, their augmented and misspelt copies, outliers, the Spanish /
French / German phrases, and their targets (teacher mix or smoothed gold) and teacher sentence
embeddings (feature distillation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.banking77 import Banking77
from models.labels import OUT_OF_SCOPE, REQUEST_LABELS
from training.augment import augment, typo_augment
from training.data import ExtraData

if TYPE_CHECKING:
    from training.custom import TrainConfig

LANGUAGE_AUG_KINDS = ("casing", "misspell")
"""Perturbations that are not English-specific (no English openers or contexts)."""


@dataclass
class TrainingRows:
    """Texts and target distributions (N, C) float32 of one training run, plus bookkeeping:
    ``gold`` (N,) int64 class index; ``source`` per row ("banking77", "extra", "outlier" and
    "+aug" for augmented copies); ``features`` (N, 384) float32 teacher sentence embeddings and
    ``feature_mask`` (N,) bool (rows that have one), both None without the teacher."""

    texts: list[str]
    gold: np.ndarray
    targets: np.ndarray
    source: list[str]
    features: np.ndarray | None = None
    feature_mask: np.ndarray | None = None


def build_rows(data: Banking77, extras: ExtraData, classes: list[str], cfg: TrainConfig, use_teacher: bool,
               cache_dir: Path, progress: bool, train_limit: int | None = None) -> tuple[TrainingRows, dict]:
    """Assemble the training rows (see the module docstring). Returns (rows, teacher info dict)."""
    index = {c: i for i, c in enumerate(classes)}
    rng = np.random.RandomState(cfg.seed)
    b_texts, b_labels = list(data.train.texts), list(data.train.labels)
    if train_limit:
        order = rng.permutation(len(b_texts))[:train_limit]
        b_texts, b_labels = [b_texts[i] for i in order], [b_labels[i] for i in order]
    ex = [(t, y) for t, y in zip(extras.train.texts, extras.train.labels) if y != OUT_OF_SCOPE]
    ex += [(t, y) for t, y in ex if y in REQUEST_LABELS] * (cfg.request_repeat - 1)
    outl = [t for t, y in zip(extras.train.texts, extras.train.labels) if y == OUT_OF_SCOPE]
    outl = [outl[i] for i in sorted(rng.permutation(len(outl))[: cfg.outlier_rows])]
    soft_texts = b_texts + [t for t, _ in ex]
    soft_labels = b_labels + [y for _, y in ex]
    aug_texts, aug_src, _ = augment(soft_texts, cfg.aug_copies, cfg.seed)
    typo_texts, typo_src = typo_augment(soft_texts, cfg.typo_fraction, cfg.typo_copies, cfg.seed + 2)
    aug_texts, aug_src = aug_texts + typo_texts, aug_src + typo_src
    out_aug, out_src, _ = augment(outl, cfg.outlier_aug_copies, cfg.seed + 1)
    lang_texts, lang_labels = list(extras.language_rows.texts), list(extras.language_rows.labels)
    lang_texts *= cfg.language_repeat
    lang_labels *= cfg.language_repeat
    lang_aug, lang_src, _ = augment(lang_texts, cfg.language_aug_copies, cfg.seed + 3, LANGUAGE_AUG_KINDS)
    texts = soft_texts + aug_texts + outl + out_aug + lang_texts + lang_aug
    gold_labels = (soft_labels + [soft_labels[i] for i in aug_src] + [OUT_OF_SCOPE] * (len(outl) + len(out_aug))
                   + lang_labels + [lang_labels[i] for i in lang_src])
    n_b = len(b_texts)
    source = (["banking77"] * n_b + ["extra"] * len(ex) + [("banking77" if i < n_b else "extra") + "+aug" for i in aug_src]
              + ["outlier"] * len(outl) + ["outlier+aug"] * len(out_aug)
              + ["language"] * len(lang_texts) + ["language+aug"] * len(lang_aug))
    gold = np.array([index[y] for y in gold_labels], dtype=np.int64)
    C = len(classes)
    eps = cfg.label_smoothing
    targets = np.full((len(texts), C), eps / C, dtype=np.float32)
    targets[np.arange(len(texts)), gold] += 1.0 - eps
    info: dict = {"used": False}
    features = feature_mask = None
    if use_teacher:
        from training.teacher import teacher_soft_labels

        t_out = [t for t, y in zip(extras.train.texts, extras.train.labels) if y == OUT_OF_SCOPE][: cfg.teacher_outliers]
        fit_texts = soft_texts + t_out
        fit_labels = soft_labels + [OUT_OF_SCOPE] * len(t_out)
        val_texts = list(data.validation.texts) + list(extras.validation.texts)
        val_labels = list(data.validation.labels) + list(extras.validation.labels)
        n_soft = len(soft_texts) + len(aug_texts)
        tl = teacher_soft_labels(fit_texts, fit_labels, val_texts, val_labels, texts[:n_soft], classes,
                                 cache_dir, data.checksum + extras.checksum, progress=progress)
        a = cfg.distill_alpha
        probs = in_scope_teacher(tl.probs, gold[:n_soft], index[OUT_OF_SCOPE]) if cfg.in_scope_teacher else tl.probs
        targets[:n_soft] = a * probs + (1 - a) * targets[:n_soft]
        info = {"used": True, "weight_minilm": tl.weight, "validation_accuracy": tl.validation,
                "seconds": round(tl.seconds, 1), "cache_hit": tl.cache_hit, "rows_labelled": n_soft}
        if tl.features is not None:
            features = np.zeros((len(texts), tl.features.shape[1]), dtype=np.float32)
            features[:n_soft] = tl.features
            feature_mask = np.zeros(len(texts), dtype=bool)
            feature_mask[:n_soft] = True
    return TrainingRows(texts, gold, targets, source, features, feature_mask), info


def in_scope_teacher(probs: np.ndarray, gold: np.ndarray, oos: int) -> np.ndarray:
    """The teacher's probabilities (N, C) float32 with the ``out_of_scope`` column zeroed and each
    row renormalised where the gold class (N,) int64 is in scope: the augmented copies are
    label-preserving, so the teacher's out-of-scope mass on a misspelt in-scope row is known to be
    wrong (issue 18: taught as is, it made "whats my balnace" out of scope at 1.0). Rows whose
    gold is out of scope, or whose teacher mass was all out of scope, are returned unchanged."""
    out = probs.copy()
    rows = (gold != oos) & (probs[:, oos] < 1.0 - 1e-6)
    out[rows, oos] = 0.0
    out[rows] /= out[rows].sum(1, keepdims=True)
    return out
