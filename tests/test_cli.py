"""The banking-assistant CLI: real answers, clear errors with non-zero exit codes."""

from __future__ import annotations

import json

import pytest

from assistant.cli import main


@pytest.fixture(autouse=True)
def _no_guard(monkeypatch):
    """Routing here must not depend on how confident the 6-epoch test model is (the guard has
    its own tests in test_api.py)."""
    from config.settings import get_settings

    monkeypatch.setenv("BANKING_OOS_THRESHOLD", "0")
    monkeypatch.setenv("BANKING_CLARIFY_THRESHOLD", "0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_seed_db_prints_demo_keys(session_home, capsys) -> None:
    assert main(["seed-db"]) == 0
    out = capsys.readouterr().out
    assert "demo-alice-key" in out and "demo-operator-key" in out


def test_ask_json_answers_from_the_customer_data(trained_custom_model_dir, capsys) -> None:
    assert main(["ask", "Where is my new card? It still hasn't arrived", "--json", "--customer", "alice"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["intent"] == "card_arrival"
    assert out["backend"] == "custom" and out["status"] == "answered"
    assert len(out["ranking"]) == 5


def test_chat_session_with_confirmation(trained_custom_model_dir, monkeypatch, capsys) -> None:
    from sqlalchemy import select

    from bank.seed import seed_demo
    from bank.store import Card, Customer, get_engine, session_scope
    from assistant.cli import console

    seed_demo(get_engine(), reset=True)  # alice's physical card active again, whatever ran before

    answers = iter(["I lost my card", "yes", "quit"])
    monkeypatch.setattr(console, "input", lambda prompt="": next(answers))
    with session_scope(get_engine()) as s:
        alice = s.scalar(select(Customer.id).where(Customer.username == "alice"))
        before = {c.last4: c.status for c in s.scalars(select(Card).where(Card.customer_id == alice))}
    assert main(["chat", "--customer", "alice"]) == 0
    out = capsys.readouterr().out
    assert "yes" in out.lower() and "confirm" in out.lower()
    with session_scope(get_engine()) as s:
        after = {c.last4: c.status for c in s.scalars(select(Card).where(Card.customer_id == alice))}
    assert after != before and "frozen" in after.values()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["ask", "   "], "empty"),
        (["ask", "x" * 2001], "2000"),
        (["ask", "where is my card", "--customer", "mallory"], "Unknown customer"),
    ],
)
def test_bad_input_gives_a_message_and_exit_2(trained_custom_model_dir, argv, needle, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_unavailable_backend_exits_1(trained_custom_model_dir, capsys) -> None:
    assert main(["ask", "where is my card", "--backend", "gemini"]) == 1
    assert "gemini" in capsys.readouterr().err.lower()


# ----------------------------------------------------------------------------- issue 16 requests
@pytest.fixture()
def fake_chat(session_home, monkeypatch):
    """``banking-assistant chat`` on a freshly seeded bank with the fake intent backend
    (tests/fake_backend.py) as "custom" and its own thresholds (not the zero ones above): the
    replies to an open request ("40 pounds") are ranked as a real backend may rank them.
    Returns ``chat(lines) -> stdout``."""
    from fake_backend import FakeIntentModel

    import assistant.cli as cli
    from assistant.conversations import Conversations
    from config.settings import get_settings
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine
    from models import registry

    for key in ("BANKING_OOS_THRESHOLD", "BANKING_CLARIFY_THRESHOLD"):
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    create_schema(get_engine())
    seed_demo(get_engine(), reset=True)
    cli.Conversation.reset()
    registry.reset_backends()
    registry._instances["custom"] = FakeIntentModel()
    cli.Conversation._holder = Conversations(intent_chain=FakeIntentModel())
    monkeypatch.setattr(cli, "ensure_custom_model", lambda progress=True: None)

    def chat(lines: list[str], capsys) -> str:
        answers = iter([*lines, "quit"])
        monkeypatch.setattr(cli.console, "input", lambda prompt="": next(answers))
        assert main(["chat", "--customer", "alice"]) == 0
        return capsys.readouterr().out

    yield chat
    cli.Conversation.reset()
    registry.reset_backends()


def _alice_payments() -> tuple[list[tuple], object]:
    """(alice's outgoing transfers as (payee, amount, currency) in id order, her GBP balance)."""
    from sqlalchemy import select

    from bank.store import Account, Customer, Transfer, get_engine, session_scope

    with session_scope(get_engine()) as s:
        cid = s.scalar(select(Customer.id).where(Customer.username == "alice"))
        rows = s.execute(select(Transfer.beneficiary_name, Transfer.amount, Transfer.currency)
                         .join(Account, Transfer.account_id == Account.id)
                         .where(Account.customer_id == cid, Transfer.direction == "outgoing").order_by(Transfer.id)).all()
        gbp = s.scalar(select(Account.balance).where(Account.customer_id == cid, Account.currency == "GBP"))
    return [tuple(r) for r in rows], gbp


def test_chat_payment_asked_corrected_and_confirmed(fake_chat, capsys) -> None:
    from decimal import Decimal

    before, balance = _alice_payments()
    out = fake_chat(["send money to Northside Energy", "40 pounds", "no, make it 45", "yes"], capsys)
    assert "How much would you like to send to Northside Energy?" in out
    assert "Send £40.00 to Northside Energy (GB33 **** 5555)" in out  # proposed ...
    assert "Send £45.00 to Northside Energy (GB33 **** 5555)" in out  # ... corrected and proposed again
    flat = " ".join(out.split())  # rich wraps long lines
    assert "I've changed the amount from £40.00 to £45.00 and closed the earlier proposal without doing it." in flat
    assert "ask again" not in flat
    assert "Done: £45.00 sent to Northside Energy" in out
    after, balance_after = _alice_payments()
    assert after[:-1] == before and after[-1] == ("Northside Energy", Decimal("45.00"), "GBP")  # one payment, 45
    assert balance_after == balance - Decimal("45.00")


def test_chat_numbers_the_options_and_a_number_picks_one(fake_chat, capsys) -> None:
    from decimal import Decimal

    before, balance = _alice_payments()
    out = fake_chat(["send £20 to Mark", "2", "yes"], capsys)
    assert "Mark Thompson or Mark Ellis?" in out
    assert "  1) Mark Thompson" in out and "  2) Mark Ellis" in out
    assert "Reply with a number to pick one" in out
    assert "Done: £20.00 sent to Mark Ellis" in out
    after, balance_after = _alice_payments()
    assert after[:-1] == before and after[-1] == ("Mark Ellis", Decimal("20.00"), "GBP")
    assert balance_after == balance - Decimal("20.00")


def test_chat_hand_over_prints_the_queue_position(fake_chat, capsys) -> None:
    import re

    out = " ".join(fake_chat(["can I talk to a person?"], capsys).split())  # rich wraps long lines
    assert re.search(r"\(ticket #\d+\)\. You are number \d+ in the queue; the expected wait is about \d+ minutes", out), out
    assert out.count("in the queue") == 1 and out.count("expected wait") == 1, out  # said once, not twice
    assert "status=handoff" in out


def test_terminal_prints_a_hand_over_queue_line_once(capsys) -> None:
    """print_turn prints the answer, which names ticket, position and wait; no second line
    repeats them (it used to)."""
    from assistant.terminal import print_turn

    answer = ("I've passed our conversation to a member of our team (ticket #7). You are number 2 in the queue; "
              "the expected wait is about 8 minutes.")
    print_turn({"status": "handoff", "intent": "talk_to_human", "answer": answer, "confidence": 0.97,
                "backend": "custom", "latency_ms": 1.0,
                "data": {"handoff": {"ticket_id": 7, "position": 2, "expected_wait_min": 8}}})
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    out = " ".join(" ".join(lines).split())  # rich wraps long lines
    assert out.count("in the queue") == 1 and out.count("#7") == 1 and out.count("8 minutes") == 1, out
    assert out.startswith("assistant> I've passed") and out.endswith("status=handoff"), out


def test_chat_options_show_payee_names_as_typed_not_as_markup(fake_chat, capsys) -> None:
    """A payee name is third-party text: rich markup in it is printed as those characters (the
    database already turns control characters into spaces, bank/columns.py ThirdPartyText)."""
    from sqlalchemy import select

    from bank.models_extra import Payee
    from bank.store import Customer, get_engine, session_scope

    with session_scope(get_engine()) as s:
        cid = s.scalar(select(Customer.id).where(Customer.username == "alice"))
        p = s.scalar(select(Payee).where(Payee.customer_id == cid, Payee.name == "Mark Ellis"))
        p.name = "Mark [bold]Ellis[/bold]"
    out = fake_chat(["send £20 to Mark"], capsys)
    assert "  2) Mark [bold]Ellis[/bold]" in out, out


# ----------------------------------------------------------------------------- issue 16 flows, each with its rows
def _flat(out: str) -> str:
    return " ".join(out.split())  # rich wraps long lines


def test_chat_payment_with_the_details_in_the_message(fake_chat, capsys) -> None:
    from bank_rows import PAY, paid, rows

    before = rows("alice")
    out = _flat(fake_chat([PAY, "yes"], capsys))
    assert "Send £40.00 to Northside Energy (GB33 **** 5555)" in out and "Done: £40.00 sent to Northside Energy" in out
    paid(before, rows("alice"), "Northside Energy", "40.00")


@pytest.mark.parametrize("message, said", [
    ("send £20 to Bob Builder", ["not one of your saved payees", "have not paid anyone"]),
    ("pay Northside Energy £2,000", ["more than your GBP balance", "Nothing was changed"]),
])
def test_chat_refusals_change_nothing(fake_chat, capsys, message, said) -> None:
    from bank_rows import ALICE_GBP, rows, unchanged

    before = rows("alice")
    out = _flat(fake_chat([message, "yes"], capsys))  # a yes afterwards has nothing to confirm
    assert all(s in out for s in said) and "Shall I" not in out, out
    unchanged(before, rows("alice"))
    assert rows("alice").balances["GBP"] == ALICE_GBP


def test_chat_spending_search_total(fake_chat, capsys) -> None:
    from bank_rows import SEARCH, SEARCH_TOTAL, rows, unchanged

    before = rows("alice")
    out = _flat(fake_chat([SEARCH], capsys))
    assert SEARCH_TOTAL in out and "intent=search_transactions" in out
    unchanged(before, rows("alice"))


def test_chat_dispute_opened(fake_chat, capsys) -> None:
    from bank_rows import DISPUTE, rows

    before = rows("alice")
    out = _flat(fake_chat([DISPUTE, "yes"], capsys))
    assert "Open a dispute on the Amazon UK payment of £42.10" in out and "is open" in out
    after = rows("alice")
    assert after.disputes == (*before.disputes, ("Amazon UK", "open"))
    assert (after.transfers, after.balances, after.cards) == (before.transfers, before.balances, before.cards)


def test_chat_two_requests_in_one_message(fake_chat, capsys) -> None:
    from bank_rows import TWO_REQUESTS, rows

    before = rows("alice")
    out = _flat(fake_chat([TWO_REQUESTS, "yes"], capsys))
    assert "freeze your physical card ending 4821" in out and "£1,520.40" in out and "card ending 4821 is frozen" in out
    after = rows("alice")
    assert {k: after.cards[k] for k in before.cards} == {**before.cards, "4821": "frozen"}
    assert (after.transfers, after.balances) == (before.transfers, before.balances)


def test_chat_hand_over_opens_one_ticket(fake_chat, capsys) -> None:
    from bank_rows import HANDOFF, rows

    before = rows("alice")
    out = _flat(fake_chat([HANDOFF], capsys))
    after = rows("alice")
    assert len(after.tickets) == len(before.tickets) + 1 and after.tickets[-1][1] == "open"
    assert f"(ticket #{after.tickets[-1][0]})" in out and out.count("in the queue") == 1
    assert (after.transfers, after.balances, after.cards) == (before.transfers, before.balances, before.cards)


def test_ui_without_chainlit_says_how_to_install_it_before_any_training(tmp_path, monkeypatch, capsys) -> None:
    import importlib.util

    import assistant.cli as cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "chainlit" else real(name, *a))
    monkeypatch.setattr(cli, "ensure_custom_model", lambda: pytest.fail("trained before the check"))
    assert main(["ui", "--port", "8099"]) == 2
    assert 'pip install -e ".[ui]"' in capsys.readouterr().err
