"""The prompt of the gemini backend: label descriptions, system and user turns, answer schema.

Recipe (Loukas et al. 2023, "Making LLMs Worth Every Penny: Resource-Limited Text
Classification in Banking", arXiv 2311.06102): the prompt lists the 77 BANKING77 labels with a
one-line description each, plus the ``k`` training rows most similar to the query. The answer is
constrained to the label set by structured output: ``response_schema`` is sent as
``responseJsonSchema`` and its ``intent`` field is an ``enum`` of the labels, so the label is never
parsed out of free text.
"""

from __future__ import annotations

import json
from typing import Any

from models.base import TOP_K
from models.retrieval import Neighbour

# One-line descriptions of the 77 BANKING77 intents (written for this prompt from the label
# names and the training examples; the dataset ships no descriptions).
INTENT_DESCRIPTIONS: dict[str, str] = {
    "activate_my_card": "how to activate a newly received card",
    "age_limit": "minimum age to open or use an account",
    "apple_pay_or_google_pay": "using Apple Pay or Google Pay with the card",
    "atm_support": "which ATMs accept the card, how to use ATMs",
    "automatic_top_up": "setting up or questions about auto top-up",
    "balance_not_updated_after_bank_transfer": "balance not updated after a bank transfer in",
    "balance_not_updated_after_cheque_or_cash_deposit": "cheque or cash deposit not showing in the balance",
    "beneficiary_not_allowed": "cannot add a payee / beneficiary, transfer to them not allowed",
    "cancel_transfer": "wants to cancel or reverse a transfer they made",
    "card_about_to_expire": "card is expiring soon, what to do / getting a replacement",
    "card_acceptance": "where the card is accepted by merchants",
    "card_arrival": "ordered card has not arrived yet, tracking its delivery",
    "card_delivery_estimate": "how long card delivery takes, delivery options",
    "card_linking": "linking an existing card to the app or account",
    "card_not_working": "card does not work in general (not specifically contactless/ATM)",
    "card_payment_fee_charged": "unexpected fee charged on a card payment",
    "card_payment_not_recognised": "a card payment the customer does not recognise",
    "card_payment_wrong_exchange_rate": "wrong exchange rate applied to a card payment",
    "card_swallowed": "ATM kept / swallowed the card",
    "cash_withdrawal_charge": "fee charged for withdrawing cash",
    "cash_withdrawal_not_recognised": "a cash withdrawal the customer did not make",
    "change_pin": "how to change the card PIN",
    "compromised_card": "card details compromised or used fraudulently, card security",
    "contactless_not_working": "contactless payments not working",
    "country_support": "which countries the service is available in",
    "declined_card_payment": "a card payment was declined",
    "declined_cash_withdrawal": "ATM cash withdrawal was declined",
    "declined_transfer": "a transfer was declined / rejected",
    "direct_debit_payment_not_recognised": "an unrecognised direct debit",
    "disposable_card_limits": "limits on disposable virtual cards",
    "edit_personal_details": "changing name, address or other personal details",
    "exchange_charge": "fees for currency exchange",
    "exchange_rate": "what exchange rate is used, how rates are set",
    "exchange_via_app": "exchanging currencies in the app",
    "extra_charge_on_statement": "an extra or unexplained charge on the statement",
    "failed_transfer": "a transfer failed",
    "fiat_currency_support": "which fiat currencies can be held or exchanged",
    "get_disposable_virtual_card": "how to get a disposable virtual card",
    "get_physical_card": "getting a physical card (e.g. after virtual), card PIN for it",
    "getting_spare_card": "ordering an additional / spare card",
    "getting_virtual_card": "how to get a virtual card",
    "lost_or_stolen_card": "card lost or stolen",
    "lost_or_stolen_phone": "phone lost or stolen, securing the account",
    "order_physical_card": "ordering a physical card, fees and process",
    "passcode_forgotten": "forgot the app passcode",
    "pending_card_payment": "a card payment is still pending",
    "pending_cash_withdrawal": "a cash withdrawal is still pending",
    "pending_top_up": "a top-up is still pending",
    "pending_transfer": "a transfer is still pending",
    "pin_blocked": "PIN blocked after wrong attempts",
    "receiving_money": "how to receive money / salary into the account",
    "Refund_not_showing_up": "a merchant refund has not appeared yet",
    "request_refund": "how to request a refund from a merchant",
    "reverted_card_payment?": "a card payment was reverted / returned",
    "supported_cards_and_currencies": "which cards and currencies are supported for top-up/payments",
    "terminate_account": "close / delete the account",
    "top_up_by_bank_transfer_charge": "fees for topping up by bank transfer",
    "top_up_by_card_charge": "fees for topping up by card",
    "top_up_by_cash_or_cheque": "topping up with cash or a cheque",
    "top_up_failed": "a top-up failed",
    "top_up_limits": "limits on top-up amounts",
    "top_up_reverted": "a top-up was reverted / cancelled",
    "topping_up_by_card": "how to top up using a card, card top-up problems",
    "transaction_charged_twice": "the same transaction charged twice",
    "transfer_fee_charged": "fee charged on a transfer",
    "transfer_into_account": "how to transfer money into the account",
    "transfer_not_received_by_recipient": "recipient has not received a transfer",
    "transfer_timing": "how long transfers take to arrive",
    "unable_to_verify_identity": "identity verification is failing",
    "verify_my_identity": "how identity verification works, what is needed",
    "verify_source_of_funds": "proving the source of funds",
    "verify_top_up": "verifying a top-up (e.g. card verification code)",
    "virtual_card_not_working": "virtual card does not work",
    "visa_or_mastercard": "whether the card is Visa or Mastercard",
    "why_verify_identity": "why identity verification is needed",
    "wrong_amount_of_cash_received": "ATM gave the wrong amount of cash",
    "wrong_exchange_rate_for_cash_withdrawal": "wrong exchange rate on a cash withdrawal",
}


def response_schema(labels: list[str]) -> dict[str, Any]:
    """The JSON schema sent as ``responseJsonSchema``: ``intent`` is an enum of ``labels``,
    ``confidence`` a number in [0, 1], ``alternatives`` up to TOP_K-1 other labels with scores."""
    return {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": list(labels), "description": "The customer's intent."},
            "confidence": {
                "type": "number", "minimum": 0, "maximum": 1,
                "description": "Probability (0-1) that intent is correct.",
            },
            "alternatives": {
                "type": "array",
                "maxItems": TOP_K - 1,
                "description": "Next most likely other intents, best first.",
                "items": {
                    "type": "object",
                    "properties": {
                        "intent": {"type": "string", "enum": list(labels)},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "required": ["intent", "confidence"],
                },
            },
        },
        "required": ["intent", "confidence", "alternatives"],
    }


def system_prompt(labels: list[str]) -> str:
    """The system instruction: the task, every label with its one-line description, and the
    request for a low probability (< 0.2) when no intent fits (read by the out-of-scope guard)."""
    lines = [f"- {lab}: {INTENT_DESCRIPTIONS.get(lab, lab.replace('_', ' '))}" for lab in labels]
    return (
        "You classify messages that customers send to a digital bank into exactly one of the "
        f"{len(labels)} intents below. Answer with the intent label exactly as written, your "
        "probability that it is right, and up to four other plausible intents. If the message "
        "fits none of the intents (not about this bank's services), still answer with the closest "
        "intent but give it a probability below 0.2.\n\nIntents:\n"
        + "\n".join(lines)
    )


def user_prompt(query: str, examples: list[Neighbour]) -> str:
    """The per-query message: the retrieved labelled examples, then the message to classify."""
    parts = []
    if examples:
        parts.append("Labelled examples of similar customer messages:")
        parts += [f"{json.dumps(e.text, ensure_ascii=False)} -> {e.label}" for e in examples]
        parts.append("")
    parts.append(f"Customer message: {json.dumps(query, ensure_ascii=False)}")
    return "\n".join(parts)
