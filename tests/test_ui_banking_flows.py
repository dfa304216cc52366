"""Issue 16's flows in the customer's Chainlit UI, in a real browser (Debian's Chromium driven by
Playwright, headless), against ``python -m assistant.ui`` with the fake intent backend: the server
and helpers of tests/test_ui_banking.py (which has the payment whose amount is asked for, the payee
buttons and the hand-over). Each flow checks the answer on the page and the rows in the seeded
SQLite bank (tests/bank_rows.py)."""

from __future__ import annotations

from decimal import Decimal

from bank_rows import (ASK_PAYEE, DISPUTE, OVER_BALANCE, PAY, SEARCH, SEARCH_TOTAL, TWO_REQUESTS,
                       UNKNOWN_PAYEE, paid, rows, unchanged)
from test_ui_banking import _wait_for, fake_ui_url  # noqa: F401 - fixture: the UI server with the fake backend
from ui_support import app_buttons, browser, login, send  # noqa: F401 - fixtures


def _last_step(page, has_text: str) -> str:
    return page.locator(".step").filter(has_text=has_text).last.inner_text()


def test_ui_payment_with_the_details_in_the_message(browser, fake_ui_url) -> None:
    before = rows("alice")
    ctx, page = login(browser, fake_ui_url, "alice", "alice-demo")
    try:
        send(page, PAY)
        page.get_by_role("button", name="Yes, send £40.00").wait_for()
        question = _last_step(page, "Shall I send it?")
        assert "Northside Energy" in question and "GB33 **** 5555" in question and "£40.00" in question, question
        assert rows("alice").transfers == before.transfers  # nothing before the click
        page.get_by_role("button", name="Yes, send £40.00").click()
        page.get_by_text("Done: £40.00 sent to Northside Energy").wait_for()
        _wait_for(lambda: len(rows("alice").transfers) == len(before.transfers) + 1)
        paid(before, rows("alice"), "Northside Energy", "40.00")
    finally:
        ctx.close()


def test_ui_payment_amount_asked_then_corrected(browser, fake_ui_url) -> None:
    before = rows("alice")
    ctx, page = login(browser, fake_ui_url, "alice", "alice-demo")
    try:
        send(page, ASK_PAYEE)
        page.get_by_text("How much would you like to send to Northside Energy?").wait_for()
        send(page, "40 pounds")
        page.get_by_role("button", name="Yes, send £40.00").wait_for()
        send(page, "no, make it 45")
        page.get_by_text("I've changed the amount from £40.00 to £45.00 and closed the earlier proposal").wait_for()
        page.get_by_role("button", name="Yes, send £45.00").wait_for()
        assert page.get_by_role("button", name="Yes, send £40.00").count() == 0  # the old proposal's buttons are gone
        assert "ask again" not in page.locator("body").inner_text()
        page.get_by_role("button", name="Yes, send £45.00").click()
        page.get_by_text("Done: £45.00 sent to Northside Energy").wait_for()
        _wait_for(lambda: len(rows("alice").transfers) == len(before.transfers) + 1)
        paid(before, rows("alice"), "Northside Energy", "45.00")  # one payment, of the corrected amount
    finally:
        ctx.close()


def test_ui_refusals_and_a_search_change_nothing(browser, fake_ui_url) -> None:
    """An unknown payee and an amount over the balance are refused (no buttons, no rows); the
    spending search gives the seeded total."""
    before = rows("alice")
    ctx, page = login(browser, fake_ui_url, "alice", "alice-demo")
    try:
        send(page, UNKNOWN_PAYEE)
        page.get_by_text("not one of your saved payees").wait_for()
        assert "have not paid anyone" in _last_step(page, "not one of your saved payees")
        send(page, OVER_BALANCE)
        page.get_by_text("more than your GBP balance").wait_for()
        assert "Nothing was changed" in _last_step(page, "more than your GBP balance")
        send(page, SEARCH)
        page.get_by_text(SEARCH_TOTAL).wait_for()
        assert app_buttons(page).count() == 0  # nothing was proposed
        unchanged(before, rows("alice"))  # balances, payments, cards, disputes, tickets, no proposal
    finally:
        ctx.close()


def test_ui_dispute_opened(browser, fake_ui_url) -> None:
    before = rows("alice")
    ctx, page = login(browser, fake_ui_url, "alice", "alice-demo")
    try:
        send(page, DISPUTE)
        page.get_by_text("Open a dispute on the Amazon UK payment of £42.10").wait_for()
        assert rows("alice").disputes == before.disputes
        page.get_by_role("button", name="Yes, open the dispute").click()
        page.get_by_text("is open").first.wait_for()
        _wait_for(lambda: len(rows("alice").disputes) == len(before.disputes) + 1)
        after = rows("alice")
        assert after.disputes == (*before.disputes, ("Amazon UK", "open"))
        assert (after.transfers, after.balances, after.cards) == (before.transfers, before.balances, before.cards)
    finally:
        ctx.close()


def test_ui_two_requests_in_one_message(browser, fake_ui_url) -> None:
    before = rows("alice")
    ctx, page = login(browser, fake_ui_url, "alice", "alice-demo")
    try:
        send(page, TWO_REQUESTS)
        page.get_by_role("button", name="Yes, freeze my card").wait_for()
        reply = _last_step(page, "4821")
        assert "freeze your physical card ending 4821" in reply and "£" in reply, reply  # the balance in the same reply
        assert f"£{before.balances['GBP']:,.2f}" in reply, reply
        assert rows("alice").cards == before.cards
        page.get_by_role("button", name="Yes, freeze my card").click()
        page.get_by_text("card ending 4821 is frozen").wait_for()
        _wait_for(lambda: rows("alice").cards.get("4821") == "frozen")
        after = rows("alice")
        assert {k: after.cards[k] for k in before.cards} == {**before.cards, "4821": "frozen"}
        assert (after.transfers, after.balances) == (before.transfers, before.balances)
        assert after.balances["GBP"] == before.balances["GBP"] and isinstance(after.balances["GBP"], Decimal)
    finally:
        ctx.close()
