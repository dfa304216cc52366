"""Issue 20, faults 1 and 2, on SQLite and PostgreSQL (``db_url``): the transfer to cancel and
the merchant to check for double charges are the ones the message names.

- "cancel the transfer I made to Mark Thompson" proposed cancelling the newer transfer to Jane
  Doe; now a payee, amount or date selects the transfer, none matching says so and changes
  nothing, several matching are listed to choose from.
- "why was I charged twice at Tesco" answered with the Pret A Manger double charge; now it says
  plainly that Tesco was not charged twice, and labels Pret as another merchant.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bank.seed import seed_demo
from bank.store import Account, PendingAction, Transfer, add_to_balance, make_engine, session_scope, utcnow
from bank.tools import confirm_action, run_tool
from db_backends import db_url  # noqa: F401 - fixture: SQLite and PostgreSQL


@pytest.fixture()
def bank(db_url):
    engine = make_engine(db_url)
    ids = {c.username: c.customer_id for c in seed_demo(engine) if c.username}
    with session_scope(engine) as s:
        gbp = s.scalars(select(Account.id).where(Account.customer_id == ids["alice"], Account.currency == "GBP")).one()
        mark = s.scalars(select(Transfer.id).where(Transfer.beneficiary_name == "Mark Thompson")).one()
    return engine, ids["alice"], gbp, mark


def _add_pending(engine, account_id: int, payee: str, amount: str, *, minutes_ago: int) -> int:
    """A newer outgoing pending transfer, its amount reserved from the balance as the bank does."""
    with session_scope(engine) as s:
        t = Transfer(account_id=account_id, beneficiary_name=payee, beneficiary_iban="GB94BARC10201530093459",
                     amount=Decimal(amount), currency="GBP", status="pending",
                     created_at=utcnow() - timedelta(minutes=minutes_ago))
        s.add(t)
        s.flush()
        add_to_balance(s, account_id, -Decimal(amount))
        return t.id


def _state(engine, account_id: int) -> tuple[dict[int, str], Decimal, int]:
    with session_scope(engine) as s:
        statuses = dict(s.execute(select(Transfer.id, Transfer.status).where(Transfer.account_id == account_id)).all())
        balance = s.scalar(select(Account.balance).where(Account.id == account_id))
        actions = s.scalar(select(func.count()).select_from(PendingAction))
    return statuses, balance, actions


def test_cancel_names_the_payee_and_cancels_that_transfer(bank):
    engine, alice, gbp, mark = bank
    jane = _add_pending(engine, gbp, "Jane Doe", "80.00", minutes_ago=10)  # newer than Mark's (3 hours)
    _, before, _ = _state(engine, gbp)
    r = run_tool(engine, alice, "cancel_transfer", "I want to cancel the transfer I made to Mark Thompson")
    pc = r.pending_confirmation
    assert pc is not None and "Mark Thompson" in pc["description"] and "Jane Doe" not in pc["description"]
    assert r.data["transfer"]["transfer_id"] == mark
    done = confirm_action(engine, alice, pc["action_id"], True)
    assert done.data["status"] == "confirmed"
    statuses, balance, _ = _state(engine, gbp)
    assert (statuses[mark], statuses[jane]) == ("cancelled", "pending")
    assert balance == before + Decimal("250.00")

    # a typo and a first name only still find the payee
    r = run_tool(engine, alice, "cancel_transfer", "please stop the payment to jane doo")
    assert r.data["transfer"]["transfer_id"] == jane


def test_cancel_naming_no_transfer_says_so_and_changes_nothing(bank):
    engine, alice, gbp, mark = bank
    jane = _add_pending(engine, gbp, "Jane Doe", "80.00", minutes_ago=10)
    before = _state(engine, gbp)
    r = run_tool(engine, alice, "cancel_transfer", "cancel the transfer to Peter Parker")
    assert r.pending_confirmation is None
    assert r.answer.startswith("I found no transfer to Peter Parker, so nothing was changed.")
    assert _state(engine, gbp) == before  # no transfer changed, no action stored
    r = run_tool(engine, alice, "cancel_transfer", "cancel the £999 transfer")
    assert r.pending_confirmation is None and "I found no transfer of 999.00" in r.answer
    # a completed transfer named: said plainly that it cannot be cancelled
    r = run_tool(engine, alice, "cancel_transfer", "cancel my transfer to Northside Energy")
    assert r.pending_confirmation is None and "is completed, not pending, so it cannot be cancelled" in r.answer
    assert _state(engine, gbp) == before
    assert {mark, jane} <= set(before[0])


def test_cancel_with_several_matches_asks_which(bank):
    engine, alice, gbp, mark = bank
    small = _add_pending(engine, gbp, "Mark Thompson", "40.00", minutes_ago=20)
    _add_pending(engine, gbp, "Jane Doe", "80.00", minutes_ago=10)
    before = _state(engine, gbp)
    r = run_tool(engine, alice, "cancel_transfer", "cancel my transfer to Mark")
    assert r.pending_confirmation is None and "Which one should I cancel?" in r.answer
    assert sorted(t["transfer_id"] for t in r.data["candidates"]) == sorted([mark, small])
    assert "£250.00 to Mark Thompson" in r.answer and "£40.00 to Mark Thompson" in r.answer
    assert "Jane Doe" not in r.answer
    r = run_tool(engine, alice, "cancel_transfer", "cancel")  # nothing named, three pending: ask too
    assert r.pending_confirmation is None and len(r.data["candidates"]) == 3
    assert _state(engine, gbp) == before
    r = run_tool(engine, alice, "cancel_transfer", "cancel the £40 one to Mark")
    assert r.data["transfer"]["transfer_id"] == small
    confirm_action(engine, alice, r.pending_confirmation["action_id"], True)
    statuses, balance, _ = _state(engine, gbp)
    assert (statuses[small], statuses[mark]) == ("cancelled", "pending") and balance == before[1] + Decimal("40.00")


def test_charged_twice_at_a_named_merchant_checks_that_merchant(bank):
    engine, alice, _, _ = bank
    r = run_tool(engine, alice, "transaction_charged_twice", "why was I charged twice at Tesco")
    first = r.answer.splitlines()[0]
    assert first.startswith("I found no duplicate charge at Tesco Metro in the last 60 days")
    assert not r.answer.startswith("It looks like you were charged twice")
    assert r.data["merchant"] == "Tesco Metro" and r.data["duplicates"] == []
    assert [t["merchant"] for t in r.data["payments_at_merchant"]] == ["Tesco Metro"]
    assert [d["first"]["merchant"] for d in r.data["other_merchant_duplicates"]] == ["Pret A Manger"]
    assert "Separately, at other merchants" in r.answer and r.answer.index("Pret") > r.answer.index("Separately")

    r = run_tool(engine, alice, "transaction_charged_twice", "I was charged twice by pret")
    assert r.answer.startswith("It looks like you were charged twice:\n- Pret A Manger")
    assert [d["first"]["merchant"] for d in r.data["duplicates"]] == ["Pret A Manger"]

    r = run_tool(engine, alice, "transaction_charged_twice", "double charge at Sainsburys??")
    assert r.answer.startswith("I found no duplicate charge at Sainsburys")
    assert "I see no payment at Sainsburys" in r.answer and r.data["duplicates"] == []

    r = run_tool(engine, alice, "transaction_charged_twice", "I was charged twice")  # no merchant: all
    assert r.answer.startswith("It looks like you were charged twice") and "merchant" not in r.data
