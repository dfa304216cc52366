"""Choosing the confidence thresholds of the out-of-scope guard.

Two thresholds on the top-1 confidence (max softmax probability, the baseline OOS detector of
Hendrycks & Gimpel, "A Baseline for Detecting Misclassified and Out-of-Distribution Examples",
ICLR 2017):

- ``oos_threshold``: below it the message is declined as out of scope. Chosen to maximise
  Youden's J = TPR(in-scope validation kept) + TNR(OOS rejected) - 1 on the validation split plus
  the CLINC150 out-of-scope queries.
- ``clarify_threshold`` (>= oos_threshold): between the two the assistant asks a clarifying
  question naming its top candidates. Chosen as the lowest confidence above which validation
  predictions are at least ``target_precision`` correct.
"""

from __future__ import annotations

import numpy as np


def tune_thresholds(
    val_confidence: np.ndarray,
    val_correct: np.ndarray,
    oos_confidence: np.ndarray,
    target_precision: float = 0.97,
) -> dict[str, float]:
    """val_confidence (N,) float top-1 confidences on in-scope validation rows, val_correct (N,)
    bool, oos_confidence (M,) float on out-of-scope queries (M may be 0: then oos_threshold is 0).

    Returns {"oos_threshold", "clarify_threshold", "oos_rejection", "in_scope_kept",
    "accepted_precision"} (fractions in 0-1).
    """
    val_confidence = np.asarray(val_confidence, dtype=np.float64)
    val_correct = np.asarray(val_correct, dtype=bool)
    oos_confidence = np.asarray(oos_confidence, dtype=np.float64)
    candidates = np.unique(np.concatenate([val_confidence, oos_confidence, [0.0]]))
    oos_t = 0.0
    if oos_confidence.size:
        best = -1.0
        for t in candidates:
            j = (val_confidence >= t).mean() + (oos_confidence < t).mean() - 1.0
            if j > best:
                best, oos_t = j, float(t)
    clarify_t = oos_t
    for t in candidates[candidates >= oos_t]:
        kept = val_confidence >= t
        if kept.any() and val_correct[kept].mean() >= target_precision:
            clarify_t = float(t)
            break
    kept = val_confidence >= clarify_t
    return {
        "oos_threshold": oos_t,
        "clarify_threshold": clarify_t,
        "oos_rejection": float((oos_confidence < oos_t).mean()) if oos_confidence.size else 0.0,
        "in_scope_kept": float((val_confidence >= oos_t).mean()),
        "accepted_precision": float(val_correct[kept].mean()) if kept.any() else 0.0,
    }
