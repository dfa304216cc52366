"""Reading the benchmark log (JSON lines written by ``evals.benchmark``): its rows, and one
summary row per arm and model version (probe figures, live figures, shadow agreement).

The row fields are described in ``evals/benchmark.py``'s module docstring.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["default_log_path", "read_log", "summarise_log"]


def default_log_path(settings: Any) -> Path:
    """``<home>/benchmarks/benchmarks.jsonl``."""
    return Path(settings.home) / "benchmarks" / "benchmarks.jsonl"


def read_log(path: Path) -> list[dict[str, Any]]:
    """All well-formed JSON object lines of the log (others skipped); [] when missing."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _arm_of(row: dict[str, Any]) -> str:
    return str(row.get("arm") or row.get("backend"))


def summarise_log(path: Path) -> list[dict[str, Any]]:
    """One row per arm and model version in the log, sorted by arm then first seen.

    Probe rows (``kind`` "probe" or absent) group by (arm, model_version); live and shadow rows
    join their arm's group of the same version, else the arm's latest probe group (a cascade's
    live answers name the version of the backend that answered), else a group of their own.

    Keys: arm, backend, model_version, rounds (probe lines), errors (probe lines with an error),
    first_timestamp, last_timestamp, last_accuracy, mean_accuracy, min_accuracy, busy_rounds
    (error-free probe lines measured while requests arrived), mean_p50_ms, mean_p99_ms,
    last_p50_ms, last_p99_ms, device (last), last_error, rss_mb, cost_per_1k_usd and
    escalation_rate (last probe line); live_requests, mean_confidence, declined_share and
    clarified_share (fractions of the live requests the guard declined as out of scope / asked
    to clarify), live_p50_ms, live_p99_ms (classification latency of live requests); shadow_n,
    shadow_agreement (fraction of the shadow runs that agreed with the answering arm),
    shadow_errors. Accuracy means are over the error-free probe lines, latency means over the
    error-free quiet ones (``concurrent_requests`` 0 or absent); None when there is none.
    Missing file -> [].
    """
    from evals.metrics import percentile_ms

    rows_all = read_log(path)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows_all:
        if row.get("kind", "probe") == "probe":
            groups.setdefault((_arm_of(row), str(row.get("model_version"))), []).append(row)
    for row in rows_all:
        if row.get("kind", "probe") == "probe":
            continue
        key = (_arm_of(row), str(row.get("model_version")))
        if key not in groups:
            same_arm = [k for k in groups if k[0] == key[0]]
            key = same_arm[-1] if same_arm else key
        groups.setdefault(key, []).append(row)
    out = []
    for (arm, version), rows in groups.items():
        probes = [r for r in rows if r.get("kind", "probe") == "probe"]
        live = [r for r in rows if r.get("kind") == "live"]
        shadow = [r for r in rows if r.get("kind") == "shadow"]
        ok = [r for r in probes if not r.get("error") and r.get("accuracy") is not None]
        quiet = [r for r in ok if not r.get("concurrent_requests")]
        last = probes[-1] if probes else {}
        lat = [float(r["latency_ms"]) for r in live if r.get("latency_ms") is not None]
        compared = [r for r in shadow if r.get("agree") is not None]
        share = lambda action: round(sum(r.get("action") == action for r in live) / len(live), 4) if live else None  # noqa: E731
        r3 = lambda x: None if x is None else round(x, 3)  # noqa: E731
        out.append({
            "arm": arm,
            "backend": str(last.get("backend") or rows[0].get("backend") or arm.partition("@")[0]),
            "model_version": version,
            "rounds": len(probes),
            "errors": len(probes) - len(ok),
            "first_timestamp": rows[0].get("timestamp"),
            "last_timestamp": rows[-1].get("timestamp"),
            "last_accuracy": last.get("accuracy"),
            "mean_accuracy": _mean([r["accuracy"] for r in ok]),
            "min_accuracy": min((r["accuracy"] for r in ok), default=None),
            "busy_rounds": len(ok) - len(quiet),
            "mean_p50_ms": _mean([r["p50_ms"] for r in quiet if r.get("p50_ms") is not None]),
            "mean_p99_ms": _mean([r["p99_ms"] for r in quiet if r.get("p99_ms") is not None]),
            "last_p50_ms": last.get("p50_ms"),
            "last_p99_ms": last.get("p99_ms"),
            "device": last.get("device"),
            "last_error": last.get("error"),
            "rss_mb": last.get("rss_mb"),
            "cost_per_1k_usd": last.get("cost_per_1k_usd"),
            "escalation_rate": last.get("escalation_rate"),
            "live_requests": len(live),
            "mean_confidence": _mean([float(r["confidence"]) for r in live if r.get("confidence") is not None]),
            "declined_share": share("out_of_scope"),
            "clarified_share": share("clarify"),
            "live_p50_ms": r3(percentile_ms(lat, 50)),
            "live_p99_ms": r3(percentile_ms(lat, 99)),
            "shadow_n": len(shadow),
            "shadow_agreement": _mean([1.0 if r["agree"] else 0.0 for r in compared]),
            "shadow_errors": len(shadow) - len(compared),
        })
    out.sort(key=lambda r: r["arm"])
    return out
