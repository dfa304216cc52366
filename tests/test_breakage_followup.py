"""Regressions from issue 20 on the conversation turn (chains/graph.py, chains/confirmation.py),
with the fake backend (tests/fake_backend.py) and the real seeded SQLite bank:

- a new, unsure request after an answered one got the previous answer word for word (the
  follow-up rule let the old topic win);
- ``backend`` chosen by one request stayed in force for later requests that named none;
- "actually no, leave it" was not taken as a no (and with nothing pending it was declined as
  out of scope).
"""

from __future__ import annotations

import uuid

import pytest
from langchain_core.messages import HumanMessage
from sqlalchemy import select

from bank.store import Card, PendingAction, session_scope
from fake_backend import FakeIntentModel
from test_conversation import bank, card_statuses, engine, graph, say, thread  # noqa: F401


class FakePeft(FakeIntentModel):
    """The fake backend answering as "peft" (same rankings, another name)."""

    backend_name = "peft"


def test_an_unrelated_unsure_request_does_not_get_the_previous_answer(graph, bank) -> None:  # noqa: F811
    conf = thread(bank["alice"])
    first = say(graph, conf, "why was I charged twice at Tesco")
    assert first["intent"] == "transaction_charged_twice" and first["status"] == "answered"
    out = say(graph, conf, "freeze my card and cancel the transfer to Mark Thompson")
    assert out["status"] == "clarify" and out["answer"] != first["answer"]
    assert [c["intent"] for c in out["choices"]] == ["lost_or_stolen_card", "cancel_transfer", "compromised_card"]
    assert graph.get_state(conf).values["contextual"] is False


def test_a_follow_up_says_what_it_was_taken_to_mean(graph, bank) -> None:  # noqa: F811
    conf = thread(bank["alice"])
    say(graph, conf, "Where is my new card?")
    out = say(graph, conf, "what about the other one?")
    assert out["intent"] == "card_arrival" and out["status"] == "answered"
    assert out["answer"].startswith("Taking this as a follow-up to your earlier message, about a card that hasn't arrived:")


def test_the_backend_is_chosen_per_request_not_remembered(bank) -> None:  # noqa: F811
    from chains.checkpoint import open_checkpointer
    from chains.graph import build_graph
    from models import registry as backends

    backends._instances["peft"] = FakePeft()
    conf = thread(bank["alice"])
    peft_conf = {"configurable": {**conf["configurable"], "backend": "peft"}}
    with open_checkpointer() as saver:
        g = build_graph(checkpointer=saver)
        assert say(g, peft_conf, "Where is my new card?")["backend"] == "peft"
        assert say(g, conf, "Where is my new card?")["backend"] == "custom"


@pytest.mark.parametrize("reply", ["actually no, leave it", "Actually, no leave it", "oh no, leave it"])
def test_actually_no_leave_it_declines_the_proposal(graph, bank, reply) -> None:  # noqa: F811
    bob = bank["bob"]
    before = card_statuses(bob)
    conf = thread(bob)
    proposal = say(graph, conf, "I lost my card")
    assert proposal["status"] == "confirmation_required"
    out = say(graph, conf, reply)
    assert out["status"] == "declined" and card_statuses(bob) == before
    with session_scope(engine()) as s:
        row = s.get(PendingAction, proposal["pending_confirmation"]["action_id"])
        assert row.status == "declined"


def test_actually_no_leave_it_with_nothing_pending_is_not_out_of_scope(graph, bank) -> None:  # noqa: F811
    conf = thread(bank["alice"])
    out = say(graph, conf, "actually no, leave it")
    assert out["status"] == "answered" and "nothing waiting for your confirmation" in out["answer"]
