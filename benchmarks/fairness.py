"""Does one large request starve the others? Single-request latency alone and under batches.

    BANKING_RATE_LIMIT_PER_MINUTE=0 banking-assistant serve --port 8000 &
    python benchmarks/fairness.py --seconds 20 --batch-clients 2

Phase 1: one client sends single ``/classify/invoke`` requests back to back for ``--seconds``.
Phase 2: the same client again, while ``--batch-clients`` other clients (another customer's key)
send ``/assistant/batch`` requests of ``--batch-size`` messages back to back. Prints, per phase,
the single requests' count and latency p50/p99 (ms), and for phase 2 the batches' count, p50/p99
latency and statuses, as one JSON object. A single request that fails ends the run with its
status and detail on stderr (exit code 1). Compare servers started with different ``BANKING_MAX_CONCURRENT_INFERENCE``
(the queue in front of the intent model, assistant/http_limits/inference.py).

Bounded like benchmarks/load.py: loopback servers only, at most 120 s per phase, at most 16
batch clients, every request times out after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import percentile_ms, require_loopback  # noqa: E402 - shared with the load test

SINGLE = ("Bearer demo-alice-key", {"input": {"text": "my card still hasn't arrived"}})
BATCH_KEY = "Bearer demo-bob-key"
BATCH_MESSAGES = ("where is my new card?", "why was I charged twice", "what exchange rate do you use",
                  "my top up failed", "how long does a transfer take", "is my card payment pending")


async def _singles(client: httpx.AsyncClient, url: str, until: float) -> list[float]:
    """Latencies (s) of back-to-back single classifications until ``until`` (monotonic s)."""
    key, body = SINGLE
    out = []
    while time.monotonic() < until:
        t0 = time.perf_counter()
        r = await client.post(f"{url}/classify/invoke", json=body, headers={"Authorization": key})
        r.raise_for_status()
        out.append(time.perf_counter() - t0)
    return out


async def _batches(client: httpx.AsyncClient, url: str, until: float, size: int, stats: Counter,
                   lat: list[float]) -> None:
    inputs = [{"message": BATCH_MESSAGES[i % len(BATCH_MESSAGES)]} for i in range(size)]
    while time.monotonic() < until:
        t0 = time.perf_counter()
        r = await client.post(f"{url}/assistant/batch", json={"inputs": inputs}, headers={"Authorization": BATCH_KEY})
        lat.append(time.perf_counter() - t0)
        stats[r.status_code] += 1


def _pct(latencies_s: list[float]) -> dict[str, float | None]:
    return {"n": len(latencies_s), "p50_ms": percentile_ms(latencies_s, 50), "p99_ms": percentile_ms(latencies_s, 99)}


async def run(url: str, seconds: float, batch_clients: int, batch_size: int, timeout: float) -> dict:
    """Both phases against ``url``; returns the figures printed by :func:`main`."""
    async with httpx.AsyncClient(timeout=timeout) as client:
        alone = await _singles(client, url, time.monotonic() + seconds)
        stats: Counter = Counter()
        batch_lat: list[float] = []
        until = time.monotonic() + seconds
        tasks = [asyncio.create_task(_batches(client, url, until, batch_size, stats, batch_lat))
                 for _ in range(batch_clients)]
        await asyncio.sleep(0.5)  # let the batches start first
        loaded = await _singles(client, url, until)
        await asyncio.gather(*tasks)
    return {"single_alone": _pct(alone), "single_under_batches": _pct(loaded),
            "batches": {**_pct(batch_lat), "size": batch_size, "clients": batch_clients,
                        "status": {str(k): v for k, v in sorted(stats.items())}}}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, refuse non-loopback servers (exit 2), run, print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--batch-clients", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--timeout", type=float, default=120.0)
    a = p.parse_args(argv)
    try:
        require_loopback(a.url)
    except ValueError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    if not (0 < a.seconds <= 120 and 0 <= a.batch_clients <= 16 and a.batch_size > 0):
        print("refused: --seconds in (0, 120], --batch-clients in [0, 16], --batch-size > 0", file=sys.stderr)
        return 2
    try:
        figures = asyncio.run(run(a.url.rstrip("/"), a.seconds, a.batch_clients, a.batch_size, a.timeout))
    except httpx.HTTPStatusError as e:
        print(f"error: {e.request.url.path} answered {e.response.status_code}: {e.response.text[:200]}", file=sys.stderr)
        return 1
    except httpx.HTTPError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
