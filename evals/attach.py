"""The automatic comparative benchmark, attached to a running app by the server's entry point
(assistant/app.py), so the live server itself never imports this offline harness.

:func:`attach_benchmarks` adds to a FastAPI app built by ``assistant.server.create_app``:

- a request hook: every ``BANKING_BENCH_EVERY``-th assistant/classify call starts a background
  benchmark round (evals/benchmark.py ``BenchmarkScheduler``);
- with the benchmark, a rollout or a shadow configured, a listener writing live and shadow rows
  to the benchmark log (chains/live.py);
- ``GET /benchmarks``: the log summarised per backend (the given operator dependency).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from chains.backends import available_backends, get_backend
from chains.live import add_listener, remove_listener
from chains.policies import arm_models
from evals.benchmark import BenchmarkScheduler, LiveLog, summarise_log


def benchmark_models() -> dict[str, Any]:
    """name -> model for every available backend and every configured arm (the benchmarked set)."""
    return {**{n: get_backend(n) for n, v in available_backends().items() if v["available"]}, **arm_models()}


def attach_benchmarks(app: FastAPI, settings: Any, require_operator: Callable[..., Any]) -> BenchmarkScheduler:
    """Attach the benchmark to ``app`` (see the module docstring); returns its scheduler, also
    kept as ``app.state.benchmarks``."""
    scheduler = BenchmarkScheduler(settings, get_models=benchmark_models)
    app.state.request_hooks.append(scheduler.record_request)
    if scheduler.every or settings.rollout or settings.shadow:  # live and shadow rows in the benchmark log
        live_log = LiveLog(scheduler)
        add_listener(live_log)
        app.router.add_event_handler("shutdown", lambda: remove_listener(live_log))
    router = APIRouter()

    @router.get("/benchmarks")
    def benchmarks(_: Any = Depends(require_operator)) -> dict[str, Any]:
        """Summary of the benchmark log: one row per backend (operator key only)."""
        return {"every": scheduler.every, "log": str(scheduler.log_path), "backends": summarise_log(scheduler.log_path)}

    app.include_router(router)
    app.state.benchmarks = scheduler
    return scheduler
