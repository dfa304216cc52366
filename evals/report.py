"""Eval report folder: ``report.json``, ``report.md`` and PNG plots (matplotlib, Agg backend).

Plots:
- ``confusion_<backend>.png``: confusion matrix (row-normalised, %) restricted to the intents
  involved in that backend's most confused pairs;
- ``latency_cdf.png``: empirical CDF of single-query latency (ms, log x axis) per backend;
- ``accuracy_vs_p50.png``: accuracy against p50 latency, one point per backend.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from evals.runner import BackendReport


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_log_ticks(ax) -> None:
    """Log-scale x axis labelled 1, 2, 5, 10, 20... instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(fmt)
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def plot_confusion(rep: BackendReport, path: Path, max_intents: int = 14) -> Path | None:
    """Row-normalised confusion matrix of the intents in ``rep.confused_pairs`` (at most
    ``max_intents``). Returns the PNG path, or None when there is nothing to plot."""
    from sklearn.metrics import confusion_matrix

    if not rep.y_true or not rep.confused_pairs:
        return None
    intents: list[str] = []
    for p in rep.confused_pairs:
        for lab in (p["gold"], p["predicted"]):
            if lab not in intents and len(intents) < max_intents:
                intents.append(lab)
    # Restrict to rows whose gold label is one of these intents; other predictions -> "(other)".
    pairs = [(t, p if p in intents else "(other)") for t, p in zip(rep.y_true, rep.y_pred) if t in intents]
    cols = intents + ["(other)"]
    cm = confusion_matrix([t for t, _ in pairs], [p for _, p in pairs], labels=cols)[: len(intents)]
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(cm * 100.0, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    plt = _plt()
    size = 0.55 * len(cols) + 3
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(intents)), intents, fontsize=8)
    for i in range(len(intents)):
        for j in range(len(cols)):
            if cm[i, j]:
                ax.text(j, i, f"{pct[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if pct[i, j] > 60 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"{rep.backend}: most confused intents (% of gold row)")
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency_cdf(reports: Mapping[str, BackendReport], path: Path) -> Path | None:
    """Empirical CDF of single-query latency per backend (ms, log scale)."""
    reps = [r for r in reports.values() if r.latencies_ms]
    if not reps:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in reps:
        x = np.sort(np.asarray(r.latencies_ms))
        y = np.arange(1, len(x) + 1) / len(x)
        ax.step(x, y, where="post", label=f"{r.backend} (p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, n={len(x)})")
    ax.set_xscale("log")
    _plain_log_ticks(ax)
    ax.set_xlabel("single-query latency (ms, log scale)")
    ax.set_ylabel("fraction of queries")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Latency CDF per backend")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_accuracy_vs_latency(reports: Mapping[str, BackendReport], path: Path) -> Path | None:
    """Accuracy (%) against p50 latency (ms, log scale), one labelled point per backend."""
    reps = [r for r in reports.values() if r.accuracy is not None and r.p50_ms is not None]
    if not reps:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in reps:
        ax.scatter([r.p50_ms], [r.accuracy * 100], s=60)
        ax.annotate(f"{r.backend}\n{r.accuracy * 100:.1f} %, {r.p50_ms:.1f} ms", (r.p50_ms, r.accuracy * 100),
                    textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xscale("log")
    _plain_log_ticks(ax)
    lo = min(r.accuracy for r in reps) * 100
    ax.set_ylim(max(0, lo - 10), 100)
    xs = [r.p50_ms for r in reps]
    ax.set_xlim(min(xs) / 3, max(xs) * 3)
    ax.set_xlabel("p50 single-query latency (ms, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Accuracy vs latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(x: Any, pct: bool = False, nd: int = 1) -> str:
    if x is None:
        return "–"
    return f"{x * 100:.{nd}f} %" if pct else f"{x:.{nd}f}"


def render_markdown(reports: Mapping[str, BackendReport], meta: Mapping[str, Any], plots: Mapping[str, str]) -> str:
    """The human-readable report (a GitHub-flavoured Markdown string)."""
    lines = [f"# Intent backend evaluation: {meta.get('dataset', '?')}", ""]
    lines.append(f"Generated {meta.get('generated_at', '')}; n = {meta.get('n', '?')} examples"
                 + (f"; {meta['oos_n']} out-of-scope queries" if meta.get("oos_n") else "") + ".")
    lines += ["", "| backend | model version | n | accuracy | macro-F1 | p50 ms | p99 ms | OOS rejection | error |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in reports.values():
        oos = f"{_fmt(r.oos_rejection, True)} (thr {r.threshold:.2f})" if r.oos_n else "–"
        lines.append(f"| {r.backend} | `{r.model_version}` | {r.n} | {_fmt(r.accuracy, True)} | "
                     f"{_fmt(r.macro_f1, True)} | {_fmt(r.p50_ms, nd=2)} | {_fmt(r.p99_ms, nd=2)} | {oos} | "
                     f"{(r.error or '').replace('|', '/')} |")
    lines += ["", "Accuracy and macro-F1 (scikit-learn, macro over the gold intents) come from batched "
              "predictions; latency is per single query, measured on a seeded sample "
              f"({', '.join(f'{r.backend}: n={r.latency_n}, {r.latency_source}' for r in reports.values() if r.latency_n)})."]
    if plots.get("latency_cdf"):
        lines += ["", f"![latency CDF]({plots['latency_cdf']})"]
    if plots.get("accuracy_vs_p50"):
        lines += ["", f"![accuracy vs p50]({plots['accuracy_vs_p50']})"]
    for r in reports.values():
        if r.error and r.accuracy is None:
            continue
        lines += ["", f"## {r.backend}", "", "Most confused pairs (gold → predicted, count):", ""]
        lines += [f"- {p['gold']} → {p['predicted']}: {p['count']}" for p in r.confused_pairs] or ["- none"]
        worst = sorted(r.per_intent.items(), key=lambda kv: kv[1]["f1"])[:5]
        if worst:
            lines += ["", "Lowest-F1 intents:", "", "| intent | precision | recall | F1 | support |",
                      "|---|---:|---:|---:|---:|"]
            lines += [f"| {k} | {v['precision']:.2f} | {v['recall']:.2f} | {v['f1']:.2f} | {v['support']} |"
                      for k, v in worst]
        if plots.get(f"confusion_{r.backend}"):
            lines += ["", f"![confusion {r.backend}]({plots[f'confusion_{r.backend}']})"]
    return "\n".join(lines) + "\n"


def write_report(reports: Mapping[str, BackendReport], out_dir: Path, meta: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and the PNG plots into ``out_dir`` (created).

    ``report.json`` = ``{"meta": {...}, "backends": {name: {backend, model_version, n, accuracy,
    macro_f1, p50_ms, p99_ms, oos_rejection, threshold, confused_pairs, per_intent, device,
    latency_n, error}}}``. Returns name -> path of every file written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(meta or {})}
    files: dict[str, Path] = {}
    plots: dict[str, str] = {}
    for name, r in reports.items():
        p = plot_confusion(r, out_dir / f"confusion_{name}.png")
        if p:
            files[f"confusion_{name}"] = p
            plots[f"confusion_{name}"] = p.name
    for key, fn in (("latency_cdf", plot_latency_cdf), ("accuracy_vs_p50", plot_accuracy_vs_latency)):
        p = fn(reports, out_dir / f"{key}.png")
        if p:
            files[key] = p
            plots[key] = p.name
    payload = {
        "meta": dict(meta),
        "backends": {
            name: {**r.summary(include_oos=True), "per_intent": r.per_intent, "device": r.device,
                   "latency_n": r.latency_n, "latency_source": r.latency_source,
                   "eval_seconds": round(r.eval_seconds, 2), "error": r.error}
            for name, r in reports.items()
        },
        "plots": plots,
    }
    files["report.json"] = out_dir / "report.json"
    files["report.json"].write_text(json.dumps(payload, indent=2), encoding="utf-8")
    files["report.md"] = out_dir / "report.md"
    files["report.md"].write_text(render_markdown(reports, meta, plots), encoding="utf-8")
    return files
