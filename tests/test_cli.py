"""The banking-assistant CLI: real answers, clear errors with non-zero exit codes."""

from __future__ import annotations

import json

import pytest

from assistant.cli import main


@pytest.fixture(autouse=True)
def _no_guard(monkeypatch):
    """Routing here must not depend on how confident the 6-epoch test model is (the guard has
    its own tests in test_api.py)."""
    from assistant.settings import get_settings

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
