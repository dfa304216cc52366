"""Adversarial regressions (breakage tests) for confirmation safety.

Faults found by probing a served app (loopback, demo bank):

- a reply whose other words are not in [a-z'] (Chinese, Cyrillic...) was read as a bare yes,
  because ``chains.confirmation._WORDS`` keeps only ASCII letters: "yes 不要" ("yes, don't")
  and "ok, но не надо" ("ok, but don't") froze the card;
- a ``/batch`` carrying "I lost my card" and "yes" in one conversation confirmed a proposal the
  customer had not seen yet (it was made in that same request);
- ``/assistant/stream`` sent no ``answer_chunk`` for a turn that ends with a proposal (the
  confirmation question), while it streams every other answer;
- a clarify choice stayed pickable after later turns (``choices`` is never cleared).

The fake intent backend (tests/fake_backend.py) stands in for the model.
"""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bank.store import Card, Customer, PendingAction, session_scope
from chains.confirmation import yes_or_no
from fake_backend import FakeIntentModel

BOB = {"Authorization": "Bearer demo-bob-key"}


@pytest.mark.parametrize("reply", [
    "yes 不要",           # "yes" + Chinese "don't want"
    "ok, но не надо",     # "ok, but don't" (Russian)
    "yes لا",             # "yes" + Arabic "no"
    "sure, όχι",          # "sure" + Greek "no"
])
def test_a_yes_with_non_latin_words_is_not_a_bare_yes(reply: str) -> None:
    assert yes_or_no(reply) is None


@pytest.fixture()
def bank(session_home):
    """A freshly seeded demo bank with the fake intent backend (tests/fake_backend.py) registered
    as "custom", so no trained model is needed."""
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine
    from models import registry as backends

    create_schema(get_engine())
    seed_demo(get_engine(), reset=True)
    from assistant.cli import Conversation

    backends.reset_backends()
    Conversation.reset()
    backends._instances["custom"] = FakeIntentModel()
    yield
    backends.reset_backends()
    Conversation.reset()


@pytest.fixture()
def client(bank):
    from assistant.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def _bob_cards() -> dict[int, str]:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        bob = s.scalar(select(Customer.id).where(Customer.username == "bob"))
        return {c.id: c.status for c in s.scalars(select(Card).where(Card.customer_id == bob))}


def test_a_yes_in_the_same_batch_does_not_confirm_an_unseen_proposal(client: TestClient) -> None:
    """A batch is not a conversation: items may not share one (422 per item), and without a
    conversation_id each item has its own, so a "yes" beside a proposal finds nothing waiting."""
    from bank.store import get_engine

    before = _bob_cards()
    conv = "brk-" + uuid.uuid4().hex[:8]
    r = client.post("/assistant/batch", headers=BOB, json={"inputs": [
        {"message": "I lost my card", "conversation_id": conv}, {"message": "yes", "conversation_id": conv}]})
    assert r.status_code == 200
    first, second = r.json()["output"]
    assert first["status"] == second["status"] == "error" and first["error"]["status"] == 422
    assert "batch" in first["error"]["detail"]
    r = client.post("/assistant/batch", headers=BOB, json={"inputs": [{"message": "I lost my card"}, {"message": "yes"}]})
    first, second = r.json()["output"]
    assert first["status"] == "confirmation_required" and second["status"] == "answered"
    assert "nothing waiting" in second["answer"]
    assert _bob_cards() == before
    with session_scope(get_engine()) as s:
        status = s.scalar(select(PendingAction.status).where(
            PendingAction.id == first["pending_confirmation"]["action_id"]))
    assert status == "pending"


def test_stream_streams_the_confirmation_question(client: TestClient) -> None:
    r = client.post("/assistant/stream", headers=BOB,
                    json={"input": {"message": "I lost my card", "conversation_id": "brk-" + uuid.uuid4().hex[:8]}})
    assert r.status_code == 200
    events, current = [], None
    for line in r.text.splitlines():
        if line.startswith("event:"):
            current = line[6:].strip()
        elif line.startswith("data:"):
            events.append((current, line[5:].strip()))
    data = [json.loads(d) for e, d in events if e == "data"]
    outputs = [d for d in data if "status" in d]
    assert len(outputs) == 1 and outputs[0]["status"] == "confirmation_required"
    chunks = "".join(d["answer_chunk"] for d in data if "answer_chunk" in d)
    assert len(data) > 2 and chunks == outputs[0]["answer"]


def test_a_stale_clarify_choice_is_refused(bank) -> None:
    """``chosen_intent`` must be one of the PREVIOUS answer's choices (chains/assistant.py); a
    choice offered two turns earlier was still accepted and ran its tool (here: proposing to
    freeze the card) on the old message."""
    from langchain_core.messages import HumanMessage

    from bank.store import get_engine
    from chains.checkpoint import open_checkpointer
    from chains.graph import build_graph
    from chains.guard import UnknownChoice

    with session_scope(get_engine()) as s:
        bob = s.scalar(select(Customer.id).where(Customer.username == "bob"))
    config = {"configurable": {"thread_id": "brk-" + uuid.uuid4().hex, "customer_id": bob}}
    with open_checkpointer() as saver:
        graph = build_graph(checkpointer=saver, intent_chain=FakeIntentModel())
        first = graph.invoke({"messages": [HumanMessage("my crad hasnt arived")]}, config)["output"]
        assert first["status"] == "clarify"
        assert "lost_or_stolen_card" in [c["intent"] for c in first["choices"]]
        assert graph.invoke({"messages": [HumanMessage("hello")]}, config)["output"]["status"] == "small_talk"
        with pytest.raises(UnknownChoice):
            graph.invoke({"messages": [HumanMessage("hello")], "confirm": None,
                          "chosen_intent": "lost_or_stolen_card"}, config)
