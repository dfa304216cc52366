"""Application settings, read from the environment and ``.env`` (prefix ``BANKING_``).

Uses pydantic-settings, so every field can be set as ``BANKING_<FIELD>`` (for example
``BANKING_DATA_DIR=../shared/data/banking77``). Secrets such as ``GOOGLE_API_KEY`` are read
from the environment by the backends that need them and never stored in settings dumps.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path


from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """All tunables of the assistant.

    Paths are resolved to absolute paths. ``database_url`` defaults to a SQLite file under
    ``home``. Changing a field needs a new process (``get_settings`` is cached) or
    ``get_settings.cache_clear()`` in tests.
    """

    model_config = SettingsConfigDict(env_prefix="BANKING_", env_file=".env", extra="ignore")

    data_dir: Path | None = Field(
        default=None,
        description="Folder holding BANKING77 train.csv, test.csv, categories.json. "
        "Unset: <home>/data/banking77, downloaded at the pinned commit when missing.",
    )
    oos_file: Path | None = Field(
        default=None,
        description="JSON list of out-of-scope queries (CLINC150 oos_dev.json) used to tune the "
        "out-of-scope threshold. Unset: ../shared/data/clinc150_oos/oos_dev.json if present.",
    )
    home: Path = Field(default=REPO_ROOT / "var", description="Trained models, database, logs.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite under home.")
    backend: str = Field(default="custom", description="Default intent backend: custom | peft | gemini.")
    ui_operator_tools: bool = Field(
        default=False,
        description="Chat UI for bank staff: every login gets the settings panel (technical details under "
        "each answer, choice of the intent backend). Off: customers see neither.",
    )

    # Confidence guard (chosen by `banking-assistant train custom` on validation + OOS data;
    # a value saved with the model overrides this default unless set explicitly).
    clarify_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="Below this confidence (and above the out-of-scope threshold) the assistant asks a "
        "clarifying question. "
        "Unset: the threshold tuned and saved with the model version.",
    )
    oos_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="Below this confidence a message is declined as out of scope. "
        "Unset: the threshold tuned and saved with the model version.",
    )
    checkpoint_retention_days: float = Field(
        default=30.0, gt=0, description="Conversations idle longer than this (days) are deleted with their "
        "checkpoints and transcript (chains/retention.py).")
    daily_outgoing_limit: Decimal = Field(
        default=Decimal("1000"), gt=0,
        description="Most that may leave one account per UTC day through payments, in that account's currency.")
    seed: int = 13

    # Custom backend training.
    custom_epochs: int = Field(default=20, gt=0)
    custom_max_minutes: float = Field(default=9.0, gt=0, description="Wall-clock cap on training.")
    torch_threads: int | None = Field(
        default=None, description="torch intra-op threads for custom training (unset = 1) and, when set, for serving."
    )

    # Routing policies (issue 11; chains/routing.py): alternatives "cascade" and "rollout" of the
    # `backend` field. An arm is a backend ("custom") or a backend at a pinned model version folder
    # ("custom@20261130-101500-1a2b3c4d").
    cascade: str = Field(
        default="custom,peft,gemini",
        description="Cascade order, cheapest first: each arm answers unless its confidence is below its own "
        "clarify threshold, then the next available one is asked.")
    rollout: str | None = Field(
        default=None,
        description="A/B rollout: comma-separated arm:weight, e.g. 'custom@v1:90,custom@v2:10'; a customer is "
        "assigned by a stable hash of their id (sticky). Unset: backend 'rollout' is unavailable.")
    shadow: str | None = Field(
        default=None, description="An arm run in the background on live traffic (never answering); its "
        "agreement with the answering arm is logged to the benchmark log.")
    cost_per_cpu_hour: float = Field(
        default=0.045, ge=0,
        description="USD per CPU-core hour for the cost estimate of local backends (default: about one "
        "on-demand cloud vCPU-hour). Gemini's token prices: BANKING_GEMINI_PRICE_INPUT_PER_MTOK / "
        "BANKING_GEMINI_PRICE_OUTPUT_PER_MTOK.")

    # Benchmark every N requests (issue 4); 0 = off.
    bench_every: int = Field(default=50, ge=0)
    bench_size: int = Field(default=200, gt=0)

    # HTTP limits (issue 10): refused before the work is done; assistant/http_limits/.
    max_body_bytes: int = Field(default=65536, gt=0, description="Larger request bodies get 413 before parsing (bytes).")
    max_batch_items: int = Field(default=64, gt=0, description="Larger /batch requests get 413.")
    max_json_depth: int = Field(default=32, gt=0, description="Deeper JSON nesting (objects + arrays) gets 400.")
    rate_limit_per_minute: int = Field(default=120, ge=0, description="Requests per API key per minute; 0 = off.")
    auth_failures_per_minute: int = Field(
        default=20, ge=0, description="Failed authentications per client address per minute before 429; 0 = off."
    )
    auth_failures_per_key_per_minute: int = Field(
        default=5, ge=0, description="Failed authentications with one presented API key per minute before that "
        "key gets 429 (a client retrying a stale key stops adding to its address's count); 0 = off.",
    )
    auth_known_good_hours: float = Field(
        default=24.0, ge=0, description="A key that authenticated from an address within this many hours still "
        "authenticates there while that address is throttled for failures; 0 = every key gets 429 then.",
    )
    trusted_proxies: str = Field(
        default="", description="Comma-separated proxy addresses/networks (e.g. 10.0.0.5,10.1.0.0/16) whose "
        "X-Forwarded-For names the client; empty = no forwarded header is trusted (the peer is the client).",
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A connection whose request head is not complete this many seconds after "
        "it opened (or went idle) gets 408 and is closed.")
    body_timeout_s: float = Field(
        default=15.0, gt=0, description="A request body not fully received this many seconds after its head gets 408.")
    keep_alive_timeout_s: float = Field(default=5.0, gt=0, description="Idle keep-alive connections close after this.")
    max_connections: int = Field(
        default=200, gt=0, description="Open connections (and running requests) per process beyond which a new "
        "request gets 503 (uvicorn limit_concurrency).")
    max_header_bytes: int = Field(
        default=16384, gt=0, description="Largest request head (request line + headers) in bytes; larger gets 400 "
        "(uvicorn h11_max_incomplete_event_size).")
    rate_limit_storage: str = Field(
        default="memory://",
        description="`limits` storage URI for the counters; memory:// is per process, so several workers "
        "share a limit only through e.g. redis://host:6379.",
    )
    max_concurrent_inference: int = Field(
        default=4, gt=0, description="Intent-model calls run at once per process; the rest wait in a FIFO queue."
    )
    max_batch_concurrency: int = Field(
        default=2, gt=0, description="Items of one /batch request processed at once, so a batch cannot fill the "
        "worker threads: single requests beside two 64-item batches went from p50 7.6 s to 36 ms "
        "(benchmarks/fairness.py).",
    )

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _proxies(cls, v: str) -> str:
        import ipaddress

        items = [x.strip() for x in v.split(",") if x.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as e:
                raise ValueError(f"BANKING_TRUSTED_PROXIES: {item!r} is not an IP address or network") from e
        return ",".join(items)

    @field_validator("home", "data_dir", "oos_file", mode="after")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        return None if v is None else v.expanduser().resolve()

    @property
    def models_dir(self) -> Path:
        """Folder holding one sub-folder per backend, each holding one folder per model version."""
        return self.home / "models"

    @property
    def resolved_database_url(self) -> str:
        """``database_url`` or ``sqlite:///<home>/bank.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'bank.db'}"

    @property
    def resolved_oos_file(self) -> Path | None:
        """``oos_file`` or the shared CLINC150 file beside the repository, if it exists."""
        if self.oos_file:
            return self.oos_file
        candidate = REPO_ROOT.parent / "shared" / "data" / "clinc150_oos" / "oos_dev.json"
        return candidate if candidate.exists() else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` after changing env)."""
    return Settings()
