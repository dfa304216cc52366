"""The graph's nodes one at a time (chains/nodes.py), on hand-made states: no trained model, no
graph run. The bank-backed nodes (settle on a pending proposal, tool) are covered by
tests/test_conversation.py through the whole graph."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Command

from chains.assistant import Choice, InvalidMessage
from chains.classification import Classification
from chains.guard import UnknownChoice, guard
from chains.nodes import (
    NOTHING_PENDING_ANSWER, Classify, after_classify, after_guard, after_tool, apply_guard, intake,
    plausible_continuation, settle,
)
from chains.state import TURN_DEFAULTS, Decision, TurnRequest
from fake_backend import FakeIntentModel

CONFIG = {"configurable": {"customer_id": 7, "thread_id": "t-1"}}


def meta(*ranking: tuple[str, float], clarify: float = 0.6) -> Classification:
    return Classification.from_metadata({
        "intent": ranking[0][0], "confidence": ranking[0][1],
        "ranking": [{"intent": i, "confidence": c} for i, c in ranking],
        "thresholds": {"oos_threshold": 0.3, "clarify_threshold": clarify}, "backend": "custom"})


def test_intake_validates_resets_the_turn_and_moves_the_offered_choices_into_the_request() -> None:
    offered = [Choice(intent="card_arrival", title="a card that hasn't arrived")]
    state = {"messages": [HumanMessage("  where is my card  ")], "customer_id": 7, "output": {"answer": "old"},
             "notice": "old", "contextual": True, "choices": offered, "clarified": "where?",
             "confirm": {"action_id": "a1", "approve": True}, "chosen_intent": "card_arrival"}
    update = intake(state, CONFIG)
    assert update["request"] == TurnRequest(text="where is my card", said="where is my card", decision=Decision(action_id="a1", approve=True),
                                            chosen_intent="card_arrival", offered=offered, offered_for="where?")
    assert {k: update[k] for k in TURN_DEFAULTS if k != "request"} == {k: v for k, v in TURN_DEFAULTS.items() if k != "request"}
    assert update["choices"] == [] and update["clarified"] is None and update["confirm"] is None
    assert TURN_DEFAULTS == {"request": None, "decision": None, "fallback": None, "contextual": False,
                             "output": None, "notice": "", "entities": None, "slots": None, "done": []}


def test_intake_refuses_another_customers_thread_and_a_bad_message() -> None:
    with pytest.raises(PermissionError):
        intake({"messages": [HumanMessage("hi")], "customer_id": 8}, CONFIG)
    with pytest.raises(InvalidMessage, match="empty"):
        intake({"messages": [HumanMessage("   ")]}, CONFIG)
    with pytest.raises(ValueError, match="no customer message"):
        intake({"messages": [AIMessage("hello")]}, CONFIG)


def test_settle_with_nothing_pending() -> None:
    yes = settle({"customer_id": 7, "request": TurnRequest(text="yes")})
    assert isinstance(yes, Command) and yes.goto == "respond"
    assert yes.update["output"]["answer"] == NOTHING_PENDING_ANSWER and yes.update["output"]["status"] == "answered"
    other = settle({"customer_id": 7, "request": TurnRequest(text="where is my card")})
    assert other.goto == "classify" and not other.update


def test_classify_a_picked_choice_needs_no_model_and_must_have_been_offered() -> None:
    model = FakeIntentModel()
    model.calls.clear()
    offered = [Choice(intent="transfer_fee_charged", title="a transfer fee")]
    req = TurnRequest(text="the second one", chosen_intent="transfer_fee_charged", offered=offered,
                      offered_for="is there a fee?")
    update = Classify(model)({"request": req}, CONFIG)
    assert update["decision"].action == "route" and update["decision"].classification.chosen is True
    assert update["request"].text == "is there a fee?" and model.calls == []
    with pytest.raises(UnknownChoice):
        Classify(model)({"request": req.model_copy(update={"offered": []})}, CONFIG)


def test_classify_uses_context_only_for_a_plausible_continuation() -> None:
    model = FakeIntentModel()
    node = Classify(model)
    follow = node({"request": TurnRequest(text="what about it?"), "context": "Where is my new card?"}, CONFIG)
    assert follow["contextual"] is True and follow["decision"].classification.intent == "card_arrival"
    assert follow["fallback"].action == "clarify" and follow["notice"].startswith("Taking this as a follow-up")
    unrelated = node({"request": TurnRequest(text="freeze my card and cancel the transfer"),
                      "context": "why was I charged twice"}, CONFIG)
    assert "contextual" not in unrelated and unrelated["decision"].action == "clarify"


def test_plausible_continuation_is_the_top_three_in_scope_candidates() -> None:
    alone = meta(("out_of_scope", 0.4), ("card_arrival", 0.2), ("small_talk", 0.1), ("lost_or_stolen_card", 0.1),
                 ("card_delivery_estimate", 0.1), ("pin_blocked", 0.05))
    assert plausible_continuation(alone, meta(("card_delivery_estimate", 0.9)))
    assert not plausible_continuation(alone, meta(("pin_blocked", 0.9)))


def test_apply_guard_and_the_routing_functions() -> None:
    small = apply_guard({"decision": guard(meta(("small_talk", 0.97))), "request": TurnRequest(text="thanks")})
    assert small["output"]["status"] == "small_talk" and "welcome" in small["output"]["answer"]
    clarify = apply_guard({"decision": guard(meta(("card_arrival", 0.45), ("lost_or_stolen_card", 0.3))),
                           "request": TurnRequest(text="my crad")})
    assert clarify["output"]["status"] == "clarify" and clarify["clarified"] == "my crad"
    assert [c.intent for c in clarify["choices"]] == ["card_arrival", "lost_or_stolen_card"]
    route = guard(meta(("card_arrival", 0.95)))
    assert apply_guard({"decision": route, "request": TurnRequest(text="x")}) == {}
    assert after_guard({"decision": route}) == "tool" and after_guard({"decision": route, "output": {"a": 1}}) == "respond"
    assert after_classify({"output": {"status": "blocked"}}) == "respond" and after_classify({}) == "guard"
    assert after_tool({"output": {"pending_confirmation": {"action_id": "a"}}}) == "confirm"
    assert after_tool({"output": {"pending_confirmation": None}}) == "respond"
    queued = {"output": {"pending_confirmation": None}, "queue": [object()]}
    assert after_tool(queued) == "next"
