"""One eval runner for every intent backend, on the same examples, measured the same way.

For each backend (any ``models.base.IntentChatModel``):

- exact-match accuracy and macro-F1 over the intents present in the gold labels, plus
  per-intent precision / recall / F1 (scikit-learn ``accuracy_score``, ``f1_score``,
  ``precision_recall_fscore_support``), from predictions made in batches (``classify_batch``);
- the most confused (gold, predicted) label pairs (scikit-learn ``confusion_matrix``);
- single-query latency p50 / p99 in ms: wall-clock time of ``model.invoke(text)`` (the path a
  served request takes) on a seeded sample of ``latency_sample`` texts, one at a time. Backends
  whose predictions already carry a per-query latency (``per_query_latency = True``, e.g. the
  remote gemini backend, which sends one request per text) are not called again: their
  predictions' ``latency_ms`` are used;
- the guard, as the conversation applies it (``guard_actions``): a row is *declined* when its
  label is ``out_of_scope`` or its confidence is below the out-of-scope threshold, gets a
  *clarifying question* below the clarify threshold, else is *routed*. ``in_scope_rejection``
  (declined in-scope rows), ``clarify_rate``, ``routed_accuracy`` (accuracy among routed rows),
  and ``ece`` (expected calibration error of the top-1 confidence, 15 bins; Guo et al. 2017);
- out-of-scope rejection (when OOS texts are given): the fraction of OOS queries declined, and
  ``oos_auroc``: ROC AUC separating in-scope rows from OOS queries by the best in-scope
  confidence (the max-probability score of Hendrycks & Gimpel 2017, with the learned
  ``out_of_scope`` class left out);
- robustness (``robustness=True``): accuracy on a seeded perturbed copy of the rows
  (``training.augment.perturbed_copy``: typos, casing, abbreviations, openers/closers, context
  sentences, long messages), overall and per perturbation kind;
- the hand-written dev sets (``devsets``: chatty, typos with their clean twins, other languages;
  ``evals.devsets``): accuracy, in-scope declined, and for misspelt sets the gap to the clean
  twins and the misspelt in-scope rows declined as out_of_scope with confidence >= 0.9;
- cost per 1,000 queries (USD, :func:`evals.metrics.cost_per_1k`): the process CPU time of the batched
  predictions priced at ``settings.cost_per_cpu_hour``, plus the provider's price of the tokens
  the answers report (``extra["cost_usd"]``, gemini);
- the escalation rate of a cascade (chains/policies.py): the fraction of queries whose answers
  record more than one arm in ``extra["cascade"]``.

Accuracy counts any label outside the gold label set (an extra label such as ``small_talk`` or
``out_of_scope`` on a BANKING77 row) as an error.

Errors of one backend (``BackendUnavailable`` or any exception) are recorded in its report's
``error`` and never stop the others. The measures themselves are pure functions in
``evals/metrics.py``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from evals.metrics import (
    classification_metrics, confused_pairs, cost_per_1k, escalation_rate, guard_actions, guard_metrics, in_scope_score,
    percentile_ms, resolve_clarify_threshold, resolve_threshold,
)

@dataclass
class BackendReport:
    """Results of one backend on one dataset.

    Rates are fractions in [0, 1]; latencies are milliseconds. ``confused_pairs`` is a list of
    ``{"gold", "predicted", "count"}`` dicts, most frequent first. ``failures``: messages of
    single queries the backend could not answer (counted as wrong, see ``predict_all``). ``latencies_ms`` holds the
    measured single-query latencies (for the CDF plot); ``y_true``/``y_pred`` the gold and
    predicted labels (for the confusion plot).
    """

    backend: str
    model_version: str = "unknown"
    n: int = 0
    accuracy: float | None = None
    macro_f1: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    confused_pairs: list[dict[str, Any]] = field(default_factory=list)
    per_intent: dict[str, dict[str, float]] = field(default_factory=dict)
    oos_rejection: float | None = None
    oos_n: int = 0
    threshold: float | None = None
    clarify_threshold: float | None = None
    in_scope_rejection: float | None = None
    clarify_rate: float | None = None
    routed_accuracy: float | None = None
    ece: float | None = None
    oos_auroc: float | None = None
    robustness_accuracy: float | None = None
    robustness_per_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    devsets: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str = "unknown"
    error: str | None = None
    latency_n: int = 0
    latency_source: str = ""
    failures: list[str] = field(default_factory=list)
    eval_seconds: float = 0.0
    cpu_ms_per_query: float | None = None
    cost_per_1k_usd: float | None = None
    escalation_rate: float | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    y_true: list[str] = field(default_factory=list, repr=False)
    y_pred: list[str] = field(default_factory=list, repr=False)

    def summary(self, include_oos: bool | None = None) -> dict[str, Any]:
        """The one-line JSON view: backend, model_version, n, accuracy, macro_f1, p50_ms,
        p99_ms, confused_pairs, cpu_ms_per_query, cost_per_1k_usd (+ escalation_rate for a
        cascade, + oos_rejection when OOS was measured, + devsets when scored, + error when any)."""
        out: dict[str, Any] = {
            "backend": self.backend,
            "model_version": self.model_version,
            "n": self.n,
            "accuracy": _r(self.accuracy),
            "macro_f1": _r(self.macro_f1),
            "p50_ms": _r(self.p50_ms, 3),
            "p99_ms": _r(self.p99_ms, 3),
            "confused_pairs": self.confused_pairs,
            "in_scope_rejection": _r(self.in_scope_rejection),
            "clarify_rate": _r(self.clarify_rate),
            "routed_accuracy": _r(self.routed_accuracy),
            "ece": _r(self.ece),
            "threshold": self.threshold,
            "clarify_threshold": self.clarify_threshold,
        }
        if include_oos or (include_oos is None and self.oos_n):
            out["oos_rejection"] = _r(self.oos_rejection)
            out["oos_auroc"] = _r(self.oos_auroc)
        if self.robustness_accuracy is not None:
            out["robustness_accuracy"] = _r(self.robustness_accuracy)
            out["robustness_per_kind"] = self.robustness_per_kind
        if self.devsets:
            out["devsets"] = self.devsets
        out["cpu_ms_per_query"] = _r(self.cpu_ms_per_query, 4)
        out["cost_per_1k_usd"] = _r(self.cost_per_1k_usd, 6)
        if self.escalation_rate is not None:
            out["escalation_rate"] = _r(self.escalation_rate)
        if self.failures:
            out["failed_queries"] = len(self.failures)
        if self.error:
            out["error"] = self.error
        return out


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


def robustness(model: Any, texts: Sequence[str], labels: Sequence[str], seed: int, batch_size: int = 64,
               progress: Any = None, failures: list[str] | None = None) -> tuple[float, dict[str, dict[str, float]]]:
    """Accuracy on the seeded perturbed copy of ``texts`` (``training.augment.perturbed_copy``):
    (overall accuracy, {kind: {"accuracy", "n"}})."""
    from training.augment import perturbed_copy

    noisy, kinds = perturbed_copy(list(texts), seed)
    preds = predict_all(model, noisy, batch_size, progress, failures)
    ok = np.array([p.intent == y for p, y in zip(preds, labels)])
    per = {k: {"accuracy": round(float(ok[[kk == k for kk in kinds]].mean()), 4), "n": kinds.count(k)}
           for k in dict.fromkeys(kinds)}
    return float(ok.mean()), per


def _batches(seq: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(seq), size):
        yield list(seq[i : i + size])


def _device_of(model: Any) -> str:
    """``model.device`` when the backend exposes one ("remote" for API backends); otherwise
    "cpu" when this process has no CUDA device (so a local model can only be on the CPU),
    else "unknown"."""
    dev = model.device
    if dev is not None:
        return str(dev)
    try:
        import torch

        return "unknown" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


FAILED_LABEL = "(failed)"


def predict_all(model: Any, texts: Sequence[str], batch_size: int = 64, progress: Any = None,
                failures: list[str] | None = None) -> list:
    """``model.classify_batch`` over ``texts`` in chunks of ``batch_size``; returns the
    ``IntentPrediction`` list. ``progress``: an optional tqdm bar advanced per text.

    A chunk that fails with a per-query error (an exception whose class has
    ``per_query = True``, e.g. a refused or malformed Gemini answer) keeps the answers the error
    carries in ``partial`` (predictions and per-query errors in input order; without it the
    chunk is retried one text at a time). A text that failed becomes a prediction
    ``FAILED_LABEL`` with confidence 0 (so it counts as wrong) and its message is appended to
    ``failures``. Any other exception propagates.
    """
    from models.base import IntentPrediction

    def failed(e: BaseException) -> IntentPrediction:
        if failures is not None:
            failures.append(f"{type(e).__name__}: {e}")
        return IntentPrediction(FAILED_LABEL, 0.0, [(FAILED_LABEL, 0.0)])

    preds = []
    for chunk in _batches(texts, batch_size):
        try:
            preds.extend(model.classify_batch(chunk))
        except Exception as e:  # noqa: BLE001
            if not getattr(e, "per_query", False):
                raise
            partial = getattr(e, "partial", None)
            if isinstance(partial, list) and len(partial) == len(chunk):
                preds.extend(failed(r) if isinstance(r, BaseException) else r for r in partial)
            else:
                for t in chunk:
                    try:
                        preds.extend(model.classify_batch([t]))
                    except Exception as e1:  # noqa: BLE001
                        if not getattr(e1, "per_query", False):
                            raise
                        preds.append(failed(e1))
        if progress is not None:
            progress.update(len(chunk))
    return preds


def measure_latency(model: Any, texts: Sequence[str], progress: Any = None) -> list[float]:
    """Wall-clock ms of ``model.invoke(text)`` for each text, one query at a time."""
    out = []
    for t in texts:
        t0 = time.perf_counter()
        model.invoke(t)
        out.append((time.perf_counter() - t0) * 1000.0)
        if progress is not None:
            progress.update(1)
    return out


def evaluate_model(
    model: Any,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    name: str | None = None,
    oos_texts: Sequence[str] | None = None,
    threshold: float | None = None,
    settings: Any = None,
    latency_sample: int = 200,
    batch_size: int = 64,
    seed: int = 13,
    top_confused: int = 10,
    progress: bool = True,
    robust: bool = False,
    devsets: Sequence[Any] = (),
) -> BackendReport:
    """Evaluate one backend on ``texts``/``labels`` (parallel lists of equal, non-zero length).

    Returns a ``BackendReport``; failures are reported in ``report.error``, never raised.
    ``latency_sample``: number of single queries timed (seeded sample, ``seed``); 0 skips
    latency. ``threshold``: see ``resolve_threshold``. ``progress``: show a tqdm bar (stderr).
    ``robust``: also score the seeded perturbed copy (``robustness``). ``devsets``:
    ``evals.devsets.DevSet``s scored into ``report.devsets`` (``evals.devsets.evaluate_devsets``).
    """
    from tqdm.auto import tqdm

    from evals.devsets import devset_rows, evaluate_devsets

    if len(texts) != len(labels) or not texts:
        raise ValueError("evaluate_model needs non-empty, parallel texts and labels.")
    name = name or getattr(model, "backend_name", "model")
    rep = BackendReport(backend=name, n=len(texts), device=_device_of(model))
    t_start = time.perf_counter()
    try:
        rep.model_version = str(model.model_version)
    except Exception as e:  # noqa: BLE001
        rep.model_version = f"unknown ({type(e).__name__})"
    per_query = bool(model.per_query_latency)
    n_lat = 0 if per_query else min(latency_sample, len(texts))
    n_oos = len(oos_texts or [])
    bar = tqdm(total=len(texts) * (2 if robust else 1) + n_lat + n_oos + devset_rows(devsets), desc=f"eval {name}", unit="q",
               disable=not progress, leave=False)
    try:
        cpu0 = time.process_time()
        preds = predict_all(model, texts, batch_size, bar, rep.failures)
        cpu_s = time.process_time() - cpu0
        rep.cpu_ms_per_query = cpu_s * 1000.0 / len(texts)
        provider = sum(float(p.extra.get("cost_usd") or 0.0) for p in preds)
        rep.cost_per_1k_usd = cost_per_1k(cpu_s, len(texts), provider, settings)
        rep.escalation_rate = escalation_rate(preds)
        if len(rep.failures) == len(texts):
            raise RuntimeError(f"every query failed; first: {rep.failures[0]}")
        rep.y_true, rep.y_pred = list(labels), [p.intent for p in preds]
        m = classification_metrics(rep.y_true, rep.y_pred)
        rep.accuracy, rep.macro_f1, rep.per_intent = m["accuracy"], m["macro_f1"], m["per_intent"]
        rep.confused_pairs = confused_pairs(rep.y_true, rep.y_pred, top_confused)
        if per_query:
            lat = [float(p.latency_ms) for p in preds]
            rng = random.Random(seed)
            rep.latencies_ms = rng.sample(lat, min(latency_sample, len(lat))) if latency_sample else []
            rep.latency_source = "per-query latency_ms reported by the backend"
        elif n_lat:
            rng = random.Random(seed)
            sample = [texts[i] for i in sorted(rng.sample(range(len(texts)), n_lat))]
            rep.latencies_ms = measure_latency(model, sample, bar)
            rep.latency_source = "wall-clock of model.invoke(text), one query at a time"
        rep.latency_n = len(rep.latencies_ms)
        rep.p50_ms = percentile_ms(rep.latencies_ms, 50)
        rep.p99_ms = percentile_ms(rep.latencies_ms, 99)
        saved = next((p.extra.get("thresholds") for p in preds if p.extra.get("thresholds")), None)
        rep.threshold = resolve_threshold(model, threshold, settings, saved)
        rep.clarify_threshold = resolve_clarify_threshold(rep.threshold, settings, saved)
        g = guard_metrics(preds, labels, rep.threshold, rep.clarify_threshold)
        rep.in_scope_rejection, rep.clarify_rate = g["in_scope_rejection"], g["clarify_rate"]
        rep.routed_accuracy, rep.ece = g["routed_accuracy"], g["ece"]
        if n_oos:
            from sklearn.metrics import roc_auc_score

            oos_preds = predict_all(model, list(oos_texts), batch_size, bar, rep.failures)
            rep.oos_n = len(oos_preds)
            acts = guard_actions(oos_preds, rep.threshold, rep.clarify_threshold)
            rep.oos_rejection = acts.count("out_of_scope") / rep.oos_n
            scores = [in_scope_score(p) for p in preds] + [in_scope_score(p) for p in oos_preds]
            rep.oos_auroc = float(roc_auc_score([1] * len(preds) + [0] * len(oos_preds), scores))
        if robust:
            rep.robustness_accuracy, rep.robustness_per_kind = robustness(
                model, texts, labels, seed, batch_size, bar, rep.failures)
        if devsets:
            rep.devsets = evaluate_devsets(model, devsets, rep.threshold, rep.clarify_threshold, batch_size, bar,
                                           rep.failures)
    except Exception as e:  # noqa: BLE001 - one backend's failure must not stop the others
        rep.error = f"{type(e).__name__}: {e}"
    finally:
        bar.close()
    rep.eval_seconds = time.perf_counter() - t_start
    return rep


def evaluate_models(
    models: Mapping[str, Any],
    texts: Sequence[str],
    labels: Sequence[str],
    **kwargs: Any,
) -> dict[str, BackendReport]:
    """Evaluate every backend in ``models`` (name -> IntentChatModel) on the same examples.

    Keyword arguments are those of ``evaluate_model``. Returns name -> ``BackendReport`` in the
    order of ``models``.
    """
    return {name: evaluate_model(m, texts, labels, name=name, **kwargs) for name, m in models.items()}
