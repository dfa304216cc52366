"""Starting a real server process on loopback for a test and stopping it afterwards."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(
    cmd: Sequence[str],
    ready_url: str,
    log_path: Path,
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    timeout_s: float = 120.0,
    new_session: bool = False,
) -> Iterator[subprocess.Popen]:
    """Start ``cmd`` (output to ``log_path``), wait until GET ``ready_url`` answers 200, yield the
    process, then terminate it (kill after 30 s). Fails the test with the log's tail if the
    process exits or is not ready within ``timeout_s`` seconds."""
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=new_session)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{cmd[0]} exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}")
            with suppress(httpx.HTTPError):  # not listening yet
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{cmd[0]} not ready in {timeout_s:.0f} s:\n{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
