"""The Chainlit UI in a real browser: Debian's Chromium driven by Playwright (headless), against
``python -m assistant.ui`` on loopback with the real short-trained custom model and the seeded
SQLite bank. Screenshots of the key screens go to the test's output folder (printed; set
``BANKING_UI_SCREENSHOTS`` to also copy them to a folder, e.g. docs/screenshots).

Backends in this test: the custom model is trained; no peft adapter exists, so peft must not be
offered; gemini is made available by pointing the real gemini backend at the project's local
fake of the Gemini REST API (tests/fake_gemini.py, a real HTTP server on 127.0.0.1) with a dummy
key: switching to it in the settings must make the next turn's step report ``gemini`` and must
reach that server.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bank.store import Card, Customer, session_scope
from servers import free_port, running_server

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 90_000  # one turn on a loaded 2-core machine


@pytest.fixture(scope="module")
def fake_gemini():
    from fake_gemini import FakeGemini

    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def ui_url(trained_custom_model_dir, session_home, fake_gemini, tmp_path_factory):
    from bank.seed import seed_demo
    from bank.store import get_engine

    seed_demo(get_engine(), reset=True)
    port = free_port()
    logdir = tmp_path_factory.mktemp("ui_server")
    env = {**os.environ, "BANKING_HOME": str(session_home), "BANKING_DATA_DIR": os.environ["BANKING_DATA_DIR"],
           "BANKING_BENCH_EVERY": "0", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "GOOGLE_API_KEY": "test-key-not-real", "BANKING_GEMINI_BASE_URL": fake_gemini.base_url,
           "BANKING_GEMINI_RETRIEVAL": "tfidf", "BANKING_GEMINI_MAX_RETRIES": "0",
           "CHAINLIT_AUTH_SECRET": secrets.token_urlsafe(48), "LANGSMITH_TRACING": "false"}
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "assistant.ui", "--host", "127.0.0.1", "--port", str(port)]
    with running_server(cmd, url, logdir / "ui.log", env, cwd=REPO):
        yield url


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


def _card_status(username: str, last4: str) -> str:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        cid = s.execute(select(Customer.id).where(Customer.username == username)).scalar_one()
        return s.execute(select(Card.status).where(Card.customer_id == cid, Card.last4 == last4)).scalar_one()


def _login(browser, url: str, username: str, password: str, shot: Path | None = None):
    ctx = browser.new_context(viewport={"width": 1100, "height": 820})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.locator("input").first.wait_for()
    page.locator("input").first.fill(username)
    page.locator("input[type=password]").fill(password)
    if shot:
        page.screenshot(path=str(shot))
    page.get_by_role("button", name="Sign In").click()
    page.locator("#chat-input").wait_for()
    page.wait_for_timeout(1000)  # the websocket session
    return ctx, page


def _send(page, text: str) -> None:
    page.locator("#chat-input").fill(text)
    page.locator("#chat-submit").click()


def test_login_confirm_freeze_and_switch_backend(browser, ui_url, shots, fake_gemini) -> None:
    ctx, page = _login(browser, ui_url, "alice", "alice-demo", shot=shots / "login.png")
    try:
        assert page.get_by_role("button", name="Where is my new card?").is_visible()  # starters
        assert _card_status("alice", "4821") == "active"
        _send(page, "I lost my card")
        page.get_by_text("Shall I do that?").wait_for()
        yes = page.get_by_role("button", name="Yes, do it")
        assert yes.is_visible() and page.get_by_role("button", name="No, leave it").is_visible()
        page.locator("[id^='step-intent']").last.click()  # open the intent step
        step = page.locator("[data-step-type='llm']").last
        step.get_by_text("Backend:").wait_for()
        assert "lost_or_stolen_card" in step.inner_text() and "custom" in step.inner_text()
        assert "Top 3" in step.inner_text() and "Latency" in step.inner_text()
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "confirmation.png"))
        assert _card_status("alice", "4821") == "active"  # nothing before the click

        yes.click()
        page.get_by_text("Done:").wait_for()
        assert _card_status("alice", "4821") == "frozen"
        assert page.get_by_role("button", name="Yes, do it").count() == 0  # the buttons are gone
        page.screenshot(path=str(shots / "confirmed.png"))

        # Settings offer only the available backends; the switch applies to the next message.
        page.locator("#chat-settings-open-modal").click()
        page.locator("#backend").click()
        options = [o.inner_text().strip() for o in page.get_by_role("option").all()]
        # peft is offered only when an adapter exists in this BANKING_HOME (an earlier test may
        # have trained a tiny one); gemini is available through the fake server.
        from models.peft import PeftIntentModel

        peft_ok = PeftIntentModel().availability()[0]
        expected = ["custom", "peft", "gemini"] if peft_ok else ["custom", "gemini"]
        assert options == expected, options
        page.get_by_role("option", name="gemini").click()
        page.get_by_role("button", name="Confirm").click()
        before, n_steps = len(fake_gemini.requests), page.locator("[id^='step-intent']").count()
        _send(page, "Where is my new card?")
        page.locator("[id^='step-intent']").nth(n_steps).wait_for()  # this turn's step
        page.locator("[id^='step-intent']").last.click()
        step = page.locator("[data-step-type='llm']").last
        step.get_by_text("Backend:").wait_for()
        assert "Backend: gemini" in step.inner_text()
        assert len(fake_gemini.requests) > before  # the gemini backend really answered
        page.wait_for_timeout(800)  # let the step finish opening
        page.screenshot(path=str(shots / "conversation_step.png"))
    finally:
        ctx.close()


def test_two_customers_at_once_see_only_their_own_data(browser, ui_url, shots) -> None:
    alice_ctx, alice = _login(browser, ui_url, "alice", "alice-demo")
    bob_ctx, bob = _login(browser, ui_url, "api-key", "demo-bob-key")  # the API key logs in too
    try:
        _send(alice, "I lost my card")
        _send(bob, "I lost my card")
        bob.get_by_text("3307").first.wait_for()
        alice.get_by_text("4821").first.wait_for()
        alice_text, bob_text = alice.locator("body").inner_text(), bob.locator("body").inner_text()
        assert "3307" not in alice_text
        for last4 in ("4821", "7390", "1155"):
            assert last4 not in bob_text
        bob.screenshot(path=str(shots / "second_customer.png"))
        bob.get_by_role("button", name="No, leave it").click()
        bob.get_by_text("3307").nth(1).wait_for()
        assert _card_status("bob", "3307") == "active"
    finally:
        alice_ctx.close()
        bob_ctx.close()
