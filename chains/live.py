"""Live traffic: the listeners told about each live classification, and the shadow runner.

:func:`add_listener` registers an observer of every answer the served intent chain
(chains/routing.py) gives and of every shadow comparison (the server attaches the benchmark log
and the Prometheus metrics). A shadow arm (``BANKING_SHADOW``) runs on the same input in the
background on :data:`SHADOW` (never answering) and its agreement with the answering arm is
reported as a ``"shadow"`` event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from chains.guard import guard

log = logging.getLogger(__name__)

_listeners: list[Callable[[dict[str, Any]], None]] = []


def add_listener(fn: Callable[[dict[str, Any]], None]) -> None:
    """Call ``fn(event)`` for every live classification and shadow comparison (once per ``fn``).

    Events: ``{"kind": "live", "arm", "backend", "model_version", "intent", "confidence",
    "action" (the guard's: route | clarify | out_of_scope | small_talk), "latency_ms"}`` and
    ``{"kind": "shadow", "arm" (the shadow arm), "backend", "model_version", "intent",
    "confidence", "latency_ms", "against" (the answering arm), "answered_intent", "agree": bool}``
    (``"error"`` instead of the prediction when the shadow arm failed). Runs on the request's
    thread (live) or the shadow thread; exceptions are logged, never raised."""
    if fn not in _listeners:
        _listeners.append(fn)


def remove_listener(fn: Callable[[dict[str, Any]], None]) -> None:
    """Stop calling ``fn`` (no error when it was not registered)."""
    if fn in _listeners:
        _listeners.remove(fn)


def notify(event: dict[str, Any]) -> None:
    """Give ``event`` to every listener; a listener's exception is logged, never raised."""
    for fn in list(_listeners):
        try:
            fn(event)
        except Exception:  # noqa: BLE001 - observers must never break an answer
            log.exception("routing listener %r failed", fn)


def event_of(kind: str, arm: str, meta: dict[str, Any]) -> dict[str, Any]:
    """The listener event (see :func:`add_listener`) of ``kind`` ("live" or "shadow") for arm
    ``arm`` from an answer's ``response_metadata`` ``meta``; ``action`` is the guard's, or None
    when ``meta`` is not a full answer."""
    try:
        action = guard(meta).action
    except (KeyError, TypeError, ValueError):
        action = None
    return {"kind": kind, "arm": arm, "backend": meta.get("backend"), "model_version": meta.get("model_version"),
            "intent": meta.get("intent"), "confidence": meta.get("confidence"), "action": action,
            "latency_ms": meta.get("latency_ms")}


class ShadowRunner:
    """Runs shadow classifications on one background thread. At most ``max_pending`` wait;
    further ones are dropped (``dropped`` counts them) so shadow work never piles up."""

    def __init__(self, max_pending: int = 16) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._futures: set[Future] = set()
        self._lock = threading.Lock()
        self.dropped = 0

    def submit(self, fn: Callable[[], None]) -> bool:
        """Queue ``fn``; False (and ``dropped`` + 1) when ``max_pending`` are waiting already."""
        if not self._slots.acquire(blocking=False):
            self.dropped += 1
            return False

        def job() -> None:
            try:
                fn()
            finally:
                self._slots.release()

        fut = self._pool.submit(job)
        with self._lock:
            self._futures.add(fut)
        fut.add_done_callback(lambda f: self._discard(f))
        return True

    def _discard(self, fut: Future) -> None:
        with self._lock:
            self._futures.discard(fut)

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait for the queued shadow work; True when all finished within ``timeout_s`` seconds."""
        with self._lock:
            futs = list(self._futures)
        return not wait(futs, timeout=timeout_s).not_done


SHADOW = ShadowRunner()
"""The process's shadow runner."""
