"""A fake intent backend with fixed rankings, so the conversation graph and the guard are tested
without a trained model. It follows the real contract (models/base.py): the graph cannot tell
it from a real backend."""

from __future__ import annotations

from typing import ClassVar

from models.base import IntentChatModel, IntentPrediction, QueryBlocked

THRESHOLDS = {"oos_threshold": 0.3, "clarify_threshold": 0.6}

# substring of the (lower-cased) text -> ranking, best first. The first matching rule wins,
# so combined "context + message" texts are matched by the rule listed first.
RULES: list[tuple[str, list[tuple[str, float]]]] = [
    ("i lost my card my crad hasnt arived", [("lost_or_stolen_card", 0.9), ("card_arrival", 0.05)]),
    ("cancel the transfer i just made asdf", [("cancel_transfer", 0.91), ("pending_transfer", 0.04)]),
    ("i lost my card what about", [("lost_or_stolen_card", 0.85), ("card_arrival", 0.05)]),
    ("where is my new card? what about", [("card_arrival", 0.88), ("card_delivery_estimate", 0.06)]),
    ("where is my new card", [("card_arrival", 0.93), ("card_delivery_estimate", 0.04)]),
    ("lost my card", [("lost_or_stolen_card", 0.95), ("compromised_card", 0.03)]),
    ("my crad hasnt arived", [("card_arrival", 0.45), ("lost_or_stolen_card", 0.3), ("card_delivery_estimate", 0.2)]),
    ("exchange rate", [("exchange_rate", 0.93), ("card_payment_wrong_exchange_rate", 0.04)]),
    ("cancel my transfer", [("cancel_transfer", 0.92), ("pending_transfer", 0.05)]),
    ("cancel the transfer i just made", [("cancel_transfer", 0.9), ("pending_transfer", 0.05)]),
    ("asdf", [("cancel_transfer", 0.12), ("exchange_rate", 0.1)]),
    ("what about", [("card_arrival", 0.4), ("lost_or_stolen_card", 0.35), ("card_delivery_estimate", 0.2)]),
    ("hello", [("small_talk", 0.97), ("out_of_scope", 0.02)]),
    ("thanks", [("small_talk", 0.96), ("out_of_scope", 0.02)]),
    ("pizza", [("out_of_scope", 0.9), ("small_talk", 0.05)]),
    ("charged twice", [("transaction_charged_twice", 0.97), ("card_payment_not_recognised", 0.02)]),
    ("transactions", [("recent_transactions", 0.96), ("card_payment_not_recognised", 0.02)]),
    ("freeze my card and cancel", [("lost_or_stolen_card", 0.4), ("cancel_transfer", 0.35), ("compromised_card", 0.1)]),
    ("fee", [("card_payment_fee_charged", 0.4), ("transfer_fee_charged", 0.35), ("exchange_charge", 0.2)]),
    # Issue 16 requests (the conversation files of tests/conversations/); after the rules above,
    # so no earlier message changes meaning. Replies to an open form ("40 pounds", "Mark Ellis")
    # match nothing here: they get DEFAULT (out of scope), as a real backend may rank them.
    ("this isn't helping", [("talk_to_human", 0.93), ("out_of_scope", 0.04)]),
    ("talk to a person", [("talk_to_human", 0.97), ("contactless_not_working", 0.01)]),
    ("talk to a human", [("talk_to_human", 0.97), ("out_of_scope", 0.01)]),
    ("speak to someone", [("talk_to_human", 0.95), ("out_of_scope", 0.02)]),
    ("how much did i spend", [("search_transactions", 0.95), ("recent_transactions", 0.03)]),
    ("how much did i pay", [("search_transactions", 0.94), ("recent_transactions", 0.03)]),
    ("how much have i spent", [("search_transactions", 0.94), ("recent_transactions", 0.03)]),
    ("show my payments", [("search_transactions", 0.93), ("recent_transactions", 0.05)]),
    ("dispute", [("dispute_charge", 0.96), ("transaction_charged_twice", 0.02)]),
    ("payee", [("add_payee", 0.95), ("send_money", 0.03)]),
    ("top up", [("top_up_account", 0.95), ("top_up_by_card_charge", 0.02)]),
    ("freeze my card", [("lost_or_stolen_card", 0.91), ("compromised_card", 0.05)]),
    ("cancel my pending transfer", [("cancel_transfer", 0.93), ("pending_transfer", 0.04)]),
    ("balance", [("check_balance", 0.95), ("top_up_failed", 0.01)]),
    ("send", [("send_money", 0.94), ("transfer_into_account", 0.03)]),
    ("pay ", [("send_money", 0.92), ("transfer_into_account", 0.04)]),
    ("card arrive", [("card_arrival", 0.92), ("card_delivery_estimate", 0.05)]),
    ("declined", [("declined_card_payment", 0.93), ("card_not_working", 0.04)]),
]
DEFAULT: list[tuple[str, float]] = [("exchange_rate", 0.2), ("card_arrival", 0.1)]


class FakeIntentModel(IntentChatModel):
    """Ranks by the first rule in :data:`RULES` whose key is in the text; thresholds
    :data:`THRESHOLDS`; a text with "unsafe words" raises ``QueryBlocked`` (as a provider's safety
    filter would). ``calls`` records every classified text."""

    backend_name: ClassVar[str] = "custom"
    calls: list[str] = []

    @property
    def model_version(self) -> str:
        return "fake-1"

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(THRESHOLDS)

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        out = []
        for t in texts:
            self.calls.append(t)
            if "unsafe words" in t.lower():
                raise QueryBlocked("blocked by the provider's safety filter (SAFETY)")
            ranking = next((r for key, r in RULES if key in t.lower()), DEFAULT)
            out.append(IntentPrediction(ranking[0][0], ranking[0][1], list(ranking), latency_ms=0.5))
        return out


# Issue 18: Spanish, French and German messages (tests/test_i18n.py); after every rule above.
RULES += [
    ("saldo", [("check_balance", 0.95), ("top_up_failed", 0.01)]),
    ("solde", [("check_balance", 0.95), ("top_up_failed", 0.01)]),
    ("kontostand", [("check_balance", 0.95), ("top_up_failed", 0.01)]),
    ("perdido mi tarjeta", [("lost_or_stolen_card", 0.95), ("compromised_card", 0.03)]),
    ("perdu ma carte", [("lost_or_stolen_card", 0.95), ("compromised_card", 0.03)]),
    ("karte verloren", [("lost_or_stolen_card", 0.95), ("compromised_card", 0.03)]),
    ("pas arrivée", [("card_arrival", 0.93), ("card_delivery_estimate", 0.04)]),
    ("qué puedes hacer", [("small_talk", 0.96), ("out_of_scope", 0.02)]),
]
RULES += [
    ("algo con mi tarjeta", [("card_arrival", 0.45), ("lost_or_stolen_card", 0.3), ("card_not_working", 0.2)]),
]
RULES += [
    ("envía", [("send_money", 0.94), ("transfer_into_account", 0.03)]),
]
