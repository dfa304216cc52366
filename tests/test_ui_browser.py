"""The Chainlit UI in a real browser: Debian's Chromium driven by Playwright (headless), against
``python -m assistant.ui`` on loopback with the real short-trained custom model and the seeded
SQLite bank. Screenshots of the key screens go to the test's output folder (printed; set
``BANKING_UI_SCREENSHOTS`` to also copy them to a folder, e.g. docs/screenshots).

Backends in this test: the custom model is trained; peft points at an empty model folder, so it
must be listed as unavailable (disabled, with a plain reason); gemini is made available by
pointing the real gemini backend at the project's local fake of the Gemini REST API
(tests/fake_gemini.py, a real HTTP server on 127.0.0.1) with a dummy key: switching to it in the
settings must make the next turn's technical step report ``gemini`` and must reach that server.

The guard thresholds are pinned (out of scope below 0.2, clarify below 0.5) in the server and in
this process, so the test can pick, with the same model, a message that asks to clarify.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from assistant.ui import WORD_JOINER
from bank.store import Card, CardTransaction, Customer, session_scope
from db_backends import db_url  # noqa: F401 - the SQLite + PostgreSQL fixture
from servers import free_port, running_server

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 90_000  # one turn on a loaded 2-core machine
THRESHOLDS = {"BANKING_OOS_THRESHOLD": "0.2", "BANKING_CLARIFY_THRESHOLD": "0.5", "BANKING_CONFIDENCE_THRESHOLD": "0.5"}
NO_PEFT = Path(__file__).resolve().parent / "no-such-peft-model"  # an absent model folder: peft unavailable
MARKDOWN_MERCHANT = "[refund here](https://example.invalid/x) ![](https://example.invalid/p.png)"
CLARIFY_CANDIDATES = [
    "card", "money", "my card", "payment", "help", "transfer", "account", "charge", "top up", "cash",
    "problem with my card", "something is wrong with my account", "question about money", "fee",
    "is it possible", "what about the card", "where is it", "it is not there", "why", "the app",
]
OUT_OF_SCOPE_CANDIDATES = [
    "what's a good pizza recipe", "pizza", "what is the weather in paris", "who won the football yesterday",
    "tell me a joke", "how tall is mount everest", "play some jazz", "translate hello into french",
]


@pytest.fixture(scope="module")
def fake_gemini():
    from fake_gemini import FakeGemini

    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def pinned_thresholds():
    """The guard thresholds and the absent peft model of this module, in this process too (the
    server inherits them)."""
    from assistant.settings import get_settings

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
def ui_url(trained_custom_model_dir, session_home, fake_gemini, pinned_thresholds, tmp_path_factory):
    from bank.seed import seed_demo
    from bank.store import get_engine

    seed_demo(get_engine(), reset=True)
    _add_markdown_merchant("carol")
    port = free_port()
    logdir = tmp_path_factory.mktemp("ui_server")
    env = {**os.environ, **THRESHOLDS, "BANKING_HOME": str(session_home),
           "BANKING_DATA_DIR": os.environ["BANKING_DATA_DIR"], "BANKING_BENCH_EVERY": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
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


# ----------------------------------------------------------------------------- helpers
def _customer_id(s, username: str) -> int:
    return s.execute(select(Customer.id).where(Customer.username == username)).scalar_one()


def _add_markdown_merchant(username: str) -> None:
    """A card payment, just now, at a merchant whose name is Markdown (link + image)."""
    from bank.store import get_engine, utcnow

    with session_scope(get_engine()) as s:
        card = s.execute(select(Card).where(Card.customer_id == _customer_id(s, username)).order_by(Card.id)).scalars().first()
        s.add(CardTransaction(card_id=card.id, merchant=MARKDOWN_MERCHANT, amount=Decimal("12.34"),
                              currency=card.account.currency, account_amount=Decimal("12.34"), status="settled",
                              kind="payment", created_at=utcnow() - timedelta(minutes=5)))


def _card_status(username: str, last4: str) -> str:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return s.execute(select(Card.status).where(Card.customer_id == _customer_id(s, username),
                                                    Card.last4 == last4)).scalar_one()


def _active_physical_cards(username: str) -> list[str]:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return list(s.execute(select(Card.last4).where(Card.customer_id == _customer_id(s, username), Card.status == "active",
                                                       Card.kind == "physical")).scalars())


def _guard_action(text: str) -> tuple[str, dict, list]:
    """What the guard does with ``text`` on the custom backend (same model and thresholds as the
    server): ("route" | "clarify" | "out_of_scope" | "small_talk", classification, choices)."""
    from langchain_core.messages import HumanMessage

    from chains.guard import guard
    from chains.intent import build_intent_chain

    meta = build_intent_chain().invoke([HumanMessage(text)], {"configurable": {"backend": "custom"}}).response_metadata
    decision = guard(meta)
    return decision.action, meta, decision.choices


def _login(browser, url: str, username: str, password: str, shot: Path | None = None):
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


def _send(page, text: str) -> None:
    page.locator("#chat-input").fill(text)
    page.locator("#chat-submit").click()


def _app_buttons(page):
    """The app's action buttons (confirmations, choices): Chainlit gives them the action's id."""
    return page.locator("div.flex-wrap > button.px-3[id]")


def _open_settings(page) -> None:
    page.locator("#chat-settings-open-modal").click()
    page.get_by_role("dialog").wait_for()


# ----------------------------------------------------------------------------- tests
def test_login_page_shows_the_bank_and_a_friendly_wrong_password_message(browser, ui_url, shots) -> None:
    ctx = browser.new_context(viewport={"width": 1100, "height": 820})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(ui_url)
        page.get_by_text("Sign in to Kestrel Bank").wait_for()
        logo = page.request.get(f"{ui_url}/logo?theme=light")
        assert logo.status == 200 and b"Kestrel Bank" in logo.body()  # our logo, not Chainlit's
        assert "Chainlit" not in page.locator("body").inner_text()
        page.locator("input").first.fill("alice")
        page.locator("input[type=password]").fill("not-her-password")
        page.get_by_role("button", name="Sign In").click()
        page.get_by_text("That user name and password don't match").wait_for()
        page.wait_for_timeout(1500)  # any toast would be up by now
        body = page.locator("body").inner_text()
        assert "credentialssignin" not in body.lower() and "Unauthorized" not in body
        page.locator("input[type=password]").fill("")
        page.reload()
        page.get_by_text("Sign in to Kestrel Bank").wait_for()
        page.locator("input").first.fill("alice")
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "login.png"))
    finally:
        ctx.close()


def test_plain_step_confirmation_buttons_operator_view_and_backends(browser, ui_url, shots, fake_gemini) -> None:
    from assistant.ui import confirmation_labels, customer_reason
    from chains.backends import available_backends

    action, meta, _ = _guard_action("I lost my card")
    assert action == "route" and meta["intent"] == "lost_or_stolen_card", meta
    cards = _active_physical_cards("alice")
    assert cards == ["4821"]
    yes_label, no_label = confirmation_labels({"action": "freeze_card"}, {"cards": cards})
    assert (yes_label, no_label) == ("Yes, freeze my card", "No, keep it as it is")  # one card: singular

    ctx, page = _login(browser, ui_url, "alice", "alice-demo")
    try:
        assert page.locator("[id^='starter-']").count() == 4  # the starters
        _send(page, "I lost my card")
        page.get_by_text("Shall I do that?").wait_for()
        # The customer's view: what was understood in plain words, no labels, scores or steps.
        page.get_by_text("Understood: a lost or stolen card").wait_for()
        body = page.locator("body").inner_text()
        assert "lost_or_stolen_card" not in body and "Used" not in body and "Technical details" not in body
        yes, no = page.get_by_role("button", name=yes_label), page.get_by_role("button", name=no_label)
        assert yes.is_visible() and no.is_visible()
        # Clearly buttons: a filled "yes" and an outlined "no", not grey text.
        assert yes.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(11, 79, 108)"
        assert no.evaluate("b => getComputedStyle(b).borderTopWidth") != "0px"
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "confirmation.png"))
        assert _card_status("alice", "4821") == "active"  # nothing before the click

        yes.click()
        page.get_by_text("Done:").wait_for()
        assert _card_status("alice", "4821") == "frozen"
        assert page.get_by_role("button", name=yes_label).count() == 0  # the buttons are gone ...
        echo = page.get_by_text(yes_label, exact=True)
        assert echo.count() == 1 and echo.is_visible()  # ... and the decision is echoed in the chat
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "confirmed.png"))

        # Settings: every backend; the unavailable one disabled with its reason in plain words.
        _open_settings(page)
        peft = page.locator("#unavailable_peft")
        assert peft.is_disabled()
        dialog = page.get_by_role("dialog").inner_text()
        assert "Fine-tuned language model: not available" in dialog
        reason = available_backends()["peft"]["reason"]  # what /health reports, e.g. "... not installed ..."
        assert customer_reason(reason) in dialog.split("Fine-tuned language model: not available")[1]
        assert reason not in dialog and "pip" not in dialog and "`" not in dialog
        page.wait_for_timeout(800)  # the dialog's fade-in
        page.screenshot(path=str(shots / "settings.png"))
        # The operator view and gemini for the next message.
        page.locator("#details").click()
        page.locator("#backend").click()
        options = [o.inner_text().strip() for o in page.get_by_role("option").all()]
        assert options == ["Standard (our own intent model)", "Google Gemini"], options
        page.get_by_role("option", name="Google Gemini").click()
        page.get_by_role("button", name="Confirm").click()

        before = len(fake_gemini.requests)
        _send(page, "Where is my new card?")
        step = page.get_by_text("Technical details", exact=True).last
        step.wait_for()
        step.click()
        page.get_by_text("Backend:").last.wait_for()
        text = page.locator("body").inner_text()
        assert re.search(r"Intent: [a-z_]+", text) and "Confidence:" in text and "Latency:" in text, text
        assert re.search(r"Backend: gemini", text), text
        assert len(fake_gemini.requests) > before  # the gemini backend really answered
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "operator_view.png"))
        assert not [e for e in page.errors if "/avatars/" in e], page.errors  # no broken avatars
    finally:
        ctx.close()


def test_clarifying_question_offers_buttons_and_the_choice_is_answered(browser, ui_url, shots) -> None:
    from chains.guard import OUT_OF_SCOPE_ANSWER

    picked = next(((t, a[2]) for t in CLARIFY_CANDIDATES if (a := _guard_action(t))[0] == "clarify"), None)
    assert picked is not None, "no candidate message makes this model ask to clarify"
    text, choices = picked
    titles = [c.title for c in choices]
    labels = [t[:1].upper() + t[1:] for t in titles]

    ctx, page = _login(browser, ui_url, "dave", "dave-demo")
    try:
        _send(page, text)
        page.get_by_role("button", name="Something else").wait_for()
        shown = [b.inner_text().strip() for b in _app_buttons(page).all()]
        assert shown == [*labels, "Something else"], (shown, labels)
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", page.locator("body").inner_text())  # no raw labels
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "clarification.png"))
        page.get_by_role("button", name=labels[0]).click()
        page.get_by_text(f"Understood: {titles[0]}").wait_for()  # the chosen intent was answered
        assert page.get_by_text(labels[0], exact=True).count() == 1  # the choice is echoed
        assert page.get_by_role("button", name="Something else").count() == 0

        # Out of scope: the polite answer, with no "Understood" line and no step.
        oos = next((t for t in OUT_OF_SCOPE_CANDIDATES if _guard_action(t)[0] == "out_of_scope"), None)
        assert oos is not None, "no candidate message is out of scope for this model"
        n_understood = page.get_by_text("Understood:").count()
        _send(page, oos)
        page.get_by_text(OUT_OF_SCOPE_ANSWER[:40]).wait_for()
        page.wait_for_timeout(1500)
        assert page.get_by_text("Understood:").count() == n_understood
        assert "Used" not in page.locator("body").inner_text()
    finally:
        ctx.close()


def test_conversation_history_survives_a_reload_and_only_its_owner_sees_it(browser, ui_url, shots) -> None:
    ctx, page = _login(browser, ui_url, "alice", "alice-demo")
    try:
        _send(page, "Where is my new card?")
        page.get_by_text("Understood: a card that hasn't arrived").wait_for()
        page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"))
        thread_url = page.url
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "conversation.png"))
        page.reload()
        page.get_by_text("Understood: a card that hasn't arrived").wait_for()  # still there
        assert "7390" in page.locator("body").inner_text()
    finally:
        ctx.close()
    thread_link = f"a[href='/thread/{thread_url.rsplit('/', 1)[1]}']"
    # A second device: the conversation is listed and opens.
    ctx, page = _login(browser, ui_url, "alice", "alice-demo")
    try:
        page.locator(thread_link).click()
        page.get_by_text("Understood: a card that hasn't arrived").wait_for()
    finally:
        ctx.close()
    # Another customer sees neither the listing nor the thread itself.
    ctx, page = _login(browser, ui_url, "api-key", "demo-bob-key")
    try:
        page.wait_for_timeout(2000)  # the thread list has loaded
        assert page.locator(thread_link).count() == 0
        resp = page.request.get(thread_url.replace("/thread/", "/project/thread/"))
        assert resp.status in (401, 403, 404), resp.status
        page.goto(thread_url)
        page.wait_for_timeout(4000)
        body = page.locator("body").inner_text()
        assert "Understood: a card that hasn't arrived" not in body and "7390" not in body
    finally:
        ctx.close()


def test_a_waiting_confirmation_is_asked_again_after_a_reload(browser, ui_url) -> None:
    ctx, page = _login(browser, ui_url, "bob", "bob-demo")
    try:
        _send(page, "I lost my card")
        page.get_by_role("button", name="Yes, freeze my card").wait_for()
        page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"))
        page.reload()
        no = page.get_by_role("button", name="No, keep it as it is")
        no.wait_for()  # the thread is still waiting: the question comes back with its buttons
        assert page.get_by_role("button", name="Yes, freeze my card").count() == 1
        no.click()
        page.get_by_text("No, keep it as it is", exact=True).wait_for()  # echoed
        page.wait_for_timeout(2000)
        assert _card_status("bob", "3307") == "active"
    finally:
        ctx.close()


def test_merchant_name_with_markdown_is_shown_as_plain_text(browser, ui_url) -> None:
    action, meta, _ = _guard_action("I don't recognise a payment on my statement")
    assert action == "route", meta
    ctx, page = _login(browser, ui_url, "carol", "carol-demo")
    remote: list[str] = []
    page.on("request", lambda r: remote.append(r.url) if "example.invalid" in r.url else None)
    try:
        _send(page, "I don't recognise a payment on my statement")
        page.get_by_text("refund here").first.wait_for()
        page.wait_for_timeout(1000)  # the rest of the stream
        shown = page.locator("body").inner_text().replace(WORD_JOINER, "")  # the invisible link breakers
        assert MARKDOWN_MERCHANT in shown  # the name, character for character
        assert page.locator("a[href*='example.invalid']").count() == 0
        assert page.locator("img[src*='example.invalid']").count() == 0
        page.wait_for_timeout(1000)
        assert remote == []  # no image was requested
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
        bob.get_by_role("button", name="No, keep it as it is").click()
        bob.get_by_text("No, keep it as it is", exact=True).wait_for()  # echoed
        bob.wait_for_timeout(2000)
        assert _card_status("bob", "3307") == "active"
    finally:
        alice_ctx.close()
        bob_ctx.close()


def test_ui_refuses_a_busy_port_with_a_clear_error() -> None:
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "assistant.cli", "ui", "--port", str(port)], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert f"127.0.0.1:{port}: the port is already in use" in r.stderr and "--port" in r.stderr
    help_text = subprocess.run([sys.executable, "-m", "assistant.cli", "ui", "--help"], cwd=REPO,
                               capture_output=True, text=True, timeout=120).stdout
    assert "default 127.0.0.1" in help_text and "default 8080" in help_text


# ----------------------------------------------------------------------------- the pure helpers
def test_plain_line_only_when_a_banking_tool_answered() -> None:
    from assistant.ui import understood_line

    assert understood_line({"status": "answered", "intent": "card_arrival"}) == "Understood: a card that hasn't arrived"
    assert understood_line({"status": "confirmation_required", "intent": "lost_or_stolen_card"}) == \
        "Understood: a lost or stolen card"
    for status in ("out_of_scope", "clarify", "small_talk", "confirmed", "declined", "expired", "superseded"):
        assert understood_line({"status": status, "intent": "card_arrival"}) is None, status


def test_confirmation_buttons_are_worded_for_the_number_of_cards() -> None:
    from assistant.ui import confirmation_labels

    freeze = {"action": "freeze_card"}
    assert confirmation_labels(freeze, {"cards": [{"last4": "4821"}]}) == ("Yes, freeze my card", "No, keep it as it is")
    assert confirmation_labels(freeze, {"cards": [{}, {}]}) == ("Yes, freeze both cards", "No, keep them as they are")
    assert confirmation_labels(freeze, {"cards": [{}, {}, {}]}) == ("Yes, freeze all 3 cards", "No, keep them as they are")
    assert confirmation_labels({"action": "cancel_transfer"}, {}) == ("Yes, cancel the transfer", "No, let it go ahead")
    assert confirmation_labels({"action": "something_new"}, {}) == ("Yes, go ahead", "No, leave it")


def test_answer_markdown_keeps_bullets_and_escapes_third_party_text() -> None:
    from assistant.ui import answer_markdown

    md = answer_markdown(f"Recent payments:\n- {MARKDOWN_MERCHANT}, £12.34\n- *Cafe* <b>x</b>, £1.00\nOnce it arrives, fine.")
    blocks = md.split("\n\n")
    assert blocks[0] == "Recent payments:"
    assert blocks[1].startswith("- \\[refund here\\]\\(https:" + WORD_JOINER + "//example.invalid/x\\)")
    assert "\n- \\*Cafe\\* \\<b\\>x\\</b\\>, £1.00" in blocks[1]
    assert blocks[2] == "Once it arrives, fine."  # its own paragraph, not part of the last bullet
    assert "](" not in md and "![" not in md


def test_backend_reasons_in_customer_words() -> None:
    from assistant.ui import backend_options

    opts = backend_options({
        "custom": {"available": True, "reason": "model v1"},
        "peft": {"available": False, "reason": "No trained peft model. Run `banking-assistant train peft`."},
        "gemini": {"available": False, "reason": "GOOGLE_API_KEY is not set"},
    })
    assert [(o["name"], o["available"]) for o in opts] == [("custom", True), ("peft", False), ("gemini", False)]
    assert opts[0]["reason"] == ""
    assert opts[1]["reason"] == "Not ready: it has not been trained on this server yet."
    assert opts[2]["reason"] == "Not connected: this bank has not set up access to it."


def test_history_store_keeps_each_customers_threads_on_sqlite_and_postgresql(db_url, tmp_path) -> None:  # noqa: F811
    """The UI's conversation history (Chainlit's SQLAlchemy data layer on the project database,
    tables from assistant/ui.py) on both databases: a thread and its messages read back with
    decoded metadata, its author is the customer, and the other customer's list is empty."""
    import asyncio
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine

    os.environ.setdefault("CHAINLIT_APP_ROOT", str(tmp_path))  # chainlit reads its root on import
    from chainlit.types import Pagination, ThreadFilter
    from chainlit.user import User

    from assistant.ui import create_chainlit_tables
    from assistant.ui_app import HistoryDataLayer, data_layer_for

    engine = create_engine(db_url)
    try:
        create_chainlit_tables(engine)
        create_chainlit_tables(engine)  # idempotent
    finally:
        engine.dispose()

    async def scenario() -> tuple:
        layer = data_layer_for(db_url)
        assert isinstance(layer, HistoryDataLayer)
        try:
            alice = await layer.create_user(User(identifier="alice", metadata={"customer_id": 1}))
            bob = await layer.create_user(User(identifier="bob", metadata={"customer_id": 2}))
            tid = str(uuid.uuid4())
            await layer.update_thread(tid, name="Where is my new card?", user_id=alice.id, metadata={"k": 1})
            create_step = getattr(HistoryDataLayer.create_step, "__wrapped__")  # outside a Chainlit session
            for i, (kind, text) in enumerate([("user_message", "Where is my new card?"),
                                              ("assistant_message", "Your card is on its way.")]):
                await create_step(layer, {"id": str(uuid.uuid4()), "threadId": tid, "name": kind, "type": kind,
                                          "streaming": False, "output": text, "metadata": {"n": i},
                                          "createdAt": f"2026-11-30T10:00:0{i}Z"})
            thread = await layer.get_thread(tid)
            author = await layer.get_thread_author(tid)
            mine = await layer.list_threads(Pagination(first=10), ThreadFilter(userId=alice.id))
            theirs = await layer.list_threads(Pagination(first=10), ThreadFilter(userId=bob.id))
            return tid, thread, author, mine.data, theirs.data
        finally:
            await layer.close()

    # Its own thread: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        tid, thread, author, mine, theirs = pool.submit(asyncio.run, scenario()).result()
    assert thread["name"] == "Where is my new card?" and thread["metadata"] == {"k": 1}
    assert [s["output"] for s in thread["steps"]] == ["Where is my new card?", "Your card is on its way."]
    assert [s["metadata"] for s in thread["steps"]] == [{"n": 0}, {"n": 1}]
    assert author == "alice"
    assert [t["id"] for t in mine] == [tid] and theirs == []
