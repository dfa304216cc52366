"""Confirmation safety and follow-up context of the one conversation turn (chains/graph.py), on
every interface that runs it: the graph in-process (as the Chainlit UI and ``langgraph dev`` run
it), the HTTP API and the terminal chat. A fake backend with fixed rankings
(tests/fake_backend.py) stands in for the model; the bank is the real seeded SQLite database.

Reproductions from the issue: a pending card action may be decided only by an explicit
``confirm_action_id`` + ``approve`` or by a bare yes/no as the very next message of the same
conversation; any other message closes the proposal as ``superseded``.
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from langchain_core.messages import HumanMessage
from sqlalchemy import select

from bank.store import Card, Customer, PendingAction, Transfer, session_scope
from fake_backend import FakeIntentModel

BOB = {"Authorization": "Bearer demo-bob-key"}
ALICE = {"Authorization": "Bearer demo-alice-key"}
CAROL = {"Authorization": "Bearer demo-carol-key"}


@pytest.fixture()
def bank(session_home):
    """A freshly seeded demo bank; the fake backend registered as "custom" for this test."""
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine
    from models import registry as backends

    create_schema(get_engine())
    seed_demo(get_engine(), reset=True)
    from assistant.cli import Conversation

    backends.reset_backends()
    Conversation.reset()  # the CLI's graph holds the backends of an earlier test
    backends._instances["custom"] = FakeIntentModel()
    with session_scope(get_engine()) as s:
        ids = {u: i for i, u in s.execute(select(Customer.id, Customer.username)).all()}
    yield ids
    backends.reset_backends()
    Conversation.reset()


def engine():
    from bank.store import get_engine

    return get_engine()


def card_statuses(customer_id: int) -> dict[str, str]:
    with session_scope(engine()) as s:
        return {c.last4: c.status for c in s.scalars(select(Card).where(Card.customer_id == customer_id))}


def action_status(action_id: str) -> str:
    with session_scope(engine()) as s:
        return s.get(PendingAction, action_id).status


def transfer_statuses(customer_id: int) -> dict[str, str]:
    from bank.store import Account

    with session_scope(engine()) as s:
        rows = s.execute(select(Transfer.beneficiary_name, Transfer.status).join(Account).where(
            Account.customer_id == customer_id)).all()
        return {name: status for name, status in rows}


# ----------------------------------------------------------------------------- the graph
@pytest.fixture()
def graph(bank):
    from chains.checkpoint import open_checkpointer
    from chains.graph import build_graph

    with open_checkpointer() as saver:
        yield build_graph(checkpointer=saver, intent_chain=FakeIntentModel())


def thread(customer_id: int) -> dict:
    return {"configurable": {"thread_id": str(uuid.uuid4()), "customer_id": customer_id}}


def say(graph, config: dict, text: str, **extra) -> dict:
    return graph.invoke({"messages": [HumanMessage(text)], **extra}, config)["output"]


def test_a_question_after_a_proposal_supersedes_it_and_is_answered(graph, bank) -> None:
    bob = bank["bob"]
    before = card_statuses(bob)
    conf = thread(bob)
    proposal = say(graph, conf, "I lost my card")
    assert proposal["status"] == "confirmation_required"
    action_id = proposal["pending_confirmation"]["action_id"]
    out = say(graph, conf, "OK, and what is the exchange rate?")
    assert out["intent"] == "exchange_rate" and out["status"] == "answered"
    assert out["answer"].startswith("I haven't done the earlier request")
    assert action_status(action_id) == "superseded" and card_statuses(bob) == before
    # The proposal is closed: a later "yes" answers nothing.
    out = say(graph, conf, "yes")
    assert out["status"] == "answered" and "nothing waiting" in out["answer"]
    assert card_statuses(bob) == before


def test_a_new_request_after_a_proposal_is_handled_as_new(graph, bank) -> None:
    alice = bank["alice"]
    conf = thread(alice)
    action_id = say(graph, conf, "I lost my card")["pending_confirmation"]["action_id"]
    out = say(graph, conf, "Cancel my transfer to Mark Thompson")
    assert action_status(action_id) == "superseded"
    assert out["intent"] == "cancel_transfer" and out["status"] == "confirmation_required"
    assert "Mark Thompson" in out["answer"]
    assert transfer_statuses(alice)["Mark Thompson"] == "pending"  # proposed, not done


@pytest.mark.parametrize("reply, approve", [("yes", True), ("OK, do it!", True), ("No, leave it", False), ("nope", False)])
def test_a_bare_yes_or_no_right_after_the_proposal_decides_it(graph, bank, reply, approve) -> None:
    bob = bank["bob"]
    conf = thread(bob)
    action_id = say(graph, conf, "I lost my card")["pending_confirmation"]["action_id"]
    out = say(graph, conf, reply)
    assert out["status"] == ("confirmed" if approve else "declined")
    assert action_status(action_id) == out["status"]
    assert ("frozen" in card_statuses(bob).values()) is approve


def test_yes_in_another_conversation_changes_nothing(graph, bank) -> None:
    """A page reload (new Chainlit thread), the CLI or the API: another thread's "yes"."""
    bob = bank["bob"]
    before = card_statuses(bob)
    action_id = say(graph, thread(bob), "I lost my card")["pending_confirmation"]["action_id"]
    out = say(graph, thread(bob), "yes")
    assert out["status"] == "answered" and "nothing waiting" in out["answer"]
    assert action_status(action_id) == "pending" and card_statuses(bob) == before


def test_button_resume_decides_and_replay_says_so(graph, bank) -> None:
    from langgraph.types import Command

    bob = bank["bob"]
    conf = thread(bob)
    action_id = say(graph, conf, "I lost my card")["pending_confirmation"]["action_id"]
    out = graph.invoke(Command(resume={"approve": True}), conf)["output"]
    assert out["status"] == "confirmed" and not out["replayed"]
    replay = say(graph, thread(bob), "yes, confirm", confirm={"action_id": action_id, "approve": False})
    assert replay["status"] == "confirmed" and replay["replayed"] is True
    assert "already confirmed" in replay["answer"]


def test_declined_context_cannot_propose_again_from_a_vague_follow_up(graph, bank) -> None:
    bob = bank["bob"]
    conf = thread(bob)
    say(graph, conf, "I lost my card")
    assert say(graph, conf, "No, leave it")["status"] == "declined"
    out = say(graph, conf, "my crad hasnt arived")
    assert out["status"] == "clarify" and not out.get("pending_confirmation")
    assert [c["intent"] for c in out["choices"]] == ["card_arrival", "lost_or_stolen_card", "card_delivery_estimate"]


def test_a_vague_follow_up_is_understood_in_context(graph, bank) -> None:
    """Alone "what about the other one?" is in scope but unsure (clarify); after an answered
    request it is classified together with it and reaches that (read-only) tool."""
    conf = thread(bank["alice"])
    assert say(graph, thread(bank["alice"]), "what about the other one?")["status"] == "clarify"
    assert say(graph, conf, "Where is my new card?")["intent"] == "card_arrival"
    state = graph.invoke({"messages": [HumanMessage("what about the other one?")]}, conf)
    assert state["contextual"] is True and state["output"]["intent"] == "card_arrival"
    assert state["output"]["status"] == "answered" and state["context"] == "Where is my new card?"


def test_context_never_reaches_a_state_changing_tool_the_message_did_not_ask_for(graph, bank) -> None:
    alice = bank["alice"]
    conf = thread(alice)
    out = say(graph, conf, "what about my card?")  # clarify alone; no context yet
    assert out["status"] == "clarify"
    # Context from an answered request, then a vague follow-up that would propose a freeze.
    graph.update_state(conf, {"context": "I lost my card"})
    out = say(graph, conf, "what about the other one?")
    assert out["status"] == "clarify" and out["pending_confirmation"] is None
    with session_scope(engine()) as s:
        assert s.scalars(select(PendingAction).where(PendingAction.customer_id == alice)).all() == []


def test_gibberish_after_a_cancellation_request_is_out_of_scope(graph, bank) -> None:
    alice = bank["alice"]
    conf = thread(alice)
    first = say(graph, conf, "I want to cancel the transfer I just made")
    assert first["status"] == "confirmation_required"
    say(graph, conf, "no")
    out = say(graph, conf, "asdf qwer zxcv")
    assert out["status"] == "out_of_scope" and out["pending_confirmation"] is None


def test_small_talk_and_clarify_choices(graph, bank) -> None:
    conf = thread(bank["alice"])
    hello = say(graph, conf, "hello")
    assert hello["status"] == "small_talk" and "balance" in hello["answer"]
    out = say(graph, conf, "is there a fee?")
    assert out["status"] == "clarify" and "a fee on a card payment" in out["answer"]
    picked = say(graph, conf, "the second one", chosen_intent="transfer_fee_charged")
    assert picked["intent"] == "transfer_fee_charged" and picked["status"] == "answered"


def test_a_blocked_message_gets_a_polite_reply_with_its_status(graph, bank) -> None:
    out = say(graph, thread(bank["alice"]), "some unsafe words")
    assert out["status"] == "blocked" and "rephrase" in out["answer"] and out["intent"] is None


def test_a_choice_that_was_not_offered_is_refused(graph, bank) -> None:
    from chains.guard import UnknownChoice

    conf = thread(bank["alice"])
    say(graph, conf, "is there a fee?")
    with pytest.raises(UnknownChoice):
        say(graph, conf, "that one", chosen_intent="terminate_account")


# ----------------------------------------------------------------------------- the HTTP API
@pytest.fixture()
def client(bank):
    from assistant.app import create_app

    with TestClient(create_app()) as c:
        yield c


def post(client: TestClient, headers: dict, **inp) -> tuple[int, dict]:
    r = client.post("/assistant/invoke", json={"input": inp}, headers=headers)
    body = r.json()
    return r.status_code, body.get("output", body)


def test_http_question_after_proposal_does_not_confirm(client, bank) -> None:
    before = card_statuses(bank["bob"])
    code, out = post(client, BOB, message="I lost my card")
    assert code == 200 and out["status"] == "confirmation_required"
    action_id = out["pending_confirmation"]["action_id"]
    code, out = post(client, BOB, message="OK, and what is the exchange rate?")
    assert code == 200 and out["intent"] == "exchange_rate" and out["status"] == "answered"
    assert action_status(action_id) == "superseded" and card_statuses(bank["bob"]) == before


def test_http_new_request_after_proposal(client, bank) -> None:
    code, out = post(client, ALICE, message="I lost my card")
    action_id = out["pending_confirmation"]["action_id"]
    code, out = post(client, ALICE, message="Cancel my transfer to Mark Thompson")
    assert code == 200 and out["intent"] == "cancel_transfer" and "Mark Thompson" in out["answer"]
    assert action_status(action_id) == "superseded"


def test_http_empty_action_id_is_refused_and_approve_wins(client, bank) -> None:
    before = card_statuses(bank["carol"])
    code, out = post(client, CAROL, message="I lost my card")
    action_id = out["pending_confirmation"]["action_id"]
    code, body = post(client, CAROL, message="yes", confirm_action_id="", approve=False)
    assert code == 422 and "confirm_action_id is empty" in str(body)
    code, out = post(client, CAROL, message="yes", confirm_action_id=action_id, approve=False)
    assert code == 200 and out["status"] == "declined" and card_statuses(bank["carol"]) == before
    code, out = post(client, CAROL, message="yes", confirm_action_id=action_id, approve=True)
    assert code == 200 and out["status"] == "declined" and out["replayed"] is True
    assert "already declined" in out["answer"] and card_statuses(bank["carol"]) == before


def test_http_yes_in_another_conversation_changes_nothing(client, bank) -> None:
    """As when a ``langgraph dev`` or UI thread waits: the API's own conversation has nothing pending."""
    before = card_statuses(bank["bob"])
    code, out = post(client, BOB, message="I lost my card", conversation_id="ui-tab-1")
    action_id = out["pending_confirmation"]["action_id"]
    code, out = post(client, BOB, message="yes")
    assert code == 200 and "nothing waiting" in out["answer"]
    assert action_status(action_id) == "pending" and card_statuses(bank["bob"]) == before


def test_http_unknown_action_is_404_and_batch_answers_per_item(client, bank) -> None:
    code, body = post(client, BOB, message="yes", confirm_action_id="not-an-action", approve=True)
    assert code == 404 and "not-an-action" in body["detail"]
    _, out = post(client, ALICE, message="I lost my card", conversation_id="c1")
    good = out["pending_confirmation"]["action_id"]
    r = client.post("/assistant/batch", headers=ALICE, json={"inputs": [
        {"message": "yes", "confirm_action_id": good, "approve": True},
        {"message": "yes", "confirm_action_id": "missing-id", "approve": True},
    ]})
    assert r.status_code == 200
    first, second = r.json()["output"]
    assert first["status"] == "confirmed" and action_status(good) == "confirmed"
    assert second["status"] == "error" and second["error"]["status"] == 404


def test_http_stream_reports_the_invoke_status(client, bank) -> None:
    with client.stream("POST", "/assistant/stream", headers=BOB, json={
            "input": {"message": "yes", "confirm_action_id": "nope", "approve": True}}) as r:
        text = "".join(r.iter_text())
    assert r.status_code == 200
    assert "event: error" in text and '"status_code": 404' in text and "event: end" in text
    with client.stream("POST", "/assistant/stream", headers=BOB, json={"input": {"message": "hello"}}) as r:
        text = "".join(r.iter_text())
    assert 'event: data\r\ndata: {"answer_chunk"' in text and '"status":"small_talk"' in text and "event: end" in text


# ----------------------------------------------------------------------------- the terminal chat
def run_chat(monkeypatch, capsys, lines: list[str], customer: str = "bob") -> str:
    from assistant import cli

    replies = iter(lines)

    def fake_input(prompt: str = "") -> str:
        try:
            return next(replies)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr(cli.console, "input", fake_input)
    monkeypatch.setattr(cli, "ensure_custom_model", lambda progress=True: None)
    assert cli.main(["chat", "--customer", customer]) == 0
    return capsys.readouterr().out


def test_cli_question_after_proposal_does_not_confirm(bank, monkeypatch, capsys) -> None:
    before = card_statuses(bank["bob"])
    out = run_chat(monkeypatch, capsys, ["I lost my card", "OK, and what is the exchange rate?", "yes"])
    assert "Reply 'yes' to confirm" in out and "I haven't done the earlier request" in out
    assert "nothing waiting for your confirmation" in out
    assert card_statuses(bank["bob"]) == before
    with session_scope(engine()) as s:
        statuses = s.scalars(select(PendingAction.status).where(PendingAction.customer_id == bank["bob"])).all()
    assert statuses == ["superseded"]


def test_cli_yes_right_after_proposal_confirms_and_choices_are_numbered(bank, monkeypatch, capsys) -> None:
    out = run_chat(monkeypatch, capsys, ["is there a fee?", "2", "I lost my card", "yes"], customer="alice")
    assert "1) a fee on a card payment" in out and "2) a fee on a transfer" in out
    assert "intent=transfer_fee_charged" in out
    assert "frozen" in card_statuses(bank["alice"]).values()


def test_cli_another_session_cannot_confirm(bank, monkeypatch, capsys) -> None:
    before = card_statuses(bank["bob"])
    run_chat(monkeypatch, capsys, ["I lost my card"])
    out = run_chat(monkeypatch, capsys, ["yes"])
    assert "nothing waiting for your confirmation" in out and card_statuses(bank["bob"]) == before


MARKUP_MERCHANT = "[refund here](https://example.invalid/x) ![](https://example.invalid/p.png) [bold red]FREE[/bold red]"


def test_cli_shows_third_party_text_as_plain_text(bank, monkeypatch, capsys) -> None:
    """A merchant name with Markdown and rich markup is printed as typed: no link, no style."""
    from datetime import timedelta
    from decimal import Decimal

    from bank.store import CardTransaction, utcnow

    with session_scope(engine()) as s:
        card = s.scalars(select(Card).where(Card.customer_id == bank["alice"], Card.last4 == "4821")).one()
        s.add(CardTransaction(card_id=card.id, merchant=MARKUP_MERCHANT, amount=Decimal("9.99"), currency="GBP",
                              account_amount=Decimal("9.99"), status="settled", created_at=utcnow() + timedelta(minutes=1)))
    monkeypatch.setattr("assistant.cli.console.width", 400, raising=False)
    out = run_chat(monkeypatch, capsys, ["show my recent transactions"], customer="alice")
    assert MARKUP_MERCHANT in out
    assert "\x1b]8;" not in out  # no terminal hyperlink escape
