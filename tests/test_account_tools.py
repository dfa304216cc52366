"""The two everyday intents BANKING77 lacks, answered from the customer's own accounts in the
seeded demo bank: balances per account and currency, and the latest transactions."""

from __future__ import annotations

import pytest

from bank.tools import run_tool


@pytest.fixture()
def bank(session_home):
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine

    engine = get_engine()
    create_schema(engine)
    seed_demo(engine, reset=True)
    from sqlalchemy import select

    from bank.store import Customer, session_scope

    with session_scope(engine) as s:
        return engine, {u: i for i, u in s.execute(select(Customer.id, Customer.username)).all()}


def test_balance_lists_each_account_with_pending_payments(bank) -> None:
    """Issue 20: the £35.00 pending ASOS *refund* was added to the pending card payments (£58.45)
    and the pending £250.00 outgoing transfer was not mentioned. Refunds are money coming in, and
    pending transfers are named (already taken from the balance)."""
    engine, ids = bank
    out = run_tool(engine, ids["alice"], "check_balance", "whats my balance")
    assert out.answer.splitlines() == [
        "Your balances:",
        "- GBP account: £1,520.40 (£23.45 of card payments still pending; £250.00 of outgoing transfers "
        "pending, already taken from this balance; £35.00 of refunds on the way in)",
        "- EUR account: €230.00",
    ]
    assert "58.45" not in out.answer
    assert [(a["currency"], a["balance"]) for a in out.data["accounts"]] == [("GBP", "1520.40"), ("EUR", "230.00")]
    gbp = out.data["accounts"][0]
    assert (gbp["pending_card_payments"], gbp["pending_refunds"], gbp["pending_outgoing_transfers"]) == (
        "23.45", "35.00", "250.00")
    bob = run_tool(engine, ids["bob"], "check_balance", "balance?")
    assert "£" not in bob.answer and "€845.10" in bob.answer  # only Bob's own account
    assert bob.answer.splitlines()[1] == ("- EUR account: €845.10 (€25.98 of cash withdrawals still pending; "
                                          "€1,200.00 of incoming transfers on the way)")


def test_recent_transactions_newest_first_with_signs_and_states(bank) -> None:
    engine, ids = bank
    out = run_tool(engine, ids["alice"], "recent_transactions", "show me what I spent this week")
    lines = out.answer.splitlines()
    assert lines[0] == "Your last 8 transactions:"
    assert "Tesco Metro, -£23.45 (pending)" in lines[1]
    assert any("transfer to Mark Thompson, -£250.00 (pending)" in l for l in lines)
    assert any("refund from ASOS, £35.00" in l for l in lines)
    dates = [t["date"] for t in out.data["transactions"]]
    assert dates == sorted(dates, reverse=True) and len(dates) == 8
    bob = run_tool(engine, ids["bob"], "recent_transactions", "transactions")
    assert "Mark Thompson" not in bob.answer and "cash withdrawal at Bangkok Bank ATM" in bob.answer
