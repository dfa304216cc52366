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
import re
import secrets
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

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
    HTML in messages is off and user messages are shown as plain text."""
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
    :func:`translation`) and a copy of the repository's ``public/``; returns it."""
    import importlib.util
    from importlib.metadata import version

    root = home / "chainlit"
    (root / ".chainlit" / "translations").mkdir(parents=True, exist_ok=True)
    (root / ".chainlit" / "config.toml").write_text(chainlit_config_toml(version("chainlit")))
    (root / "chainlit.md").write_text(CHAINLIT_MD)
    if PUBLIC_DIR.is_dir():
        shutil.copytree(PUBLIC_DIR, root / "public", dirs_exist_ok=True)
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
    from assistant.settings import get_settings

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


# ----------------------------------------------------------------------------- safe text
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]()<>#|~!@&])")
_LINE_START = re.compile(r"^(\s*)([-+=>]|\d+(?=[.)]))")
_BULLET = re.compile(r"^\s*[-*•]\s+(.*)$")


WORD_JOINER = "\u2060"
"""An invisible character that breaks GFM's autolink patterns without changing what is shown."""


def escape_markdown(text: str) -> str:
    """``text`` with every character that Markdown (CommonMark + GFM, as Chainlit renders it)
    could turn into a link, image, emphasis, code, heading, list, table, HTML or entity
    backslash-escaped, so it shows exactly as written. Used for all answer text, which carries
    third-party strings (merchant names, payees, references): ``[x](https://e.invalid)`` shows
    as those characters, not as a link, and ``![](...)`` loads no image.

    GFM also turns bare ``https://...``, ``www.`` names and e-mail addresses into links after
    parsing (escapes do not stop that), so an invisible :data:`WORD_JOINER` goes after ``:``
    in ``://``, after ``www`` and after ``@``. Ordinary punctuation ('.', ',', ':', quotes,
    currency signs) is left alone."""
    out = _INLINE_SPECIAL.sub(r"\\\1", text)
    out = out.replace("://", ":" + WORD_JOINER + "//").replace("@", "@" + WORD_JOINER)
    out = re.sub(r"(?i)\b(www)\.", lambda m: m.group(1) + WORD_JOINER + ".", out)
    return _LINE_START.sub(lambda m: m.group(1) + ("\\" + m.group(2) if not m.group(2).isdigit() else m.group(2) + "\\"),
                           out, count=1)


def answer_markdown(text: str) -> str:
    """The assistant's plain-text answer as safe Markdown: each ``- item`` line stays a bullet
    (its text escaped), other lines become their own paragraphs (escaped), and a list is
    closed by a blank line before the next paragraph (otherwise Markdown would merge that
    paragraph into the last bullet). Input: the ``answer`` of an ``AssistantOutput``."""
    blocks: list[str] = []
    prev_bullet = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            prev_bullet = False
            continue
        m = _BULLET.match(line)
        if m:
            item = "- " + escape_markdown(m.group(1))
            if prev_bullet:
                blocks[-1] += "\n" + item
            else:
                blocks.append(item)
            prev_bullet = True
        else:
            blocks.append(escape_markdown(line))
            prev_bullet = False
    return "\n\n".join(blocks)


# ----------------------------------------------------------------------------- turn rendering
def _title(label: str) -> str:
    from chains.intent_titles import intent_title

    return intent_title(label)


def understood_line(output: dict[str, Any]) -> str | None:
    """The customer's plain account of a turn, e.g. ``"Understood: a card that hasn't arrived"``:
    only when the message reached a banking tool (status answered / confirmation_required);
    None for out-of-scope, clarifying questions, small talk and yes/no replies."""
    if output.get("status") not in ("answered", "confirmation_required") or not output.get("intent"):
        return None
    return f"Understood: {_title(output['intent'])}"


def clarify_choices(output: dict[str, Any]) -> list[dict[str, str]]:
    """The choices of a clarifying question as ``[{"intent": label, "title": words}]``:
    ``output["choices"]`` when the graph sent them, else the top-3 of the ranking."""
    if output.get("status") != "clarify":
        return []
    choices = output.get("choices") or [{"intent": r["intent"]} for r in (output.get("ranking") or [])[:3]]
    return [{"intent": c["intent"], "title": c.get("title") or _title(c["intent"])} for c in choices]


def button_label(title: str) -> str:
    """A choice title as a button label: first letter upper-case ("a lost card" -> "A lost card")."""
    return title[:1].upper() + title[1:]


_CONFIRM_LABELS: dict[str, tuple[str, str, str, str]] = {
    # action: (yes for one, no for one, yes for several ({n}), no for several)
    "freeze_card": ("Yes, freeze my card", "No, keep it as it is",
                    "Yes, freeze all {n} cards", "No, keep them as they are"),
    "unfreeze_card": ("Yes, unfreeze it", "No, keep it frozen", "Yes, unfreeze them", "No, keep them frozen"),
    "activate_card": ("Yes, activate it", "No, not now", "Yes, activate them", "No, not now"),
    "order_replacement_card": ("Yes, order a replacement", "No, not now",
                               "Yes, order replacements", "No, not now"),
    "order_card": ("Yes, order it", "No, not now", "Yes, order them", "No, not now"),
    "cancel_transfer": ("Yes, cancel the transfer", "No, let it go ahead",
                        "Yes, cancel the transfers", "No, let them go ahead"),
    "terminate_account": ("Yes, close my account", "No, keep my account",
                          "Yes, close my accounts", "No, keep my accounts"),
}


def confirmation_labels(pending: dict[str, Any], data: dict[str, Any] | None = None) -> tuple[str, str]:
    """(yes, no) button labels for a proposed action, worded for the number of cards involved:
    ``pending`` is ``{action_id, action, description}``; ``data`` the tool's data (its
    ``cards`` list, or ``card``, gives the count). Unknown actions get "Yes, go ahead" /
    "No, leave it"."""
    data = data or {}
    n = len(data["cards"]) if isinstance(data.get("cards"), list) and pending.get("action") == "freeze_card" else 1
    yes1, no1, yes_n, no_n = _CONFIRM_LABELS.get(pending.get("action", ""), ("Yes, go ahead", "No, leave it") * 2)
    if n == 2 and pending.get("action") == "freeze_card":
        return "Yes, freeze both cards", no_n
    return (yes1, no1) if n <= 1 else (yes_n.format(n=n), no_n)


def technical_markdown(output: dict[str, Any], *, contextual: bool = False) -> str:
    """The operator view of one turn (Markdown): intent label, confidence, top-3 ranking,
    backend, model version, classification latency (ms), guard status and the tool's result
    (its ``data`` as JSON, and a proposed action). ``output`` is an ``AssistantOutput`` dict."""
    lines = [f"**Status:** {output.get('status')}"]
    if output.get("intent") is None:
        lines.append("No classification: this message answered a pending confirmation.")
    else:
        lines += [
            f"**Intent:** `{output['intent']}`" + (" (classified with the previous request as context)" if contextual else ""),
            f"**Confidence:** {output['confidence']:.3f}",
            f"**Backend:** `{output.get('backend')}` (model `{output.get('model_version')}`)",
            f"**Latency:** {output['latency_ms']:.1f} ms" if output.get("latency_ms") is not None else "**Latency:** n/a",
            "**Top 3:**",
        ]
        lines += [f"{i}. `{r['intent']}` {r['confidence']:.3f}" for i, r in enumerate((output.get("ranking") or [])[:3], 1)]
    if output.get("tool"):
        lines.append(f"**Tool:** `{output['tool']}`")
    if output.get("pending_confirmation"):
        p = output["pending_confirmation"]
        lines.append(f"**Proposed (not done yet):** `{p['action']}` {escape_markdown(p['description'])}")
    if output.get("data"):
        lines.append("```json\n" + json.dumps(output["data"], indent=2, ensure_ascii=False, default=str)[:4000] + "\n```")
    return "\n\n".join(lines)


# ----------------------------------------------------------------------------- backends
BACKEND_TITLES: dict[str, str] = {
    "custom": "Standard (our own intent model)",
    "peft": "Fine-tuned language model",
    "gemini": "Google Gemini",
}
"""How the settings panel names each intent backend."""


def customer_reason(reason: str) -> str:
    """A backend's technical unavailability reason (``available_backends()[name]["reason"]``,
    the same text /health reports) in words a customer understands."""
    r = reason.lower()
    if "not installed" in r or "dependencies missing" in r or "pip install" in r:
        return "Not installed on this server."
    if "api_key" in r or "api key" in r or "not set" in r:
        return "Not connected: this bank has not set up access to it."
    if "no trained" in r or "train" in r:
        return "Not ready: it has not been trained on this server yet."
    if "incomplete" in r or "not a complete" in r or "missing" in r:
        return "Not ready: it has not been fully set up on this server."
    if "reach" in r or "connect" in r or "refused" in r:
        return "Its server cannot be reached right now."
    return "Not available right now."


def backend_options(available: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every backend for the settings panel, in registry order:
    ``[{"name", "title", "available": bool, "reason": customer words or ""}]``.
    ``available`` is ``chains.backends.available_backends()``."""
    return [{"name": name, "title": BACKEND_TITLES.get(name, name), "available": bool(info["available"]),
             "reason": "" if info["available"] else customer_reason(str(info.get("reason") or ""))}
            for name, info in available.items()]


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
