"""Issue 16 bank layer: transaction search totals, disputes (and the dispute offers of the refund
/ charged-twice / not-recognised answers), hand-over tickets. SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bank.models_extra import Dispute, HandoffTicket, close_ticket, open_tickets
from bank.seed import seed_demo
from bank.store import Card, CardTransaction, PendingAction, make_engine, session_scope
from bank.tools import TOOLS, confirm_action, run_tool
from db_backends import db_url  # noqa: F401 - fixture: SQLite and PostgreSQL

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
REQUESTS = ("send_money", "add_payee", "top_up_account", "search_transactions", "dispute_charge", "talk_to_human")


@pytest.fixture()
def bank(db_url):
    engine = make_engine(db_url)
    ids = {c.username: c.customer_id for c in seed_demo(engine, now=NOW) if c.username}
    return engine, ids


def test_every_request_intent_has_a_tool():
    assert set(REQUESTS) <= set(TOOLS)


def test_search_totals_pret_this_month_equal_the_seeded_rows(bank):
    engine, ids = bank
    with session_scope(engine) as s:  # one more this month, one last month (must not count)
        card = s.scalars(select(Card).where(Card.customer_id == ids["alice"], Card.last4 == "4821")).one()
        for amount, when in (("4.20", NOW - timedelta(days=10)), ("9.99", NOW - timedelta(days=40))):
            s.add(CardTransaction(card_id=card.id, merchant="Pret A Manger", country="GB", amount=Decimal(amount),
                                  currency="GBP", account_amount=Decimal(amount), status="settled", created_at=when))
    with session_scope(engine) as s:
        rows = s.scalars(select(CardTransaction).join(Card).where(
            Card.customer_id == ids["alice"], CardTransaction.merchant == "Pret A Manger",
            CardTransaction.status.in_(("pending", "settled")))).all()
        month = [t for t in rows if t.created_at >= datetime(2025, 3, 1, tzinfo=UTC)]
        expected = sum((t.account_amount for t in month), Decimal("0.00"))
    assert len(month) == 3 and expected == Decimal("17.90")
    r = run_tool(engine, ids["alice"], "search_transactions", "how much did I spend at Pret this month?",
                 slots={"merchant": "Pret", "date_from": "2025-03-01", "date_to": "2025-03-20"}, now=NOW)
    assert r.data["totals"] == {"out": {"GBP": str(expected)}} and r.data["count"] == 3
    assert r.answer.startswith(f"You spent £{expected} at Pret A Manger this month (3 payments).")
    assert [row["created_at"] for row in r.data["rows"]] == sorted((row["created_at"] for row in r.data["rows"]),
                                                                   reverse=True)
    none = run_tool(engine, ids["alice"], "search_transactions", "", slots={"merchant": "Starbucks"}, now=NOW)
    assert none.data["count"] == 0 and "no payments" in none.answer


def test_search_by_amount_direction_and_bad_dates(bank):
    engine, ids = bank
    r = run_tool(engine, ids["alice"], "search_transactions", "", slots={"min_amount": "100", "direction": "out"},
                 now=NOW)
    # seeded: Mark Thompson £250 (pending transfer) is the only money out of £100+; Ryanair €189.99 was declined
    assert [(row["name"], row["amount"]) for row in r.data["rows"]] == [("Mark Thompson", "250.00")]
    assert r.data["totals"] == {"out": {"GBP": "250.00"}}
    bad = run_tool(engine, ids["alice"], "search_transactions", "", slots={"date_from": "31/02/2025"}, now=NOW)
    assert "not a date" in bad.answer and "totals" not in bad.data


def _disputes(engine) -> int:
    with session_scope(engine) as s:
        return s.scalar(select(func.count()).select_from(Dispute))


def test_dispute_opened_writes_one_row(bank):
    engine, ids = bank
    r = run_tool(engine, ids["alice"], "dispute_charge", "I want to dispute the Amazon charge", now=NOW)
    assert r.pending_confirmation["action"] == "open_dispute" and "Amazon UK" in r.pending_confirmation["description"]
    assert _disputes(engine) == 0
    confirm_action(engine, ids["alice"], r.pending_confirmation["action_id"], True, now=NOW)
    confirm_action(engine, ids["alice"], r.pending_confirmation["action_id"], True, now=NOW)
    with session_scope(engine) as s:
        d = s.scalars(select(Dispute)).one()
        tx = s.get(CardTransaction, d.card_transaction_id)
        assert (d.customer_id, d.status, tx.merchant) == (ids["alice"], "open", "Amazon UK")
    again = run_tool(engine, ids["alice"], "dispute_charge", "", slots={"merchant": "Amazon"}, now=NOW)
    assert again.pending_confirmation is None and "already open" in again.answer


def test_dispute_with_several_or_no_matches(bank):
    engine, ids = bank
    r = run_tool(engine, ids["alice"], "dispute_charge", "", slots={"merchant": "Pret"}, now=NOW)
    assert r.slot_request["slot"] == "transaction_id" and len(r.slot_request["options"]) == 2
    assert all("£6.85" in o and "March 2025" in o for o in r.slot_request["options"])
    pick = run_tool(engine, ids["alice"], "dispute_charge", "",
                    slots={"merchant": "Pret", "transaction_id": r.slot_request["options"][1]}, now=NOW)
    assert pick.pending_confirmation["action"] == "open_dispute"
    assert pick.data["transaction"]["transaction_id"] == r.data["candidates"][1]["transaction_id"]
    none = run_tool(engine, ids["alice"], "dispute_charge", "", slots={"merchant": "Harrods"}, now=NOW)
    assert none.pending_confirmation is None and "no card payment" in none.answer
    other = run_tool(engine, ids["bob"], "dispute_charge", "", slots={"transaction_id": str(
        r.data["candidates"][0]["transaction_id"])}, now=NOW)  # alice's payment, asked by bob
    assert other.pending_confirmation is None


@pytest.mark.parametrize("intent, text", [("request_refund", "I want a refund"),
                                          ("transaction_charged_twice", "I was charged twice"),
                                          ("card_payment_not_recognised", "I don't recognise a payment")])
def test_refund_style_answers_offer_a_dispute_without_proposing(bank, intent, text):
    engine, ids = bank
    r = run_tool(engine, ids["alice"], intent, text, now=NOW)
    assert "open a dispute on it" in r.answer and r.data["dispute_offer"] and r.pending_confirmation is None
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(PendingAction)) == 0


def test_handoff_ticket_with_queue_position(bank):
    engine, ids = bank
    transcript = [{"role": "customer", "text": "my card is broken"}, {"role": "assistant", "text": "Which card?"}]
    a = run_tool(engine, ids["alice"], "talk_to_human", "can I talk to a person?",
                 slots={"transcript": transcript, "thread_id": "t-alice"}, now=NOW)
    b = run_tool(engine, ids["bob"], "talk_to_human", "this isn't helping", now=NOW)
    assert a.data["handoff"]["position"] == 1 and b.data["handoff"]["position"] == 2
    assert b.data["handoff"]["expected_wait_min"] == 2 * a.data["handoff"]["expected_wait_min"] > 0
    assert "number 2 in the queue" in b.answer and a.pending_confirmation is None
    again = run_tool(engine, ids["alice"], "talk_to_human", "hello?", slots={"thread_id": "t-alice"}, now=NOW)
    assert again.data["handoff"]["ticket_id"] == a.data["handoff"]["ticket_id"]  # same thread: one ticket
    with session_scope(engine) as s:
        row = s.get(HandoffTicket, a.data["handoff"]["ticket_id"])
        assert (row.customer_id, row.status, row.thread_id) == (ids["alice"], "open", "t-alice")
        assert row.transcript == [{"role": "customer", "text": "my card is broken"},
                                  {"role": "assistant", "text": "Which card?"},
                                  {"role": "customer", "text": "can I talk to a person?"},
                                  {"role": "customer", "text": "hello?"}]
    queue = open_tickets(engine)
    assert [(t["customer_id"], t["position"]) for t in queue] == [(ids["alice"], 1), (ids["bob"], 2)]
    assert close_ticket(engine, a.data["handoff"]["ticket_id"]) is True
    assert close_ticket(engine, a.data["handoff"]["ticket_id"]) is False
    assert [(t["customer_id"], t["position"]) for t in open_tickets(engine)] == [(ids["bob"], 1)]


def test_handoff_keeps_the_transcript_turns_of_the_thread(bank):
    engine, ids = bank
    turns = [{"customer": "freeze my card", "assistant": "Which card?", "status": "clarify", "at": "2025-03-20T11:00"},
             {"customer": "the blue one", "assistant": "Sorry, which one?", "status": "clarify", "at": "2025-03-20T11:01"}]
    r = run_tool(engine, ids["alice"], "talk_to_human", "get me a person", slots={"transcript": turns}, now=NOW)
    with session_scope(engine) as s:
        row = s.get(HandoffTicket, r.data["handoff"]["ticket_id"])
    assert [t["text"] for t in row.transcript] == ["freeze my card", "Which card?", "the blue one", "Sorry, which one?",
                                                   "get me a person"]
    assert [t["role"] for t in row.transcript] == ["customer", "assistant"] * 2 + ["customer"]
