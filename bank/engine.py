"""Engines, transactions and set-up of the bank's SQL database (SQLAlchemy 2.0).

SQLite is the default (a file under ``Settings.home``); PostgreSQL works through its URL
(``BANKING_DATABASE_URL=postgresql+psycopg://...``). The schema is created by the app with
:func:`create_schema` (``Base.metadata.create_all`` of every bank table), so there are
no migrations to run. One engine per URL and process is cached (:func:`make_engine`).
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bank.columns import Base

__all__ = ["make_engine", "dispose_engine", "create_schema", "setup_lock", "session_scope", "get_engine",
           "SETUP_LOCK_KEY"]


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    # Write-ahead log: one fsync per commit instead of two (journal + database); synchronous
    # stays FULL, so a committed payment survives a power cut.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


_SCHEMA_READY: set[str] = set()


def make_engine(url: str) -> Engine:
    """Return the (cached, one per URL) SQLAlchemy engine for ``url``.

    SQLite engines get ``check_same_thread=False`` (the web server uses threads) and
    ``PRAGMA foreign_keys=ON`` plus a 5 s busy timeout on every connection. The folder of a
    SQLite file is created if missing. Raises ``sqlalchemy.exc.ArgumentError`` for a malformed URL.
    """
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        parsed = make_url(url)
        kwargs: dict[str, Any] = {"future": True}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False}
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(url, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        _ENGINES[url] = engine
        return engine


def dispose_engine(url: str) -> None:
    """Close every pooled connection of the cached engine for ``url`` and forget it (tests and
    shutdown; a later :func:`make_engine` call creates a new engine)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(url, None)
        _SCHEMA_READY.discard(url)
    if engine is not None:
        engine.dispose()


SETUP_LOCK_KEY = 0x62616E6B5F736574
"""The PostgreSQL advisory lock key (signed 64-bit) of schema creation and demo seeding."""
_SETUP_HELD = threading.local()


@contextmanager
def setup_lock(engine: Engine) -> Iterator[None]:
    """Serialise set-up work (schema creation, demo seeding) between threads, processes and machines.

    PostgreSQL: the session advisory lock ``SETUP_LOCK_KEY`` on a connection of its own; a SQLite
    file: an exclusive ``flock`` on ``<database>.setup-lock``; in-memory SQLite: nothing. Blocks
    until the lock is free, so workers starting together on a fresh database neither race on
    ``CREATE TABLE`` nor insert the demo rows twice. Re-entrant within a thread.
    """
    if getattr(_SETUP_HELD, "depth", 0):
        _SETUP_HELD.depth += 1
        try:
            yield
        finally:
            _SETUP_HELD.depth -= 1
        return
    with ExitStack() as stack:
        if engine.dialect.name == "postgresql":
            conn = stack.enter_context(engine.connect()).execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": SETUP_LOCK_KEY})
            stack.callback(conn.execute, text("SELECT pg_advisory_unlock(:k)"), {"k": SETUP_LOCK_KEY})
        elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            f = stack.enter_context(open(f"{engine.url.database}.setup-lock", "a"))
            fcntl.flock(f, fcntl.LOCK_EX)
            stack.callback(fcntl.flock, f, fcntl.LOCK_UN)
        _SETUP_HELD.depth = 1
        try:
            yield
        finally:
            _SETUP_HELD.depth = 0


def create_schema(engine: Engine) -> None:
    """Create every bank table that does not exist yet (idempotent; safe when several processes
    start at once: see :func:`setup_lock`)."""
    with setup_lock(engine):  # every table is on Base: the bank package imports them all (bank/__init__.py)
        Base.metadata.create_all(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One ORM session = one transaction: commits on success, rolls back on any exception.

    Objects stay readable after the commit (``expire_on_commit=False``).
    """
    session = Session(engine, expire_on_commit=False)
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def get_engine(settings=None, *, create: bool = True) -> Engine:
    """The engine of ``settings.resolved_database_url`` (default: ``get_settings()``).

    With ``create=True`` (default) the schema is created if missing.
    """
    if settings is None:
        from config.settings import get_settings

        settings = get_settings()
    url = settings.resolved_database_url
    engine = make_engine(url)
    if create and url not in _SCHEMA_READY:
        create_schema(engine)  # once per URL and process: get_engine() sits on the request path
        _SCHEMA_READY.add(url)
    return engine
