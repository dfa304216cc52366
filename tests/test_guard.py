"""The guard is a pure function of one classification, and the yes/no rule reads only bare
answers. Fixed rankings; no model, no database."""

from __future__ import annotations

import pytest

from chains.confirmation import yes_or_no
from chains.guard import OUT_OF_SCOPE_ANSWER, guard


def meta(ranking: list[tuple[str, float]], oos: float = 0.3, clarify: float = 0.6) -> dict:
    return {"intent": ranking[0][0], "confidence": ranking[0][1],
            "ranking": [{"intent": i, "confidence": c} for i, c in ranking], "backend": "custom",
            "model_version": "v1", "latency_ms": 1.0, "thresholds": {"oos_threshold": oos, "clarify_threshold": clarify}}


def test_thresholds_come_from_the_classification() -> None:
    m = [("card_arrival", 0.5), ("card_delivery_estimate", 0.3), ("lost_or_stolen_card", 0.1)]
    assert guard(meta(m, oos=0.3, clarify=0.6)).action == "clarify"
    assert guard(meta(m, oos=0.3, clarify=0.4)).action == "route"
    assert guard(meta(m, oos=0.55, clarify=0.6)).action == "out_of_scope"
    no_thresholds = {**meta(m), "thresholds": {}}
    assert guard(no_thresholds).action == "route"  # a backend without tuned thresholds never declines


def test_clarify_names_candidates_in_customer_words_and_offers_them() -> None:
    d = guard(meta([("card_arrival", 0.5), ("out_of_scope", 0.2), ("card_delivery_estimate", 0.15),
                    ("lost_or_stolen_card", 0.1)]))
    assert [c.intent for c in d.choices] == ["card_arrival", "card_delivery_estimate", "lost_or_stolen_card"]
    assert d.answer == ("I want to make sure I help with the right thing. Is this about a card that hasn't arrived, "
                        "how long card delivery takes or a lost or stolen card? Pick one, or tell me more.")
    out = d.output()
    assert out.status == "clarify" and out.choices[0].title == "a card that hasn't arrived"
    assert "_" not in d.answer


def test_learned_labels() -> None:
    oos = guard(meta([("out_of_scope", 0.95), ("exchange_rate", 0.02)]))
    assert oos.action == "out_of_scope" and oos.answer == OUT_OF_SCOPE_ANSWER
    assert guard(meta([("small_talk", 0.9), ("out_of_scope", 0.05)])).action == "small_talk"
    # A confident small-talk label is never declined or clarified on confidence alone.
    assert guard(meta([("small_talk", 0.5), ("card_arrival", 0.3)], oos=0.3, clarify=0.6)).action == "small_talk"


@pytest.mark.parametrize("text, expected", [
    ("yes", True), ("Yes!", True), ("OK, do it", True), ("yes please", True), ("go ahead.", True), ("Yep", True),
    ("yes, freeze it", True), ("No, don't cancel it", False), ("yes freeze it and tell me my balance", None),
    ("no", False), ("No, leave it", False), ("nope", False), ("cancel", False), ("don’t", False),
    ("OK, and what is the exchange rate?", None), ("Cancel my transfer to Mark Thompson", None),
    ("yes 4821", None), ("yes but freeze the other card instead", None), ("maybe", None), ("ok 👍", None),
])
def test_only_a_bare_yes_or_no_is_an_answer(text: str, expected: bool | None) -> None:
    assert yes_or_no(text) is expected
