"""Eval report folder: ``report.json``, ``report.md`` and PNG plots (matplotlib, Agg backend).

Plots:
- ``confusion_<backend>.png``: confusion matrix (row-normalised, %) restricted to the intents
  involved in that backend's most confused pairs;
- ``latency_cdf.png``: empirical CDF of single-query latency (ms, log x axis) per backend;
- ``accuracy_vs_p50.png``: accuracy against p50 latency, one point per backend;
- ``comparison.png``: accuracy against p50 latency and against the estimated cost per 1,000
  queries side by side, one labelled point per backend (and routing policy such as the cascade).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from evals.devsets import devsets_markdown
from evals.runner import BackendReport


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _tick_label(v: float, sci: bool = False) -> str:
    """The label of a log-axis tick: plain ("5", "0.02", "2000"), or with ``sci`` mathtext
    powers of ten ("$3\\times10^{-5}$", "$10^{-4}$")."""
    if v <= 0:
        return ""
    if not sci:
        return f"{v:g}"
    exp = int(np.floor(np.log10(v) + 1e-9))
    mant = round(v / 10.0 ** exp, 2)
    return f"$10^{{{exp}}}$" if mant == 1 else f"${mant:g}\\times10^{{{exp}}}$"


def _plain_log_ticks(ax, lo: float | None = None, hi: float | None = None) -> None:
    """Log-scale x axis with readable, non-overlapping labels: plain 1, 2, 5, 10, 20... when
    every such label in the range takes at most 5 characters; otherwise (tiny costs such as
    0.00005, huge counts) every label is a power of ten, at 1 and 3 per decade (1 per decade
    beyond 4 decades). ``lo``/``hi``: the axis limits the plot uses (default: the current ones)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if lo is None or hi is None:
        lo, hi = ax.get_xlim()
    lo, hi = max(min(lo, hi), 1e-300), max(lo, hi)
    e_lo, e_hi = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    ticks = [m * 10.0 ** e for e in range(e_lo, e_hi + 1) for m in (1.0, 2.0, 5.0)]
    sci = any(len(f"{t:g}") > 5 or "e" in f"{t:g}" for t in ticks if lo <= t <= hi)
    subs = ((1.0, 3.0) if e_hi - e_lo <= 4 else (1.0,)) if sci else (1.0, 2.0, 5.0)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _tick_label(v, sci)))
    ax.xaxis.set_minor_formatter(NullFormatter())


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
    ax.set_yticks(range(len(intents)), [f"{lab} (n={int(rows[i, 0])})" for i, lab in enumerate(intents)], fontsize=8)
    for i in range(len(intents)):
        for j in range(len(cols)):
            if cm[i, j]:
                ax.text(j, i, f"{pct[i, j]:.0f}%\n{cm[i, j]}", ha="center", va="center", fontsize=6,
                        color="white" if pct[i, j] > 60 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold (support)")
    ax.set_title(f"{rep.backend}: most confused intents (% of gold row and count)\n"
                 f"sample of n={rep.n} rows, {len(pairs)} with these gold intents", fontsize=9)
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
    ax.set_title(f"Latency CDF per backend (single queries: {', '.join(f'{r.backend} n={len(r.latencies_ms)}' for r in reps)})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_accuracy_vs_latency(reports: Mapping[str, BackendReport], path: Path) -> Path | None:
    """Accuracy (%) against p50 latency (ms, log scale), one labelled point per backend; None
    (no plot) unless at least two backends have both figures."""
    reps = [r for r in reports.values() if r.accuracy is not None and r.p50_ms is not None]
    if len(reps) < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in reps:
        ax.scatter([r.p50_ms], [r.accuracy * 100], s=60)
        ax.annotate(f"{r.backend}\n{r.accuracy * 100:.1f} %, {r.p50_ms:.1f} ms", (r.p50_ms, r.accuracy * 100),
                    textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xscale("log")
    lo = min(r.accuracy for r in reps) * 100
    ax.set_ylim(max(0, lo - 10), 100)
    xs = [r.p50_ms for r in reps]
    ax.set_xlim(min(xs) / 3, max(xs) * 3)
    _plain_log_ticks(ax, min(xs) / 3, max(xs) * 3)
    ax.set_xlabel("p50 single-query latency (ms, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"Accuracy vs latency (accuracy on n={max(r.n for r in reps)} rows, "
                 f"latency on {', '.join(str(r.latency_n) for r in reps)} single queries)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_comparison(reports: Mapping[str, BackendReport], path: Path) -> Path | None:
    """Two panels sharing the accuracy axis (%): against p50 single-query latency (ms) and
    against the estimated cost per 1,000 queries (USD), both log scale; one labelled point per
    backend with accuracy, p50 and cost (and the escalation rate of a cascade). None unless at
    least two backends have accuracy, p50 and cost (one point compares nothing)."""
    fig = comparison_figure(reports)
    if fig is None:
        return None
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def comparison_figure(reports: Mapping[str, BackendReport]):
    """The matplotlib figure of :func:`plot_comparison` (axes: latency, cost), not saved or
    closed; None unless at least two backends have accuracy, p50 and cost."""
    reps = [r for r in reports.values() if r.accuracy is not None and r.p50_ms and r.cost_per_1k_usd]
    if len(reps) < 2:
        return None
    plt = _plt()
    fig, (ax_l, ax_c) = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, r in enumerate(reps):
        c = colours[k % len(colours)]
        esc = f", {r.escalation_rate * 100:.0f} % escalated" if r.escalation_rate is not None else ""
        label = f"{r.backend}: {r.accuracy * 100:.1f} %, p50 {r.p50_ms:.1f} ms, ${r.cost_per_1k_usd:.2e} per 1,000 queries{esc}"
        ax_l.scatter([r.p50_ms], [r.accuracy * 100], s=70, color=c, label=label)
        ax_c.scatter([r.cost_per_1k_usd], [r.accuracy * 100], s=70, color=c)
        offset = (6, 5 - 12 * (k % 3))  # staggered, so neighbouring points keep readable names
        ax_l.annotate(r.backend, (r.p50_ms, r.accuracy * 100), textcoords="offset points", xytext=offset, fontsize=8)
        ax_c.annotate(r.backend, (r.cost_per_1k_usd, r.accuracy * 100), textcoords="offset points",
                      xytext=offset, fontsize=8)
    for ax, xs, name in ((ax_l, [r.p50_ms for r in reps], "p50 single-query latency (ms, log scale)"),
                         (ax_c, [r.cost_per_1k_usd for r in reps], "estimated cost per 1,000 queries (USD, log scale)")):
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 3, max(xs) * 3)
        _plain_log_ticks(ax, min(xs) / 3, max(xs) * 3)
        ax.set_xlabel(name)
        ax.grid(True, which="both", alpha=0.3)
    lo = min(r.accuracy for r in reps) * 100
    ax_l.set_ylim(max(0, lo - 10), 100)
    ax_l.set_ylabel("accuracy (%)")
    fig.suptitle(f"Accuracy vs latency vs cost (accuracy on n={max(r.n for r in reps)} rows, latency on "
                 f"{', '.join(f'{r.backend} n={r.latency_n}' for r in reps)} single queries)", fontsize=10)
    fig.legend(loc="lower center", ncol=1, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.04 * len(reps), 1, 1))
    return fig


def near_duplicate_label_pairs(texts: list[str], labels: list[str], limit: int = 50) -> list[dict[str, str]]:
    """Pairs of rows whose texts are identical after lower-casing and dropping everything but
    letters and digits ("fees for top-ups" vs "fees for top ups") but whose gold labels
    differ: known label noise. Returns at most ``limit`` ``{"text_a", "label_a", "text_b",
    "label_b"}`` dicts, in row order."""
    seen: dict[str, tuple[str, str]] = {}
    out: list[dict[str, str]] = []
    reported: set[tuple[str, str]] = set()
    for t, y in zip(texts, labels):
        key = re.sub(r"[^a-z0-9]", "", t.lower())
        if key in seen and seen[key][1] != y and (key, y) not in reported:
            reported.add((key, y))
            out.append({"text_a": seen[key][0], "label_a": seen[key][1], "text_b": t, "label_b": y})
        seen.setdefault(key, (t, y))
    return out[:limit]


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
    lines += ["", "| backend | CPU ms / query | cost per 1,000 queries (USD) | escalation rate |",
              "|---|---:|---:|---:|"]
    lines += [f"| {r.backend} | {_fmt(r.cpu_ms_per_query, nd=3)} | {_fmt(r.cost_per_1k_usd, nd=5)} | "
              f"{_fmt(r.escalation_rate, True)} |" for r in reports.values()]
    lines += ["", "Cost: the process CPU time of the batched predictions at BANKING_COST_PER_CPU_HOUR, plus "
              "the provider's token price the answers report (gemini). Escalation: share of queries a cascade "
              "passed on from its first arm."]
    if plots.get("comparison"):
        lines += ["", f"![accuracy vs latency vs cost]({plots['comparison']})"]
    lines += ["", "| backend | in-scope declined | clarify rate | routed accuracy | ECE (15 bins) | OOS AUROC | "
              "thresholds (oos / clarify) | robustness accuracy |", "|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in reports.values():
        thr = "–" if r.threshold is None else f"{r.threshold:.3f} / {r.clarify_threshold:.3f}"
        lines.append(f"| {r.backend} | {_fmt(r.in_scope_rejection, True)} | {_fmt(r.clarify_rate, True)} | "
                     f"{_fmt(r.routed_accuracy, True)} | {_fmt(r.ece, nd=4)} | {_fmt(r.oos_auroc, nd=4)} | {thr} | "
                     f"{_fmt(r.robustness_accuracy, True)} |")
    lines += ["", "Declined = label `out_of_scope` or confidence below the out-of-scope threshold; clarify = "
              "not declined and below the clarify threshold; routed accuracy counts the remaining rows. "
              "Accuracy counts any label outside the gold set (e.g. `small_talk` on a BANKING77 row) as wrong."]
    kinds = sorted({k for r in reports.values() for k in r.robustness_per_kind})
    if kinds:
        lines += ["", "### Robustness per perturbation kind (accuracy on the seeded perturbed copy)", "",
                  "| backend | " + " | ".join(f"{k} (n={next(r.robustness_per_kind[k]['n'] for r in reports.values() if k in r.robustness_per_kind)})" for k in kinds) + " |",
                  "|---|" + "---:|" * len(kinds)]
        for r in reports.values():
            if r.robustness_per_kind:
                lines.append(f"| {r.backend} | " + " | ".join(
                    _fmt(r.robustness_per_kind[k]["accuracy"], True) if k in r.robustness_per_kind else "–" for k in kinds) + " |")
    lines += devsets_markdown(reports)
    noise = meta.get("label_noise") or []
    if noise:
        lines += ["", f"### Known label noise: {len(noise)} near-identical pairs with different gold labels", "",
                  "| text | gold | near-identical text | gold |", "|---|---|---|---|"]
        lines += [f"| {p['text_a'].replace('|', '/')} | {p['label_a']} | {p['text_b'].replace('|', '/')} | {p['label_b']} |"
                  for p in noise]
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
    for key, fn in (("latency_cdf", plot_latency_cdf), ("accuracy_vs_p50", plot_accuracy_vs_latency),
                    ("comparison", plot_comparison)):
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


def render_conversations_markdown(summaries: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """The task completion report (Markdown): one row per backend, then every failing
    conversation with why. ``summaries``: backend -> ``evals.conversations.summary(...)``."""
    lines = [f"# Conversation tests: task completion ({meta.get('folder', '?')})", "",
             f"Generated {meta.get('generated_at', '')}; {meta.get('n', '?')} conversations, each on a freshly "
             "seeded demo bank. A conversation is completed when every turn's expected status, intent, slots and "
             "answer fragments hold and the database shows exactly the expected effects (nothing else changed).",
             "", "| backend | conversations | completed | task completion | seconds |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {b} | {s['n']} | {s['completed']} | {_fmt(s['task_completion_rate'], True)} | {s['seconds']} |"
              for b, s in summaries.items()]
    for b, s in summaries.items():
        if s["failing"]:
            lines += ["", f"## {b}: {len(s['failing'])} not completed", ""]
            for f in s["failing"]:
                why = "; ".join(x.replace("|", "/").replace("\n", " ") for x in f["failures"])
                lines.append(f"- `{f['file']}` ({f['name']}): {why}")
    return "\n".join(lines) + "\n"


def write_conversation_report(summaries: Mapping[str, Mapping[str, Any]], out_dir: Path,
                              meta: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.json`` (``{"meta", "conversations": {backend: summary}}``) and
    ``report.md`` (:func:`render_conversations_markdown`) into ``out_dir`` (created)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(meta or {})}
    files = {"report.json": out_dir / "report.json", "report.md": out_dir / "report.md"}
    files["report.json"].write_text(json.dumps({"meta": dict(meta), "conversations": dict(summaries)}, indent=2),
                                    encoding="utf-8")
    files["report.md"].write_text(render_conversations_markdown(summaries, meta), encoding="utf-8")
    return files
