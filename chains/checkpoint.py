"""The thread memory of the conversation graph: one checkpointer policy, sync and async.

:func:`saver_spec` decides once where checkpoints live (PostgreSQL when the bank's database URL
is PostgreSQL, else ``<BANKING_HOME>/graph/checkpoints.sqlite``);
:func:`open_checkpointer` and :func:`open_async_checkpointer` open that place with LangGraph's
savers, create their tables (retried through tenacity when two workers create them at once) and
set the serializer's allowlist to the state's own types (chains/state.py ``STATE_TYPES``).
:func:`pending_confirmation` reads the question a thread is stopped at.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from tenacity import AsyncRetrying, Retrying, retry_if_exception, stop_after_attempt, wait_incrementing

from config.settings import get_settings
from chains.state import STATE_TYPES

SETUP_ATTEMPTS = 5


def checkpoint_path() -> Path:
    """The default SQLite checkpoint file: ``<BANKING_HOME>/graph/checkpoints.sqlite``."""
    return get_settings().home / "graph" / "checkpoints.sqlite"


@dataclass(frozen=True)
class SaverSpec:
    """Where checkpoints live: ``kind`` "postgres" (``target``: a libpq URL) or "sqlite"
    (``target``: a file path)."""

    kind: str
    target: str


def saver_spec() -> SaverSpec:
    """The checkpointer of this deployment (see the module docstring)."""
    url = get_settings().resolved_database_url
    if url.startswith(("postgresql", "postgres")):
        # SQLAlchemy URLs name the driver ("postgresql+psycopg://"); libpq wants "postgresql://".
        return SaverSpec("postgres", "postgresql://" + url.split("://", 1)[1])
    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return SaverSpec("sqlite", str(path))


def _module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as e:  # pragma: no cover - depends on the optional package
        raise RuntimeError("BANKING_DATABASE_URL is PostgreSQL: install the checkpointer with "
                           "`pip install langgraph-checkpoint-postgres`") from e


def _is_setup_race(exc: BaseException) -> bool:
    """True for the errors two processes get when both create the checkpointer's tables at once
    (PostgreSQL's duplicate type/relation on ``CREATE TABLE IF NOT EXISTS``)."""
    return type(exc).__name__ in ("UniqueViolation", "DuplicateTable", "DuplicateObject")


SETUP_RETRIES: dict[str, Any] = {"retry": retry_if_exception(_is_setup_race), "stop": stop_after_attempt(SETUP_ATTEMPTS),
                                 "wait": wait_incrementing(start=0.2, increment=0.2), "reraise": True}
"""tenacity arguments for the savers' idempotent ``setup()``: retried (up to
:data:`SETUP_ATTEMPTS` times, 0.2 s more wait each time) when another worker creating the same
tables at the same moment makes it fail. A lock is no help here: the migrations use
``CREATE INDEX CONCURRENTLY``, which waits for every open statement, a waiting lock included."""


def serializer() -> JsonPlusSerializer:
    """LangGraph's serializer allowed to rebuild the state's pydantic types (and nothing else
    beyond its built-in safe types)."""
    return JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES)


_SAVERS = {("postgres", False): ("langgraph.checkpoint.postgres", "PostgresSaver"),
           ("postgres", True): ("langgraph.checkpoint.postgres.aio", "AsyncPostgresSaver"),
           ("sqlite", False): ("langgraph.checkpoint.sqlite", "SqliteSaver"),
           ("sqlite", True): ("langgraph.checkpoint.sqlite.aio", "AsyncSqliteSaver")}


def _saver_class(spec: SaverSpec, is_async: bool) -> Any:
    module, name = _SAVERS[(spec.kind, is_async)]
    return getattr(_module(module), name)


@contextmanager
def open_checkpointer() -> Iterator[Any]:
    """A synchronous checkpointer (see :func:`saver_spec`), tables created; closed on exit."""
    spec = saver_spec()
    with _saver_class(spec, False).from_conn_string(spec.target) as saver:
        saver.serde = serializer()
        Retrying(**SETUP_RETRIES)(saver.setup)
        yield saver


@asynccontextmanager
async def open_async_checkpointer() -> AsyncIterator[Any]:
    """The asynchronous counterpart of :func:`open_checkpointer` (for ``ainvoke``/``astream``)."""
    spec = saver_spec()
    async with _saver_class(spec, True).from_conn_string(spec.target) as saver:
        saver.serde = serializer()
        await AsyncRetrying(**SETUP_RETRIES)(saver.setup)
        yield saver


def _first_interrupt(snap: Any) -> dict[str, Any] | None:
    for intr in getattr(snap, "interrupts", ()) or ():
        return intr.value
    return None


def pending_confirmation(graph: Any, config: RunnableConfig) -> dict[str, Any] | None:
    """The confirmation a thread is waiting for (``{action_id, action, description, question}``),
    or None. ``config`` carries the ``thread_id``."""
    return _first_interrupt(graph.get_state(config))


async def apending_confirmation(graph: Any, config: RunnableConfig) -> dict[str, Any] | None:
    """Async :func:`pending_confirmation`."""
    return _first_interrupt(await graph.aget_state(config))
