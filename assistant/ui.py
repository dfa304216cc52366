"""The Chainlit chat UI: launcher, branding and the pure helpers the app (assistant/ui_app.py) uses.

Open it with ``banking-assistant ui`` or ``python -m assistant.ui`` (``--host``, ``--port``;
default 127.0.0.1:8080, so it does not collide with ``serve`` on 8000), or from code with
:func:`run_ui`. Log in as a demo customer (``alice`` / ``alice-demo``, ...) or with the user name
``api-key`` and a customer's API key as the password (``demo-alice-key``). A busy port is an
``OSError`` with a clear message (exit status 1 from the command line), checked before Chainlit
starts (Chainlit itself would print "available at ..." and exit with status 0).

Chainlit keeps its files (``.chainlit/config.toml``, translations, ``public/``) in its app root;
the launcher makes that ``<BANKING_HOME>/chainlit``, writes the config and the English
translation there (bank name on the login page, user-name field, a friendly wrong-password
message) and copies the repository's ``public/`` (logo, avatar, favicon, stylesheet) into it,
so the repository stays clean. ``CHAINLIT_AUTH_SECRET`` (signs the login cookie) is read from
the environment / ``.env``; when unset a random one is made per process (logins end at restart).

Conversation history is kept with Chainlit's SQLAlchemy data layer in the project's database
(tables ``users``, ``threads``, ``steps``, ``elements``, ``feedbacks``, see
:func:`chainlit_tables`); Chainlit shows a customer only the threads they own.

This module does not import chainlit at import time: Chainlit reads its app root from the
environment when it is first imported, so :func:`run_ui` sets that up first.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from assistant.ui_text import (  # noqa: F401 - the helpers' public home is assistant.ui too
    BACKEND_TITLES, UNAVAILABLE_THREAD, WORD_JOINER, answer_markdown, backend_options, button_label, clarify_choices,
    confirmation_labels, customer_reason, escape_markdown, message_markdown, settings_choice, slot_options,
    technical_markdown, thread_title, understood_line,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_FILE = Path(__file__).resolve().parent / "ui_app.py"
PUBLIC_DIR = REPO_ROOT / "public"

BANK_NAME = "Kestrel Bank"
"""The (demo) bank's name on the login page, in the header and as the assistant's name."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
"""Default port of the UI (the HTTP API, ``serve``, defaults to 8000)."""

STARTERS: list[tuple[str, str]] = [
    ("Where is my new card?", "Where is my new card?"),
    ("I don't recognise a payment", "I don't recognise a payment on my statement"),
    ("I lost my card", "I lost my card"),
    ("Why did my top-up fail?", "Why did my top-up fail?"),
]
"""(label, message) of the starter suggestions shown on an empty chat."""

API_KEY_USERNAMES = ("api-key", "apikey", "key")
"""User names that make the login form treat the password as an API key."""

WRONG_LOGIN = "That user name and password don't match. Please check them and try again."
"""What the login page says after a wrong user name, password or API key."""


def chainlit_config_toml(version: str) -> str:
    """The ``.chainlit/config.toml`` the launcher writes (Chainlit's own keys; anything not
    set here keeps Chainlit's default). File upload is off: the assistant reads text only;
    HTML in messages is off and user messages are shown as plain text. The front end is the
    local copy without third-party fonts or stylesheets (assistant/ui_frontend.py)."""
    from assistant.ui_frontend import BUILD_DIR_NAME

    return f"""[project]
user_env = []
session_timeout = 3600
user_session_timeout = 86400
cache = false
allow_origins = ["*"]

[features]
unsafe_allow_html = false
latex = false
user_message_markdown = false
edit_message = false

[features.spontaneous_file_upload]
enabled = false

[features.audio]
enabled = false

[UI]
name = "{BANK_NAME}"
description = "Chat with {BANK_NAME} about your cards, payments, transfers and top-ups."
cot = "full"
default_collapse_content = true
default_theme = "light"
custom_css = "/public/bank.css"
custom_js = "/public/bank.js"
login_page_image = "/public/login.svg"
custom_build = "./{BUILD_DIR_NAME}"
custom_meta_image_url = "/public/login.svg"

[meta]
generated_by = "{version}"
"""


def translation(shipped: dict[str, Any]) -> dict[str, Any]:
    """Chainlit's English translation (``shipped``, the ``en-US.json`` it ships) with the bank's
    wording: the bank's name as the login title, a user-name field, :data:`WRONG_LOGIN` for a
    refused login (Chainlit's error keys, including the ``Unauthorized`` it reports), no
    "Used"/"Using" before step names, and plain titles for history and settings."""
    tr = json.loads(json.dumps(shipped))
    login = tr["auth"]["login"]
    login["title"] = f"Sign in to {BANK_NAME}"
    login["form"]["email"] = {"label": "User name (or api-key)", "required": "Please enter your user name",
                              "placeholder": "alice"}
    login["form"]["password"]["required"] = "Please enter your password"
    for key in ("default", "signin", "credentialsSignin", "credentialssignin", "Unauthorized", "unauthorized",
                "callback"):
        login["errors"][key] = WRONG_LOGIN
    chat = tr.setdefault("chat", {})
    chat["watermark"] = "I can misunderstand: changes to your cards and money always ask you first."
    chat.setdefault("messages", {}).setdefault("status", {}).update({"used": "", "using": ""})
    chat.setdefault("settings", {}).update({"title": "Settings", "customize": "Choose how the assistant works for you."})
    chat.setdefault("input", {})["placeholder"] = f"Ask {BANK_NAME} about your cards, payments or account..."
    tr.setdefault("threadHistory", {}).setdefault("sidebar", {})["title"] = "Your conversations"
    return tr


CHAINLIT_MD = f"""# {BANK_NAME}

Ask about your cards, payments, transfers, top-ups and account. Changes such as freezing a card
always ask you to confirm first.
"""


def prepare_app_root(home: Path) -> Path:
    """Create ``<home>/chainlit`` with the config, the readme, the English translation (see
    :func:`translation`), a copy of the repository's ``public/`` and the local front end
    (assistant/ui_frontend.py); returns it."""
    import importlib.util
    from importlib.metadata import version

    from assistant.ui_frontend import prepare_frontend

    root = home / "chainlit"
    (root / ".chainlit" / "translations").mkdir(parents=True, exist_ok=True)
    (root / ".chainlit" / "config.toml").write_text(chainlit_config_toml(version("chainlit")))
    (root / "chainlit.md").write_text(CHAINLIT_MD)
    if PUBLIC_DIR.is_dir():
        shutil.copytree(PUBLIC_DIR, root / "public", dirs_exist_ok=True)
    prepare_frontend(root)
    spec = importlib.util.find_spec("chainlit")  # located, not imported (see the module docstring)
    shipped = Path(next(iter(spec.submodule_search_locations))) / "translations" / "en-US.json"
    if shipped.is_file():
        tr = translation(json.loads(shipped.read_text()))
        (root / ".chainlit" / "translations" / "en-US.json").write_text(json.dumps(tr, indent=2))
    return root


def check_port_free(host: str, port: int) -> None:
    """Raise ``OSError`` with a clear message when ``host:port`` cannot be listened on (another
    program uses it, or the address is not this machine's); return None when it is free."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise OSError(f"cannot listen on {host}:{port}: unknown host ({e.strerror})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        if os.name != "nt":  # as uvicorn does: a port in TIME_WAIT is free, a listening one is not
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            why = "the port is already in use" if e.errno in (98, 48, 10048) else (e.strerror or str(e))
            raise OSError(f"cannot open the UI on {host}:{port}: {why}. Stop the other program or choose "
                          "another port with --port.") from None


def run_ui(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the Chainlit app on ``host:port`` until interrupted (blocking).

    Raises ``OSError`` (see :func:`check_port_free`) when the port is busy. Seeds the demo
    customers if the database has none (idempotent) and creates the conversation-history tables.
    """
    from bank.seed import seed_demo
    from bank.store import get_engine
    from config.settings import get_settings

    check_port_free(host, port)
    settings = get_settings()
    seed_demo(get_engine())
    create_chainlit_tables(get_engine())
    root = prepare_app_root(settings.home)
    os.environ["CHAINLIT_APP_ROOT"] = str(root)
    if not os.environ.get("CHAINLIT_AUTH_SECRET"):
        from dotenv import dotenv_values

        os.environ["CHAINLIT_AUTH_SECRET"] = dotenv_values(".env").get("CHAINLIT_AUTH_SECRET") or secrets.token_urlsafe(48)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    from chainlit.cli import cli

    cli.main(args=["run", str(APP_FILE), "--headless", "--host", host, "--port", str(port)],
             prog_name="chainlit", standalone_mode=True)


# ----------------------------------------------------------------------------- history tables
def chainlit_tables(metadata: Any) -> None:
    """Define, on the SQLAlchemy ``metadata``, the tables Chainlit's ``SQLAlchemyDataLayer``
    writes (its documented schema, with portable types: ids, JSON and timestamps as text, so one
    definition serves SQLite and PostgreSQL). The names (``users``, ``threads``, ``steps``,
    ``elements``, ``feedbacks``) are Chainlit's and do not clash with the bank's tables."""
    from sqlalchemy import Boolean, Column, ForeignKey, Integer, Table, Text

    Table("users", metadata, Column("id", Text, primary_key=True), Column("identifier", Text, nullable=False, unique=True),
          Column("metadata", Text, nullable=False), Column("createdAt", Text))
    Table("threads", metadata, Column("id", Text, primary_key=True), Column("createdAt", Text), Column("name", Text),
          Column("userId", Text, ForeignKey("users.id", ondelete="CASCADE"), index=True),
          Column("userIdentifier", Text), Column("tags", Text), Column("metadata", Text))
    Table("steps", metadata, Column("id", Text, primary_key=True), Column("name", Text, nullable=False),
          Column("type", Text, nullable=False),
          Column("threadId", Text, ForeignKey("threads.id", ondelete="CASCADE"), nullable=False, index=True),
          Column("parentId", Text), Column("streaming", Boolean, nullable=False), Column("waitForAnswer", Boolean),
          Column("isError", Boolean), Column("metadata", Text), Column("tags", Text), Column("input", Text),
          Column("output", Text), Column("createdAt", Text), Column("command", Text), Column("start", Text),
          Column("end", Text), Column("generation", Text), Column("showInput", Text), Column("language", Text),
          Column("indent", Integer), Column("defaultOpen", Boolean), Column("autoCollapse", Boolean),
          Column("icon", Text), Column("modes", Text))
    Table("elements", metadata, Column("id", Text, primary_key=True),
          Column("threadId", Text, ForeignKey("threads.id", ondelete="CASCADE")), Column("type", Text),
          Column("url", Text), Column("chainlitKey", Text), Column("name", Text, nullable=False), Column("display", Text),
          Column("objectKey", Text), Column("size", Text), Column("page", Integer), Column("language", Text),
          Column("forId", Text), Column("mime", Text), Column("props", Text), Column("autoPlay", Boolean),
          Column("playerConfig", Text))
    Table("feedbacks", metadata, Column("id", Text, primary_key=True), Column("forId", Text, nullable=False),
          Column("threadId", Text, ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
          Column("value", Integer, nullable=False), Column("comment", Text))


def create_chainlit_tables(engine: Any) -> None:
    """Create the conversation-history tables (:func:`chainlit_tables`) in ``engine``'s database
    when missing (idempotent; under the bank's set-up lock, so UIs starting together do not race
    on ``CREATE TABLE``)."""
    from sqlalchemy import MetaData

    from bank.store import setup_lock

    md = MetaData()
    chainlit_tables(md)
    with setup_lock(engine):
        md.create_all(engine, checkfirst=True)


def async_database_url(url: str) -> str:
    """The project's SQLAlchemy URL with an asyncio driver, for Chainlit's data layer:
    ``sqlite:///x`` -> ``sqlite+aiosqlite:///x``; ``postgresql[+driver]://`` ->
    ``postgresql+psycopg://`` (psycopg 3 is async-capable). Raises ``ValueError`` otherwise."""
    scheme, rest = url.split("://", 1)
    if scheme.startswith("sqlite"):
        return "sqlite+aiosqlite://" + rest
    if scheme.startswith(("postgresql", "postgres")):
        return "postgresql+psycopg://" + rest
    raise ValueError(f"conversation history needs SQLite or PostgreSQL, not {scheme!r}")


def build_arg_parser() -> argparse.ArgumentParser:
    """``python -m assistant.ui`` options (the same as ``banking-assistant ui``)."""
    ap = argparse.ArgumentParser(prog="python -m assistant.ui", description=f"Open the {BANK_NAME} chat UI (Chainlit).")
    ap.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    return ap


def main(argv: list[str] | None = None) -> int:
    """``python -m assistant.ui [--host H] [--port P]``; returns the exit status (1 for a busy
    port, 2 without Chainlit)."""
    args = build_arg_parser().parse_args(argv)
    import importlib.util

    if importlib.util.find_spec("chainlit") is None:  # not imported: see the module docstring
        print("Chainlit is not installed: pip install -e '.[ui]'", file=sys.stderr)
        return 2
    try:
        run_ui(args.host, args.port)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
