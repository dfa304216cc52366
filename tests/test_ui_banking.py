"""The chat UI for the requests of issue 16 (send money, questions for a missing detail, the
hand-over): the pure helpers (no browser), then the customer's Chainlit UI in a real browser
(Debian's Chromium driven by Playwright, headless, as tests/test_ui_browser.py) against
``python -m assistant.ui`` on loopback with the fake intent backend (tests/fake_backend.py)
registered as "custom" in the server process, so the conversation does not depend on how a
short-trained model ranks "40 pounds". The bank is the seeded SQLite database; every payment is
checked in it (one new transfer, the balance lower by exactly the amount)."""

from __future__ import annotations

import os
import re
import secrets
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from ui_support import REPO, TIMEOUT_MS, app_buttons, browser, login, send  # noqa: F401 - fixtures

from servers import free_port, running_server

TESTS = Path(__file__).resolve().parent
FAKE_UI = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from fake_backend import FakeIntentModel; "
           "from models import registry; registry._instances['custom'] = FakeIntentModel(); "
           "from assistant.ui import main; raise SystemExit(main(sys.argv[1:]))")
"""``python -c`` program: the UI launcher with the fake backend registered (first argument: tests/)."""
GUARD_ENV = ("BANKING_OOS_THRESHOLD", "BANKING_CLARIFY_THRESHOLD", "BANKING_CONFIDENCE_THRESHOLD")


# ----------------------------------------------------------------------------- pure helpers
def test_understood_line_for_a_question_and_a_hand_over() -> None:
    from assistant.ui import thread_title, understood_line
    from chains.intent_titles import intent_title

    for status, intent in (("slot_required", "send_money"), ("handoff", "talk_to_human"),
                           ("confirmation_required", "add_payee"), ("answered", "search_transactions")):
        out = {"status": status, "intent": intent}
        assert understood_line(out) == f"Understood: {intent_title(intent)}", out
        assert thread_title(out) == intent_title(intent)[:1].upper() + intent_title(intent)[1:]
    assert "_" not in understood_line({"status": "slot_required", "intent": "dispute_charge"})
    for status in ("clarify", "out_of_scope", "confirmed", "declined", "superseded"):
        assert understood_line({"status": status, "intent": "send_money"}) is None, status


def test_confirmation_buttons_for_the_new_actions() -> None:
    from assistant.ui import confirmation_labels

    pay = {"action": "send_payment"}
    assert confirmation_labels(pay, {"slots": {"amount": "40.00", "currency": "GBP"}}) == \
        ("Yes, send £40.00", "No, don't send it")
    assert confirmation_labels(pay, {"slots": {"amount": "1250.5", "currency": "EUR"}}) == \
        ("Yes, send €1,250.50", "No, don't send it")
    assert confirmation_labels(pay, {"slots": {"amount": "40.00"}}) == ("Yes, send it", "No, don't send it")
    assert confirmation_labels(pay, {"slots": {"amount": "lots", "currency": "GBP"}}) == ("Yes, send it", "No, don't send it")
    assert confirmation_labels({"action": "add_payee"}, {}) == ("Yes, add the payee", "No, don't add it")
    assert confirmation_labels({"action": "top_up_account"}, {}) == ("Yes, top up", "No, don't top up")
    assert confirmation_labels({"action": "open_dispute"}, {}) == ("Yes, open the dispute", "No, don't open it")


def test_slot_options_and_numbered_replies() -> None:
    from assistant.ui import slot_options
    from assistant.ui_text import option_reply

    ask = {"status": "slot_required", "slot_request": {"slot": "payee", "question": "Mark Thompson or Mark Ellis?",
                                                       "options": ["Mark Thompson", "Mark Ellis", " "]}}
    assert slot_options(ask) == ["Mark Thompson", "Mark Ellis"]
    assert slot_options({"status": "slot_required", "slot_request": {"slot": "amount", "options": []}}) == []
    assert slot_options({**ask, "status": "answered"}) == []
    assert option_reply("2", ["Mark Thompson", "Mark Ellis"]) == "Mark Ellis"
    assert option_reply(" 1) ", ["Mark Thompson", "Mark Ellis"]) == "Mark Thompson"
    assert option_reply("3", ["Mark Thompson", "Mark Ellis"]) == "3"
    assert option_reply("45", []) == "45"  # an amount typed as a number stays a number


HANDOFF_ANSWER = ("I've passed our conversation to a member of our team (ticket #7). You are number 2 in the queue; "
                  "the expected wait is about 8 minutes. They will see what we've discussed.")


def test_a_hand_over_message_states_the_queue_once() -> None:
    """The hand-over's answer names ticket, position and wait; the message adds only the
    "Understood" line (it used to repeat them in a second line)."""
    from assistant.ui import message_markdown

    out = {"status": "handoff", "intent": "talk_to_human", "answer": HANDOFF_ANSWER,
           "data": {"handoff": {"ticket_id": 7, "position": 2, "expected_wait_min": 8}}}
    md = message_markdown(out, out["answer"])
    assert md.startswith("*Understood: ") and md.count("\n\n") == 1, md
    assert md.count("in the queue") == 1 and md.count("#7") == 1 and md.count("8 minutes") == 1, md
    assert message_markdown({"status": "clarify", "intent": "talk_to_human"}, "Which one?") == "Which one?"


def test_operator_view_names_the_detail_asked_for() -> None:
    from assistant.ui import technical_markdown

    out = {"status": "slot_required", "intent": "send_money", "confidence": 0.94, "backend": "custom",
           "model_version": "v1", "latency_ms": 1.0, "ranking": [],
           "slot_request": {"slot": "payee", "question": "?", "options": ["Mark [x](y)", "Mark Ellis"]}}
    md = technical_markdown(out)
    assert "**Asked for:** `payee` (Mark \\[x\\]\\(y\\), Mark Ellis)" in md, md
    assert "**Asked for:** `amount` (free text)" in technical_markdown(
        {**out, "slot_request": {"slot": "amount", "question": "?", "options": []}})


# ----------------------------------------------------------------------------- the bank
def payments_and_balance(username: str) -> tuple[list[tuple[str, Decimal, str]], Decimal]:
    """(outgoing transfers as (payee, amount, currency) in id order, GBP balance) of ``username``."""
    from bank.store import Account, Customer, Transfer, get_engine, session_scope

    with session_scope(get_engine()) as s:
        cid = s.execute(select(Customer.id).where(Customer.username == username)).scalar_one()
        rows = s.execute(select(Transfer.beneficiary_name, Transfer.amount, Transfer.currency)
                         .join(Account, Transfer.account_id == Account.id)
                         .where(Account.customer_id == cid, Transfer.direction == "outgoing")
                         .order_by(Transfer.id)).all()
        gbp = s.execute(select(Account.balance).where(Account.customer_id == cid, Account.currency == "GBP")).scalar_one()
    return [tuple(r) for r in rows], gbp


def open_tickets() -> int:
    from sqlalchemy import func

    from bank.store import get_engine, session_scope
    from bank.models_extra import HandoffTicket

    with session_scope(get_engine()) as s:
        return s.execute(select(func.count()).select_from(HandoffTicket)).scalar_one()


# ----------------------------------------------------------------------------- the UI server
@pytest.fixture(scope="module")
def fake_ui_url(session_home, tmp_path_factory):
    """The customer UI (no operator tools) with the fake intent backend, on a seeded bank."""
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine

    create_schema(get_engine())
    seed_demo(get_engine(), reset=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in GUARD_ENV}  # the fake backend's own thresholds
    env.update({"BANKING_HOME": str(session_home), "BANKING_DATA_DIR": os.environ["BANKING_DATA_DIR"],
                "BANKING_BENCH_EVERY": "0", "BANKING_UI_OPERATOR_TOOLS": "false",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                "CHAINLIT_AUTH_SECRET": secrets.token_urlsafe(48), "LANGSMITH_TRACING": "false"})
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-c", FAKE_UI, str(TESTS), "--host", "127.0.0.1", "--port", str(port)]
    with running_server(cmd, url, tmp_path_factory.mktemp("ui_fake") / "ui.log", env, cwd=REPO):
        yield url


# ----------------------------------------------------------------------------- browser tests
def test_alice_pays_northside_energy_after_being_asked_the_amount(browser, fake_ui_url) -> None:
    from assistant.ui import understood_line

    before, balance = payments_and_balance("alice")
    ctx, page = login(browser, fake_ui_url, "alice", "alice-demo")
    try:
        send(page, "send money to Northside Energy")
        page.get_by_text("How much would you like to send to Northside Energy?").wait_for()
        page.get_by_text(understood_line({"status": "slot_required", "intent": "send_money"})).first.wait_for()
        assert app_buttons(page).count() == 0  # a free-text question: no option buttons

        send(page, "40 pounds")
        page.get_by_text("Shall I send it?").wait_for()
        question = page.locator(".step").filter(has_text="Shall I send it?").last.inner_text()
        assert "Northside Energy" in question and "GB33 **** 5555" in question and "£40.00" in question, question
        yes, no = page.get_by_role("button", name="Yes, send £40.00"), page.get_by_role("button", name="No, don't send it")
        assert yes.is_visible() and no.is_visible()
        assert payments_and_balance("alice") == (before, balance)  # nothing before the click

        yes.click()
        page.get_by_text("Yes, send £40.00", exact=True).wait_for()  # the choice echoed as the reply
        page.get_by_text("Done: £40.00 sent to Northside Energy").wait_for()
        _wait_for(lambda: len(payments_and_balance("alice")[0]) == len(before) + 1)
        after, balance_after = payments_and_balance("alice")
        assert after[:-1] == before and after[-1] == ("Northside Energy", Decimal("40.00"), "GBP")
        assert balance_after == balance - Decimal("40.00")
        assert page.get_by_role("button", name="Yes, send £40.00").count() == 0  # the buttons are gone
    finally:
        ctx.close()


def test_payee_options_are_buttons_and_a_click_answers_the_question(browser, fake_ui_url) -> None:
    before = payments_and_balance("alice")
    ctx, page = login(browser, fake_ui_url, "alice", "alice-demo")
    try:
        send(page, "send £20 to Mark")
        page.get_by_text("Mark Thompson or Mark Ellis?").wait_for()
        buttons = app_buttons(page)
        buttons.first.wait_for()
        assert [buttons.nth(i).inner_text().strip() for i in range(buttons.count())] == ["Mark Thompson", "Mark Ellis"]

        page.get_by_role("button", name="Mark Ellis").click()
        page.get_by_text("Shall I send it?").wait_for()
        question = page.locator(".step").filter(has_text="Shall I send it?").last.inner_text()
        assert "Mark Ellis" in question and "GB82 **** 9911" in question and "£20.00" in question, question
        assert page.get_by_text("Mark Ellis", exact=True).count() == 1  # the click echoed as the customer's reply
        page.get_by_role("button", name="No, don't send it").click()
        page.get_by_text("No, don't send it", exact=True).wait_for()
        page.wait_for_timeout(2000)
        assert payments_and_balance("alice") == before  # declined: nobody paid
    finally:
        ctx.close()


def test_an_open_question_gets_its_option_buttons_again_after_a_reload(browser, fake_ui_url) -> None:
    before = payments_and_balance("alice")
    ctx, page = login(browser, fake_ui_url, "alice", "alice-demo")
    try:
        send(page, "send £20 to Mark")
        page.get_by_role("button", name="Mark Thompson").wait_for()
        page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"))
        page.reload()
        page.get_by_role("button", name="Mark Thompson").wait_for()  # the question is asked again, with its buttons
        assert page.get_by_role("button", name="Mark Ellis").count() == 1
        page.get_by_role("button", name="Mark Thompson").click()
        page.get_by_role("button", name="Yes, send £20.00").wait_for()
        question = page.locator(".step").filter(has_text="Shall I send it?").last.inner_text()
        assert "Mark Thompson" in question and "GB29 **** 6819" in question, question
        page.get_by_role("button", name="No, don't send it").click()
        page.get_by_text("No, don't send it", exact=True).wait_for()
        page.wait_for_timeout(2000)
        assert payments_and_balance("alice") == before
    finally:
        ctx.close()


def test_a_hand_over_shows_the_queue_position(browser, fake_ui_url) -> None:
    tickets = open_tickets()
    ctx, page = login(browser, fake_ui_url, "bob", "bob-demo")
    try:
        send(page, "can I talk to a person?")
        line = page.get_by_text("in the queue; the expected wait is about")
        line.first.wait_for()
        assert open_tickets() == tickets + 1
        body = page.locator("body").inner_text()
        assert re.search(r"\(ticket #\d+\)\. You are number \d+ in the queue; the expected wait is about \d+ minutes",
                         body), body
        assert body.count("in the queue") == 1 and body.count("expected wait") == 1, body  # said once, not twice
    finally:
        ctx.close()


def _wait_for(check, timeout_s: float = TIMEOUT_MS / 1000) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the database"
        time.sleep(0.3)
