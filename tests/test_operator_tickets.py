"""The operator's hand-over queue over HTTP (assistant/operator_tickets.py): tickets opened by
customers through the real app (fake intent backend, tests/fake_backend.py, on a freshly seeded
SQLite bank), listed and closed with the operator key; statuses, bodies and the database rows."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bank.models_extra import HandoffTicket
from bank.store import Customer, session_scope
from fake_backend import FakeIntentModel

OPERATOR = {"Authorization": "Bearer demo-operator-key"}
ALICE = {"Authorization": "Bearer demo-alice-key"}
BOB = {"Authorization": "Bearer demo-bob-key"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture()
def client(session_home):
    from assistant.app import create_app
    from assistant.cli import Conversation
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine
    from models import registry as backends

    create_schema(get_engine())
    seed_demo(get_engine(), reset=True)
    with session_scope(get_engine()) as s:  # seed_demo(reset=True) keeps no tickets of earlier tests
        for t in s.scalars(select(HandoffTicket)):
            s.delete(t)
    backends.reset_backends()
    Conversation.reset()
    backends._instances["custom"] = FakeIntentModel()
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c
    backends.reset_backends()
    Conversation.reset()


def _rows() -> list[tuple[int, int, str, bool]]:
    """(ticket id, customer id, status, closed_at set) of every ticket row, in id order."""
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return [(t.id, t.customer_id, t.status, t.closed_at is not None)
                for t in s.scalars(select(HandoffTicket).order_by(HandoffTicket.id))]


def _ids() -> dict[str, int]:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return {u: i for i, u in s.execute(select(Customer.id, Customer.username)).all()}


def _hand_over(client: TestClient, headers: dict, message: str) -> dict:
    r = client.post("/assistant/invoke", headers=headers, json={"input": {"message": message}})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert out["status"] == "handoff", out
    return out["data"]["handoff"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_only_the_operator_key_reaches_the_queue(client: TestClient, method: str) -> None:
    ticket = _hand_over(client, BOB, "can I talk to a person?")
    path = "/operator/tickets" if method == "get" else f"/operator/tickets/{ticket['ticket_id']}/close"
    call = getattr(client, method)
    extra = {"json": {}} if method == "post" else {}
    missing = call(path, **extra)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert call(path, headers={"Authorization": "Bearer not-a-key"}, **extra).status_code == 401
    r = call(path, headers=ALICE, **extra)
    assert r.status_code == 403 and r.json() == {"detail": "Operator key required."}
    assert [row[2:] for row in _rows()] == [("open", False)]  # nobody but the operator closes a ticket


def test_the_operator_lists_open_tickets_with_position_wait_and_plain_transcript(client: TestClient) -> None:
    ids = _ids()
    bob = _hand_over(client, BOB, "can I talk to a person? <b>**now**</b>")
    alice = _hand_over(client, ALICE, "this isn't helping")
    r = client.get("/operator/tickets", headers=OPERATOR)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    tickets = r.json()["tickets"]
    assert [(t["ticket_id"], t["customer_id"], t["position"], t["expected_wait_min"], t["status"]) for t in tickets] == [
        (bob["ticket_id"], ids["bob"], 1, 4, "open"), (alice["ticket_id"], ids["alice"], 2, 8, "open")]
    assert (bob["position"], alice["position"], alice["expected_wait_min"]) == (1, 2, 8)  # as the customers were told
    # the customer's text comes back exactly as written: data, not markup
    assert tickets[0]["transcript_excerpt"][-1] == {"role": "customer", "text": "can I talk to a person? <b>**now**</b>"}
    # bob's conversation may hold earlier tests' turns: the excerpt is the newest EXCERPT_TURNS of them
    from assistant.operator_tickets import EXCERPT_TURNS

    n = tickets[0]["transcript_entries"]
    assert n >= 1 and len(tickets[0]["transcript_excerpt"]) == min(n, EXCERPT_TURNS)
    assert tickets[1]["reason"] == "this isn't helping"
    assert "transcript" not in tickets[0]  # the excerpt only, not the whole conversation


def test_closing_a_ticket_updates_the_row_and_the_queue(client: TestClient) -> None:
    first = _hand_over(client, BOB, "can I talk to a person?")
    second = _hand_over(client, ALICE, "can I talk to a person?")
    r = client.post(f"/operator/tickets/{first['ticket_id']}/close", headers={**OPERATOR, **JSON})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["ticket_id"], body["status"]) == (first["ticket_id"], "closed") and body["closed_at"]
    rows = {row[0]: row for row in _rows()}
    assert rows[first["ticket_id"]][2:] == ("closed", True) and rows[second["ticket_id"]][2:] == ("open", False)

    again = client.post(f"/operator/tickets/{first['ticket_id']}/close", headers={**OPERATOR, **JSON})
    assert again.status_code == 409 and "already closed" in again.json()["detail"]
    missing = client.post("/operator/tickets/99999/close", headers={**OPERATOR, **JSON})
    assert missing.status_code == 404 and missing.json() == {"detail": "No hand-over ticket #99999."}
    assert client.post("/operator/tickets/0/close", headers={**OPERATOR, **JSON}).status_code == 422
    assert client.post(f"/operator/tickets/{2**40}/close", headers={**OPERATOR, **JSON}).status_code == 422
    assert client.post("/operator/tickets/abc/close", headers={**OPERATOR, **JSON}).status_code == 422

    listed = client.get("/operator/tickets", headers=OPERATOR).json()["tickets"]
    assert [(t["ticket_id"], t["position"], t["expected_wait_min"]) for t in listed] == [(second["ticket_id"], 1, 4)]
    assert {row[0]: row[2] for row in _rows()} == {first["ticket_id"]: "closed", second["ticket_id"]: "open"}


def test_a_long_transcript_is_listed_as_an_excerpt(client: TestClient) -> None:
    from assistant.operator_tickets import EXCERPT_CHARS, EXCERPT_TURNS
    from bank.store import get_engine

    ids = _ids()
    transcript = [{"role": "customer" if i % 2 == 0 else "assistant", "text": f"{i}:" + "x" * 700} for i in range(30)]
    with session_scope(get_engine()) as s:
        s.add(HandoffTicket(customer_id=ids["carol"], thread_id="t", transcript=transcript, reason="r", status="open"))
    (ticket,) = client.get("/operator/tickets", headers=OPERATOR).json()["tickets"]
    assert ticket["transcript_entries"] == 30 and len(ticket["transcript_excerpt"]) == EXCERPT_TURNS
    assert [e["text"].split(":")[0] for e in ticket["transcript_excerpt"]] == [str(i) for i in range(10, 30)]
    assert all(len(e["text"]) == EXCERPT_CHARS and e["text"].endswith("…") for e in ticket["transcript_excerpt"])
    assert ticket["transcript_excerpt"][-1]["role"] == "assistant"
