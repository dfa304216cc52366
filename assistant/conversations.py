"""The one holder of the conversation graph for every interface (HTTP, terminal, Chainlit UI).

An interface only translates its medium (an HTTP body, a terminal line, a Chainlit message or
button) into a request and back; everything else is here: the compiled graph and its
checkpointer (sync for the server and the CLI, async for the UI), thread ids, the graph input
and run config, running a turn, answering or reading a pending confirmation, and keeping the
storage bounded.

Storage (issue 17): a turn is run with LangGraph ``durability="exit"``: the checkpoint is
written once, when the run ends or stops at its confirmation interrupt, instead of after every
super-step; a confirmation waiting for an answer is therefore on disk before the customer sees
the question, and survives a restart. After each turn the thread is pruned to its latest
checkpoint (chains/retention.py), and opening the checkpointer sweeps conversations idle longer
than ``BANKING_CHECKPOINT_RETENTION_DAYS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.types import Command

from config.settings import get_settings
from bank.store import get_engine
from chains.assistant import AssistantInput, AssistantOutput
from chains.checkpoint import (
    apending_confirmation, open_async_checkpointer, open_checkpointer, pending_confirmation,
)
from chains.graph import build_graph, graph_input, turn_output
from chains.retention import aprune_thread, prune_thread, sweep

log = logging.getLogger(__name__)

DURABILITY = "exit"
"""LangGraph durability mode of every turn (see the module docstring for why)."""


def thread_id(interface: str, customer_id: int, conversation: str) -> str:
    """The graph thread of one conversation: ``<interface>-<customer id>-<conversation>`` (e.g.
    ``api-1-default``, ``cli-2-<uuid>``, ``ui-<chainlit thread id>`` when ``customer_id`` is
    folded into the Chainlit id)."""
    return f"{interface}-{customer_id}-{conversation}"


def run_config(thread: str, customer_id: int, backend: str | None = None, **extra: Any) -> dict[str, Any]:
    """The run config of a turn: the thread, the authenticated customer, the request's backend
    (omitted when None: the default backend answers)."""
    conf: dict[str, Any] = {"thread_id": thread, "customer_id": int(customer_id)}
    if backend:
        conf["backend"] = backend
    return {"configurable": conf, **extra}


class Conversations:
    """The compiled graph with its checkpointer, opened on first use and closed by
    :meth:`close`/:meth:`aclose`. ``intent_chain``: default the configurable intent chain
    (chains/intent.py); the server passes its bounded one, tests a fake backend."""

    def __init__(self, intent_chain: Runnable | None = None) -> None:
        self._intent_chain = intent_chain
        self._stack = contextlib.ExitStack()
        self._astack = contextlib.AsyncExitStack()
        self._graph: Any = None
        self._agraph: Any = None
        self._saver: Any = None
        self._asaver: Any = None
        self._lock = threading.Lock()
        self._alock = asyncio.Lock()

    # ------------------------------------------------------------------ open / close
    def graph(self) -> Any:
        """The graph with the synchronous checkpointer (opened, and swept, the first time)."""
        with self._lock:
            if self._graph is None:
                self._saver = self._stack.enter_context(open_checkpointer())
                self._sweep(self._saver)
                self._graph = build_graph(checkpointer=self._saver, intent_chain=self._intent_chain)
            return self._graph

    async def agraph(self) -> Any:
        """The graph with the asynchronous checkpointer (for the UI's event loop)."""
        async with self._alock:
            if self._agraph is None:
                self._asaver = await self._astack.enter_async_context(open_async_checkpointer())
                self._agraph = build_graph(checkpointer=self._asaver, intent_chain=self._intent_chain)
            return self._agraph

    def close(self) -> None:
        """Close the synchronous checkpointer (a later call reopens it)."""
        with self._lock:
            self._stack.close()
            self._graph = self._saver = None

    async def aclose(self) -> None:
        """Close the asynchronous checkpointer."""
        async with self._alock:
            await self._astack.aclose()
            self._agraph = self._asaver = None

    @staticmethod
    def _sweep(saver: Any) -> None:
        try:
            gone = sweep(saver, get_engine(), get_settings().checkpoint_retention_days)
            if gone:
                log.info("retention sweep deleted %d idle conversations", len(gone))
        except Exception:  # noqa: BLE001 - a failed sweep must not stop the assistant; it runs again next start
            log.exception("retention sweep failed")

    def sweep(self) -> list[str]:
        """Delete conversations idle longer than the retention setting now; returns their ids."""
        self.graph()
        return sweep(self._saver, get_engine(), get_settings().checkpoint_retention_days)

    # ------------------------------------------------------------------ turns (sync)
    def invoke(self, payload: Any, config: RunnableConfig) -> dict[str, Any]:
        """Run one turn (graph input, or ``Command(resume=...)``) and prune the thread; returns
        the final state. Raises the graph's domain errors (chains/graph.py ``build_graph``)."""
        graph = self.graph()
        try:
            return graph.invoke(payload, config, durability=DURABILITY)
        finally:
            prune_thread(self._saver, config["configurable"]["thread_id"])

    def stream(self, payload: Any, config: RunnableConfig, modes: list[str]) -> Iterator[tuple[str, Any]]:
        """Run one turn as LangGraph ``(mode, data)`` stream items. The caller must drive and
        close the generator in one thread (its ``finally`` closes LangGraph's stream there and
        prunes the thread)."""
        stream = self.graph().stream(payload, config, stream_mode=modes, durability=DURABILITY)
        try:
            yield from stream
        finally:
            stream.close()
            prune_thread(self._saver, config["configurable"]["thread_id"])

    def say(self, req: AssistantInput, config: RunnableConfig) -> AssistantOutput:
        """One turn of ``req``; its :class:`AssistantOutput`."""
        return turn_output(self.invoke(graph_input(req), config))

    def resume(self, value: Any, config: RunnableConfig) -> AssistantOutput:
        """Answer the confirmation the thread is stopped at (True/False, ``{"approve": bool}`` or
        the customer's reply text)."""
        return turn_output(self.invoke(Command(resume=value), config))

    def pending(self, config: RunnableConfig) -> dict[str, Any] | None:
        """The confirmation the thread is waiting for, or None."""
        return pending_confirmation(self.graph(), config)

    # ------------------------------------------------------------------ turns (async)
    async def astream(self, payload: Any, config: RunnableConfig, modes: list[str]) -> AsyncIterator[tuple[str, Any]]:
        """Async :meth:`stream` (the UI)."""
        graph = await self.agraph()
        stream = graph.astream(payload, config, stream_mode=modes, durability=DURABILITY)
        try:
            async for item in stream:
                yield item
        finally:
            await stream.aclose()
            await aprune_thread(self._asaver, config["configurable"]["thread_id"])

    async def apending(self, config: RunnableConfig) -> dict[str, Any] | None:
        """Async :meth:`pending`."""
        return await apending_confirmation(await self.agraph(), config)
