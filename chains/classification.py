"""One classification, in one shape from the backend's message to the turn's output.

A backend answers with the contract ``AIMessage`` (models/base.py): the label as ``content``
and the classification in ``response_metadata`` (a plain dict, LangChain's place for it).
:meth:`Classification.from_message` reads that dict once; from then on the turn, the guard and
the output carry this typed value (the graph state holds it as it is, see chains/state.py) and
:meth:`Classification.output_fields` gives the fields every ``AssistantOutput`` repeats.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field


class RankedIntent(BaseModel):
    """One entry of a top-k ranking: an intent label and its confidence (0-1)."""

    intent: str
    confidence: float


class Thresholds(BaseModel):
    """The guard's thresholds for one answer (probabilities, 0-1): below ``oos_threshold`` the
    message is out of scope; below ``clarify_threshold`` the assistant asks which request it is."""

    oos_threshold: float = 0.0
    clarify_threshold: float = 0.0


OUTPUT_FIELDS = ("intent", "confidence", "ranking", "backend", "model_version", "latency_ms", "arm")
"""The classification fields every ``AssistantOutput`` carries."""


class Classification(BaseModel):
    """The intent classification of one message.

    ``intent``: the top-1 label; ``confidence``: its probability (0-1); ``ranking``: the top-5,
    best first; ``backend``/``model_version``/``arm``: who answered; ``latency_ms``: the
    classification's wall-clock time in ms; ``thresholds``: the guard's thresholds for this
    answer; ``chosen``: True when the customer picked the intent from clarify choices (no model
    ran); ``language``: the message's detected language ("en" | "es" | "fr" | "de", None when
    the message does not say; models/base.py); ``extra``: backend-specific fields (token usage, small-talk kind, runtime, ...).
    """

    intent: str
    confidence: float
    ranking: list[RankedIntent]
    backend: str | None = None
    model_version: str | None = None
    latency_ms: float | None = None
    arm: str | None = None
    thresholds: Thresholds = Field(default_factory=Thresholds)
    chosen: bool = False
    language: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any] | Classification) -> Classification:
        """From a contract ``response_metadata`` dict (or a Classification, returned as is).
        Raises ``pydantic.ValidationError`` when intent, confidence or ranking is missing."""
        if isinstance(meta, Classification):
            return meta
        known = set(cls.model_fields) - {"extra", "thresholds"}
        return cls.model_validate({**{k: v for k, v in meta.items() if k in known},
                                   "thresholds": meta.get("thresholds") or {},
                                   "extra": {k: v for k, v in meta.items() if k not in known and k != "thresholds"}})

    @classmethod
    def from_message(cls, message: BaseMessage) -> Classification:
        """From the contract ``AIMessage`` of a backend (its ``response_metadata``)."""
        return cls.from_metadata(message.response_metadata)

    @classmethod
    def picked(cls, intent: str, backend: str | None) -> Classification:
        """The classification of an intent the customer picked from clarify choices: confidence
        1, zero thresholds, no model ran (``latency_ms`` 0)."""
        return cls(intent=intent, confidence=1.0, ranking=[RankedIntent(intent=intent, confidence=1.0)],
                   backend=backend, latency_ms=0.0, chosen=True)

    def output_fields(self) -> dict[str, Any]:
        """The :data:`OUTPUT_FIELDS` as keyword arguments of ``AssistantOutput``."""
        return {k: getattr(self, k) for k in OUTPUT_FIELDS}
