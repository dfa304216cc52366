"""The measures of the eval runner (``evals.runner``), as pure functions of predictions.

Thresholds as the conversation's guard resolves them (:func:`resolve_threshold`,
:func:`resolve_clarify_threshold`), the guard's action per prediction and its rates
(:func:`guard_actions`, :func:`guard_metrics`), a cascade's escalation rate, the estimated cost
per 1,000 queries, latency percentiles and scikit-learn's classification metrics and most
confused pairs. Predictions are ``models.base.IntentPrediction``-like objects (``intent``,
``confidence``, ``ranking``, ``extra``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from models.base import BackendUnavailable

__all__ = ["DEFAULT_THRESHOLD", "resolve_threshold", "resolve_clarify_threshold", "guard_actions", "in_scope_score",
           "guard_metrics", "escalation_rate", "cost_per_1k", "percentile_ms", "confused_pairs",
           "classification_metrics"]

DEFAULT_THRESHOLD = 0.5
"""The out-of-scope threshold when neither the caller, the settings nor the model give one."""


def resolve_threshold(model: Any, threshold: float | None = None, settings: Any = None,
                      saved: Mapping[str, float] | None = None) -> float:
    """The confidence below which a query counts as rejected (out of scope), as the
    conversation's guard decides it, in order of precedence:

    1. the explicit ``threshold``;
    2. ``settings.oos_threshold`` when set (the operator's override);
    3. the out-of-scope threshold saved with the model: ``saved["oos_threshold"]`` (the
       contract's ``response_metadata["thresholds"]``), else ``model.thresholds`` (the contract's
       property, models/base.py);
    4. ``DEFAULT_THRESHOLD`` (0.5).
    """
    if threshold is not None:
        return float(threshold)
    if settings is not None and settings.oos_threshold is not None:
        return float(settings.oos_threshold)
    if not saved:
        try:
            saved = dict(model.thresholds or {})
        except BackendUnavailable:  # e.g. an untrained model cannot load its metrics
            saved = {}
    if saved.get("oos_threshold") is not None:
        return float(saved["oos_threshold"])
    return DEFAULT_THRESHOLD


def cost_per_1k(cpu_seconds: float, n: int, provider_usd: float = 0.0, settings: Any = None) -> float:
    """Estimated USD per 1,000 queries: ``cpu_seconds`` of CPU time for ``n`` queries priced at
    ``settings.cost_per_cpu_hour`` (USD per CPU-core hour; default: the app settings), plus
    ``provider_usd`` (what a provider charged for the same ``n`` queries). Raises ``ValueError``
    for ``n <= 0``."""
    if n <= 0:
        raise ValueError("cost_per_1k needs n > 0 queries")
    if settings is None or getattr(settings, "cost_per_cpu_hour", None) is None:
        from config.settings import get_settings

        settings = get_settings()
    return (cpu_seconds / 3600.0 * float(settings.cost_per_cpu_hour) + provider_usd) * 1000.0 / n


def escalation_rate(preds: Sequence[Any]) -> float | None:
    """Fraction of predictions whose ``extra["cascade"]`` lists more than one arm (escalated);
    None when no prediction comes from a cascade."""
    paths = [p.extra["cascade"] for p in preds if "cascade" in p.extra]
    return sum(len(p) > 1 for p in paths) / len(paths) if paths else None


def resolve_clarify_threshold(oos_threshold: float, settings: Any = None,
                              saved: Mapping[str, float] | None = None) -> float:
    """The confidence below which a routed query gets a clarifying question instead:
    ``settings.clarify_threshold`` when set, else ``saved["clarify_threshold"]``, else the
    out-of-scope threshold (no clarify band); never below ``oos_threshold``."""
    value = None
    if settings is not None and settings.clarify_threshold is not None:
        value = float(settings.clarify_threshold)
    elif saved and saved.get("clarify_threshold") is not None:
        value = float(saved["clarify_threshold"])
    return max(oos_threshold, value if value is not None else oos_threshold)


def guard_actions(preds: Sequence[Any], oos_threshold: float, clarify_threshold: float) -> list[str]:
    """"out_of_scope" | "clarify" | "route" per prediction (``intent``, ``confidence``): declined
    when the label is ``out_of_scope`` or the confidence is below ``oos_threshold``; clarify
    below ``clarify_threshold``; routed otherwise."""
    from training.data import OUT_OF_SCOPE

    out = []
    for p in preds:
        if p.intent == OUT_OF_SCOPE or p.confidence < oos_threshold:
            out.append("out_of_scope")
        elif p.confidence < clarify_threshold:
            out.append("clarify")
        else:
            out.append("route")
    return out


def in_scope_score(p: Any) -> float:
    """Best confidence among the prediction's ranked labels other than ``out_of_scope`` (the
    score of ``oos_auroc``: high = in scope)."""
    from training.data import OUT_OF_SCOPE

    return max((float(c) for i, c in p.ranking if i != OUT_OF_SCOPE), default=0.0)


def guard_metrics(preds: Sequence[Any], gold: Sequence[str], oos_threshold: float, clarify_threshold: float) -> dict[str, float | None]:
    """in_scope_rejection, clarify_rate (fractions of all rows), routed_accuracy (among routed
    rows; None when none is routed) and ece (15 bins) of predictions on in-scope rows ``gold``."""
    from training.thresholds import expected_calibration_error

    acts = guard_actions(preds, oos_threshold, clarify_threshold)
    n = len(acts)
    routed = [p.intent == g for p, g, a in zip(preds, gold, acts) if a == "route"]
    return {
        "in_scope_rejection": acts.count("out_of_scope") / n if n else None,
        "clarify_rate": acts.count("clarify") / n if n else None,
        "routed_accuracy": float(np.mean(routed)) if routed else None,
        "ece": expected_calibration_error([p.confidence for p in preds], [p.intent == g for p, g in zip(preds, gold)]),
    }


def percentile_ms(values: Sequence[float], q: float) -> float | None:
    """``q``-th percentile (0-100, linear interpolation, numpy) of ``values``; None if empty."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None


def confused_pairs(y_true: Sequence[str], y_pred: Sequence[str], top: int = 10) -> list[dict[str, Any]]:
    """The ``top`` most frequent off-diagonal (gold, predicted) pairs of the confusion matrix."""
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(y_true) | set(y_pred))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    np.fill_diagonal(cm, 0)
    flat = np.argsort(-cm, axis=None, kind="stable")[:top]
    out = []
    for idx in flat:
        i, j = divmod(int(idx), len(labels))
        if cm[i, j] <= 0:
            break
        out.append({"gold": labels[i], "predicted": labels[j], "count": int(cm[i, j])})
    return out


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """accuracy, macro_f1 (over the gold label set, zero_division=0) and per-intent
    precision/recall/f1/support, all from scikit-learn."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    labels = sorted(set(y_true))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_intent": {
            lab: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                  "f1": round(float(f[i]), 4), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
    }
