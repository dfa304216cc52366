"""The customer's Chainlit UI in a real browser (Debian's Chromium driven by Playwright, headless)
against ``python -m assistant.ui`` on loopback with ``BANKING_UI_OPERATOR_TOOLS=false`` (the
default): set-up and helpers in tests/ui_support.py; the operator tools are tested in
tests/test_ui_operator.py, the pure helpers in tests/test_ui_helpers.py. Screenshots of the key
screens go to the test's output folder (printed; set ``BANKING_UI_SCREENSHOTS`` to also copy
them to a folder, e.g. docs/screenshots).
"""

from __future__ import annotations

import re
import sys
from urllib.parse import urlsplit

import pytest
from ui_support import (  # noqa: F401 - fixtures
    MARKDOWN_MERCHANT, REPO, TIMEOUT_MS, active_physical_cards, app_buttons, browser, card_status, fake_gemini, guard_action,
    login, pinned_thresholds, send, shots, ui_server,
)

from assistant.ui import UNAVAILABLE_THREAD, WORD_JOINER

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
def ui_url(trained_custom_model_dir, session_home, fake_gemini, pinned_thresholds, tmp_path_factory):
    with ui_server(session_home, fake_gemini, tmp_path_factory.mktemp("ui_server"), operator_tools=False) as url:
        yield url


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


def test_plain_step_confirmation_buttons_and_no_operator_tools(browser, ui_url, shots) -> None:
    from assistant.ui import confirmation_labels

    action, meta, _ = guard_action("I lost my card")
    assert action == "route" and meta["intent"] == "lost_or_stolen_card", meta
    cards = active_physical_cards("alice")
    assert cards == ["4821"]
    yes_label, no_label = confirmation_labels({"action": "freeze_card"}, {"cards": cards})
    assert (yes_label, no_label) == ("Yes, freeze my card", "No, keep it as it is")  # one card: singular

    ctx, page = login(browser, ui_url, "alice", "alice-demo")
    try:
        assert page.locator("[id^='starter-']").count() == 4  # the starters
        send(page, "I lost my card")
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
        assert card_status("alice", "4821") == "active"  # nothing before the click

        yes.click()
        page.get_by_text("Done:").wait_for()
        assert card_status("alice", "4821") == "frozen"
        assert page.get_by_role("button", name=yes_label).count() == 0  # the buttons are gone ...
        echo = page.get_by_text(yes_label, exact=True)
        assert echo.count() == 1 and echo.is_visible()  # ... and the decision is echoed in the chat
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "confirmed.png"))

        # A customer gets no model menu and no staff switch: no settings panel at all.
        assert page.locator("#chat-settings-open-modal").count() == 0
        assert "Technical details" not in page.locator("body").inner_text()
        assert not [e for e in page.errors if "/avatars/" in e], page.errors  # no broken avatars
    finally:
        ctx.close()


def test_clarifying_question_offers_buttons_and_the_choice_is_answered(browser, ui_url, shots) -> None:
    from chains.guard import OUT_OF_SCOPE_ANSWER

    picked = next(((t, a[2]) for t in CLARIFY_CANDIDATES if (a := guard_action(t))[0] == "clarify"), None)
    assert picked is not None, "no candidate message makes this model ask to clarify"
    text, choices = picked
    titles = [c.title for c in choices]
    labels = [t[:1].upper() + t[1:] for t in titles]

    ctx, page = login(browser, ui_url, "dave", "dave-demo")
    try:
        send(page, text)
        page.get_by_role("button", name="Something else").wait_for()
        shown = [b.inner_text().strip() for b in app_buttons(page).all()]
        assert shown == [*labels, "Something else"], (shown, labels)
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", page.locator("body").inner_text())  # no raw labels
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "clarification.png"))
        page.get_by_role("button", name=labels[0]).click()
        page.get_by_text(f"Understood: {titles[0]}").wait_for()  # the chosen intent was answered
        # the choice is echoed once in the chat (the sidebar may also show it as the thread's title)
        assert page.locator("[data-step-type='user_message']").get_by_text(labels[0], exact=True).count() == 1
        assert page.get_by_role("button", name="Something else").count() == 0

        # Out of scope: the polite answer, with no "Understood" line and no step.
        oos = next((t for t in OUT_OF_SCOPE_CANDIDATES if guard_action(t)[0] == "out_of_scope"), None)
        assert oos is not None, "no candidate message is out of scope for this model"
        n_understood = page.get_by_text("Understood:").count()
        send(page, oos)
        page.get_by_text(OUT_OF_SCOPE_ANSWER[:40]).wait_for()
        page.wait_for_timeout(1500)
        assert page.get_by_text("Understood:").count() == n_understood
        assert "Used" not in page.locator("body").inner_text()
    finally:
        ctx.close()


def test_conversation_history_survives_a_reload_and_only_its_owner_sees_it(browser, ui_url, shots) -> None:
    ctx, page = login(browser, ui_url, "alice", "alice-demo")
    try:
        send(page, "Where is my new card?")
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
    ctx, page = login(browser, ui_url, "alice", "alice-demo")
    try:
        page.locator(thread_link).click()
        page.get_by_text("Understood: a card that hasn't arrived").wait_for()
    finally:
        ctx.close()
    # Another customer sees neither the listing nor the thread itself.
    ctx, page = login(browser, ui_url, "api-key", "demo-bob-key")
    try:
        page.wait_for_timeout(2000)  # the thread list has loaded
        assert page.locator(thread_link).count() == 0
        resp = page.request.get(thread_url.replace("/thread/", "/project/thread/"))
        assert resp.status in (401, 403, 404), resp.status
        page.goto(thread_url)
        # Said plainly, and a new conversation is open at once: bob can type and get an answer.
        page.get_by_text(UNAVAILABLE_THREAD).wait_for()
        page.wait_for_timeout(2000)
        body = page.locator("body").inner_text()
        assert "Understood: a card that hasn't arrived" not in body and "7390" not in body
        assert "Could not reach the server" not in body
        assert not page.url.endswith(thread_url.rsplit("/", 1)[1])
        send(page, "I lost my card")
        page.get_by_text("Understood: a lost or stolen card").wait_for()
        assert "3307" in page.locator("body").inner_text()  # his own card, in his own new thread
        page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"))
        assert page.url != thread_url
    finally:
        ctx.close()
    assert _thread_row(thread_url.rsplit("/", 1)[1])[1] == "alice"  # alice's thread is untouched


def _thread_row(thread_id: str) -> tuple[str, str]:
    """(name, author's user name) of a Chainlit thread in the project database."""
    from sqlalchemy import text

    from bank.store import get_engine

    with get_engine().connect() as c:
        row = c.execute(text('SELECT "name", "userIdentifier" FROM threads WHERE "id" = :i'), {"i": thread_id}).one()
    return row[0], row[1]


def test_no_request_leaves_for_a_third_party_host(browser, ui_url) -> None:
    """Login page and chat load fonts, styles and scripts from the app itself only."""
    ctx = browser.new_context(viewport={"width": 1100, "height": 820})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    hosts: list[str] = []
    page.on("request", lambda r: hosts.append(urlsplit(r.url).netloc or urlsplit(r.url).scheme))
    try:
        page.goto(ui_url)
        page.get_by_text("Sign in to Kestrel Bank").wait_for()
        page.wait_for_timeout(1500)
        html = page.content()
        assert "fonts.googleapis.com" not in html and "jsdelivr" not in html
        page.locator("input").first.fill("dave")
        page.locator("input[type=password]").fill("dave-demo")
        page.get_by_role("button", name="Sign In").click()
        page.locator("#chat-input").wait_for()
        send(page, "Where is my new card?")
        page.get_by_text("Understood: a card that hasn't arrived").wait_for()
        page.wait_for_timeout(1500)
    finally:
        ctx.close()
    own = urlsplit(ui_url).netloc
    assert hosts and own in hosts
    assert set(hosts) <= {own, "data", "blob"}, sorted(set(hosts))


def test_thread_is_titled_by_its_first_understood_request(browser, ui_url) -> None:
    ctx, page = login(browser, ui_url, "dave", "dave-demo")
    try:
        send(page, "hi")
        page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"))
        thread_id = page.url.rsplit("/", 1)[1]
        page.wait_for_timeout(3000)  # the small-talk answer
        send(page, "Where is my new card?")
        page.get_by_text("Understood: a card that hasn't arrived").wait_for()
        link = page.locator(f"a[href='/thread/{thread_id}']")
        link.get_by_text("A card that hasn't arrived").wait_for()  # the sidebar, without a reload
        assert _thread_row(thread_id) == ("A card that hasn't arrived", "dave")
        send(page, "I lost my card")  # a later request does not rename it
        page.get_by_text("Understood: a lost or stolen card").wait_for()
        page.wait_for_timeout(1000)
        assert _thread_row(thread_id)[0] == "A card that hasn't arrived"
        page.reload()
        page.locator(f"a[href='/thread/{thread_id}']").get_by_text("A card that hasn't arrived").wait_for()
    finally:
        ctx.close()


def test_a_waiting_confirmation_is_asked_again_after_a_reload(browser, ui_url) -> None:
    ctx, page = login(browser, ui_url, "bob", "bob-demo")
    try:
        send(page, "I lost my card")
        page.get_by_role("button", name="Yes, freeze my card").wait_for()
        page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"))
        page.reload()
        no = page.get_by_role("button", name="No, keep it as it is")
        no.wait_for()  # the thread is still waiting: the question comes back with its buttons
        assert page.get_by_role("button", name="Yes, freeze my card").count() == 1
        no.click()
        page.get_by_text("No, keep it as it is", exact=True).wait_for()  # echoed
        page.wait_for_timeout(2000)
        assert card_status("bob", "3307") == "active"
    finally:
        ctx.close()


def test_merchant_name_with_markdown_is_shown_as_plain_text(browser, ui_url) -> None:
    action, meta, _ = guard_action("I don't recognise a payment on my statement")
    assert action == "route", meta
    ctx, page = login(browser, ui_url, "carol", "carol-demo")
    remote: list[str] = []
    page.on("request", lambda r: remote.append(r.url) if "example.invalid" in r.url else None)
    try:
        send(page, "I don't recognise a payment on my statement")
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
    alice_ctx, alice = login(browser, ui_url, "alice", "alice-demo")
    bob_ctx, bob = login(browser, ui_url, "api-key", "demo-bob-key")  # the API key logs in too
    try:
        send(alice, "I lost my card")
        send(bob, "I lost my card")
        bob.get_by_text("3307").first.wait_for()
        alice.get_by_text("4821").first.wait_for()
        alice_text, bob_text = alice.locator("body").inner_text(), bob.locator("body").inner_text()
        assert "3307" not in alice_text
        for last4 in ("4821", "7390", "1155"):
            assert last4 not in bob_text
        bob.get_by_role("button", name="No, keep it as it is").click()
        bob.get_by_text("No, keep it as it is", exact=True).wait_for()  # echoed
        bob.wait_for_timeout(2000)
        assert card_status("bob", "3307") == "active"
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
