"""The ``db_url`` fixture: every test that uses it runs once on SQLite and once on PostgreSQL.

SQLite: a fresh file under the test's tmp_path. PostgreSQL: a fresh database, created for the
test on the server of ``BANKING_TEST_POSTGRES_URL`` (``.ci/run`` starts a throw-away cluster with
``scripts/pg_test_cluster.sh`` and exports it) and dropped afterwards. Without that variable the
PostgreSQL variant is skipped locally, and FAILS when ``CI=true``: CI must run it.

Import it into a test module with ``from db_backends import db_url  # noqa: F401``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL_ENV = "BANKING_TEST_POSTGRES_URL"


def postgres_server_url() -> str | None:
    """The PostgreSQL server URL for tests, or None (skip locally, ``pytest.fail`` under ``CI=true``)."""
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {POSTGRES_URL_ENV} is not set: the PostgreSQL tests must run in CI "
                    "(start the cluster with `eval \"$(bash scripts/pg_test_cluster.sh start)\"`)")
    return None


def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database on the test server, yield its SQLAlchemy URL, drop it after."""
    from bank.store import dispose_engine

    server = postgres_server_url()
    if server is None:
        pytest.skip(f"{POSTGRES_URL_ENV} not set (CI sets it; see scripts/pg_test_cluster.sh)")
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        try:
            yield url
        finally:
            dispose_engine(url)
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty bank database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        from bank.store import dispose_engine

        url = f"sqlite:///{tmp_path / 'bank.db'}"
        yield url
        dispose_engine(url)
    else:
        yield from fresh_postgres_database()
