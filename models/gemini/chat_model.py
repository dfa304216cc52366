"""``GeminiIntentModel``: the gemini backend as the LangChain chat model of ``models/base.py``."""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr

from models.base import BackendUnavailable, IntentChatModel, IntentPrediction
from models.gemini.answer import prediction, usage_and_cost
from models.gemini.client import build_llm, call_with_retries
from models.gemini.errors import GeminiAnswerError, GeminiRejected
from models.gemini.prompt import response_schema, system_prompt, user_prompt
from models.gemini.settings import GeminiSettings
from models.retrieval import ExampleRetriever, Neighbour

log = logging.getLogger(__name__)

SELF_CHECK_LABELS = ["greeting", "other"]  # the self-check's two-label schema


class GeminiIntentModel(IntentChatModel):
    """Gemini intent classifier following the ``IntentChatModel`` contract.

    Build with ``GeminiIntentModel.from_settings(settings)``. ``classify_batch`` retrieves the
    few-shot examples for all texts in one encoder pass, then sends one request per text,
    ``max_concurrency`` at a time. Each prediction's ``latency_ms`` is that request's own
    wall-clock time (retrieval + API call + back-off), ms.

    ``extra`` metadata per answer: ``calibrated=False``, ``confidence_source``, ``retrieval``
    (method + neighbour labels), ``usage`` ({input_tokens, output_tokens, total_tokens}),
    ``cost_usd`` (estimate from the settings' prices), ``attempts``, ``finish_reason``,
    ``gemini_model_version``, ``thresholds`` (see ``GeminiSettings``).

    Errors: ``BackendUnavailable`` for a missing key or retries exhausted (with
    ``retry_after_s``); ``GeminiRejected`` for a configuration Google rejected;
    ``PromptBlocked`` for a query Google's safety filters blocked; ``GeminiAnswerError`` for a
    malformed or off-schema answer (all three are ``BackendUnavailable``).
    """

    backend_name: ClassVar[str] = "gemini"
    per_query_latency: ClassVar[bool] = True  # latency_ms is measured per query, not amortised

    gemini: GeminiSettings = Field(default_factory=GeminiSettings)
    intents: list[str] = Field(default_factory=list)
    app_settings: Any = None  # config.settings.Settings, for loading the training split

    _retriever: ExampleRetriever | None = PrivateAttr(default=None)
    _structured: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)  # retriever and client
    _state_lock: Any = PrivateAttr(default_factory=threading.Lock)  # _check and _rejected
    _check: tuple[bool, str, float] | None = PrivateAttr(default=None)  # (ok, reason, expires: monotonic s)
    _rejected: str | None = PrivateAttr(default=None)  # why Google rejected the configuration

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

    @property
    def device(self) -> str:
        return "remote"

    @property
    def thresholds(self) -> dict[str, float]:
        """``{"oos_threshold", "clarify_threshold"}`` from ``GeminiSettings`` (defaults 0.3 / 0.6,
        for the model's self-reported confidence)."""
        return {"oos_threshold": self.gemini.oos_threshold, "clarify_threshold": self.gemini.clarify_threshold}

    def availability(self) -> tuple[bool, str]:
        """Unavailable without langchain-google-genai, without ``GOOGLE_API_KEY``, or while the
        last self-check or request found the configuration rejected by Google (for
        ``self_check_ttl_s``). Cheap: makes no request."""
        ok, reason = self._installed_with_key()
        with self._state_lock:
            if ok and self._rejected and self._check is not None and time.monotonic() < self._check[2]:
                return False, self._rejected
        return ok, reason

    def self_check(self, force: bool = False) -> tuple[bool, str]:
        """(ok, reason) from one tiny real request (a two-label schema, the configured model and
        thinking settings, ``self_check_timeout_s``, no retries), cached for
        ``self_check_ttl_s`` (a transient failure for at most 60 s) unless ``force``. A
        configuration Google rejects (key, model, thinking budget) makes :meth:`availability`
        report the reason; a transient failure (429, 5xx, timeout) returns (False, reason)
        without marking the backend unavailable. Without the package or the key: (False, why),
        no request."""
        ok, reason = self._installed_with_key()
        if not ok:
            return ok, reason
        with self._state_lock:
            if self._check is not None and not force and time.monotonic() < self._check[2]:
                return self._check[0], self._check[1]
        from langchain_core.messages import HumanMessage

        t0 = time.perf_counter()
        llm = build_llm(self.gemini, timeout_s=self.gemini.self_check_timeout_s)
        structured = llm.with_structured_output(response_schema(SELF_CHECK_LABELS), method="json_schema",
                                                include_raw=True)
        try:
            call_with_retries(lambda: structured.invoke([HumanMessage(content='Customer message: "hello"')]),
                              self.gemini, max_retries=0, probe=True)
            result = (True, f"ok ({self.gemini.model}; self-check answered in "
                            f"{(time.perf_counter() - t0) * 1000:.0f} ms)")
        except GeminiRejected as e:
            self._remember_rejection(str(e))
            return False, str(e)
        except BackendUnavailable as e:
            result = (False, f"self-check inconclusive: {e}")
        ttl = self.gemini.self_check_ttl_s if result[0] else min(60.0, self.gemini.self_check_ttl_s)
        with self._state_lock:
            self._check = (*result, time.monotonic() + ttl)
            self._rejected = None
        return result

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

    def warm_up(self) -> None:
        """Build the retrieval index now (loads the training split and, with MiniLM, encodes
        it: about a minute on 2 CPU cores the first time, then read from the cache under
        ``<home>/cache/retrieval``). Call from a background thread at startup so the first
        gemini request does not pay for it. Raises ``BackendUnavailable`` when the training
        split or the encoder requested with ``retrieval=minilm`` cannot be loaded."""
        try:
            description = self._get_retriever().build().description
        except (ImportError, OSError, ValueError) as e:
            raise BackendUnavailable(f"gemini retrieval index could not be built: {type(e).__name__}: {e}") from e
        log.info("gemini retrieval index ready: %s", description)

    # --- internals ----------------------------------------------------------------------
    def _installed_with_key(self) -> tuple[bool, str]:
        if importlib.util.find_spec("langchain_google_genai") is None:
            return False, "langchain-google-genai is not installed (pip install 'banking-assistant[gemini]')"
        if self.gemini.api_key is None or not self.gemini.api_key.get_secret_value().strip():
            return False, "GOOGLE_API_KEY is not set"
        return True, f"ok ({self.gemini.model})"

    def _remember_rejection(self, reason: str) -> None:
        """Report ``reason`` from :meth:`availability` for ``self_check_ttl_s`` seconds."""
        with self._state_lock:
            self._rejected = reason
            self._check = (False, reason, time.monotonic() + self.gemini.self_check_ttl_s)

    def _try_one(self, text: str, neighbours: list[Neighbour]) -> IntentPrediction | BackendUnavailable:
        try:
            return self._classify_one(text, neighbours)
        except BackendUnavailable as e:
            return e

    def _app_settings(self):
        if self.app_settings is None:
            from config.settings import get_settings

            self.app_settings = get_settings()
        return self.app_settings

    def _make_retriever(self, texts: list[str], labels: list[str]) -> ExampleRetriever:
        cache_dir = None
        if self.app_settings is not None:
            cache_dir = Path(self.app_settings.home) / "cache" / "retrieval"
        return ExampleRetriever(texts, labels, method=self.gemini.retrieval, cache_dir=cache_dir)

    def _get_retriever(self) -> ExampleRetriever:
        with self._lock:
            if self._retriever is None:
                from models.banking77 import load_banking77

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
                self._structured = build_llm(self.gemini).with_structured_output(
                    response_schema(self.intents), method="json_schema", include_raw=True)
        return self._structured

    def _classify_one(self, text: str, neighbours: list[Neighbour]) -> IntentPrediction:
        from langchain_core.messages import HumanMessage, SystemMessage

        t0 = time.perf_counter()
        messages = [SystemMessage(content=system_prompt(self.intents)),
                    HumanMessage(content=user_prompt(text, neighbours))]
        structured = self._get_structured()
        try:
            out, attempts = call_with_retries(lambda: structured.invoke(messages), self.gemini)
        except GeminiRejected as e:
            self._remember_rejection(str(e))
            raise
        usage, cost = usage_and_cost(out.get("raw"), self.gemini.price_input_per_mtok,
                                     self.gemini.price_output_per_mtok)
        retriever = self._retriever
        extra = {
            "calibrated": False,
            "confidence_source": "self-reported by the model in its structured answer (not calibrated)",
            "retrieval": {
                "method": retriever.description if retriever else None,
                "k": len(neighbours),
                "labels": [n.label for n in neighbours],
            },
            "usage": usage,
            "cost_usd": round(cost, 8),
            "cost_note": "estimate from BANKING_GEMINI_PRICE_* (USD per million tokens)",
            "attempts": attempts,
            "thresholds": self.thresholds,
        }
        return prediction(out, self.intents, (time.perf_counter() - t0) * 1000.0, extra)
