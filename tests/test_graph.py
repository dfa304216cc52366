"""The LangGraph conversation graph in-process: real short-trained custom model, real seeded SQLite
bank, real SQLite checkpointer under BANKING_HOME. Confirmation interrupts, resume, memory
across checkpointer connections, follow-ups in context, identity and backend choice."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Command
from sqlalchemy import select

from bank.store import Card, Customer, PendingAction, session_scope


@pytest.fixture(scope="module")
def ids(trained_custom_model_dir) -> dict[str, int]:
    from bank.seed import seed_demo
    from bank.store import get_engine

    seed_demo(get_engine(), reset=True)
    with session_scope(get_engine()) as s:
        return {u: i for i, u in s.execute(select(Customer.id, Customer.username)).all()}


@pytest.fixture()
def graph(ids):
    from chains.checkpoint import open_checkpointer
    from chains.graph import build_graph

    with open_checkpointer() as saver:
        yield build_graph(checkpointer=saver)


def cfg(customer_id: int | None, thread: str | None = None, **extra) -> dict:
    conf = {"thread_id": thread or str(uuid.uuid4()), **extra}
    if customer_id is not None:
        conf["customer_id"] = customer_id
    return {"configurable": conf}


def cards(customer_id: int) -> dict[str, str]:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return {c.last4: c.status for c in s.scalars(select(Card).where(Card.customer_id == customer_id))}


def action_status(action_id: str) -> str:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return s.get(PendingAction, action_id).status


def say(graph, config: dict, text: str) -> dict:
    return graph.invoke({"messages": [HumanMessage(text)]}, config)


def test_lost_card_stops_for_confirmation_then_yes_freezes_it(graph, ids) -> None:
    alice = ids["alice"]
    before = cards(alice)
    assert before["4821"] == "active"
    config = cfg(alice)
    out = say(graph, config, "I lost my card")
    # The graph stopped at the interrupt: nothing has changed yet.
    (intr,) = out["__interrupt__"]
    assert intr.value["action"] == "freeze_card"
    assert "4821" in intr.value["description"] and intr.value["question"].endswith("Shall I do that?")
    assert out["output"]["status"] == "confirmation_required" and out["output"]["intent"] == "lost_or_stolen_card"
    assert cards(alice) == before
    assert action_status(intr.value["action_id"]) == "pending"
    from chains.checkpoint import pending_confirmation

    assert pending_confirmation(graph, config)["action_id"] == intr.value["action_id"]

    done = graph.invoke(Command(resume="yes, freeze it"), config)
    assert "__interrupt__" not in done
    assert done["output"]["status"] == "confirmed" and done["output"]["intent"] == "lost_or_stolen_card"
    after = cards(alice)
    assert after["4821"] == "frozen"
    new = set(after) - set(before)
    assert len(new) == 1 and after[new.pop()] == "ordered"  # the replacement
    assert action_status(intr.value["action_id"]) == "confirmed"
    assert pending_confirmation(graph, config) is None
    # The conversation is in the thread: human, assistant, human reply, assistant.
    msgs = graph.get_state(config).values["messages"]
    assert [type(m) for m in msgs] == [HumanMessage, AIMessage, HumanMessage, AIMessage]
    assert msgs[2].content == "yes, freeze it"
    assert msgs[3].additional_kwargs["assistant_output"]["status"] == "confirmed"


def test_no_changes_nothing(graph, ids) -> None:
    bob = ids["bob"]
    before = cards(bob)
    config = cfg(bob)
    out = say(graph, config, "I lost my card")
    (intr,) = out["__interrupt__"]
    assert intr.value["action"] == "freeze_card"
    done = graph.invoke(Command(resume={"approve": False}), config)
    assert done["output"]["status"] == "declined"
    assert cards(bob) == before
    assert action_status(intr.value["action_id"]) == "declined"


def test_thread_memory_survives_a_new_checkpointer_connection(ids) -> None:
    """Interrupt in one graph/connection, resume in another (as after a restart)."""
    from chains.checkpoint import checkpoint_path, open_checkpointer
    from chains.graph import build_graph

    carol = ids["carol"]
    config = cfg(carol)
    with open_checkpointer() as saver:
        out = build_graph(checkpointer=saver).invoke({"messages": [HumanMessage("I lost my card")]}, config)
    assert checkpoint_path().is_file()
    action_id = out["__interrupt__"][0].value["action_id"]
    with open_checkpointer() as saver:
        g2 = build_graph(checkpointer=saver)
        assert [m.content for m in g2.get_state(config).values["messages"]][0] == "I lost my card"
        done = g2.invoke(Command(resume=True), config)
    assert done["output"]["status"] == "confirmed"
    assert action_status(action_id) == "confirmed"


def test_a_different_request_instead_of_an_answer_changes_nothing(graph, ids) -> None:
    bob = ids["bob"]
    before = cards(bob)
    config = cfg(bob)
    out = say(graph, config, "I lost my card")
    action_id = out["__interrupt__"][0].value["action_id"]
    done = graph.invoke(Command(resume="Where is my new card?"), config)
    assert "__interrupt__" not in done
    assert action_status(action_id) == "superseded" and cards(bob) == before
    # The reply was handled as a new request: its own classification and answer.
    assert done["request"].text == "Where is my new card?"
    assert done["output"]["intent"] == done["decision"].classification.intent == "card_arrival"
    msgs = graph.get_state(config).values["messages"]
    assert [m.content for m in msgs if isinstance(m, HumanMessage)] == ["I lost my card", "Where is my new card?"]
    assert msgs[-1].content == done["output"]["answer"]


def test_identity_comes_from_authentication_only(graph, ids) -> None:
    from chains.identity import authenticated_customer_id

    with pytest.raises(PermissionError):
        say(graph, cfg(None), "where is my card")
    user = {"customer_id": ids["alice"], "identity": "customer:x"}
    assert authenticated_customer_id({"configurable": {"langgraph_auth_user": user}}) == ids["alice"]
    with pytest.raises(PermissionError, match="customer_id cannot be set"):
        authenticated_customer_id({"configurable": {"langgraph_auth_user": user, "customer_id": ids["bob"]}})
    with pytest.raises(PermissionError):
        authenticated_customer_id({"configurable": {"langgraph_auth_user": {"customer_id": None}}})


def test_another_customer_cannot_confirm_on_someone_elses_thread(graph, ids) -> None:
    """Refused before anything runs; the owner's later answer is the one that counts."""
    config = cfg(ids["bob"])
    out = say(graph, config, "I lost my card")
    action_id = out["__interrupt__"][0].value["action_id"]
    before = cards(ids["bob"])
    alice_on_bobs_thread = {"configurable": {**config["configurable"], "customer_id": ids["alice"]}}
    with pytest.raises(PermissionError, match="another customer"):
        graph.invoke(Command(resume=True), alice_on_bobs_thread)
    assert action_status(action_id) == "pending" and cards(ids["bob"]) == before
    assert graph.invoke(Command(resume=False), config)["output"]["status"] == "declined"
    assert action_status(action_id) == "declined"
    # A new message from another customer on this thread is refused too.
    with pytest.raises(PermissionError, match="another customer"):
        say(graph, alice_on_bobs_thread, "Where is my new card?")


def test_backend_is_chosen_per_message_not_kept_per_thread(graph, ids, monkeypatch) -> None:
    """The README: ``backend`` is per request. A thread that chose custom once does not keep it
    for later requests that name none (issue 20: it used to)."""
    from config.settings import get_settings
    from models.base import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="GOOGLE_API_KEY"):
        say(graph, cfg(ids["alice"], backend="gemini"), "where is my card")
    config = cfg(ids["alice"])
    assert say(graph, {"configurable": {**config["configurable"], "backend": "custom"}},
               "Where is my new card?")["output"]["backend"] == "custom"
    # Make gemini (unavailable) the default: a request naming no backend gets the default, even on
    # the thread that chose custom before; naming custom again works.
    monkeypatch.setenv("BANKING_BACKEND", "gemini")
    get_settings.cache_clear()
    try:
        with pytest.raises(BackendUnavailable):
            say(graph, config, "How long does card delivery take?")
        out = say(graph, {"configurable": {**config["configurable"], "backend": "custom"}},
                  "How long does card delivery take?")
        assert out["output"]["backend"] == "custom"
    finally:
        monkeypatch.delenv("BANKING_BACKEND")
        get_settings.cache_clear()


def test_bad_messages_are_refused_with_a_reason(graph, ids) -> None:
    with pytest.raises(ValueError, match="empty"):
        say(graph, cfg(ids["alice"]), "   ")
    with pytest.raises(ValueError, match="2000"):
        say(graph, cfg(ids["alice"]), "x" * 2001)


def test_the_answer_streams_in_chunks(graph, ids) -> None:
    from chains.guard import guard
    from chains.intent import build_intent_chain

    text = "I don't recognise a payment on my statement"
    assert guard(build_intent_chain().invoke(text).response_metadata).action == "route"
    chunks, updates = [], []
    for mode, data in graph.stream({"messages": [HumanMessage(text)]}, cfg(ids["alice"]),
                                   stream_mode=["custom", "updates"]):
        (chunks if mode == "custom" else updates).append(data)
    nodes = [next(iter(u)) for u in updates]
    assert nodes == ["intake", "settle", "classify", "guard", "tool", "respond"]
    answer = updates[-1]["respond"]["messages"][0].content
    assert len(chunks) > 1 and "".join(c["answer_chunk"] for c in chunks) == answer
