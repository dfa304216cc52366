"""``banking-assistant serve --workers N`` as a real process on PostgreSQL, driven by
``benchmarks/load.py``; SQLite is refused; the load script refuses non-loopback hosts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from db_backends import fresh_postgres_database
from servers import free_port, running_server

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import load  # noqa: E402 - benchmarks/load.py


@pytest.fixture()
def pg_url():
    yield from fresh_postgres_database()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.slow
def test_two_workers_on_postgresql_answer_a_load(pg_url, trained_custom_model_dir, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "BANKING_DATABASE_URL": pg_url, "BANKING_RATE_LIMIT_PER_MINUTE": "0",
           "BANKING_BENCH_EVERY": "0", "BANKING_TORCH_THREADS": "1"}
    cmd = [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port), "--workers", "2"]
    with running_server(cmd, f"{url}/health", tmp_path / "server.log", env, cwd=REPO, timeout_s=300) as proc:
        workers = [p for p in _children(proc.pid)
                   if "multiprocessing" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
                   and "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
        assert len(workers) == 2
        res = asyncio.run(load.run_load(url, clients=4, seconds=5, max_requests=40, timeout=120))
    assert res["requests"] > 0 and res["errors"] == 0 and res["outcomes"] == {"200": res["requests"]}
    assert res["p50_ms"] <= res["p99_ms"] <= res["max_ms"]


def test_workers_need_postgresql(tmp_path):
    env = {**os.environ, "BANKING_HOME": str(tmp_path), "BANKING_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"}
    r = subprocess.run([sys.executable, "-m", "assistant.cli", "serve", "--workers", "2"], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "needs PostgreSQL" in " ".join(r.stderr.split())


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000", "http://[2001:db8::1]:8000", "ftp://127.0.0.1/",
                                 "http://no-such-host.invalid"])
def test_load_script_refuses_non_loopback(url):
    with pytest.raises(ValueError):
        load.require_loopback(url)
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "load.py"), "--url", url, "--seconds", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: ")
    assert load.require_loopback("http://127.0.0.1:8000") == "127.0.0.1"
    assert load.require_loopback("http://[::1]:8000") == "::1"
