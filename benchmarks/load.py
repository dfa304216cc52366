"""Load test of a running banking-assistant server: C concurrent clients for T seconds.

    banking-assistant serve --workers 2 &           # BANKING_DATABASE_URL on PostgreSQL
    python benchmarks/load.py --clients 50 --seconds 30

Each client is one asyncio task with its own conversation (``conversation_id``), sending the next
message of a fixed mix of read-only questions (no state changes) to ``/assistant/invoke`` (or
``/classify/invoke`` with ``--route classify``) as soon as the previous answer arrives (closed
loop). The demo API keys are used in turn, so the clients are spread over the four demo
customers. Run the server with ``BANKING_RATE_LIMIT_PER_MINUTE=0`` to measure capacity rather
than the rate limit (429s are counted like any other status).

Bounded: at most ``--seconds`` (<= 600) of sending, ``--max-requests`` in all, ``--clients``
<= 500, every request times out after ``--timeout`` seconds; loopback servers only (127.0.0.0/8,
::1, localhost): anything else is refused with exit code 2.

Prints requests, throughput (completed requests per second of wall time), latency p50/p99 (ms,
over every completed request, errors included) and the count per outcome (HTTP status, or the
exception name for a request that got no response). ``--json`` prints the same as one object.
Exit code 0 when every request answered 200, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import json
import socket
import sys
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

import httpx
import numpy as np

DEMO_KEYS = ("demo-alice-key", "demo-bob-key", "demo-carol-key", "demo-dave-key")
MESSAGES = (
    "where is my new card? it still hasn't arrived",
    "why was I charged twice for the same coffee",
    "what exchange rate do you use for euros",
    "my top up failed, what happened",
    "how long does a transfer take to arrive",
    "why is there an extra fee on my statement",
    "which countries can I get a card in",
    "is my card payment still pending",
)
MAX_SECONDS, MAX_CLIENTS = 600.0, 500


def require_loopback(url: str) -> str:
    """Return the host of ``url`` if every address it resolves to is a loopback address.

    Raises ValueError for another scheme than http/https, a missing host, a name that does not
    resolve, or any non-loopback address (this tool must never load someone else's server)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host: {url!r}")
    host = parts.hostname
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP)}
    except socket.gaierror as e:
        raise ValueError(f"cannot resolve {host!r}: {e}") from None
    bad = sorted(a for a in addrs if not ipaddress.ip_address(a.split("%")[0]).is_loopback)
    if bad or not addrs:
        raise ValueError(f"refusing non-loopback host {host!r} ({', '.join(bad) or 'no address'}): "
                         "load tests run against a local server only")
    return host


def percentile_ms(latencies_s: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation) of latencies in seconds, in ms; None if empty."""
    return round(float(np.percentile(np.asarray(latencies_s) * 1000.0, q)), 1) if latencies_s else None


async def _client(i: int, http: httpx.AsyncClient, route: str, deadline: float, budget: itertools.count,
                  max_requests: int, latencies: list[float], outcomes: Counter) -> None:
    key = DEMO_KEYS[i % len(DEMO_KEYS)]
    headers = {"Authorization": f"Bearer {key}"}
    conversation = f"load-{i}-{uuid.uuid4().hex[:8]}"
    for k in itertools.count():
        if time.monotonic() >= deadline or next(budget) >= max_requests:
            return
        text = MESSAGES[(i + k) % len(MESSAGES)]
        body = ({"input": {"message": text, "conversation_id": conversation}} if route == "assistant"
                else {"input": {"text": text}})
        t0 = time.perf_counter()
        try:
            r = await http.post(f"/{route}/invoke", json=body, headers=headers)
            outcome = str(r.status_code)
        except httpx.HTTPError as e:
            outcome = type(e).__name__
        latencies.append(time.perf_counter() - t0)
        outcomes[outcome] += 1


async def run_load(url: str, clients: int, seconds: float, *, route: str = "assistant", max_requests: int = 100_000,
                   timeout: float = 30.0) -> dict:
    """Drive ``clients`` closed-loop clients against ``url`` for ``seconds``; return the figures.

    Returns ``{url, route, clients, seconds, requests, wall_s, throughput_rps, p50_ms, p99_ms,
    max_ms, outcomes: {status or exception name: count}, errors}``. Raises ValueError for a
    non-loopback URL or out-of-bounds arguments.
    """
    require_loopback(url)
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"--clients must be 1..{MAX_CLIENTS}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"--seconds must be in (0, {MAX_SECONDS:g}]")
    if route not in ("assistant", "classify"):
        raise ValueError("--route must be assistant or classify")
    latencies: list[float] = []
    outcomes: Counter = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout, limits=limits) as http:
        start = time.monotonic()
        deadline = start + seconds
        budget = itertools.count()
        await asyncio.gather(*(_client(i, http, route, deadline, budget, max_requests, latencies, outcomes)
                               for i in range(clients)))
        wall = time.monotonic() - start
    n = sum(outcomes.values())
    return {"url": url, "route": route, "clients": clients, "seconds": seconds, "requests": n,
            "wall_s": round(wall, 2), "throughput_rps": round(n / wall, 1) if wall else None,
            "p50_ms": percentile_ms(latencies, 50), "p99_ms": percentile_ms(latencies, 99),
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
            "outcomes": dict(sorted(outcomes.items())), "errors": n - outcomes.get("200", 0)}


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring. Exit 0 all answered 200, 1 some did not, 2 bad arguments."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL (loopback only)")
    p.add_argument("--clients", type=int, default=50, help=f"concurrent clients (1..{MAX_CLIENTS}, default 50)")
    p.add_argument("--seconds", type=float, default=30.0, help=f"how long to send (<= {MAX_SECONDS:g} s, default 30)")
    p.add_argument("--max-requests", type=int, default=100_000, help="stop after this many requests (default 100000)")
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds (default 30)")
    p.add_argument("--route", choices=["assistant", "classify"], default="assistant")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    try:
        res = asyncio.run(run_load(args.url, args.clients, args.seconds, route=args.route,
                                   max_requests=args.max_requests, timeout=args.timeout))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['requests']} requests from {res['clients']} clients in {res['wall_s']} s to /{res['route']}/invoke: "
              f"{res['throughput_rps']} req/s, p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms, max {res['max_ms']} ms")
        print("outcomes: " + ", ".join(f"{k}: {v}" for k, v in res["outcomes"].items()) + f"; errors: {res['errors']}")
    return 0 if res["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
