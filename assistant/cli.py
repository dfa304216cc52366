"""The ``banking-assistant`` command line.

Commands: ``train custom|peft``, ``ask``, ``chat``, ``serve``, ``ui``, ``seed-db``, and (from evals/cli.py)
``eval`` and ``bench-log``. Errors print one clear line on stderr and exit non-zero
(2 = bad input or missing data, 1 = the assistant could not answer); never a traceback.

Identity: the CLI runs on the operator's machine against the embedded database, so
``--customer NAME`` picks a demo customer (default ``alice``); the HTTP API and UI take identity
from authentication only.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from assistant.settings import get_settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class CLIError(Exception):
    """A user-facing error: ``message`` is printed, the process exits with ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------- helpers
def describe_error(e: BaseException) -> str:
    """One line for a user: pydantic validation errors are reduced to their field and reason."""
    from pydantic import ValidationError

    if isinstance(e, ValidationError):
        parts = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()))
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "; ".join(parts)
    if isinstance(e, KeyError):
        return str(e.args[0]) if e.args else "unknown key"
    return str(e)


def ensure_database() -> None:
    """Create the schema and the demo customers if the database has none (idempotent)."""
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine

    engine = get_engine()
    create_schema(engine)
    seed_demo(engine)


def ensure_custom_model(progress: bool = True) -> None:
    """Train the custom model when no version is saved yet (with a progress bar)."""
    from models.custom import latest_version

    if latest_version() is None:
        console.print("[bold]No trained custom model yet: training one now (about 5-10 minutes on 2 cores).[/bold]")
        _train_custom(progress)


def _train_custom(progress: bool = True) -> Path:
    from chains.backends import reset_backends
    from training.custom import train_custom

    path = train_custom(progress=progress)
    reset_backends()
    assistant_chain.cache_clear()  # the chain holds the backend instances
    m = json.loads((path / "metrics.json").read_text())
    console.print(
        f"Saved [bold]{path}[/bold]: validation accuracy {m['validation_accuracy']:.2%}, "
        f"test accuracy {m.get('test_accuracy', float('nan')):.2%}, macro-F1 {m.get('test_macro_f1', float('nan')):.3f}, "
        f"{m['training_seconds']:.0f} s"
    )
    return path


def customer_id_for(name: str) -> int:
    """The id of the customer whose username is ``name`` (case-insensitive). Raises CLIError if unknown."""
    from sqlalchemy import func, select

    from bank.store import Customer, get_engine, session_scope

    with session_scope(get_engine()) as session:
        cid = session.scalar(select(Customer.id).where(func.lower(Customer.username) == name.lower()))
        names = session.scalars(select(Customer.username)).all()
    if cid is None:
        raise CLIError(f"Unknown customer {name!r}; known: {', '.join(names) or 'none (run seed-db)'}.")
    return int(cid)


@lru_cache(maxsize=1)
def assistant_chain():
    """The assistant chain, built once per process (the chat loop reuses it every turn)."""
    from chains.assistant import build_assistant_chain

    return build_assistant_chain()


def run_turn(message: str, customer_id: int, backend: str | None, confirm: tuple[str, bool] | None = None) -> dict:
    """One assistant turn through the chain; returns the AssistantOutput as a dict."""
    configurable: dict = {"customer_id": customer_id}
    if backend:
        configurable["backend"] = backend
    inp: dict = {"message": message}
    if confirm:
        inp["confirm_action_id"], inp["approve"] = confirm
    return assistant_chain().invoke(inp, {"configurable": configurable}).model_dump()


def _print_turn(out: dict) -> None:
    console.print(f"[bold green]assistant>[/bold green] {out['answer']}")
    if out.get("intent"):
        label = "intent" if out["status"] not in ("out_of_scope", "clarify") else "top guess"
        console.print(
            f"[dim]  {label}={out['intent']} confidence={out['confidence']:.2f} backend={out['backend']} "
            f"latency={out['latency_ms']:.1f} ms status={out['status']}[/dim]"
        )


# ----------------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    if args.backend == "custom":
        _train_custom(progress=not args.no_progress)
    else:
        try:
            from training.peft import train_peft
        except ImportError as e:
            raise CLIError(f"the peft backend needs its extra: pip install -e '.[peft]' ({e})") from e
        from chains.backends import reset_backends

        path = train_peft(get_settings(), progress=not args.no_progress)
        reset_backends()
        assistant_chain.cache_clear()
        console.print(f"Saved [bold]{path}[/bold]")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    ensure_database()
    if (args.backend or get_settings().backend) == "custom":
        ensure_custom_model()
    out = run_turn(args.message, customer_id_for(args.customer), args.backend)
    if args.json:
        print(json.dumps(out, default=str))
    else:
        _print_turn(out)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from bank.tools import ActionExpiredError

    ensure_database()
    backend = args.backend or get_settings().backend
    if backend == "custom":
        ensure_custom_model()
    cid = customer_id_for(args.customer)
    console.print(
        f"[bold]Banking assistant[/bold] - signed in as demo customer [bold]{args.customer}[/bold], "
        f"backend [bold]{backend}[/bold]. Type your question; 'quit' to leave."
    )
    while True:
        try:
            message = console.input("[bold blue]you>[/bold blue] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return 0
        if message.strip().lower() in {"quit", "exit", ":q"}:
            return 0
        if not message.strip():
            continue
        try:
            out = run_turn(message, cid, args.backend)
        except (ValueError, LookupError, ActionExpiredError) as e:
            err.print(f"[red]{escape(describe_error(e))}[/red]", highlight=False)
            continue
        _print_turn(out)
        if out.get("pending_confirmation"):
            console.print("[yellow]  Reply 'yes' to confirm or 'no' to cancel.[/yellow]")


def cmd_serve(args: argparse.Namespace) -> int:
    from assistant.server import serve

    ensure_database()
    serve(args.host, args.port)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from assistant.ui import run_ui

    ensure_database()
    ensure_custom_model()
    run_ui(args.host, args.port)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine

    engine = get_engine()
    create_schema(engine)
    creds = seed_demo(engine, reset=args.reset)
    console.print(f"Database: {get_settings().resolved_database_url}")
    console.print("Demo credentials (demo data only):")
    for c in creds:
        login = f"login {c.username} / {c.password}" if c.username else ""
        console.print(f"  {c.name:<16} role={c.role:<9} api key: {c.api_key:<20} {login}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``banking-assistant``."""
    p = argparse.ArgumentParser(prog="banking-assistant", description="BANKING77 banking chat assistant.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an intent backend")
    t.add_argument("backend", choices=["custom", "peft"])
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    a = sub.add_parser("ask", help="answer one message")
    a.add_argument("message")
    a.add_argument("--backend", choices=["custom", "peft", "gemini"])
    a.add_argument("--customer", default="alice", help="demo customer name (default alice)")
    a.add_argument("--json", action="store_true", help="print the full answer as JSON")
    a.set_defaults(func=cmd_ask)

    c = sub.add_parser("chat", help="chat in the terminal")
    c.add_argument("--backend", choices=["custom", "peft", "gemini"])
    c.add_argument("--customer", default="alice", help="demo customer name (default alice)")
    c.set_defaults(func=cmd_chat)

    s = sub.add_parser("serve", help="run the HTTP API (LangServe)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=cmd_serve)

    u = sub.add_parser("ui", help="open the Chainlit chat UI (log in as a demo customer)")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--port", type=int, default=8000)
    u.set_defaults(func=cmd_ui)

    d = sub.add_parser("seed-db", help="create the schema and demo customers; print demo keys")
    d.add_argument("--reset", action="store_true", help="recreate the demo customers with fresh dates")
    d.set_defaults(func=cmd_seed)

    try:
        from evals.cli import register
    except ImportError:
        register = None
    if register is not None:
        register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    from sqlalchemy.exc import SQLAlchemyError

    from bank.tools import ActionExpiredError
    from models.base import BackendUnavailable
    from training.data import DataError

    args = build_parser().parse_args(argv)
    handlers: tuple[tuple[type[BaseException], int], ...] = (
        (CLIError, 2), (DataError, 2), (ActionExpiredError, 2), (ValueError, 2), (LookupError, 2), (BackendUnavailable, 1), (OSError, 1),
        (SQLAlchemyError, 2), (ImportError, 2),
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as e:  # noqa: BLE001 - mapped to clear messages below, re-raised otherwise
        for kind, code in handlers:
            if isinstance(e, kind):
                code = getattr(e, "code", code) if isinstance(e, CLIError) else code
                hint = " (check BANKING_DATABASE_URL)" if isinstance(e, SQLAlchemyError) else ""
                err.print(f"[red]error:[/red] {escape(describe_error(e) + hint)}", highlight=False)
                return code
        raise


if __name__ == "__main__":
    sys.exit(main())
