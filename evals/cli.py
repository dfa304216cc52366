"""The ``eval`` and ``bench-log`` subcommands of ``banking-assistant``.

``register(subparsers)`` adds both to an ``argparse`` subparsers object; each sets
``func=<handler>`` returning the exit code (``args.func(args)``). Standalone:
``python -m evals.cli eval ...``.

Exit codes: 0 success; 1 no backend could be evaluated; 2 bad input (CSV, OOS file, options).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

from chains.arms import POLICIES
from evals.cli_common import (  # noqa: F401 - KNOWN_BACKENDS and parse_backends are this module's API too
    KNOWN_BACKENDS, BackendFactory, _console, _err, _note, default_backend_factory, obtain_models, parse_backends,
)

class UsageError(Exception):
    """Bad command-line input; the message is printed and the exit code is 2."""


def register(subparsers: Any) -> None:
    """Add ``eval`` and ``bench-log`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "eval", help="Score intent backends on a labelled CSV (default: BANKING77 test).",
        description="Accuracy, macro-F1, single-query latency p50/p99, most confused pairs (and "
        "out-of-scope rejection with --oos-file) for each backend, on the same examples.")
    p.add_argument("--backends", default=",".join(KNOWN_BACKENDS),
                   help=f"Comma-separated backends ({','.join(KNOWN_BACKENDS)}), routing policies ({', '.join(POLICIES)}) or "
                   "pinned arms (custom@<version folder>); unavailable ones are skipped.")
    p.add_argument("--file", type=Path, help="A text,category CSV to score (default: BANKING77 test split).")
    p.add_argument("--split", choices=("test", "validation"), default="test",
                   help="BANKING77 split when --file is not given (default test).")
    p.add_argument("--oos-file", type=Path, help="JSON list of out-of-scope queries: adds oos_rejection and oos_auroc.")
    p.add_argument("--robustness", action="store_true",
                   help="Also score a seeded perturbed copy of the rows (typos, casing, abbreviations, "
                   "openers/closers, context sentences): adds robustness_accuracy, per kind in report.md.")
    p.add_argument("--devsets", type=Path, metavar="DIR", default=None,
                   help="Folder of hand-written dev sets (*.jsonl: text, label[, clean]) scored per backend "
                   "(default evals/data/devsets: chatty, typos with their clean twins, other languages).")
    p.add_argument("--no-devsets", action="store_true", help="Do not score the dev sets.")
    p.add_argument("--threshold", type=float, help="Confidence threshold for OOS rejection (default: BANKING_OOS_THRESHOLD, else the "
                   "backend's saved out-of-scope threshold, else 0.5; evals.runner.resolve_threshold).")
    p.add_argument("--limit", type=int, help="Score a seeded random sample of N examples.")
    p.add_argument("--latency-sample", type=int, default=200, help="Single queries timed per backend (default 200).")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", action="store_true", help="One JSON object per backend per line on stdout.")
    p.add_argument("--out", type=Path, help="Write report.json, report.md and PNG plots into this folder.")
    p.add_argument("--langsmith", action="store_true",
                   help="Also run the LangSmith suite (uploads when LANGSMITH_API_KEY is set, "
                   "which also switches this on; offline otherwise).")
    p.add_argument("--no-progress", action="store_true", help="No progress bar.")
    p.add_argument("--conversations", type=Path, metavar="DIR",
                   help="Instead of scoring intents, run the YAML conversations of DIR (tests/conversations) "
                   "through the whole assistant on a throw-away seeded bank: task completion rate per backend "
                   "(every turn's expectations and exactly the expected database effects).")
    p.set_defaults(func=cmd_eval)

    b = subparsers.add_parser("bench-log", help="Summarise the automatic benchmark log.",
                              description="One row per arm (backend, pinned version or cascade) and model "
                              "version of the JSONL log written by the every-N-requests benchmark: probe-set "
                              "figures, live requests and shadow agreement.")
    b.add_argument("--path", type=Path, help="Log file (default <BANKING_HOME>/benchmarks/benchmarks.jsonl).")
    b.add_argument("--json", action="store_true", help="Print the summary rows as JSON lines.")
    b.set_defaults(func=cmd_bench_log)


# --- helpers -------------------------------------------------------------------------------

def read_oos(path: Path) -> list[str]:
    """A JSON list of strings; raises ``UsageError`` otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read --oos-file {path}: {e}") from e
    if not isinstance(data, list) or not data or not all(isinstance(x, str) for x in data):
        raise UsageError(f"--oos-file {path} must be a non-empty JSON list of strings.")
    return data


def load_eval_data(args: argparse.Namespace, settings: Any) -> tuple[str, list[str], list[str]]:
    """(dataset name, texts, labels) for ``--file`` / ``--split`` / ``--limit``. Raises
    ``UsageError`` for a bad CSV or option, ``DataError`` when BANKING77 is missing."""
    from training.data import DataError, load_banking77, read_csv

    data = load_banking77(settings)
    if args.file:
        if not Path(args.file).is_file():
            raise UsageError(f"--file {args.file} does not exist.")
        try:
            split = read_csv(Path(args.file), data.intents)
        except DataError as e:
            raise UsageError(str(e)) from e
        if not len(split):
            raise UsageError(f"--file {args.file} has no rows.")
        name = f"csv-{Path(args.file).stem}"
    else:
        split = data.test if args.split == "test" else data.validation
        name = f"banking77-{args.split}"
    texts, labels = list(split.texts), list(split.labels)
    if args.limit is not None:
        if args.limit <= 0:
            raise UsageError("--limit must be a positive number.")
        if args.limit < len(texts):
            idx = sorted(random.Random(settings.seed).sample(range(len(texts)), args.limit))
            texts, labels = [texts[i] for i in idx], [labels[i] for i in idx]
    return name, texts, labels


def read_devsets(args: argparse.Namespace, settings: Any) -> list:
    """The dev sets to score (``evals.devsets.load_devsets``): [] with ``--no-devsets``; the
    folder ``--devsets`` (which must exist) or ``evals/data/devsets``. Raises ``UsageError`` for a
    missing folder or a bad file."""
    from evals.devsets import DevSetError, load_devsets
    from training.data import load_banking77

    if getattr(args, "no_devsets", False):
        return []
    folder = getattr(args, "devsets", None)
    if folder is not None and not Path(folder).is_dir():
        raise UsageError(f"--devsets {folder} is not a folder.")
    try:
        return load_devsets(folder, load_banking77(settings).intents)
    except DevSetError as e:
        raise UsageError(str(e)) from e


def print_devsets(reports: dict) -> None:
    """Rich table of the dev-set accuracies per backend (stdout); nothing when none was scored."""
    from rich.table import Table

    reps = [r for r in reports.values() if r.devsets]
    if not reps:
        return
    names = list(dict.fromkeys(n for r in reps for n in r.devsets))
    t = Table(title="Dev sets (accuracy; typos: spelt right / confidently declined)")
    t.add_column("backend")
    for n in names:
        t.add_column(n, justify="right")
    for r in reps:
        cells = []
        for n in names:
            d = r.devsets.get(n)
            cell = "–" if d is None else f"{d['accuracy'] * 100:.1f} %"
            if d and "clean_accuracy" in d:
                cell += f" / {d['clean_accuracy'] * 100:.1f} % / {d['confident_oos']}"
            cells.append(cell)
        t.add_row(r.backend, *cells)
    _console().print(t)


def print_table(reports: dict, with_oos: bool) -> None:
    """Rich table of the results plus the top confused pairs per backend (stdout)."""
    from rich.table import Table

    console = _console()
    t = Table(title="Intent backends")
    for col in ("backend", "model version", "n", "accuracy", "macro-F1", "p50 ms", "p99 ms"):
        t.add_column(col, justify="right" if col not in ("backend", "model version") else "left")
    if with_oos:
        t.add_column("OOS rejection", justify="right")
    robust = any(r.robustness_accuracy is not None for r in reports.values())
    for col in ("in-scope declined", "clarify", "routed acc.", "ECE") + (("robustness",) if robust else ()):
        t.add_column(col, justify="right")
    t.add_column("error")
    f = lambda x, pct=False: "–" if x is None else (f"{x * 100:.2f} %" if pct else f"{x:.2f}")  # noqa: E731
    for r in reports.values():
        row = [r.backend, r.model_version, str(r.n), f(r.accuracy, True), f(r.macro_f1, True), f(r.p50_ms), f(r.p99_ms)]
        if with_oos:
            row.append(f"{f(r.oos_rejection, True)} @ {r.threshold:.2f}, AUROC {f(r.oos_auroc)}" if r.oos_n else "–")
        row += [f(r.in_scope_rejection, True), f(r.clarify_rate, True), f(r.routed_accuracy, True), f(r.ece)]
        if robust:
            row.append(f(r.robustness_accuracy, True))
        row.append(r.error or (f"{len(r.failures)} queries failed: {r.failures[0]}" if r.failures else ""))
        t.add_row(*row)
    console.print(t)
    for r in reports.values():
        if r.confused_pairs:
            pairs = ", ".join(f"{p['gold']} → {p['predicted']} ({p['count']})" for p in r.confused_pairs[:5])
            console.print(f"[bold]{r.backend}[/] most confused: {pairs}")


# --- commands ------------------------------------------------------------------------------

def cmd_eval(args: argparse.Namespace, backend_factory: BackendFactory | None = None, settings: Any = None) -> int:
    """Run ``eval``. ``backend_factory(name, settings) -> IntentChatModel`` defaults to
    ``chains.backends.get_backend``. Returns the exit code."""
    from config.settings import get_settings
    from evals.runner import evaluate_models
    from training.data import DataError

    settings = settings or get_settings()
    if getattr(args, "conversations", None) is not None:
        from evals.conversation_cli import cmd_eval_conversations

        return cmd_eval_conversations(args, settings, backend_factory or default_backend_factory)
    try:
        names, unknown = parse_backends(args.backends)
        for n in unknown:
            _note(f"unknown backend {n!r} skipped (known: {', '.join(KNOWN_BACKENDS)})")
        if args.latency_sample < 0 or args.batch_size <= 0:
            raise UsageError("--latency-sample must be >= 0 and --batch-size > 0.")
        if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
            raise UsageError("--threshold must be between 0 and 1.")
        oos = read_oos(args.oos_file) if args.oos_file else None
        dataset, texts, labels = load_eval_data(args, settings)
        devsets = read_devsets(args, settings)
    except UsageError as e:
        _err(str(e))
        return 2
    except DataError as e:
        _err(str(e))
        return 2
    if not names:
        _err("no known backend to evaluate.")
        return 1
    models = obtain_models(names, settings, backend_factory or default_backend_factory)
    if not models:
        _err(f"none of the requested backends ({', '.join(names)}) is available.")
        return 1
    reports = evaluate_models(
        models, texts, labels, oos_texts=oos, threshold=args.threshold, settings=settings,
        latency_sample=args.latency_sample, batch_size=args.batch_size, seed=settings.seed,
        progress=not args.no_progress, robust=bool(getattr(args, "robustness", False)), devsets=devsets,
    )
    ls_results = None
    from evals.langsmith_suite import has_api_key, run_suite

    if args.langsmith or has_api_key():
        ok_models = {k: m for k, m in models.items() if not reports[k].error}
        ls_results = run_suite(ok_models, texts, labels, dataset)
        for k, v in ls_results.items():
            _note(f"langsmith {k}: " + ", ".join(f"{a}={b}" for a, b in v.items() if b is not None))
    if args.json:
        for r in reports.values():
            row = r.summary(include_oos=bool(oos))
            if ls_results and r.backend in ls_results:
                row["langsmith"] = ls_results[r.backend]
            print(json.dumps(row), flush=True)
    else:
        print_table(reports, with_oos=bool(oos))
        print_devsets(reports)
    if args.out:
        from evals.report import write_report

        from evals.report import near_duplicate_label_pairs

        meta = {"dataset": dataset, "n": len(texts), "oos_n": len(oos or []),
                "oos_file": str(args.oos_file) if args.oos_file else None,
                "limit": args.limit, "seed": settings.seed, "devsets": {d.name: len(d) for d in devsets}, "langsmith": ls_results,
                "label_noise": near_duplicate_label_pairs(texts, labels)}
        files = write_report(reports, args.out, meta)
        _note(f"report written to {args.out} ({', '.join(sorted(p.name for p in files.values()))})")
    return 0 if any(r.error is None for r in reports.values()) else 1


def cmd_bench_log(args: argparse.Namespace, settings: Any = None) -> int:
    """Run ``bench-log``: the benchmark log summary as a rich table (or JSON lines)."""
    from config.settings import get_settings
    from evals.bench_log import default_log_path, summarise_log

    settings = settings or get_settings()
    path = args.path or default_log_path(settings)
    rows = summarise_log(path)
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    from rich.table import Table

    console = _console()
    if not rows:
        console.print(f"No benchmark rounds logged yet in {path} "
                      f"(the server benchmarks every BANKING_BENCH_EVERY={settings.bench_every} requests).")
        return 0
    cell = lambda v: "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    probe_cols = ("arm", "model_version", "rounds", "errors", "last_accuracy", "mean_accuracy", "mean_p50_ms",
                  "mean_p99_ms", "rss_mb", "cost_per_1k_usd", "device", "last_timestamp")
    live_cols = ("arm", "model_version", "live_requests", "mean_confidence", "declined_share", "clarified_share",
                 "live_p50_ms", "live_p99_ms", "shadow_n", "shadow_agreement")
    tables = [(f"Benchmark log per arm, probe set: {path}", probe_cols, [r for r in rows if r.get("rounds")]),
              ("Live traffic and shadow comparison per arm", live_cols,
               [r for r in rows if r.get("live_requests") or r.get("shadow_n")])]
    for title, cols, table_rows in tables:
        if not table_rows:
            continue
        t = Table(title=title)
        for c in cols:
            t.add_column(c.replace("_", " "), overflow="fold")
        for r in table_rows:
            t.add_row(*[cell(r.get(c)) for c in cols])
        console.print(t)
    return 0


def main(argv: list[str] | None = None, backend_factory: BackendFactory | None = None) -> int:
    """Standalone entry point: ``python -m evals.cli {eval,bench-log} ...``."""
    parser = argparse.ArgumentParser(prog="banking-assistant")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    if args.func is cmd_eval:
        return cmd_eval(args, backend_factory)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
