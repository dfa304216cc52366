"""Spanish, French and German customers (issue 18): the language detected per message
(config/language.py), carried in the classification and the output, kept for short replies,
and answers from the message catalogs (config/i18n.py) with locale formats. The graph runs on
the fake backend (tests/fake_backend.py) over the seeded demo bank."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from langchain_core.messages import HumanMessage
from sqlalchemy import select

from bank.store import Card, Customer, session_scope
from config.language import detect, message_language
from fake_backend import FakeIntentModel


@pytest.mark.parametrize("text, language", [
    ("¿Cuál es mi saldo?", "es"),
    ("Ma carte n'est toujours pas arrivée", "fr"),
    ("Ich habe meine Karte verloren", "de"),
    ("Quel est mon solde ?", "fr"),
    ("what is my balance", "en"),
    ("I want to send 20 euros to Ana", "en"),  # names and currency words are not evidence
    ("sí", "es"), ("oui", "fr"), ("nein", "de"), ("hola", "es"),
])
def test_detect_names_the_language_of_a_message(text: str, language: str) -> None:
    assert detect(text) == language


@pytest.mark.parametrize("text", ["ok", "ta", "yes", "£20", "non", "12"])
def test_short_or_unsure_messages_keep_the_conversations_language(text: str) -> None:
    assert detect(text) is None
    assert message_language(text, "es") == "es"
    assert message_language(text, None) == "en"
    assert message_language(text, "xx") == "en"


def test_every_backend_says_the_language_in_response_metadata() -> None:
    model = FakeIntentModel()
    meta = model.invoke([HumanMessage("¿Cuál es mi saldo?")]).response_metadata
    assert meta["language"] == "es" and meta["language_confidence"] > 0.5
    batch = model.batch([[HumanMessage("Ich habe meine Karte verloren")], [HumanMessage("ok")]])
    assert [m.response_metadata["language"] for m in batch] == ["de", None]
    from chains.classification import Classification

    assert Classification.from_message(batch[0]).language == "de"


# ----------------------------------------------------------------------------- the graph
@pytest.fixture()
def bank(session_home):
    """A freshly seeded demo bank; customer ids by username."""
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine

    create_schema(get_engine())
    seed_demo(get_engine(), reset=True)
    with session_scope(get_engine()) as s:
        return {u: i for i, u in s.execute(select(Customer.id, Customer.username)).all()}


@pytest.fixture()
def graph(bank):
    from chains.checkpoint import open_checkpointer
    from chains.graph import build_graph

    with open_checkpointer() as saver:
        yield build_graph(checkpointer=saver, intent_chain=FakeIntentModel())


def thread(customer_id: int) -> dict:
    return {"configurable": {"thread_id": str(uuid.uuid4()), "customer_id": customer_id}}


def say(graph, conf: dict, text: str) -> dict:
    return graph.invoke({"messages": [HumanMessage(text)], "confirm": None, "chosen_intent": None}, conf)["output"]


def card_statuses(customer_id: int) -> dict[str, str]:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return {c.last4: c.status for c in s.scalars(select(Card).where(Card.customer_id == customer_id))}


def test_the_output_says_the_language_and_a_short_reply_keeps_it(graph, bank) -> None:
    conf = thread(bank["alice"])
    assert say(graph, conf, "What is my balance?")["language"] == "en"
    assert say(graph, conf, "¿Cuál es mi saldo?")["language"] == "es"
    assert say(graph, conf, "ok")["language"] == "es"  # too short to say: the conversation's
    assert say(graph, thread(bank["alice"]), "ok")["language"] == "en"


def test_money_and_dates_follow_the_locale() -> None:
    from datetime import date

    from config.i18n import format_day, format_money, use_language

    assert format_money(Decimal("1234.5"), "EUR") is None  # English keeps the project's format
    with use_language("es"):
        assert format_money(Decimal("1234.5"), "EUR") == "1.234,50\xa0€"
        assert format_day(date(2025, 3, 14)) == "viernes, 14 de marzo de 2025"
    with use_language("fr"):
        assert format_money(Decimal("1234.5"), "GBP") == "1\u202f234,50\xa0£GB"
    with use_language("de"):
        assert format_money(Decimal("1234.5"), "EUR") == "1.234,50\xa0€"
        assert format_day(date(2025, 3, 14)) == "Freitag, 14. März 2025"
