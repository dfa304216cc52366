"""The ``gemini`` intent backend: Google Gemini with retrieval-augmented few-shot prompting.

Recipe (Loukas et al. 2023, "Making LLMs Worth Every Penny: Resource-Limited Text
Classification in Banking", arXiv 2311.06102): the prompt lists the 77 BANKING77 labels with a
one-line description each, plus the ``k`` training rows most similar to the query (retrieved by
``models.retrieval.ExampleRetriever``: all-MiniLM-L6-v2 cosine similarity, TF-IDF fallback).
They report about 85.5 % accuracy for retrieval-augmented prompting versus about 83 % for a
fixed 3-shot prompt.

The answer is constrained to the label set by structured output: the request carries a JSON
schema (``responseJsonSchema``) whose ``intent`` field is an ``enum`` of the 77 labels; the label
is never parsed out of free text. ``confidence`` and the ``ranking`` alternatives are the model's
own self-reported numbers (the Gemini API's chat interface here gives no token log-probabilities),
so every answer carries ``calibrated=False``.

Key: ``GOOGLE_API_KEY`` (environment or ``.env``); without it the backend reports itself
unavailable and the rest of the app runs on. Settings: ``GeminiSettings`` (prefix
``BANKING_GEMINI_``). The API base URL is always passed explicitly to the client (default
``https://generativelanguage.googleapis.com/``) so no environment variable can silently redirect
requests (``LANGSMITH_GATEWAY``, ``GOOGLE_GENAI_USE_VERTEXAI``); tests point it at a local fake
server.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.base import BackendUnavailable, IntentChatModel, IntentPrediction, TOP_K
from models.retrieval import ExampleRetriever, Neighbour

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"

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


class GeminiSettings(BaseSettings):
    """Settings of the gemini backend (env prefix ``BANKING_GEMINI_``; the key is ``GOOGLE_API_KEY``).

    Prices are USD per million tokens, used only for the ``cost_usd`` estimate in
    ``response_metadata`` (defaults: the published Gemini 2.5 Flash paid-tier list prices for
    text; check the current price list and override them for another model).
    """

    model_config = SettingsConfigDict(
        env_prefix="BANKING_GEMINI_", env_file=".env", extra="ignore", populate_by_name=True
    )

    api_key: SecretStr | None = Field(
        default=None,
        validation_alias="GOOGLE_API_KEY",
        description="Gemini Developer API key, read from GOOGLE_API_KEY (never logged; "
        "BANKING_GEMINI_API_KEY also works).",
    )
    model: str = Field(default="gemini-2.5-flash", description="Gemini model name.")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="API base URL (a fake server in tests).")
    timeout_s: float = Field(default=30.0, gt=0, description="Per-request timeout, seconds.")
    max_retries: int = Field(default=4, ge=0, description="Retries on 429/5xx/timeouts (after the first try).")
    backoff_s: float = Field(default=1.0, ge=0, description="First back-off delay; doubles each retry (+jitter).")
    backoff_max_s: float = Field(default=30.0, ge=0)
    k_examples: int = Field(default=10, ge=0, description="Retrieved few-shot examples per query.")
    retrieval: str = Field(default="auto", description="auto | minilm | tfidf (see models/retrieval.py).")
    max_concurrency: int = Field(default=4, gt=0, description="Parallel requests in classify_batch.")
    temperature: float = Field(default=0.0, ge=0, le=2)
    thinking_budget: int | None = Field(
        default=0, description="Thinking tokens for 2.5 models (0 = off: faster, cheaper); None = model default.")
    price_input_per_mtok: float = Field(default=0.30, ge=0)
    price_output_per_mtok: float = Field(default=2.50, ge=0)


class GeminiAnswerError(BackendUnavailable):
    """Gemini answered, but not with a usable label (refused, blocked, malformed or off-schema).

    ``per_query = True``: the failure concerns this query only, so an eval can go on with the
    others (see ``evals.runner.predict_all``). Raised by ``classify_batch`` with ``partial``: the
    list of ``IntentPrediction`` / per-query ``GeminiAnswerError`` in input order."""

    per_query: ClassVar[bool] = True
    partial: list | None = None


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
    """The system instruction: the task and every label with its one-line description."""
    lines = [f"- {lab}: {INTENT_DESCRIPTIONS.get(lab, lab.replace('_', ' '))}" for lab in labels]
    return (
        "You classify messages that customers send to a digital bank into exactly one of the "
        f"{len(labels)} intents below. Answer with the intent label exactly as written, your "
        "probability that it is right, and up to four other plausible intents.\n\nIntents:\n"
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


def _status_of(exc: BaseException) -> int | None:
    """HTTP status behind a langchain-google-genai / google-genai error, if any."""
    for e in (exc, exc.__cause__, exc.__context__):
        code = getattr(e, "code", None)
        if isinstance(code, int):
            return code
    return None


def _is_transient(exc: BaseException) -> bool:
    status = _status_of(exc)
    if status is not None:
        return status in (408, 429) or status >= 500
    name = type(exc).__name__.lower()
    return "timeout" in name or "connect" in name


class GeminiIntentModel(IntentChatModel):
    """Gemini intent classifier following the ``IntentChatModel`` contract.

    Build with ``GeminiIntentModel.from_settings(settings)``. ``classify_batch`` retrieves the
    few-shot examples for all texts in one encoder pass, then sends one request per text,
    ``max_concurrency`` at a time. Each prediction's ``latency_ms`` is that request's own
    wall-clock time (retrieval + API call + back-off), ms.

    ``extra`` metadata per answer: ``calibrated=False``, ``confidence_source``, ``retrieval``
    (method + neighbour labels), ``usage`` ({input_tokens, output_tokens, total_tokens}),
    ``cost_usd`` (estimate from the settings' prices), ``attempts``, ``gemini_model_version``.

    Errors: ``BackendUnavailable`` for a missing/refused key, or retries exhausted;
    ``GeminiAnswerError`` (a ``BackendUnavailable``) for a refused, blocked or malformed answer.
    """

    backend_name: ClassVar[str] = "gemini"
    per_query_latency: ClassVar[bool] = True  # latency_ms is measured per query, not amortised
    device: ClassVar[str] = "remote"

    gemini: GeminiSettings = Field(default_factory=GeminiSettings)
    intents: list[str] = Field(default_factory=list)
    app_settings: Any = None  # assistant.settings.Settings, for loading the training split

    _retriever: ExampleRetriever | None = PrivateAttr(default=None)
    _structured: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Any = None, gemini: GeminiSettings | None = None,
                      examples: tuple[list[str], list[str]] | None = None,
                      intents: list[str] | None = None) -> "GeminiIntentModel":
        """Build the backend. ``settings``: the app ``Settings`` (data location, home for the
        embedding cache); ``examples``: (texts, labels) to retrieve from instead of the
        BANKING77 training split; ``intents``: label set (default: categories.json).
        Cheap: nothing is loaded and no request is made until the first classification."""
        m = cls(gemini=gemini or GeminiSettings(), app_settings=settings, intents=list(intents or []))
        if examples is not None:
            texts, labels = examples
            m._retriever = m._make_retriever(texts, labels)
            if not m.intents:
                m.intents = sorted(set(labels))
        return m

    # --- contract -----------------------------------------------------------------------
    @property
    def model_version(self) -> str:
        return f"{self.gemini.model}+knn{self.gemini.k_examples}"

    def availability(self) -> tuple[bool, str]:
        """Unavailable without ``GOOGLE_API_KEY`` or without langchain-google-genai installed."""
        if importlib.util.find_spec("langchain_google_genai") is None:
            return False, "langchain-google-genai is not installed (pip install 'banking-assistant[gemini]')"
        if self.gemini.api_key is None or not self.gemini.api_key.get_secret_value().strip():
            return False, "GOOGLE_API_KEY is not set"
        return True, f"ok ({self.gemini.model})"

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        ok, reason = self.availability()
        if not ok:
            raise BackendUnavailable(f"gemini backend unavailable: {reason}.")
        if not texts:
            return []
        retriever = self._get_retriever()
        neighbours = retriever.search_batch(list(texts), self.gemini.k_examples)
        workers = min(self.gemini.max_concurrency, len(texts))
        if workers == 1:
            results = [self._try_one(t, n) for t, n in zip(texts, neighbours)]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(self._try_one, texts, neighbours))
        for r in results:
            if isinstance(r, BackendUnavailable) and not isinstance(r, GeminiAnswerError):
                raise r  # key refused, retries exhausted...: the whole backend is down
        bad = [r for r in results if isinstance(r, GeminiAnswerError)]
        if bad:
            err = bad[0] if len(texts) == 1 else GeminiAnswerError(
                f"{len(bad)} of {len(texts)} answers unusable; first: {bad[0]}")
            err.partial = results  # predictions and per-query errors, in input order
            raise err
        return results  # type: ignore[return-value]

    def _try_one(self, text: str, neighbours: list[Neighbour]) -> IntentPrediction | BackendUnavailable:
        try:
            return self._classify_one(text, neighbours)
        except BackendUnavailable as e:
            return e

    def warm_up(self) -> str:
        """Build the retrieval index now (loads the training split and, with MiniLM, encodes
        it: about a minute on 2 CPU cores the first time, then read from the cache under
        ``<home>/cache/retrieval``). Call from a background thread at startup so the first
        gemini request does not pay for it. Returns the retrieval method description."""
        return self._get_retriever().build().description

    # --- internals ----------------------------------------------------------------------
    def _app_settings(self):
        if self.app_settings is None:
            from assistant.settings import get_settings

            self.app_settings = get_settings()
        return self.app_settings

    def _make_retriever(self, texts: list[str], labels: list[str]) -> ExampleRetriever:
        cache_dir = None
        if self.app_settings is not None:
            cache_dir = Path(self.app_settings.home) / "cache" / "retrieval"
        return ExampleRetriever(texts, labels, method=self.gemini.retrieval, cache_dir=cache_dir)  # type: ignore[arg-type]

    def _get_retriever(self) -> ExampleRetriever:
        with self._lock:
            if self._retriever is None:
                from training.data import load_banking77

                data = load_banking77(self._app_settings())
                if not self.intents:
                    self.intents = list(data.intents)
                self._retriever = self._make_retriever(data.train.texts, data.train.labels)
        if not self.intents:
            self.intents = sorted(set(self._retriever.labels))
        return self._retriever

    def _get_structured(self):
        with self._lock:
            if self._structured is None:
                from langchain_google_genai import ChatGoogleGenerativeAI

                kwargs: dict[str, Any] = {}
                if self.gemini.thinking_budget is not None and self.gemini.model.startswith("gemini-2.5"):
                    kwargs["thinking_budget"] = self.gemini.thinking_budget
                llm = ChatGoogleGenerativeAI(
                    model=self.gemini.model,
                    google_api_key=self.gemini.api_key,
                    base_url=self.gemini.base_url,  # explicit: env vars cannot redirect it
                    vertexai=False,
                    temperature=self.gemini.temperature,
                    timeout=self.gemini.timeout_s,
                    max_retries=1,  # one HTTP attempt per call; back-off is ours (below)
                    **kwargs,
                )
                self._structured = llm.with_structured_output(
                    response_schema(self.intents), method="json_schema", include_raw=True
                )
        return self._structured

    def _call_with_retries(self, messages: list) -> tuple[dict, int]:
        """Invoke with exponential back-off on 408/429/5xx/timeouts. Returns (output, attempts)."""
        structured = self._get_structured()
        attempt = 0
        while True:
            attempt += 1
            try:
                return structured.invoke(messages), attempt
            except Exception as e:  # noqa: BLE001 - classified below
                status = _status_of(e)
                if status in (400, 401, 403) and _looks_like_key_error(e, status):
                    raise BackendUnavailable(
                        f"Gemini rejected the API key (HTTP {status}). Check GOOGLE_API_KEY."
                    ) from e
                if status == 404:
                    raise BackendUnavailable(
                        f"Gemini model {self.gemini.model!r} not found (HTTP 404). "
                        f"Check BANKING_GEMINI_MODEL."
                    ) from e
                if not _is_transient(e):
                    raise BackendUnavailable(f"Gemini request failed: {type(e).__name__}: {e}") from e
                if attempt > self.gemini.max_retries:
                    raise BackendUnavailable(
                        f"Gemini request failed after {attempt} attempts "
                        f"(last: HTTP {status or type(e).__name__}). Rate-limited or down; try later."
                    ) from e
                delay = min(self.gemini.backoff_max_s, self.gemini.backoff_s * 2 ** (attempt - 1))
                delay *= 1.0 + 0.25 * random.random()  # jitter
                log.info("gemini: HTTP %s, retry %d in %.2fs", status, attempt, delay)
                time.sleep(delay)

    def _classify_one(self, text: str, neighbours: list[Neighbour]) -> IntentPrediction:
        from langchain_core.messages import HumanMessage, SystemMessage

        t0 = time.perf_counter()
        messages = [SystemMessage(content=system_prompt(self.intents)),
                    HumanMessage(content=user_prompt(text, neighbours))]
        out, attempts = self._call_with_retries(messages)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        raw = out.get("raw")
        parsed = out.get("parsed")
        finish = (getattr(raw, "response_metadata", None) or {}).get("finish_reason")
        if finish is not None and str(finish).split(".")[-1] not in ("STOP", "MAX_TOKENS"):
            raise GeminiAnswerError(f"Gemini refused to answer (finish reason {finish}).")
        if not isinstance(parsed, dict):
            err = out.get("parsing_error")
            snippet = str(getattr(raw, "content", ""))[:200]
            raise GeminiAnswerError(
                f"Gemini returned a malformed answer (not the JSON schema): {err or snippet!r}"
            )
        intent = parsed.get("intent")
        if intent not in self.intents:
            raise GeminiAnswerError(f"Gemini answered {intent!r}, which is not one of the {len(self.intents)} intents.")
        conf = _clip(parsed.get("confidence"))
        ranking: list[tuple[str, float]] = [(intent, conf)]
        for alt in parsed.get("alternatives") or []:
            if not isinstance(alt, dict):
                continue
            lab = alt.get("intent")
            if lab in self.intents and lab not in {r[0] for r in ranking}:
                ranking.append((lab, min(_clip(alt.get("confidence")), conf)))
        ranking = [ranking[0]] + sorted(ranking[1:], key=lambda r: -r[1])
        usage = dict(getattr(raw, "usage_metadata", None) or {})
        tokens_in = int(usage.get("input_tokens", 0) or 0)
        tokens_out = int(usage.get("output_tokens", 0) or 0)
        cost = (tokens_in * self.gemini.price_input_per_mtok + tokens_out * self.gemini.price_output_per_mtok) / 1e6
        retriever = self._retriever
        extra = {
            "calibrated": False,
            "confidence_source": "self-reported by the model in its structured answer (not calibrated)",
            "retrieval": {
                "method": retriever.description if retriever else None,
                "k": len(neighbours),
                "labels": [n.label for n in neighbours],
            },
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out,
                      "total_tokens": int(usage.get("total_tokens", tokens_in + tokens_out) or 0)},
            "cost_usd": round(cost, 8),
            "cost_note": "estimate from BANKING_GEMINI_PRICE_* (USD per million tokens)",
            "attempts": attempts,
            "gemini_model_version": (getattr(raw, "response_metadata", None) or {}).get("model_name"),
        }
        return IntentPrediction(intent=intent, confidence=conf, ranking=ranking[:TOP_K],
                                latency_ms=latency_ms, extra=extra)


def _clip(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if v != v else max(0.0, min(1.0, v))  # NaN -> 0


def _looks_like_key_error(e: BaseException, status: int) -> bool:
    if status in (401, 403):
        return True
    msg = str(e).lower()
    return "api key" in msg or "api_key" in msg
