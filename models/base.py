"""The contract every intent backend follows (custom, peft, gemini).

Each backend is a LangChain ``BaseChatModel``. Input: chat messages; the text of the last human
message is the query. Output: an ``AIMessage`` whose ``content`` is the intent label and whose
``response_metadata`` holds::

    intent         str    the predicted BANKING77 label (same as content)
    confidence     float  probability of that label, 0-1
    ranking        list   top-5 [{"intent": str, "confidence": float}], best first
    backend        str    "custom" | "peft" | "gemini"
    model_version  str    the model folder / model name that answered
    latency_ms     float  wall-clock time of the classification, milliseconds
    calibrated     bool   whether confidence is a real probability (False for self-reported scores)
    thresholds     dict   {"oos_threshold": float, "clarify_threshold": float} for this answer:
                          the values saved with the model version (``thresholds``), each replaced
                          by the operator's setting (BANKING_OOS_THRESHOLD /
                          BANKING_CLARIFY_THRESHOLD) when set. The conversation's guard reads
                          only these, so it is a pure function of the classification.
    entities       list   optional (issue 16): the message's entities as ``models.entities.Entity``
                          dicts {label, text, start, end, value}, sorted by start. Put by a backend
                          that finds them itself (the custom model's learned span head, values from
                          the rule parsers); absent otherwise, and then the conversation takes them
                          from ``models.entities.extract_entities`` with the customer's payee and
                          merchant names (chains/extract.py), so every backend gets the same rules.
    language       str|None  the message's language, "en" | "es" | "fr" | "de", or None when the
                          message is too short or unsure to say ("ok", "£20"); detected here for
                          every backend alike (config/language.py), from the same query text
    language_confidence float  the detector's confidence in it (0-1)
    ... backend-specific extras (token usage, cost estimate, runtime)

Everything a caller may use besides ``invoke``/``batch`` is declared on :class:`IntentChatModel`
(``model_version``, ``thresholds``, ``device``, ``per_query_latency``, ``availability``,
``self_check``, ``warm_up``, ``backend_name``) and on :class:`PerQueryError` (``per_query``,
``partial`` results); nothing undeclared is probed. ``getattr`` with a default is used only where
a caller also takes objects outside this contract: the eval runner (``evals/runner.py``) reads
``backend_name`` of any scored model and ``per_query`` of any exception, and
:func:`query_text` reads a message's ``type``.

Subclasses implement ``classify_batch`` (and optionally the others); ``_generate`` and a truly
batched ``batch`` are provided here, so the chain never asks which backend it talks to.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig

TOP_K = 5


class BackendUnavailable(RuntimeError):
    """The backend cannot answer (no trained model, no API key, server unreachable...).
    The message says why and what to do. ``retry_after_s``: seconds after which a retry may
    succeed (e.g. a provider's rate limit), or None."""

    retry_after_s: float | None = None


class PerQueryError(RuntimeError):
    """Some queries of a batch failed on their own (a refused or malformed answer), not the
    backend as a whole. ``partial``: one entry per input text, in order: the
    :class:`IntentPrediction` or the exception for that text (None when unknown)."""

    per_query = True

    def __init__(self, message: str, partial: list | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class QueryBlocked(PerQueryError):
    """The provider's safety filter refused this query (or its answer). Not an outage and not
    retried: the conversation answers politely with ``status="blocked"``. ``reason``: the
    provider's block reason (e.g. "SAFETY")."""

    reason: str = ""


def resolve_thresholds(saved: dict[str, float] | None) -> dict[str, float]:
    """The thresholds an answer carries: ``saved`` (from the model version; missing keys 0.0,
    clarify defaulting to oos), each replaced by the operator's setting when that is set.
    Returns ``{"oos_threshold", "clarify_threshold"}`` with clarify >= oos (both in [0, 1])."""
    from config.settings import get_settings

    s = get_settings()
    saved = dict(saved or {})
    oos = s.oos_threshold if s.oos_threshold is not None else float(saved.get("oos_threshold", 0.0))
    clarify = (s.clarify_threshold if s.clarify_threshold is not None
               else float(saved.get("clarify_threshold", oos)))
    return {"oos_threshold": float(oos), "clarify_threshold": float(max(oos, clarify))}


@dataclass
class IntentPrediction:
    """One classification. ``ranking`` is a list of (intent, confidence) pairs, best first,
    at most ``TOP_K`` long; ``latency_ms`` is this query's share of the wall-clock time in ms."""

    intent: str
    confidence: float
    ranking: list[tuple[str, float]]
    latency_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def query_text(messages: Sequence[BaseMessage]) -> str:
    """The content of the last human message. Raises ``ValueError`` if there is none."""
    for m in reversed(messages):
        if isinstance(m, HumanMessage) or getattr(m, "type", None) == "human":
            content = m.content
            if isinstance(content, list):  # multimodal parts: keep the text ones
                content = " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
            return str(content)
    raise ValueError("No human message to classify.")


class IntentChatModel(BaseChatModel):
    """Base class of the intent backends (see the module docstring for the contract)."""

    backend_name: ClassVar[str] = "base"

    @property
    def _llm_type(self) -> str:
        return f"banking-intent-{self.backend_name}"

    # --- to implement -----------------------------------------------------------------
    @abstractmethod
    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        """Classify ``len(texts)`` queries; returns one prediction per text, in order.
        Raises ``BackendUnavailable`` when the backend cannot answer."""

    @property
    def model_version(self) -> str:
        """Identifier of the model that answers (folder name, model name)."""
        return "unknown"

    @property
    def thresholds(self) -> dict[str, float]:
        """The guard thresholds saved with the answering model version
        (``{"oos_threshold", "clarify_threshold"}``, confidences in [0, 1]); {} when none."""
        return {}

    @property
    def device(self) -> str:
        """Where the model runs: "cpu", "cuda:0", or "remote" for an API/server backend."""
        return "cpu"

    per_query_latency: ClassVar[bool] = False
    """True when every query costs a remote round trip (latency is measured per query by the
    backend itself, so a separate single-query latency sample would only repeat it)."""

    def availability(self) -> tuple[bool, str]:
        """(available, reason). Cheap: must not load weights or call remote APIs."""
        return True, "ok"

    def self_check(self) -> tuple[bool, str]:
        """(ok, reason) from one cheap real call (e.g. a tiny request to a remote model, with a
        short timeout), for start-up and ``/health``. Default: :meth:`availability`."""
        return self.availability()

    def warm_up(self) -> None:
        """Load weights / build indexes off the request path. Default: nothing. Raises
        ``BackendUnavailable`` when the backend cannot be loaded."""
        return None

    # --- provided ---------------------------------------------------------------------
    def to_message(self, p: IntentPrediction, text: str | None = None) -> AIMessage:
        """Wrap a prediction into the contract's ``AIMessage``; with the query ``text``, its
        ``language`` and ``language_confidence`` too (config/language.py)."""
        meta = {
            "intent": p.intent,
            "confidence": float(p.confidence),
            "ranking": [{"intent": i, "confidence": float(c)} for i, c in p.ranking[:TOP_K]],
            "backend": self.backend_name,
            "model_version": self.model_version,
            "latency_ms": float(p.latency_ms),
            "calibrated": True,
            **p.extra,
        }
        meta["thresholds"] = resolve_thresholds(p.extra.get("thresholds") or self.thresholds)
        if text is not None:
            from config.language import detect_scored

            meta["language"], meta["language_confidence"] = detect_scored(text)
        return AIMessage(content=p.intent, response_metadata=meta)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        t0 = time.perf_counter()
        text = query_text(messages)
        (pred,) = self.classify_batch([text])
        if not pred.latency_ms:
            pred.latency_ms = (time.perf_counter() - t0) * 1000.0
        return ChatResult(generations=[ChatGeneration(message=self.to_message(pred, text))])

    def batch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Classify all inputs in one ``classify_batch`` call (one forward pass for local
        models). Falls back to per-item calls when ``return_exceptions`` is set."""
        if return_exceptions or not inputs:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        texts = [query_text(self._convert_input(i).to_messages()) for i in inputs]
        t0 = time.perf_counter()
        preds = self.classify_batch(texts)
        per_query = (time.perf_counter() - t0) * 1000.0 / len(texts)
        out = []
        for p, text in zip(preds, texts):
            if not p.latency_ms:
                p.latency_ms = per_query
            out.append(self.to_message(p, text))
        return out
