"""The ``banking-assistant`` command line.

Commands: ``train custom|peft``, ``ask``, ``chat``, ``serve``, ``ui``, ``seed-db``, ``export-onnx``,
and (from evals/cli.py) ``eval`` and ``bench-log``. Errors print one clear line on stderr and exit non-zero
(2 = bad input or missing data, 1 = the assistant could not answer); never a traceback.

Identity: the CLI runs on the operator's machine against the embedded database, so
``--customer NAME`` picks a demo customer (default ``alice``); the HTTP API and UI take identity
from authentication only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from assistant.terminal import console, print_turn
from config.settings import get_settings

err = Console(stderr=True)


class CLIError(Exception):
    """A user-facing error: ``message`` is printed, the process exits with ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------- helpers
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
        console.print("[bold]No trained custom model yet: training one now (about 10-20 minutes on 2 cores: "
                      "the teacher labels the training text once, then the model trains).[/bold]")
        _train_custom(progress)


def _train_custom(progress: bool = True, use_teacher: bool = True) -> Path:
    from chains.backends import reset_backends
    from training.custom import train_custom

    path = train_custom(progress=progress, use_teacher=use_teacher)
    reset_backends()
    Conversation.reset()  # the graph holds the backend instances
    m = json.loads((path / "metrics.json").read_text())
    console.print(
        f"Saved [bold]{path}[/bold]: validation accuracy {m['validation_accuracy']:.2%}, "
        f"test accuracy {m.get('test_accuracy', float('nan')):.2%}, macro-F1 {m.get('test_macro_f1', float('nan')):.3f}, "
        f"{m['training_seconds']:.0f} s"
    )
    return path


def demo_customer_id(name: str) -> int:
    """The id of the customer whose username is ``name`` (case-insensitive). Raises CLIError if unknown."""
    from sqlalchemy import func, select

    from bank.store import Customer, get_engine, session_scope

    with session_scope(get_engine()) as session:
        cid = session.scalar(select(Customer.id).where(func.lower(Customer.username) == name.lower()))
        names = session.scalars(select(Customer.username)).all()
    if cid is None:
        raise CLIError(f"Unknown customer {name!r}; known: {', '.join(names) or 'none (run seed-db)'}.")
    return int(cid)


class Conversation:
    """One terminal conversation on a thread of its own for ``customer_id``, run by the one
    conversation holder (assistant/conversations.py), built once per process; :meth:`say` runs
    one turn and returns the ``AssistantOutput`` as a dict."""

    _holder = None

    def __init__(self, customer_id: int, backend: str | None) -> None:
        import uuid

        from assistant.conversations import thread_id

        self.customer_id, self.backend = customer_id, backend
        self.thread_id = thread_id("cli", customer_id, uuid.uuid4().hex)
        self.choices: list[dict] = []

    @classmethod
    def holder(cls):
        """The process-wide conversation holder (its checkpointer opens on first use)."""
        if cls._holder is None:
            from assistant.conversations import Conversations

            cls._holder = Conversations()
        return cls._holder

    @classmethod
    def reset(cls) -> None:
        """Forget the graph (after training a new model version the backends are rebuilt)."""
        if cls._holder is not None:
            cls._holder.close()
        cls._holder = None

    def say(self, message: str, *, chosen_intent: str | None = None) -> dict:
        """One turn. Raises the domain errors of assistant/errors.py (bad message, unavailable
        backend...)."""
        from assistant.conversations import run_config
        from chains.assistant import AssistantInput

        req = AssistantInput(message=message, chosen_intent=chosen_intent)
        out = self.holder().say(req, run_config(self.thread_id, self.customer_id, self.backend)).model_dump()
        self.choices = out.get("choices") or []
        return out

    def pick(self, line: str) -> str | None:
        """The intent of clarify choice number ``line`` ("1".."3") offered by the last turn, else None."""
        text = line.strip().rstrip(".)")
        if text.isdigit() and 1 <= int(text) <= len(self.choices):
            return self.choices[int(text) - 1]["intent"]
        return None


# ----------------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    if args.backend == "custom":
        _train_custom(progress=not args.no_progress, use_teacher=not args.no_teacher)
    else:
        try:
            from training.peft import train_peft
        except ImportError as e:
            raise CLIError(f"the peft backend needs its extra: pip install -e '.[peft]' ({e})") from e
        from chains.backends import reset_backends

        path = train_peft(get_settings(), progress=not args.no_progress)
        reset_backends()
        Conversation.reset()
        console.print(f"Saved [bold]{path}[/bold]")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from chains.assistant import validate_message

    validate_message(args.message)  # a bad message fails at once, before any set-up or training
    ensure_database()
    if (args.backend or get_settings().backend) == "custom":
        ensure_custom_model()
    out = Conversation(demo_customer_id(args.customer), args.backend).say(args.message)
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print_turn(out)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from assistant.errors import view_of

    ensure_database()
    backend = args.backend or get_settings().backend
    if backend == "custom":
        ensure_custom_model()
    from assistant.ui_text import option_reply, slot_options

    conversation = Conversation(demo_customer_id(args.customer), args.backend)
    options: list[str] = []  # the options of the last question for a missing detail
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
        message, options = option_reply(message, options), []
        try:
            out = conversation.say(message, chosen_intent=conversation.pick(message))
        except Exception as e:  # noqa: BLE001 - one line from the shared error table; the chat goes on
            view = view_of(e)
            if view.http_status == 500:  # not the customer's fault: stop with the error's name
                err.print(Text(f"internal error ({type(e).__name__}: {e})", style="red"), highlight=False)
                return 1
            err.print(Text(view.detail, style="red"), highlight=False)
            continue
        print_turn(out)
        options = slot_options(out)
        if out.get("pending_confirmation"):
            console.print("[yellow]  Reply 'yes' to confirm or 'no' to leave it.[/yellow]")
        elif out.get("choices") or options:
            console.print("[yellow]  Reply with a number to pick one, or say more.[/yellow]")


def cmd_serve(args: argparse.Namespace) -> int:
    from assistant.server import serve

    if args.workers < 1:
        raise CLIError("--workers must be at least 1")
    if args.workers > 1 and not get_settings().resolved_database_url.startswith("postgresql"):
        raise CLIError("--workers > 1 needs PostgreSQL (one SQLite file cannot be shared by worker processes): "
                       "set BANKING_DATABASE_URL=postgresql+psycopg://user@host/db")
    ensure_database()
    if args.workers == 1:
        serve(args.host, args.port)
        return 0
    import uvicorn  # N processes, each building its own app (engine, checkpointer, models)

    from assistant.http_limits import uvicorn_options

    uvicorn.run("assistant.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                **uvicorn_options(get_settings()))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("chainlit") is None:  # before any training: the UI is an extra
        raise CLIError('the chat UI needs Chainlit: pip install -e ".[ui]"')
    from assistant.ui import check_port_free, run_ui

    check_port_free(args.host, args.port)  # OSError (exit 1) before any training or start-up
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


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """Export a saved custom version to ONNX (model.onnx, with ``--int8`` model.int8.onnx too) and
    re-seal it: for versions saved before issue 17, which otherwise run in torch."""
    from models.custom import latest_version, versions_root
    from training.onnx_export import export_version

    if args.version is None:
        path = latest_version()
        if path is None:
            raise CLIError(f"No trained custom model under {versions_root()}: run `banking-assistant train custom`.")
    else:
        path = Path(args.version) if Path(args.version).is_dir() else versions_root() / args.version
        if not path.is_dir():
            raise CLIError(f"No custom model version {args.version!r} (a folder, or a name under {versions_root()}).")
    for f in export_version(path, int8=args.int8):
        console.print(f"Wrote [bold]{f}[/bold] ({f.stat().st_size / 1e6:.1f} MB)")
    return 0


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1-65535. Raises ``argparse.ArgumentTypeError`` otherwise."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1. Raises ``argparse.ArgumentTypeError`` otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``banking-assistant``."""
    p = argparse.ArgumentParser(prog="banking-assistant", description="BANKING77 banking chat assistant.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an intent backend")
    t.add_argument("backend", choices=["custom", "peft"])
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--no-teacher", action="store_true",
                   help="custom: train from the labels alone (no distillation from the MiniLM + TF-IDF teacher)")
    t.set_defaults(func=cmd_train)

    from chains.arms import CHOICES as BACKEND_CHOICES  # --backend of ask/chat: a backend or a routing policy

    a = sub.add_parser("ask", help="answer one message")
    a.add_argument("message")
    a.add_argument("--backend", choices=BACKEND_CHOICES)
    a.add_argument("--customer", default="alice", help="demo customer name (default alice)")
    a.add_argument("--json", action="store_true", help="print the full answer as JSON")
    a.set_defaults(func=cmd_ask)

    c = sub.add_parser("chat", help="chat in the terminal")
    c.add_argument("--backend", choices=BACKEND_CHOICES)
    c.add_argument("--customer", default="alice", help="demo customer name (default alice)")
    c.set_defaults(func=cmd_chat)

    s = sub.add_parser("serve", help="run the HTTP API (LangServe)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=port_number, default=8000, help="port to listen on, 1-65535 (default 8000)")
    s.add_argument("--workers", type=positive_int, default=1,
                   help="worker processes (default 1; more than 1 needs BANKING_DATABASE_URL on PostgreSQL)")
    s.set_defaults(func=cmd_serve)

    from assistant.ui import DEFAULT_HOST, DEFAULT_PORT  # stdlib-only module: cheap to import

    u = sub.add_parser("ui", help=f"open the Chainlit chat UI on http://{DEFAULT_HOST}:{DEFAULT_PORT} "
                       "(log in as a demo customer)")
    u.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    u.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                   help=f"port to listen on (default {DEFAULT_PORT}; the API, serve, uses 8000)")
    u.set_defaults(func=cmd_ui)

    o = sub.add_parser("export-onnx", help="export a saved custom model version to ONNX (what inference runs)")
    o.add_argument("version", nargs="?", help="version folder or name (default: the newest)")
    o.add_argument("--int8", action="store_true", help="also write the int8 dynamic-quantised copy")
    o.set_defaults(func=cmd_export_onnx)

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
    """Entry point of the console script; returns the exit code (0 ok, 1 the assistant could not
    answer or an internal error, 2 bad input or missing data; codes of domain errors from
    assistant/errors.py). Errors print one line on stderr, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from assistant.errors import view_of
    from training.data import DataError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as e:  # noqa: BLE001 - every error becomes one line and an exit code
        if isinstance(e, CLIError):
            message, code = str(e), e.code
        elif isinstance(e, DataError):
            message, code = str(e), 2
        elif isinstance(e, SQLAlchemyError):
            message, code = f"{type(e).__name__}: {str(e).splitlines()[0]} (check BANKING_DATABASE_URL)", 2
        elif isinstance(e, ImportError):
            message, code = str(e), 2
        else:
            view = view_of(e)
            if view.http_status != 500:
                message, code = view.detail, view.cli_exit
            elif isinstance(e, OSError):
                message, code = str(e), 1
            else:
                message, code = f"internal error ({type(e).__name__}: {e})", 1
        err.print(Text.assemble(("error: ", "red"), message), highlight=False)
        return code


if __name__ == "__main__":
    sys.exit(main())
