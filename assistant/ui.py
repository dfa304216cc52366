"""The Chainlit chat UI: launcher and the pure helpers the app (assistant/ui_app.py) uses.

Open it with ``python -m assistant.ui`` (``--host``, ``--port``; default 127.0.0.1:8000), or from
code with :func:`run_ui`. Log in as a demo customer (``alice`` / ``alice-demo``, ...) or with
the user name ``api-key`` and a customer's API key as the password (``demo-alice-key``).

Chainlit keeps its files (``.chainlit/config.toml``, ``chainlit.md``, ``.files/``) in its app
root; the launcher makes that ``<BANKING_HOME>/chainlit`` and writes the config there, so the
repository stays clean. ``CHAINLIT_AUTH_SECRET`` (signs the login cookie) is read from the
environment / ``.env``; when unset a random one is made per process (logins end at restart).

This module does not import chainlit at import time: Chainlit reads its app root from the
environment when it is first imported, so :func:`run_ui` sets that up first.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_FILE = Path(__file__).resolve().parent / "ui_app.py"

STARTERS: list[tuple[str, str]] = [
    ("Where is my new card?", "Where is my new card?"),
    ("I don't recognise a payment", "I don't recognise a payment on my statement"),
    ("I lost my card", "I lost my card"),
    ("Why did my top-up fail?", "Why did my top-up fail?"),
]
"""(label, message) of the starter suggestions shown on an empty chat."""

API_KEY_USERNAMES = ("api-key", "apikey", "key")
"""User names that make the login form treat the password as an API key."""


def chainlit_config_toml(version: str) -> str:
    """The ``.chainlit/config.toml`` the launcher writes (Chainlit's own keys; anything not
    set here keeps Chainlit's default). File upload is off: the assistant reads text only."""
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
name = "Banking assistant"
description = "Chat about your cards, payments, transfers and top-ups."
cot = "full"
default_collapse_content = true

[meta]
generated_by = "{version}"
"""


CHAINLIT_MD = """# Banking assistant

Ask about your cards, payments, transfers, top-ups and account. Changes such as freezing a card
always ask you to confirm first. Choose the intent backend under the settings icon.
"""


def prepare_app_root(home: Path) -> Path:
    """Create ``<home>/chainlit`` with the config, the readme and an English translation whose
    login form asks for a user name (Chainlit's says "Email address"); returns it."""
    import importlib.util
    from importlib.metadata import version

    root = home / "chainlit"
    (root / ".chainlit" / "translations").mkdir(parents=True, exist_ok=True)
    (root / ".chainlit" / "config.toml").write_text(chainlit_config_toml(version("chainlit")))
    (root / "chainlit.md").write_text(CHAINLIT_MD)
    spec = importlib.util.find_spec("chainlit")  # located, not imported (see the module docstring)
    shipped = Path(next(iter(spec.submodule_search_locations))) / "translations" / "en-US.json"
    if shipped.is_file():
        tr = json.loads(shipped.read_text())
        tr["auth"]["login"]["form"]["email"] = {
            "label": "User name (or api-key)", "required": "user name is a required field", "placeholder": "alice"}
        tr.setdefault("chat", {}).setdefault("watermark", "")
        tr["chat"]["watermark"] = "Intent recognition can be wrong: changes to your cards always ask you first."
        (root / ".chainlit" / "translations" / "en-US.json").write_text(json.dumps(tr, indent=2))
    return root


def run_ui(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the Chainlit app on ``host:port`` until interrupted (blocking).

    Seeds the demo customers if the database has none (idempotent) and, when no custom model is
    trained yet, tells how to train one (the chat then answers with an error per message).
    """
    from bank.seed import seed_demo
    from bank.store import get_engine
    from assistant.settings import get_settings

    settings = get_settings()
    seed_demo(get_engine())
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


# ----------------------------------------------------------------------------- step rendering
def classification_markdown(output: dict[str, Any], *, contextual: bool = False) -> str:
    """Markdown of one turn's classification for the UI step: intent, confidence, top-3
    ranking, backend, model version and classification latency (ms). ``output`` is an
    ``AssistantOutput`` dict; a turn that answered a pending yes/no has no classification."""
    if output.get("intent") is None:
        return "No classification: this message answered a pending confirmation."
    lines = [
        f"**Intent:** `{output['intent']}`",
        f"**Confidence:** {output['confidence']:.3f}",
        f"**Backend:** `{output.get('backend')}` (model `{output.get('model_version')}`)",
        f"**Latency:** {output['latency_ms']:.1f} ms" if output.get("latency_ms") is not None else "**Latency:** n/a",
        f"**Guard:** {output['status']}" + (" (classified with the previous request as context)" if contextual else ""),
        "**Top 3:**",
    ]
    for i, r in enumerate(output.get("ranking", [])[:3], 1):
        lines.append(f"{i}. `{r['intent']}` {r['confidence']:.3f}")
    return "\n".join(lines)


def tool_markdown(output: dict[str, Any]) -> str:
    """Markdown of the tool call's result (its ``data`` as JSON, and a proposed action)."""
    parts = [f"**Result:** {output.get('status')}"]
    if output.get("pending_confirmation"):
        p = output["pending_confirmation"]
        parts.append(f"**Proposed (not done yet):** `{p['action']}` — {p['description']}")
    parts.append("```json\n" + json.dumps(output.get("data") or {}, indent=2, ensure_ascii=False)[:4000] + "\n```")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """``python -m assistant.ui [--host H] [--port P]``."""
    ap = argparse.ArgumentParser(prog="python -m assistant.ui", description="Open the Chainlit chat UI.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    import importlib.util

    if importlib.util.find_spec("chainlit") is None:  # not imported: see the module docstring
        print("Chainlit is not installed: pip install -e '.[ui]'", file=sys.stderr)
        return 2
    run_ui(args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
