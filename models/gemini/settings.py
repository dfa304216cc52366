"""Settings of the gemini backend (env prefix ``BANKING_GEMINI_``) and the per-model thinking policy."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"

# Thinking, per model family (Google's thinking guide, https://ai.google.dev/gemini-api/docs/thinking):
# 2.5 Flash / Flash-Lite accept thinkingBudget 0 (off); 2.5 Pro cannot turn thinking off, its
# budget range is 128-32768 (0 answers 400 "Budget 0 is invalid. This model only works in thinking
# mode."), so its cheapest setting is the minimum 128; Gemini 3 models take a thinking *level*
# instead (3 Pro: low | high; 3 Flash: minimal | low | medium | high). Longest prefix wins.
THINKING_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemini-2.5-flash": {"thinking_budget": 0},
    "gemini-2.5-flash-lite": {"thinking_budget": 0},
    "gemini-2.5-pro": {"thinking_budget": 128},
    "gemini-3-pro": {"thinking_level": "low"},
    "gemini-3-flash": {"thinking_level": "minimal"},
}


class GeminiSettings(BaseSettings):
    """Settings of the gemini backend (env prefix ``BANKING_GEMINI_``; the key is ``GOOGLE_API_KEY``).

    Prices are USD per million tokens, used only for the ``cost_usd`` estimate in
    ``response_metadata`` (defaults: the published Gemini 2.5 Flash paid-tier list prices for
    text; check the current price list and override them for another model).

    Thresholds: the answer's confidence is the model's self-reported probability (no token
    log-probabilities through this API), which LLMs state high (0.9-1.0) for clear requests, so
    the guard's cut-offs sit lower than for a softmax: below ``oos_threshold`` the request is
    declined as out of scope, below ``clarify_threshold`` the assistant asks to clarify. The
    prompt asks the model to give a probability below 0.2 when no intent fits. The app-wide
    ``BANKING_OOS_THRESHOLD`` / ``BANKING_CLARIFY_THRESHOLD`` override these for every backend.
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
    backoff_s: float = Field(default=1.0, ge=0, description="First back-off delay, s; doubles each retry (+jitter).")
    backoff_max_s: float = Field(
        default=30.0, ge=0,
        description="Longest single wait, s. A server asking for a longer retry delay (RetryInfo / "
        "Retry-After) is not waited for: the request fails at once with that delay as retry_after_s.")
    k_examples: int = Field(default=10, ge=0, description="Retrieved few-shot examples per query.")
    retrieval: Literal["auto", "minilm", "tfidf"] = Field(
        default="auto", description="auto | minilm | tfidf (see models/retrieval.py).")
    max_concurrency: int = Field(default=4, gt=0, description="Parallel requests in classify_batch.")
    temperature: float = Field(default=0.0, ge=0, le=2)
    thinking_budget: int | None = Field(
        default=None, ge=-1,
        description="Thinking tokens (-1 = dynamic, 0 = off where the model allows it). Unset: per "
        "model (THINKING_DEFAULTS): 0 for 2.5 Flash/Flash-Lite, 128 (its minimum) for 2.5 Pro.")
    thinking_level: Literal["minimal", "low", "medium", "high"] | None = Field(
        default=None, description="Thinking level for Gemini 3 models. Unset: per model (THINKING_DEFAULTS).")
    self_check_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of the start-up self-check request, s.")
    self_check_ttl_s: float = Field(default=600.0, ge=0, description="How long a self-check result is reused, s.")
    oos_threshold: float = Field(default=0.3, ge=0, le=1, description="Self-reported confidence below which "
                                 "the request is declined as out of scope.")
    clarify_threshold: float = Field(default=0.6, ge=0, le=1, description="Self-reported confidence below "
                                     "which the assistant asks a clarifying question.")
    price_input_per_mtok: float = Field(default=0.30, ge=0)
    price_output_per_mtok: float = Field(default=2.50, ge=0)

    def thinking_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``ChatGoogleGenerativeAI`` that set thinking for ``model``:
        the explicit ``thinking_budget`` / ``thinking_level`` settings when set, else the
        model family's default from ``THINKING_DEFAULTS`` (longest matching prefix), else {}
        (the model's own default; e.g. Gemini 2.0 takes no thinking configuration)."""
        explicit = {k: v for k, v in (("thinking_budget", self.thinking_budget),
                                      ("thinking_level", self.thinking_level)) if v is not None}
        if explicit:
            return explicit
        name = self.model.removeprefix("models/")
        prefixes = sorted((p for p in THINKING_DEFAULTS if name.startswith(p)), key=len, reverse=True)
        return dict(THINKING_DEFAULTS[prefixes[0]]) if prefixes else {}
