"""Calibration and the thresholds of the out-of-scope / clarify guard.

- Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017): one
  scalar T > 0 divides the logits, fitted by minimising the negative log-likelihood on the
  validation rows; argmax (accuracy) is unchanged.
- Expected calibration error (ECE, Naeini et al. AAAI 2015; as in Guo et al. 2017) over 15
  equal-width confidence bins.
- Guard thresholds on the top-1 confidence (max softmax probability, the baseline detector of
  Hendrycks & Gimpel, ICLR 2017), on top of the learned ``out_of_scope`` class (outlier
  exposure, Hendrycks et al., ICLR 2019). A message is *declined* when its top label is
  ``out_of_scope`` or its confidence is below ``oos_threshold``; it gets a *clarifying question*
  when not declined and its confidence is below ``clarify_threshold``; otherwise it is *routed*.

  ``oos_threshold`` is the value that declines the most out-of-scope tuning queries while
  declining at most ``max_in_scope_rejection`` of the in-scope validation rows;
  ``clarify_threshold`` (>= oos_threshold) the lowest value at which the routed validation rows
  are at least ``target_precision`` correct.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15


def fit_temperature(logits: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Temperature T minimising the NLL of softmax(logits / T) on (logits (N, C) float, y (N,) int).
    Bounded search over log T (scipy ``minimize_scalar``). Raises ``ValueError`` on empty input."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if not len(y):
        raise ValueError("fit_temperature needs at least one row")

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    res = minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded")
    return float(np.exp(res.x))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE = sum_b (|B_b| / N) * |accuracy(B_b) - mean confidence(B_b)| over ``n_bins`` equal-width
    bins of (0, 1] (a confidence c falls in bin ceil(c * n_bins) - 1; 0 goes to the first).
    confidence (N,) float in [0, 1], correct (N,) bool. Returns a fraction; 0.0 for N = 0."""
    conf = np.asarray(confidence, dtype=np.float64)
    corr = np.asarray(correct, dtype=np.float64)
    if not conf.size:
        return 0.0
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(corr[m].mean() - conf[m].mean())
    return float(ece)


def tune_thresholds(
    val_confidence: np.ndarray,
    val_correct: np.ndarray,
    oos_confidence: np.ndarray,
    target_precision: float = 0.97,
    val_declined: np.ndarray | None = None,
    oos_declined: np.ndarray | None = None,
    max_in_scope_rejection: float = 0.01,
    oos_weights: np.ndarray | None = None,
    budget_rows: np.ndarray | None = None,
    budget_groups: list[np.ndarray] | None = None,
) -> dict[str, float]:
    """Choose the guard thresholds (see the module docstring).

    val_confidence (N,) float top-1 confidences on in-scope validation rows; val_correct (N,)
    bool; oos_confidence (M,) float on out-of-scope tuning queries (M may be 0: oos_threshold
    is then 0). ``val_declined`` (N,) / ``oos_declined`` (M,) bool: rows whose top label already
    is ``out_of_scope`` (declined whatever the threshold); default none. ``oos_weights`` (M,)
    float: weight of each out-of-scope row in the rejection rate (default equal). ``budget_rows``
    (N,) bool: the in-scope rows whose rejection the budget limits (default all); ``in_scope_kept``
    is reported over all rows. ``budget_groups``: further (N,) bool masks, each held to the same
budget on its own (e.g. the request intents' rows, so a small group is not hidden in a large one);
``budget_groups_kept`` reports each group's kept fraction.

    Returns {"oos_threshold", "clarify_threshold", "oos_rejection", "in_scope_kept",
    "accepted_precision", "clarify_rate"} (fractions in 0-1), measured on these rows.
    """
    vc = np.asarray(val_confidence, dtype=np.float64)
    ok = np.asarray(val_correct, dtype=bool)
    oc = np.asarray(oos_confidence, dtype=np.float64)
    vd = np.zeros(vc.shape, bool) if val_declined is None else np.asarray(val_declined, dtype=bool)
    od = np.zeros(oc.shape, bool) if oos_declined is None else np.asarray(oos_declined, dtype=bool)
    w = np.ones(oc.shape) if oos_weights is None else np.asarray(oos_weights, dtype=np.float64)
    w = w / w.sum() if w.size else w
    budget = np.ones(vc.shape, bool) if budget_rows is None else np.asarray(budget_rows, dtype=bool)
    groups = [budget] + [np.asarray(g, dtype=bool) for g in (budget_groups or []) if np.asarray(g).any()]
    oos_t = 0.0
    if oc.size:
        best = -1.0
        for t in np.unique(np.concatenate([vc, oc, [0.0]])):
            if max((vd | (vc < t))[g].mean() for g in groups) > max_in_scope_rejection:
                break  # candidates ascend: in-scope rejection only grows from here
            declined = float(((od | (oc < t)) * w).sum())
            if declined > best:
                best, oos_t = declined, float(t)
    kept = ~vd & (vc >= oos_t)
    clarify_t = oos_t
    for t in np.unique(vc[kept]) if kept.any() else []:
        routed = kept & (vc >= t)
        if routed.any() and ok[routed].mean() >= target_precision:
            clarify_t = float(t)
            break
    routed = kept & (vc >= clarify_t)
    return {
        "oos_threshold": oos_t,
        "clarify_threshold": clarify_t,
        "oos_rejection": float(((od | (oc < oos_t)) * w).sum()) if oc.size else 0.0,
        "in_scope_kept": float(kept.mean()) if kept.size else 0.0,
        "budget_rows_kept": float(kept[budget].mean()) if budget.any() else 0.0,
        "budget_groups_kept": [float(kept[g].mean()) for g in groups[1:]],
        "accepted_precision": float(ok[routed].mean()) if routed.any() else 0.0,
        "clarify_rate": float((kept & ~routed).mean()) if kept.size else 0.0,
    }
