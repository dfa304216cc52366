"""Automatic comparative benchmark every N requests.

The served app calls ``BenchmarkScheduler.record_request()`` once per /assistant or /classify
request. Every ``settings.bench_every``-th call (0 = off) starts one benchmark round in a daemon
thread, unless a round is already running (then that trigger is skipped, never queued): the
caller is never blocked. A round runs a fixed probe set (a seeded sample of
``settings.bench_size`` rows of the BANKING77 validation split, seed ``settings.seed``) through
every backend ``get_models()`` returns and appends one JSON line per backend to the JSONL log
(default ``<BANKING_HOME>/benchmarks/benchmarks.jsonl``)::

    {"timestamp": ISO-8601 UTC, "round": int, "backend": str, "model_version": str, "n": int,
     "accuracy": float|null, "p50_ms": float|null, "p99_ms": float|null, "device": str,
     "error": str|null, "concurrent_requests": int}

Accuracy comes from batched predictions; p50/p99 are single-query latencies (ms) on the first
``latency_sample`` probe texts (see ``evals.runner.evaluate_model``). Each probe row also
carries ``kind: "probe"``, the ``arm`` measured (a backend, ``backend@version`` or ``cascade``;
chains/arms.py), ``rss_mb`` (the process's resident memory after the measurement, MiB),
``cost_per_1k_usd`` (estimated USD per 1,000 queries, see ``evals.runner.cost_per_1k``) and
``escalation_rate`` (a cascade's; else null).

Live traffic goes to the same log through :class:`LiveLog` (a listener of chains/live.py the
server attaches): one ``kind: "live"`` row per classification (arm, backend, model_version,
intent, confidence, the guard's action, latency_ms) and one ``kind: "shadow"`` row per shadow
comparison (the shadow arm's answer, ``against`` the answering arm, ``agree``).
:func:`evals.bench_log.summarise_log` gives one row per arm with the probe figures, the live
figures and the shadow agreement.

Several workers (``banking-assistant serve --workers N``) run one round at a time between them:
a round first takes :class:`RoundLock` (a PostgreSQL advisory lock when the database is
PostgreSQL, so workers on several machines share it; a file lock beside the log otherwise) and
is skipped, never queued, when another worker holds it. A round measured while requests were
arriving is marked: ``concurrent_requests`` counts the requests this worker received during
the round (0 = measured on a quiet worker); :func:`summarise_log` averages latencies over quiet
rounds only, since a busy round measures the request queue, not the model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import random
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from evals.bench_log import default_log_path, read_log, summarise_log  # noqa: F401 - summarise_log re-exported
from evals.runner import evaluate_model

log = logging.getLogger(__name__)

LOG_FIELDS = ("timestamp", "round", "backend", "model_version", "n", "accuracy", "p50_ms", "p99_ms", "device", "error",
              "concurrent_requests")
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"banking-assistant benchmark round").digest()[:8], "big",
                                   signed=True)
"""The PostgreSQL advisory lock (a signed 64-bit key) held by the worker running a round."""


def probe_set(settings: Any, size: int | None = None) -> tuple[list[str], list[str]]:
    """Seeded sample (``settings.seed``) of ``size`` (default ``settings.bench_size``) rows of
    the validation split, in validation order. Raises ``training.data.DataError``."""
    from training.data import load_banking77

    data = load_banking77(settings)
    n = min(size or settings.bench_size, len(data.validation))
    idx = sorted(random.Random(settings.seed).sample(range(len(data.validation)), n))
    return [data.validation.texts[i] for i in idx], [data.validation.labels[i] for i in idx]


def rss_mb() -> float:
    """Resident memory of this process, MiB (psutil)."""
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def probe_fields(arm: str, rep: Any) -> dict[str, Any]:
    """The per-arm fields of a probe row for ``rep`` (an ``evals.runner.BackendReport`` of
    ``arm``): kind, arm, backend (the arm's backend part), rss_mb, cost_per_1k_usd,
    escalation_rate."""
    r = lambda x, nd: None if x is None else round(float(x), nd)  # noqa: E731
    return {"kind": "probe", "arm": arm, "backend": arm.partition("@")[0], "rss_mb": rss_mb(),
            "cost_per_1k_usd": r(rep.cost_per_1k_usd, 6), "escalation_rate": r(rep.escalation_rate, 4)}


class LiveLog:
    """Appends live and shadow rows (the events of ``chains.live.add_listener``) to the
    scheduler's log, as JSON lines with a UTC ``timestamp``; fields as in the module docstring.
    Call it with one event dict; thread-safe (``BenchmarkScheduler.append``)."""

    FIELDS = ("kind", "arm", "backend", "model_version", "intent", "confidence", "action", "latency_ms",
              "against", "answered_intent", "agree", "error")

    def __init__(self, scheduler: "BenchmarkScheduler") -> None:
        self.scheduler = scheduler

    def __call__(self, event: dict[str, Any]) -> None:
        row = {"timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        row.update({k: event[k] for k in self.FIELDS if k in event})
        self.scheduler.append([row])


class RoundLock:
    """One benchmark round at a time across every worker process (and machine) of a deployment.

    ``database_url``: the app's database. PostgreSQL: a session-level advisory lock
    (``pg_try_advisory_lock(ADVISORY_LOCK_KEY)``) on a connection held for the round, so every
    worker on that database shares it, and a crashed worker's lock goes with its connection.
    Otherwise (SQLite: one machine, one worker): an exclusive ``flock`` on ``lock_path``.
    Never waits: :meth:`hold` yields False when another worker holds it.
    """

    def __init__(self, database_url: str | None, lock_path: Path) -> None:
        self.database_url = database_url or ""
        self.lock_path = Path(lock_path)

    @property
    def uses_postgres(self) -> bool:
        """True when the lock is a PostgreSQL advisory lock."""
        return self.database_url.startswith("postgresql")

    @contextlib.contextmanager
    def hold(self) -> Iterator[bool]:
        """Try to take the lock; yields True (held until the block ends) or False (someone else has it)."""
        if self.uses_postgres:
            from sqlalchemy import text

            from bank.store import make_engine

            with make_engine(self.database_url).connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar())
                try:
                    yield got
                finally:
                    if got:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


class BenchmarkScheduler:
    """Counts requests and runs a background benchmark round every ``settings.bench_every``.

    Args:
        settings: the app ``Settings`` (``bench_every``, ``bench_size``, ``seed``, ``home``, data).
        get_models: called at the start of each round (in the background thread); returns
            name -> ``IntentChatModel`` of the backends to measure (the available ones).
        log_path: JSONL log (default ``default_log_path(settings)``).
        latency_sample: single queries timed per backend per round (default 50).
        round_lock: the cross-worker lock (default: :class:`RoundLock` on the settings'
            database, or ``<log>.lock``).

    Thread-safe. Round numbers continue from the last round found in the log.
    """

    def __init__(self, settings: Any, get_models: Callable[[], Mapping[str, Any]],
                 log_path: Path | None = None, latency_sample: int = 50,
                 round_lock: RoundLock | None = None) -> None:
        self.settings = settings
        self.every = int(getattr(settings, "bench_every", 0) or 0)
        self.size = int(settings.bench_size)
        self.get_models = get_models
        self.log_path = Path(log_path) if log_path else default_log_path(settings)
        self.latency_sample = latency_sample
        self.round_lock = round_lock or RoundLock(getattr(settings, "resolved_database_url", None),
                                                  self.log_path.with_suffix(".lock"))
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._count = 0
        self._thread: threading.Thread | None = None
        self._probe: tuple[list[str], list[str]] | None = None
        self._round = max((int(r.get("round", 0) or 0) for r in read_log(self.log_path)), default=0)
        self.rounds_started = 0
        self.rounds_skipped = 0

    @property
    def requests_seen(self) -> int:
        """Requests counted so far by this scheduler."""
        return self._count

    def record_request(self) -> bool:
        """Count one request; on every N-th, start a round in a daemon thread unless one is
        running in this worker. Returns True when this call started a round thread (which skips
        the round when another worker holds the :class:`RoundLock`). Never blocks on the round."""
        if self.every <= 0:
            return False
        with self._lock:
            self._count += 1
            if self._count % self.every:
                return False
            if self._thread is not None and self._thread.is_alive():
                self.rounds_skipped += 1
                log.info("benchmark: round still running, trigger at request %d skipped", self._count)
                return False
            self.rounds_started += 1
            self._thread = threading.Thread(target=self._safe_round, name="benchmark-round", daemon=True)
            self._thread.start()
            return True

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Wait until no round is running; True if idle within ``timeout_s`` seconds."""
        t = self._thread
        if t is not None:
            t.join(timeout_s)
            return not t.is_alive()
        return True

    def _safe_round(self) -> None:
        try:
            self.run_round()
        except Exception:  # noqa: BLE001 - a background thread must not die noisily
            log.exception("benchmark round failed")

    def _next_round(self) -> int:
        """The next round number: after this scheduler's last and the log's last (other workers
        append to the same log)."""
        with self._lock:
            self._round = max(self._round, max((int(r.get("round", 0) or 0) for r in read_log(self.log_path)),
                                               default=0)) + 1
            return self._round

    def run_round(self, round_no: int | None = None) -> list[dict[str, Any]]:
        """Run one round now (in the calling thread) under the :class:`RoundLock` and append its
        lines; returns them. Returns [] (and counts ``rounds_skipped``) when another worker is
        running a round. ``round_no`` default: the next number after the log's last."""
        with self.round_lock.hold() as held:
            if not held:
                with self._lock:
                    self.rounds_skipped += 1
                log.info("benchmark: another worker is running a round; this one is skipped")
                return []
            round_no = round_no if round_no is not None else self._next_round()
            seen_at_start = self._count
            rows = self._measure(round_no)
            busy = self._count - seen_at_start
            for row in rows:
                row["concurrent_requests"] = busy
            self.append(rows)
            return rows

    def _measure(self, round_no: int) -> list[dict[str, Any]]:
        try:
            if self._probe is None:
                self._probe = probe_set(self.settings, self.size)
            texts, labels = self._probe
            models = dict(self.get_models())
        except Exception as e:  # noqa: BLE001 - data or backend lookup failed: log it as a row
            return [self._row(round_no, "*", "unknown", 0, None, None, None, "unknown", f"{type(e).__name__}: {e}")]
        rows: list[dict[str, Any]] = []
        for name, model in models.items():
            rep = evaluate_model(model, texts, labels, name=name, latency_sample=self.latency_sample,
                                 seed=self.settings.seed, progress=False, top_confused=0)
            rows.append(self._row(round_no, name, rep.model_version, rep.n, rep.accuracy,
                                  rep.p50_ms, rep.p99_ms, rep.device, rep.error))
            rows[-1].update(probe_fields(name, rep))
        return rows

    @staticmethod
    def _row(round_no, backend, version, n, acc, p50, p99, device, error) -> dict[str, Any]:
        r = lambda x, nd: None if x is None else round(float(x), nd)  # noqa: E731
        return {"timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "round": round_no, "backend": backend, "model_version": version, "n": n,
                "accuracy": r(acc, 4), "p50_ms": r(p50, 3), "p99_ms": r(p99, 3),
                "device": device, "error": error, "concurrent_requests": 0}

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Append rows as JSON lines (one write + flush per round, under a lock)."""
        if not rows:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        with self._write_lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
