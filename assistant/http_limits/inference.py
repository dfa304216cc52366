"""Bound how many intent-model calls run at once, in arrival order.

``bounded(runnable, n)`` wraps a runnable (the intent chain) so every call, sync or async, is
queued on a FIFO work queue served by ``n`` threads. A burst of requests, or one batch, waits
its turn instead of running dozens of forward passes at once on a few cores; a ``batch`` call
is one job (one forward pass for local models), so it holds one slot, not one per item.
Queue discipline: ``concurrent.futures.ThreadPoolExecutor``'s FIFO work queue.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel

_worker = threading.local()


class BoundedRunnable(Runnable[Any, Any]):
    """A runnable whose calls run on at most ``max_concurrent`` threads at once; the rest wait
    in arrival order. Types, schemas and configurable fields (e.g. ``backend``) are those of
    ``bound``; the config is passed through unchanged. A call made from inside a running call
    runs directly (no deadlock on re-entry). Exceptions of ``bound`` propagate unchanged.

    ``pending``: calls queued or running now (int), e.g. to tell whether the server is busy.
    """

    def __init__(self, bound: Runnable, max_concurrent: int) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        self.bound = bound
        self.max_concurrent = max_concurrent
        self.name = bound.get_name()
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="inference")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Calls queued or running at this moment."""
        return self._pending

    def _submit(self, fn: Callable[[], Any]) -> Future:
        ctx = contextvars.copy_context()  # keep callbacks/tracing context of the caller

        def job() -> Any:
            _worker.active = True
            try:
                return ctx.run(fn)
            finally:
                _worker.active = False
                with self._lock:
                    self._pending -= 1

        with self._lock:
            self._pending += 1
        return self._pool.submit(job)

    def _call(self, fn: Callable[[], Any]) -> Any:
        if getattr(_worker, "active", False):
            return fn()
        return self._submit(fn).result()

    async def _acall(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.wrap_future(self._submit(fn))

    # --- Runnable interface -------------------------------------------------------------
    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call(partial(self.bound.invoke, input, config, **kwargs))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._acall(partial(self.bound.invoke, input, config, **kwargs))

    def batch(self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        return self._call(partial(self.bound.batch, inputs, config, return_exceptions=return_exceptions, **kwargs))

    async def abatch(self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, *,
                     return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        return await self._acall(partial(self.bound.batch, inputs, config, return_exceptions=return_exceptions, **kwargs))

    @property
    def InputType(self) -> Any:  # noqa: N802 - LangChain's name
        return self.bound.InputType

    @property
    def OutputType(self) -> Any:  # noqa: N802 - LangChain's name
        return self.bound.OutputType

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return self.bound.get_input_schema(config)

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return self.bound.get_output_schema(config)

    @property
    def config_specs(self) -> list:
        return self.bound.config_specs


def bounded(runnable: Runnable, max_concurrent: int) -> BoundedRunnable:
    """``runnable`` with at most ``max_concurrent`` (>= 1) calls running at once, the rest queued
    first come, first served. Raises ``ValueError`` for ``max_concurrent < 1``."""
    return BoundedRunnable(runnable, max_concurrent)
