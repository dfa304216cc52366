"""The HTTP edge over real sockets (issue 20): a real ``serve()`` process (uvicorn with the options
of assistant/http_limits/connections.py) on loopback, with the fake intent backend
(tests/fake_backend.py) registered as "custom" and a seeded SQLite bank in a temporary home.

- Slow clients: a request head or body trickled at 1 byte/s gets 408 and is closed within the
  configured bound (1 s head, 1.5 s body here), while normal requests still answer 200.
- Forwarded headers: a spoofed ``X-Forwarded-For``/``Forwarded`` from an untrusted loopback peer
  neither bypasses the failed-authentication throttle nor moves it onto another address; with
  the peer configured as a trusted proxy the forwarded address is the one throttled.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from servers import free_port, running_server

REPO = Path(__file__).resolve().parent.parent
ALICE = {"Authorization": "Bearer demo-alice-key"}
BOB = {"Authorization": "Bearer demo-bob-key"}
CLASSIFY = {"input": {"text": "where is my new card"}}
LAUNCHER = """
import sys
sys.path.insert(0, {tests!r})
from fake_backend import FakeIntentModel
import importlib
for name in ("models.registry", "chains.backends"):  # wherever the shared backend instances live
    module = importlib.import_module(name)
    if hasattr(module, "_instances"):
        module._instances["custom"] = FakeIntentModel()
from assistant.cli import ensure_database
ensure_database()
from assistant.server import serve
serve("127.0.0.1", {port})
"""


@contextmanager
def _server(tmp_path: Path, **settings: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BANKING_HOME": str(tmp_path), "BANKING_DATABASE_URL": f"sqlite:///{tmp_path / 'bank.db'}",
           "BANKING_BENCH_EVERY": "0", "BANKING_RATE_LIMIT_PER_MINUTE": "0",
           **{f"BANKING_{k}": v for k, v in settings.items()}}
    env.pop("FORWARDED_ALLOW_IPS", None)
    code = LAUNCHER.format(tests=str(REPO / "tests"), port=port)
    url = f"http://127.0.0.1:{port}"
    with running_server([sys.executable, "-c", code], f"{url}/health", tmp_path / "server.log", env, cwd=REPO):
        yield url


@pytest.fixture()
def server(tmp_path) -> Callable[..., Iterator[str]]:
    """``with server(VAR=value): ...`` starts a server with those BANKING_* settings."""
    return lambda **settings: _server(tmp_path, **settings)


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and the seconds that took."""
    start = time.monotonic()
    sock.settimeout(limit_s)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data, time.monotonic() - start
        data += chunk


def _trickle(sock: socket.socket, payload: bytes, limit_s: float) -> tuple[bytes, float, int]:
    """Send ``payload`` one byte per 0.25 s until the server answers or closes (or ``limit_s``
    passes): (what the server sent, seconds from the first byte until it closed, bytes sent)."""
    start = time.monotonic()
    sent = 0
    data = b""
    sock.settimeout(0.25)
    for byte in payload:
        try:
            sock.sendall(bytes([byte]))
            sent += 1
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            chunk = None
        if chunk == b"":  # closed by the server
            return data, time.monotonic() - start, sent
        if chunk:
            data += chunk
        if time.monotonic() - start > limit_s:
            break
    rest, _ = _read_until_closed(sock, 5)
    return data + rest, time.monotonic() - start, sent


# --- slow clients ------------------------------------------------------------------------------

def test_slow_head_and_slow_body_get_408_normal_requests_work(server) -> None:
    with server(HEADER_TIMEOUT_S="1", BODY_TIMEOUT_S="1.5", KEEP_ALIVE_TIMEOUT_S="5") as url:
        # A request head trickled at 4 bytes/s: 408 and closed after the 1 s head deadline.
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
        with _connect(url) as sock:
            data, took, sent = _trickle(sock, head, limit_s=10)
        assert data.startswith(b"HTTP/1.1 408 ") and b"Request head not received within 1 s." in data
        assert 0.9 <= took <= 2.5 and sent < len(head)
        # A connection that sends nothing at all is closed by the same deadline.
        with _connect(url) as sock:
            data, took = _read_until_closed(sock, 10)
        assert data.startswith(b"HTTP/1.1 408 ") and 0.9 <= took <= 2.5

        # A body trickled at 4 bytes/s: 408 with a short reason, closed, within the 1.5 s bound.
        body = httpx.Request("POST", "/", json=CLASSIFY).content
        head = (b"POST /classify/invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-alice-key\r\n"
                b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        with _connect(url) as sock:
            sock.sendall(head)
            data, took, sent = _trickle(sock, body, limit_s=10)
        assert data.startswith(b"HTTP/1.1 408 "), data[:200]
        assert data.endswith(b'{"detail": "Request body not received within 1.5 s (BANKING_BODY_TIMEOUT_S)."}')
        assert b"connection: close" in data.lower()
        assert 1.4 <= took <= 3.0 and sent < len(body)

        # Normal requests, on fresh and on kept-alive connections, still answer.
        with httpx.Client(base_url=url, timeout=10) as c:
            for _ in range(3):
                r = c.post("/classify/invoke", json=CLASSIFY, headers=ALICE)
                assert r.status_code == 200 and r.json()["output"]["intent"] == "card_arrival"
            time.sleep(1.5)  # longer than the head deadline: an idle kept-alive connection is not cut
            assert c.get("/health").status_code == 200


def test_connection_cap_answers_503_beyond_it(server) -> None:
    with server(MAX_CONNECTIONS="5", HEADER_TIMEOUT_S="3") as url:
        held = [_connect(url) for _ in range(6)]  # idle connections count against the cap
        try:
            time.sleep(0.3)
            r = httpx.get(f"{url}/health", timeout=10)
            assert r.status_code == 503 and r.text == "Service Unavailable"
        finally:
            for s in held:
                s.close()
        time.sleep(0.5)
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200


# --- forwarded headers and the failed-authentication throttle ----------------------------------

def _post(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/classify/invoke", json=CLASSIFY, headers=headers, timeout=10)


def test_spoofed_forwarded_headers_from_an_untrusted_peer_are_ignored(server) -> None:
    with server(AUTH_FAILURES_PER_MINUTE="3", AUTH_FAILURES_PER_KEY_PER_MINUTE="0") as url:
        # Rotating X-Forwarded-For (and Forwarded) does not spread the failures over many
        # addresses: the 4th wrong key from this peer is throttled.
        codes = [_post(url, {"Authorization": f"Bearer guess-{i}", "X-Forwarded-For": f"203.0.113.{i}",
                             "Forwarded": f"for=198.51.100.{i}"}).status_code for i in range(6)]
        assert codes == [401, 401, 401, 429, 429, 429]
        # The peer itself (127.0.0.1) is the one throttled: a key never used from it gets 429
        # whatever address it claims to forward for.
        r = _post(url, {**BOB, "X-Forwarded-For": "203.0.113.77"})
        assert r.status_code == 429 and "from this address" in r.json()["detail"]


def test_trusted_proxy_forwarded_address_is_the_one_throttled(server) -> None:
    with server(AUTH_FAILURES_PER_MINUTE="3", AUTH_FAILURES_PER_KEY_PER_MINUTE="0",
                TRUSTED_PROXIES="127.0.0.1") as url:
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        codes = [_post(url, {"Authorization": f"Bearer guess-{i}", **attacker}).status_code for i in range(4)]
        assert codes == [401, 401, 401, 429]
        # Another client behind the same proxy is not throttled by the attacker's failures ...
        r = _post(url, {**BOB, "X-Forwarded-For": "198.51.100.20"})
        assert r.status_code == 200 and r.json()["output"]["intent"] == "card_arrival"
        # ... and a client cannot hide behind a claimed address: uvicorn takes the right-most
        # address the trusted proxy appended, not the left-most one the client wrote.
        r = _post(url, {"Authorization": "Bearer guess-x", "X-Forwarded-For": "198.51.100.20, 203.0.113.9"})
        assert r.status_code == 429


def test_failures_behind_one_address_do_not_lock_out_other_customers(server) -> None:
    """The NAT case: everyone shares 127.0.0.1. Asserted: (1) one client retrying one stale key
    is throttled by that key (401, 401, then 429s) and its 429s do not count against the
    address, so a key never used from there (Bob's) still gets 200; (2) once the address is
    throttled by guessing (distinct wrong keys), a key that already authenticated from it
    (Alice's, Bob's) still gets 200, while a valid key new to it (Carol's) gets the same 429
    as a wrong key, so a guess cannot be confirmed."""
    with server(AUTH_FAILURES_PER_MINUTE="3", AUTH_FAILURES_PER_KEY_PER_MINUTE="2") as url:
        assert _post(url, ALICE).status_code == 200
        stale = [_post(url, {"Authorization": "Bearer revoked-key"}) for _ in range(10)]
        assert [r.status_code for r in stale] == [401, 401] + [429] * 8
        assert stale[-1].json()["detail"].startswith("Too many failed authentications with this API key")
        r = _post(url, BOB)
        assert r.status_code == 200 and r.json()["output"]["intent"] == "card_arrival"

        # Two failures so far; one more (a different wrong key) throttles the address.
        assert _post(url, {"Authorization": "Bearer guess-a"}).status_code == 401
        guess = _post(url, {"Authorization": "Bearer guess-b"})
        assert guess.status_code == 429 and 1 <= int(guess.headers["Retry-After"]) <= 60
        carol = _post(url, {"Authorization": "Bearer demo-carol-key"})
        assert carol.status_code == 429 and carol.json()["detail"].startswith(
            "Too many failed authentications from this address")
        assert guess.json()["detail"].startswith("Too many failed authentications from this address")
        for known in (ALICE, BOB):
            r = _post(url, known)
            assert r.status_code == 200 and r.json()["output"]["intent"] == "card_arrival"
