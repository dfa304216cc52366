"""Issue 20, faults 3 and 4 (one at a time; the concurrent cases are in test_postgres_races.py),
on SQLite and PostgreSQL (``db_url``):

- an extra physical card is said to cost £5: confirming the order now takes £5.00 from the
  balance in the same transaction, with a ``kind="fee"`` card transaction, and refuses when the
  balance cannot cover it; the first physical card stays free;
- the caps said (3 physical cards, 5 virtual cards) are checked again at confirmation;
- a card whose account is closed can no longer be unfrozen or activated.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from bank.seed import seed_demo
from bank.store import Account, Card, CardTransaction, PendingAction, make_engine, session_scope, utcnow
from bank.tools import confirm_action, run_tool
from db_backends import db_url  # noqa: F401 - fixture: SQLite and PostgreSQL


@pytest.fixture()
def bank(db_url):
    engine = make_engine(db_url)
    ids = {c.username: c.customer_id for c in seed_demo(engine) if c.username}
    return engine, ids


def _account(engine, customer_id: int, currency: str = "GBP") -> Account:
    with session_scope(engine) as s:
        return s.scalars(select(Account).where(Account.customer_id == customer_id, Account.currency == currency)).one()


def _cards(engine, customer_id: int, kind: str) -> list[Card]:
    with session_scope(engine) as s:
        return list(s.scalars(select(Card).where(Card.customer_id == customer_id, Card.kind == kind).order_by(Card.id)))


def _fees(engine, customer_id: int) -> list[CardTransaction]:
    with session_scope(engine) as s:
        return list(s.scalars(select(CardTransaction).join(Card).where(Card.customer_id == customer_id,
                                                                       CardTransaction.kind == "fee")))


def _stored_action(engine, customer_id: int, action: str, params: dict) -> str:
    """A pending action stored directly (as a second proposal made before the first was confirmed)."""
    with session_scope(engine) as s:
        row = PendingAction(customer_id=customer_id, action=action, params=params, description=action,
                            status="pending", created_at=utcnow())
        s.add(row)
        s.flush()
        return row.id


def test_extra_physical_card_fee_is_charged_with_the_order(bank):
    engine, ids = bank
    alice = ids["alice"]
    gbp = _account(engine, alice)
    r = run_tool(engine, alice, "getting_spare_card", "can I get a spare card")
    assert "This one costs £5.00, taken from your GBP balance (£1,520.40)" in r.answer
    assert "(fee £5.00)" in r.pending_confirmation["description"]
    done = confirm_action(engine, alice, r.pending_confirmation["action_id"], True)
    assert done.data["status"] == "confirmed" and "The £5.00 fee is taken from your balance" in done.answer
    assert _account(engine, alice).balance == gbp.balance - Decimal("5.00") == Decimal("1515.40")
    (fee,) = _fees(engine, alice)
    new_id = done.data["result"]["new_card"]["card_id"]
    assert (fee.card_id, fee.amount, fee.account_amount, fee.currency, fee.status) == (
        new_id, Decimal("5.00"), Decimal("5.00"), "GBP", "settled")
    assert len([c for c in _cards(engine, alice, "physical") if c.status != "cancelled"]) == 3
    # the fee shows in the history and among the fees on the statement
    assert "Extra physical card fee, -£5.00 (settled)" in run_tool(engine, alice, "recent_transactions", "").answer
    assert "Extra physical card fee" in run_tool(engine, alice, "extra_charge_on_statement", "").answer


def test_fee_the_balance_cannot_cover_refuses_the_order(bank):
    engine, ids = bank
    alice = ids["alice"]
    pc = run_tool(engine, alice, "getting_spare_card", "spare card please").pending_confirmation
    with session_scope(engine) as s:
        s.execute(update(Account).where(Account.customer_id == alice, Account.currency == "GBP")
                  .values(balance=Decimal("3.00")))
    n = len(_cards(engine, alice, "physical"))
    done = confirm_action(engine, alice, pc["action_id"], True)
    assert done.data["status"] == "failed"
    assert "the £5.00 fee for an extra physical card is more than your balance (£3.00)" in done.answer
    assert len(_cards(engine, alice, "physical")) == n and _fees(engine, alice) == []
    assert _account(engine, alice).balance == Decimal("3.00")


def test_first_physical_card_is_free(bank):
    engine, ids = bank
    dave = ids["dave"]  # a virtual card only, balance 0.00
    r = run_tool(engine, dave, "order_physical_card", "I want a physical card")
    assert "This one is free." in r.answer
    done = confirm_action(engine, dave, r.pending_confirmation["action_id"], True)
    assert done.data["status"] == "confirmed"
    assert [c.status for c in _cards(engine, dave, "physical")] == ["ordered"]
    assert _account(engine, dave).balance == Decimal("0.00") and _fees(engine, dave) == []


def test_physical_card_cap_is_checked_at_confirmation(bank):
    engine, ids = bank
    alice = ids["alice"]  # 2 physical cards (active + shipped): room for one more
    gbp = _account(engine, alice)
    params = {"kind": "physical", "account_id": gbp.id, "fee": "5.00"}
    first, second = (_stored_action(engine, alice, "order_card", params) for _ in range(2))
    assert confirm_action(engine, alice, first, True).data["status"] == "confirmed"
    late = confirm_action(engine, alice, second, True)
    assert late.data["status"] == "failed"
    assert "you already have 3 physical cards active or on their way, the most you can hold is 3" in late.answer
    assert len([c for c in _cards(engine, alice, "physical") if c.status in ("active", "ordered", "shipped")]) == 3
    assert _account(engine, alice).balance == gbp.balance - Decimal("5.00")  # one fee only
    r = run_tool(engine, alice, "getting_spare_card", "spare card")
    assert r.pending_confirmation is None and "maximum of 3" in r.answer


def test_virtual_card_cap_is_checked_and_the_count_said(bank):
    engine, ids = bank
    alice = ids["alice"]  # one virtual card
    eur = _account(engine, alice, "EUR")
    r = run_tool(engine, alice, "getting_virtual_card", "new virtual card")
    assert "you can have up to 5 (you have 1)" in r.answer
    today = utcnow().date()
    with session_scope(engine) as s:  # she now holds 12 (as the testers found)
        s.add_all([Card(customer_id=alice, account_id=eur.id, last4=f"8{i:03d}", kind="virtual", status="active",
                        expires_on=today + timedelta(days=300)) for i in range(11)])
    done = confirm_action(engine, alice, r.pending_confirmation["action_id"], True)
    assert done.data["status"] == "failed" and "you already have 12 virtual cards" in done.answer
    assert len(_cards(engine, alice, "virtual")) == 12
    r = run_tool(engine, alice, "getting_virtual_card", "new virtual card")
    assert r.pending_confirmation is None and "you already have 12 virtual cards, the most you can hold is 5" in r.answer


def test_cards_of_a_closed_account_cannot_be_unfrozen_or_activated(bank):
    engine, ids = bank
    carol = ids["carol"]  # card 2288 frozen on her GBP account
    r = run_tool(engine, carol, "card_linking", "I found my card, link it again")
    assert r.pending_confirmation["action"] == "unfreeze_card"
    alice = ids["alice"]  # card 7390 shipped on her GBP account
    act = run_tool(engine, alice, "activate_my_card", "activate my card").pending_confirmation
    with session_scope(engine) as s:
        s.execute(update(Account).where(Account.customer_id.in_([carol, alice])).values(status="closed"))
    for who, pc, last4, status in ((carol, r.pending_confirmation, "2288", "frozen"), (alice, act, "7390", "shipped")):
        done = confirm_action(engine, who, pc["action_id"], True)
        assert done.data["status"] == "failed" and "account is closed" in done.answer
        with session_scope(engine) as s:
            assert s.scalars(select(Card.status).where(Card.customer_id == who, Card.last4 == last4)).one() == status
