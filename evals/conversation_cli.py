"""``banking-assistant eval --conversations DIR``: the conversation files (evals/conversations.py)
run through the whole assistant once per backend, on a throw-away SQLite bank seeded afresh for
every conversation (the configured database is never touched), reporting the task completion
rate per backend (a table on stdout; report.json and report.md with ``--out``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from evals.conversations import ConversationFormatError, load_conversations, run_conversations, summary

__all__ = ["cmd_eval_conversations", "throwaway_bank"]


@contextlib.contextmanager
def throwaway_bank() -> Iterator[Any]:
    """A temporary SQLite database as the process's bank (``BANKING_DATABASE_URL`` set, the
    settings cache cleared) for the duration; the previous setting is restored after. Yields
    the engine."""
    from config.settings import get_settings
    from bank.store import get_engine

    old = os.environ.get("BANKING_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="conversations-") as tmp:
        os.environ["BANKING_DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'bank.db'}"
        get_settings.cache_clear()
        try:
            yield get_engine()
        finally:
            if old is None:
                os.environ.pop("BANKING_DATABASE_URL", None)
            else:
                os.environ["BANKING_DATABASE_URL"] = old
            get_settings.cache_clear()


def cmd_eval_conversations(args: argparse.Namespace, settings: Any, factory: Callable[[str, Any], Any]) -> int:
    """Run the conversations of ``args.conversations`` for each backend of ``args.backends``
    that is available. Exit code: 0 when at least one backend ran, 1 when none could, 2 for a
    bad folder or file."""
    from evals.cli_common import KNOWN_BACKENDS, _console, _err, _note, obtain_models, parse_backends

    try:
        convs = load_conversations(args.conversations)
    except ConversationFormatError as e:
        _err(str(e))
        return 2
    names, unknown = parse_backends(args.backends)
    for n in unknown:
        _note(f"unknown backend {n!r} skipped (known: {', '.join(KNOWN_BACKENDS)})")
    models = obtain_models(names, settings, factory)
    if not models:
        _err(f"none of the requested backends ({', '.join(names) or 'none'}) is available.")
        return 1
    from chains.checkpoint import open_checkpointer
    from chains.graph import build_graph

    summaries: dict[str, dict[str, Any]] = {}
    with throwaway_bank() as engine, open_checkpointer() as saver:
        graph = build_graph(checkpointer=saver)
        for name in models:
            def tick(res: Any) -> None:
                if not args.no_progress:
                    print(f"{name}: {'ok  ' if res.completed else 'FAIL'} {res.file}", file=sys.stderr)
            results = run_conversations(convs, graph, engine, backend=name, progress=tick)
            summaries[name] = summary(name, results)
    from rich.table import Table

    t = Table(title=f"Conversations: task completion ({args.conversations})")
    for col in ("backend", "conversations", "completed", "task completion", "not completed"):
        t.add_column(col)
    for name, s in summaries.items():
        t.add_row(name, str(s["n"]), str(s["completed"]), f"{s['task_completion_rate'] * 100:.1f} %",
                  ", ".join(f["file"] for f in s["failing"]))
    _console().print(t)
    if args.out:
        from evals.report import write_conversation_report

        files = write_conversation_report(summaries, args.out, {"folder": str(args.conversations), "n": len(convs)})
        _note(f"report written to {args.out} ({', '.join(sorted(files))})")
    return 0
