"""The label vocabulary every backend, the guard and training share: the ONE place that names
the outcomes beyond BANKING77 (issue 9; the requests of issue 16).

Every model's label list is the 77 BANKING77 intents (``models.banking77.load_banking77().intents``,
categories.json order) followed by ``EXTRA_LABELS``. Internally a model may split ``small_talk``
into sub-kinds ("small_talk:greeting"); ``public_label`` maps those back to (label, kind).
"""

from __future__ import annotations

CHECK_BALANCE = "check_balance"
RECENT_TRANSACTIONS = "recent_transactions"
SMALL_TALK = "small_talk"
OUT_OF_SCOPE = "out_of_scope"
SEND_MONEY = "send_money"
ADD_PAYEE = "add_payee"
TOP_UP_ACCOUNT = "top_up_account"
SEARCH_TRANSACTIONS = "search_transactions"
DISPUTE_CHARGE = "dispute_charge"
TALK_TO_HUMAN = "talk_to_human"
REQUEST_LABELS: tuple[str, ...] = (SEND_MONEY, ADD_PAYEE, TOP_UP_ACCOUNT, SEARCH_TRANSACTIONS, DISPUTE_CHARGE, TALK_TO_HUMAN)
"""Requests that DO banking (issue 16): pay a saved payee, add a payee (name + IBAN), top up an account
from the linked card (BANKING77's ``top_up_by_card_charge``/``topping_up_by_card`` are questions about
it), search transactions with totals, open a dispute, hand over to a person. Training rows:
``training.requests.generate_requests``; entities: ``models.entities.extract_entities``."""
EXTRA_LABELS: tuple[str, ...] = (CHECK_BALANCE, RECENT_TRANSACTIONS, *REQUEST_LABELS, SMALL_TALK, OUT_OF_SCOPE)
NON_TOOL_LABELS = frozenset({OUT_OF_SCOPE, SMALL_TALK})
"""Labels a backend may predict that have no banking tool."""
KIND_SEP = ":"


def public_label(internal: str) -> tuple[str, str | None]:
    """Split an internal class name into (contract label, sub-kind or None):
    ``"small_talk:greeting" -> ("small_talk", "greeting")``, ``"card_arrival" -> ("card_arrival", None)``."""
    label, _, kind = internal.partition(KIND_SEP)
    return label, (kind or None)
