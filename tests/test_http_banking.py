"""Issue 16's flows over HTTP (``POST /assistant/invoke`` of the real app, FastAPI TestClient), on a
freshly seeded SQLite bank with the fake intent backend (tests/fake_backend.py) as "custom": the
answer text and, for each flow, every row it may change (tests/bank_rows.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from bank_rows import (ALICE_GBP, ASK_PAYEE, DISPUTE, HANDOFF, OVER_BALANCE, PAY, SEARCH, SEARCH_TOTAL, TWO_REQUESTS,
                       UNKNOWN_PAYEE, paid, rows, unchanged)
from fake_backend import FakeIntentModel

ALICE = {"Authorization": "Bearer demo-alice-key"}


@pytest.fixture()
def say(session_home):
    """``say(message, **input) -> output`` for alice in a conversation of its own; also
    ``say.decide(output, approve)`` answers the output's proposal with its action id."""
    from assistant.app import create_app
    from assistant.cli import Conversation
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine
    from models import registry as backends

    create_schema(get_engine())
    seed_demo(get_engine(), reset=True)
    backends.reset_backends()
    Conversation.reset()
    backends._instances["custom"] = FakeIntentModel()
    conversation = "http-" + uuid.uuid4().hex[:8]
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        def send(message: str, **extra) -> dict:
            r = client.post("/assistant/invoke", headers=ALICE,
                            json={"input": {"message": message, "conversation_id": conversation, **extra}})
            assert r.status_code == 200, r.text
            return r.json()["output"]

        def decide(out: dict, approve: bool = True) -> dict:
            action = out["pending_confirmation"]["action_id"]
            return send("yes" if approve else "no", confirm_action_id=action, approve=approve)

        send.decide = decide
        yield send
    backends.reset_backends()
    Conversation.reset()


def test_payment_with_the_details_in_the_message(say) -> None:
    before = rows("alice")
    out = say(PAY)
    assert out["status"] == "confirmation_required" and out["intent"] == "send_money"
    assert "Send £40.00 to Northside Energy (GB33 **** 5555)" in out["answer"] and "balance after £1,480.40" in out["answer"]
    assert rows("alice").transfers == before.transfers  # nothing before the yes
    done = say.decide(out)
    assert done["status"] == "confirmed" and "Done: £40.00 sent to Northside Energy" in done["answer"]
    paid(before, rows("alice"), "Northside Energy", "40.00")


def test_payment_amount_asked_then_corrected(say) -> None:
    before = rows("alice")
    asked = say(ASK_PAYEE)
    assert asked["status"] == "slot_required" and asked["slot_request"]["slot"] == "amount"
    assert asked["answer"] == "How much would you like to send to Northside Energy?"
    first = say("40 pounds")
    assert first["status"] == "confirmation_required" and "Send £40.00 to Northside Energy" in first["answer"]
    corrected = say("no, make it 45")
    assert corrected["status"] == "confirmation_required"
    assert corrected["answer"].startswith("I've changed the amount from £40.00 to £45.00 and closed the earlier proposal")
    assert "Send £45.00 to Northside Energy" in corrected["answer"] and "ask again" not in corrected["answer"]
    stale = say("yes", confirm_action_id=first["pending_confirmation"]["action_id"], approve=True)
    assert stale["status"] == "superseded" and rows("alice").transfers == before.transfers  # the old one is closed
    done = say.decide(corrected)
    assert done["status"] == "confirmed" and "£45.00" in done["answer"]
    paid(before, rows("alice"), "Northside Energy", "45.00")


def test_unknown_payee_is_refused(say) -> None:
    before = rows("alice")
    out = say(UNKNOWN_PAYEE)
    assert out["status"] == "answered" and out["pending_confirmation"] is None
    assert "not one of your saved payees" in out["answer"] and "have not paid anyone" in out["answer"]
    unchanged(before, rows("alice"))


def test_amount_over_the_balance_is_refused_with_nothing_changed(say) -> None:
    before = rows("alice")
    out = say(OVER_BALANCE)
    assert out["status"] == "answered" and out["pending_confirmation"] is None
    assert "more than your GBP balance" in out["answer"] and "Nothing was changed" in out["answer"]
    unchanged(before, rows("alice"))
    assert rows("alice").balances["GBP"] == ALICE_GBP


def test_spending_search_gives_the_right_total(say) -> None:
    before = rows("alice")
    out = say(SEARCH)
    assert out["status"] == "answered" and out["intent"] == "search_transactions"
    assert out["answer"].startswith(SEARCH_TOTAL) and out["data"]["totals"] == {"out": {"GBP": "13.70"}}
    assert out["data"]["count"] == 2
    unchanged(before, rows("alice"))


def test_dispute_is_opened(say) -> None:
    before = rows("alice")
    out = say(DISPUTE)
    assert out["status"] == "confirmation_required" and "Open a dispute on the Amazon UK payment of £42.10" in out["answer"]
    assert rows("alice").disputes == before.disputes
    done = say.decide(out)
    assert done["status"] == "confirmed" and "is open" in done["answer"]
    after = rows("alice")
    assert after.disputes == (*before.disputes, ("Amazon UK", "open"))
    assert (after.transfers, after.balances, after.cards) == (before.transfers, before.balances, before.cards)


def test_two_requests_in_one_message(say) -> None:
    before = rows("alice")
    out = say(TWO_REQUESTS)
    assert out["status"] == "confirmation_required" and out["intent"] == "lost_or_stolen_card"
    assert "freeze your physical card ending 4821" in out["answer"] and "£1,520.40" in out["answer"]  # both in one reply
    assert rows("alice").cards == before.cards
    done = say.decide(out)
    assert "card ending 4821 is frozen" in done["answer"]
    after = rows("alice")
    assert {k: after.cards[k] for k in before.cards} == {**before.cards, "4821": "frozen"}
    assert [s for k, s in after.cards.items() if k not in before.cards] == ["ordered"]  # a lost card's replacement
    assert (after.transfers, after.balances) == (before.transfers, before.balances)


def test_hand_over_opens_one_ticket(say) -> None:
    before = rows("alice")
    out = say(HANDOFF)
    assert out["status"] == "handoff" and out["intent"] == "talk_to_human"
    ticket = out["data"]["handoff"]
    assert f"(ticket #{ticket['ticket_id']}). You are number {ticket['position']} in the queue" in out["answer"]
    assert out["answer"].count("in the queue") == 1
    after = rows("alice")
    assert after.tickets == (*before.tickets, (ticket["ticket_id"], "open"))
    assert (after.transfers, after.balances, after.cards) == (before.transfers, before.balances, before.cards)
    assert Decimal(after.balances["GBP"]) == ALICE_GBP
