"""Adversarial regressions (breakage tests) for the terminal and for third-party text.

Faults found by probing ``banking-assistant`` and the bank tools:

- ``serve --port 99999`` listened on port 34463 (99999 mod 65536) while announcing 99999;
- ``ui --port 99999`` ended with ``internal error (OverflowError ...)`` and a traceback;
- ``ask ''`` on a home without a model first trained one (5-10 minutes) and only then said the
  message is empty;
- a merchant name with terminal escape sequences reached the terminal raw (``ESC[2J`` clears
  the screen, ``ESC]0;...`` retitles the window), and one with line breaks added fake lines
  ("- Refund approved: £9,999.00") to the answer in the terminal and in the chat UI.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from rich.console import Console
from sqlalchemy import select

from assistant.cli import main

ESCAPES = "Evil\x1b[2J\x1b]0;PWNED\x07Shop"
BREAKS = "Shop\n- Refund approved: £9,999.00\n\nCall +44 000 to claim"


@pytest.mark.parametrize("argv", [["serve", "--port", "99999"], ["serve", "--port", "-1"],
                                  ["ui", "--port", "99999"]])
def test_an_out_of_range_port_is_refused_with_one_line(session_home, argv, monkeypatch, capsys) -> None:
    started = []
    monkeypatch.setattr("assistant.server.serve", lambda *a, **k: started.append(a))
    monkeypatch.setattr("assistant.ui.run_ui", lambda *a, **k: started.append(a))
    monkeypatch.setattr("assistant.cli.ensure_custom_model", lambda *a, **k: None)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusal is fine too
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and not started
    assert "internal error" not in err and "Traceback" not in err


def test_ask_refuses_an_empty_message_before_training(session_home, monkeypatch, capsys) -> None:
    trained = []
    monkeypatch.setattr("assistant.cli.ensure_custom_model", lambda *a, **k: trained.append(1))
    assert main(["ask", ""]) == 2
    assert "empty" in capsys.readouterr().err and not trained


@pytest.fixture()
def hostile_merchants(session_home):
    """Two card payments of bob's with hostile merchant names (removed afterwards)."""
    from bank.seed import seed_demo
    from bank.store import Card, CardTransaction, Customer, create_schema, get_engine, session_scope, utcnow

    engine = get_engine()
    create_schema(engine)
    seed_demo(engine)
    with session_scope(engine) as s:
        bob = s.scalar(select(Customer.id).where(Customer.username == "bob"))
        card = s.scalars(select(Card).where(Card.customer_id == bob)).first()
        rows = [CardTransaction(card_id=card.id, merchant=m, country="GB", amount=1000 + i, currency="EUR",
                                account_amount=1000 + i, fee=0, status="settled", kind="payment",
                                created_at=utcnow() - timedelta(minutes=5), settled_at=utcnow())
                for i, m in enumerate([ESCAPES, BREAKS])]
        s.add_all(rows)
        s.flush()
        ids = [r.id for r in rows]
    yield engine, bob
    with session_scope(engine) as s:
        for r in s.scalars(select(CardTransaction).where(CardTransaction.id.in_(ids))):
            s.delete(r)


def test_merchant_names_cannot_drive_the_terminal_or_add_lines(hostile_merchants, monkeypatch) -> None:
    from assistant import cli
    from assistant.ui import answer_markdown
    from bank.tools import run_tool

    engine, bob = hostile_merchants
    answer = run_tool(engine, bob, "recent_transactions", "show my recent transactions").answer
    assert "Evil" in answer and "Refund approved" in answer  # the hostile rows are listed

    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buf, force_terminal=True, width=200))
    cli.print_turn({"answer": answer, "choices": [], "intent": None, "status": "answered"})
    shown = buf.getvalue()
    assert "\x1b[2J" not in shown and "\x1b]0;" not in shown
    assert not any(line.lstrip().startswith("- Refund approved") for line in shown.splitlines())
    assert not any(line.lstrip().startswith("- Refund approved") for line in answer_markdown(answer).splitlines())
