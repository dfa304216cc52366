"""Aborted ``/assistant/stream`` requests on a real uvicorn server (issue 20).

The fault: the graph's synchronous stream was advanced with ``run_in_threadpool(next, ...)`` and
never closed when the client went away; garbage collection later finished the generator inside
a thread holding the checkpointer's lock, which then waited for checkpoint writes needing that
same lock, until every worker thread was blocked (``/health`` and ``/assistant/invoke`` stopped
answering, SIGTERM did not stop the server) and ~3 threads leaked per aborted stream.

Here a real server (its own process, the fake intent backend of tests/fake_backend.py, the
seeded demo bank) gets 200 streams that the client closes right after their first event, some
one by one and most concurrently; then a normal turn must answer, ``/health`` must answer, the
server's thread count and RSS (psutil on its pid) must be back near the baseline, and SIGTERM
must stop it within a few seconds. Runs on SQLite and on PostgreSQL (``db_url``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from db_backends import db_url  # noqa: F401 - fixture
from servers import free_port, running_server

REPO = Path(__file__).resolve().parent.parent
ALICE = {"Authorization": "Bearer demo-alice-key"}
ABORTED = 200
CONCURRENT = 50
THREAD_SLACK = 60
"""Threads the server may have above its warmed-up baseline after the aborted streams: the
stream workers (a fixed pool) plus AnyIO's idle worker threads. The fault left ~600 more."""
RSS_SLACK_MB = 80

LAUNCHER = """
import sys
sys.path.insert(0, {tests!r})
import uvicorn
from fake_backend import FakeIntentModel
from chains.backends import get_backend
from bank.seed import seed_demo
from bank.store import create_schema, get_engine
from assistant.app import create_app

create_schema(get_engine())
seed_demo(get_engine(), reset=True)
sys.modules[get_backend.__module__]._instances["custom"] = FakeIntentModel()  # where get_backend keeps them
uvicorn.run(create_app(), host="127.0.0.1", port={port}, log_level="warning")
"""


async def _abort_after(client: httpx.AsyncClient, message: str, event: str) -> str | None:
    """Open one stream, read up to its first ``event:`` line named ``event`` (``metadata``, sent
    before the graph starts, or ``data``, an answer chunk sent while the graph runs), close the
    connection."""
    async with client.stream("POST", "/assistant/stream", headers=ALICE,
                             json={"input": {"message": message}}) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("event:") and line[6:].strip() in (event, "end"):
                return line[6:].strip()
    return None


async def _abort_streams(url: str) -> list[str | None]:
    """ABORTED streams: the first 10 one after the other, then the rest CONCURRENT at a time.
    Each stream gets a fresh connection (closing a half-read response drops it)."""
    messages = ["what is the exchange rate for euros?", "where is my new card", "hello", "I lost my card"]
    events = ["data", "data", "metadata"]
    seen: list[str | None] = []
    async with httpx.AsyncClient(base_url=url, timeout=30,
                                 limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for i in range(10):
            seen.append(await _abort_after(client, messages[i % len(messages)], events[i % len(events)]))
        for start in range(10, ABORTED, CONCURRENT):
            n = min(CONCURRENT, ABORTED - start)
            seen += await asyncio.gather(*(_abort_after(client, messages[(start + k) % 4], events[(start + k) % 3])
                                           for k in range(n)))
    return seen


def _settled(proc: psutil.Process, ceiling: int, timeout_s: float = 20.0) -> int:
    """The server's thread count, once it is at or under ``ceiling`` (or after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        n = proc.num_threads()
        if n <= ceiling or time.monotonic() > deadline:
            return n
        time.sleep(0.5)


def test_aborted_streams_leave_the_server_answering(db_url, tmp_path):  # noqa: F811 - fixture
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    launcher = tmp_path / "serve_fake.py"
    launcher.write_text(LAUNCHER.format(tests=str(REPO / "tests"), port=port))
    env = {**os.environ, "BANKING_HOME": str(tmp_path / "home"), "BANKING_DATABASE_URL": db_url,
           "BANKING_RATE_LIMIT_PER_MINUTE": "0", "BANKING_BENCH_EVERY": "0", "BANKING_TORCH_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with running_server([sys.executable, str(launcher)], f"{url}/health", tmp_path / "server.log", env,
                        cwd=REPO, timeout_s=180) as server:
        proc = psutil.Process(server.pid)
        # Warm up: one finished stream and one turn, so the pools have their threads.
        with httpx.Client(base_url=url, timeout=30) as c:
            with c.stream("POST", "/assistant/stream", headers=ALICE,
                          json={"input": {"message": "what is the exchange rate for euros?"}}) as r:
                assert r.status_code == 200 and "event: end" in r.read().decode()
            assert c.post("/assistant/invoke", headers=ALICE, json={"input": {"message": "hello"}}).status_code == 200
        time.sleep(1)
        threads0, rss0 = proc.num_threads(), proc.memory_info().rss

        seen = asyncio.run(_abort_streams(url))
        assert len(seen) == ABORTED and set(seen) == {"metadata", "data"}, set(seen)

        with httpx.Client(base_url=url, timeout=20) as c:
            r = c.post("/assistant/invoke", headers=ALICE, json={"input": {"message": "where is my new card"}})
            assert r.status_code == 200, r.text[:300]
            assert r.json()["output"]["intent"] == "card_arrival"
            assert c.get("/health").status_code == 200
            # The same conversation streams to the end after all those aborted turns.
            with c.stream("POST", "/assistant/stream", headers=ALICE, json={"input": {"message": "hello"}}) as r:
                body = r.read().decode()
            assert r.status_code == 200 and "event: data" in body and "event: end" in body, body[-300:]
        threads = _settled(proc, threads0 + THREAD_SLACK)
        rss_mb = (proc.memory_info().rss - rss0) / 2**20
        print(f"threads {threads0} -> {threads}, RSS +{rss_mb:.0f} MB")
        assert threads <= threads0 + THREAD_SLACK, f"{threads0} threads before, {threads} after {ABORTED} aborted streams"
        assert rss_mb <= RSS_SLACK_MB, f"RSS grew by {rss_mb:.0f} MB"

        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not stop the server within 10 s")
        assert time.monotonic() - started < 10
