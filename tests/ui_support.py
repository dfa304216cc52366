"""Shared set-up of the Chainlit UI browser tests (tests/test_ui_browser.py for the customer
UI, tests/test_ui_operator.py for the operator tools): the UI server on loopback with the real
short-trained custom model and the seeded SQLite bank, Debian's Chromium driven by Playwright
(headless), and page helpers. Fixtures are imported by those modules (module scope each).

Backends: the custom model is trained; peft points at an empty model folder (unavailable);
gemini is the real gemini backend pointed at the project's local fake of the Gemini REST API
(tests/fake_gemini.py, 127.0.0.1) with a dummy key. The guard thresholds are pinned (out of
scope below 0.2, clarify below 0.5) in the server and in this process, so a test can pick,
with the same model, a message that asks to clarify.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from bank.store import Card, CardTransaction, Customer, session_scope
from servers import free_port, running_server

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 90_000  # one turn on a loaded 2-core machine
THRESHOLDS = {"BANKING_OOS_THRESHOLD": "0.2", "BANKING_CLARIFY_THRESHOLD": "0.5", "BANKING_CONFIDENCE_THRESHOLD": "0.5"}
NO_PEFT = Path(__file__).resolve().parent / "no-such-peft-model"  # an absent model folder: peft unavailable
MARKDOWN_MERCHANT = "[refund here](https://example.invalid/x) ![](https://example.invalid/p.png)"


@contextmanager
def ui_server(session_home: Path, fake_gemini, logdir: Path, *, operator_tools: bool) -> Iterator[str]:
    """Seed the demo bank (reset, plus carol's Markdown-named merchant), start
    ``python -m assistant.ui`` on a free loopback port with ``BANKING_UI_OPERATOR_TOOLS`` set to
    ``operator_tools``, yield its URL, stop it afterwards."""
    from bank.seed import seed_demo
    from bank.store import get_engine

    seed_demo(get_engine(), reset=True)
    add_markdown_merchant("carol")
    port = free_port()
    env = {**os.environ, **THRESHOLDS, "BANKING_HOME": str(session_home),
           "BANKING_DATA_DIR": os.environ["BANKING_DATA_DIR"], "BANKING_BENCH_EVERY": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "GOOGLE_API_KEY": "test-key-not-real", "BANKING_GEMINI_BASE_URL": fake_gemini.base_url,
           "BANKING_GEMINI_RETRIEVAL": "tfidf", "BANKING_GEMINI_MAX_RETRIES": "0",
           "BANKING_UI_OPERATOR_TOOLS": "true" if operator_tools else "false",
           "CHAINLIT_AUTH_SECRET": secrets.token_urlsafe(48), "LANGSMITH_TRACING": "false"}
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "assistant.ui", "--host", "127.0.0.1", "--port", str(port)]
    with running_server(cmd, url, logdir / "ui.log", env, cwd=REPO):
        yield url


@pytest.fixture(scope="module")
def fake_gemini():
    from fake_gemini import FakeGemini

    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def pinned_thresholds():
    """The guard thresholds and the absent peft model of this module, in this process too (the
    server inherits them)."""
    from config.settings import get_settings

    pinned = {**THRESHOLDS, "BANKING_PEFT_MODEL_DIR": str(NO_PEFT)}
    old = {k: os.environ.get(k) for k in pinned}
    os.environ.update(pinned)
    get_settings.cache_clear()
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), "install Debian's chromium (apt-get install -y chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ui_screenshots")
    yield folder
    print(f"\nUI screenshots: {folder}")
    if os.environ.get("BANKING_UI_SCREENSHOTS"):
        dest = Path(os.environ["BANKING_UI_SCREENSHOTS"])
        dest.mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy(png, dest / png.name)


# ----------------------------------------------------------------------------- helpers
def customer_id(s, username: str) -> int:
    return s.execute(select(Customer.id).where(Customer.username == username)).scalar_one()


def add_markdown_merchant(username: str) -> None:
    """A card payment, just now, at a merchant whose name is Markdown (link + image)."""
    from bank.store import get_engine, utcnow

    with session_scope(get_engine()) as s:
        card = s.execute(select(Card).where(Card.customer_id == customer_id(s, username)).order_by(Card.id)).scalars().first()
        s.add(CardTransaction(card_id=card.id, merchant=MARKDOWN_MERCHANT, amount=Decimal("12.34"),
                              currency=card.account.currency, account_amount=Decimal("12.34"), status="settled",
                              kind="payment", created_at=utcnow() - timedelta(minutes=5)))


def card_status(username: str, last4: str) -> str:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return s.execute(select(Card.status).where(Card.customer_id == customer_id(s, username),
                                                    Card.last4 == last4)).scalar_one()


def active_physical_cards(username: str) -> list[str]:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return list(s.execute(select(Card.last4).where(Card.customer_id == customer_id(s, username), Card.status == "active",
                                                       Card.kind == "physical")).scalars())


def guard_action(text: str) -> tuple[str, dict, list]:
    """What the guard does with ``text`` on the custom backend (same model and thresholds as the
    server): ("route" | "clarify" | "out_of_scope" | "small_talk", classification, choices)."""
    from langchain_core.messages import HumanMessage

    from chains.guard import guard
    from chains.intent import build_intent_chain

    meta = build_intent_chain().invoke([HumanMessage(text)], {"configurable": {"backend": "custom"}}).response_metadata
    decision = guard(meta)
    return decision.action, meta, decision.choices


def login(browser, url: str, username: str, password: str, shot: Path | None = None):
    ctx = browser.new_context(viewport={"width": 1100, "height": 820})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []  # 4xx/5xx responses seen by this page
    page.on("response", lambda r: page.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(url)
    page.locator("input").first.wait_for()
    page.locator("input").first.fill(username)
    page.locator("input[type=password]").fill(password)
    if shot:
        page.wait_for_timeout(500)
        page.screenshot(path=str(shot))
    page.get_by_role("button", name="Sign In").click()
    page.locator("#chat-input").wait_for()
    page.wait_for_timeout(1000)  # the websocket session
    return ctx, page


def send(page, text: str) -> None:
    page.locator("#chat-input").fill(text)
    page.locator("#chat-submit").click()


def app_buttons(page):
    """The app's action buttons (confirmations, choices): Chainlit gives them the action's id."""
    return page.locator("div.flex-wrap > button.px-3[id]")


def open_settings(page) -> None:
    page.locator("#chat-settings-open-modal").click()
    page.get_by_role("dialog").wait_for()
