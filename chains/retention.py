"""Bounded checkpoint storage: what resuming needs is kept, the rest is deleted.

A turn needs only its thread's latest checkpoint (with its pending writes: a confirmation the
thread is stopped at). :func:`prune_thread` keeps that and deletes every older checkpoint of the
thread after each turn, so a thread's storage does not grow with its length (PostgreSQL:
``PostgresSaver.prune(..., strategy="keep_latest")``, LangGraph's own; SQLite has no prune, so
the same rule is two DELETE statements here). :func:`sweep` deletes whole threads idle for
longer than ``BANKING_CHECKPOINT_RETENTION_DAYS`` (``delete_thread``, LangGraph's own), and the
transcript rows of the same age (bank/transcript.py). The graph uses no ``DeltaChannel``, so
keeping only the latest checkpoint loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from bank.store import utcnow
from bank.transcript import delete_before

_SQLITE_PRUNE = (
    "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id < "
    "(SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '')",
    "DELETE FROM writes WHERE thread_id = ? AND checkpoint_id NOT IN "
    "(SELECT checkpoint_id FROM checkpoints WHERE thread_id = ?)",
)


def _is_sqlite(saver: Any) -> bool:
    return type(saver).__name__ in ("SqliteSaver", "AsyncSqliteSaver")


def prune_thread(saver: Any, thread_id: str) -> None:
    """Keep only the latest checkpoint of ``thread_id`` (and its pending writes)."""
    if not _is_sqlite(saver):
        saver.prune([thread_id], strategy="keep_latest")
        return
    with saver.lock, saver.conn:  # one transaction, under the saver's own lock
        for sql in _SQLITE_PRUNE:
            saver.conn.execute(sql, (thread_id, thread_id))


async def aprune_thread(saver: Any, thread_id: str) -> None:
    """Async :func:`prune_thread` (AsyncSqliteSaver / AsyncPostgresSaver)."""
    if not _is_sqlite(saver):
        await saver.aprune([thread_id], strategy="keep_latest")
        return
    async with saver.lock:
        for sql in _SQLITE_PRUNE:
            await saver.conn.execute(sql, (thread_id, thread_id))
        await saver.conn.commit()


def idle_threads(checkpoints: Iterable[Any], cutoff: datetime) -> list[str]:
    """Thread ids whose newest checkpoint (``CheckpointTuple``s, any order) is older than
    ``cutoff`` (timezone-aware)."""
    newest: dict[str, datetime] = {}
    for t in checkpoints:
        tid = t.config["configurable"]["thread_id"]
        ts = datetime.fromisoformat(t.checkpoint["ts"])
        newest[tid] = max(ts, newest.get(tid, ts))
    return sorted(tid for tid, ts in newest.items() if ts < cutoff)


def sweep(saver: Any, engine: Engine, retention_days: float, *, now: datetime | None = None) -> list[str]:
    """Delete the threads idle for more than ``retention_days`` days and transcript turns as old;
    returns the deleted thread ids. A thread stopped at a confirmation is idle like any other:
    its proposal expired long before (15 minutes)."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    gone = idle_threads(saver.list(None), cutoff)
    for tid in gone:
        saver.delete_thread(tid)
    delete_before(engine, cutoff)
    return gone


_SQLITE_BYTES = ("SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints WHERE thread_id = ?",
                 "SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes WHERE thread_id = ?")
_POSTGRES_BYTES = (
    "SELECT COALESCE(SUM(pg_column_size(checkpoint) + pg_column_size(metadata)), 0) AS n FROM checkpoints WHERE thread_id = %s",
    "SELECT COALESCE(SUM(pg_column_size(blob)), 0) AS n FROM checkpoint_blobs WHERE thread_id = %s",
    "SELECT COALESCE(SUM(pg_column_size(blob)), 0) AS n FROM checkpoint_writes WHERE thread_id = %s")


def thread_storage_bytes(saver: Any, thread_id: str) -> int:
    """Bytes a (sync) saver stores for ``thread_id``: its checkpoints, blobs and pending writes
    (SQLite: ``LENGTH`` of the stored values; PostgreSQL: ``pg_column_size``)."""
    if _is_sqlite(saver):
        with saver.lock:
            return sum(int(saver.conn.execute(sql, (thread_id,)).fetchone()[0]) for sql in _SQLITE_BYTES)
    total = 0
    with saver._cursor() as cur:
        for sql in _POSTGRES_BYTES:
            cur.execute(sql, (thread_id,))
            total += int(cur.fetchone()["n"])
    return total
