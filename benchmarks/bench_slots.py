"""Latency of backend-independent slot extraction (issue 16): ``models.entities.extract_entities``
over every dev-set message (``evals/data/requests_dev.jsonl``), with the demo gazetteer.

``python benchmarks/bench_slots.py [--rounds 20]`` prints one JSON line: p50/p99/mean in ms per
message, the one-off warm-up (first call: Babel/dateparser loading) separately. Budget: p50 <= 5 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals.spans import DEMO_NAMES, DEV_NOW, load_dev  # noqa: E402
from models.entities import extract_entities  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints ``{"messages", "rounds", "warmup_ms", "p50_ms", "p99_ms", "mean_ms"}``."""
    ap = argparse.ArgumentParser(description="slot extraction latency")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args(argv)
    texts = [r["text"] for r in load_dev()]
    t0 = time.perf_counter()
    extract_entities(texts[0], now=DEV_NOW, names=DEMO_NAMES)
    warm = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(args.rounds):
        for t in texts:
            s = time.perf_counter()
            extract_entities(t, now=DEV_NOW, names=DEMO_NAMES)
            times.append((time.perf_counter() - s) * 1000)
    times.sort()
    print(json.dumps({"messages": len(texts), "rounds": args.rounds, "warmup_ms": round(warm, 1),
                      "p50_ms": round(statistics.median(times), 3), "p99_ms": round(times[int(0.99 * len(times)) - 1], 3),
                      "mean_ms": round(statistics.fmean(times), 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
