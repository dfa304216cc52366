"""What one conversation turn costs beside its model, at conversation lengths 1, 100 and 400.

    python benchmarks/turn_cost.py                 # the newest saved custom model version
    python benchmarks/turn_cost.py --quick-train   # first trains a small custom model (1-2 min)
    python benchmarks/turn_cost.py --json out.json

Prints, in one run (single-threaded torch, rate limit and automatic benchmark off, SQLite):

- the custom model's single-query p50 (``classify_batch([text])``), the physical floor of a turn;
- the in-process turn (``assistant.conversations.Conversations.say``) p50 on a new conversation
  and at turns 100 and 400 of one conversation;
- the HTTP ``/assistant/invoke`` p50 (a real ``banking-assistant serve`` on loopback, sequential
  requests) on new conversations and at turns 100 and 400 of one conversation;
- the checkpoint bytes of one conversation after 1, 100 and 400 turns (its whole storage: the
  checkpointer keeps only the latest checkpoint, chains/retention.py);
- the ratios to the model's p50, and the load average beside the figures (a busy machine
  inflates them).

Targets (issue 17): HTTP p50 <= 8 ms on a new conversation, turn 400 within 20 % of turn 1,
in-process turn <= 3x the model, checkpoint storage <= 20 KB per conversation turn.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

MESSAGES = ("where is my new card? it still hasn't arrived", "what exchange rate do you use for euros",
            "how long does a transfer take to arrive", "is my card payment still pending")
LENGTHS = (1, 100, 400)
WINDOW = 30
"""Turns measured around each conversation length (e.g. turns 100-129)."""


def p50_ms(seconds: list[float]) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000.0, 50))


def model_p50(n: int = 300) -> float:
    """The custom backend's single-query p50 in ms."""
    from models.registry import get_backend

    model = get_backend("custom")
    model.classify_batch([MESSAGES[0]])  # warm-up
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        model.classify_batch([MESSAGES[i % len(MESSAGES)]])
        times.append(time.perf_counter() - t0)
    return p50_ms(times)


def in_process(customer_id: int) -> dict[str, float]:
    """Turn p50 (ms) of new conversations and at each length of one conversation; checkpoint bytes."""
    from assistant.conversations import Conversations, run_config
    from chains.assistant import AssistantInput
    from chains.retention import thread_storage_bytes

    holder = Conversations()
    out: dict[str, float] = {}
    try:
        fresh = []
        for i in range(WINDOW):
            t0 = time.perf_counter()
            holder.say(AssistantInput(message=MESSAGES[i % 4]), run_config(f"bench-{uuid.uuid4().hex}", customer_id))
            fresh.append(time.perf_counter() - t0)
        out["new"] = p50_ms(fresh)
        thread = f"bench-{uuid.uuid4().hex}"
        per_turn: list[float] = []
        for i in range(max(LENGTHS) + WINDOW):
            t0 = time.perf_counter()
            holder.say(AssistantInput(message=MESSAGES[i % 4]), run_config(thread, customer_id))
            per_turn.append(time.perf_counter() - t0)
            if i + 1 in LENGTHS:
                out[f"bytes_{i + 1}"] = float(thread_storage_bytes(holder._saver, thread))
        for n in LENGTHS:
            out[f"turn_{n}"] = p50_ms(per_turn[n - 1:n - 1 + WINDOW])
    finally:
        holder.close()
    return out


def over_http(env: dict[str, str]) -> dict[str, float]:
    """HTTP /assistant/invoke p50 (ms) on a real server process: new conversations, then each length."""
    port = free_port()
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": "Bearer demo-alice-key"}
    out: dict[str, float] = {}
    try:
        t_start = time.monotonic()
        while True:
            with contextlib.suppress(httpx.HTTPError):  # not listening yet
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() - t_start > 120:
                raise SystemExit(f"server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        out["ready_s"] = time.monotonic() - t_start
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            def turn(message: str, conversation: str) -> float:
                t0 = time.perf_counter()
                r = http.post("/assistant/invoke", json={"input": {"message": message, "conversation_id": conversation}})
                r.raise_for_status()
                return time.perf_counter() - t0

            turn(MESSAGES[0], "warm-up")
            out["new"] = p50_ms([turn(MESSAGES[i % 4], uuid.uuid4().hex) for i in range(WINDOW * 2)])
            conversation = uuid.uuid4().hex
            per_turn = [turn(MESSAGES[i % 4], conversation) for i in range(max(LENGTHS) + WINDOW)]
            for n in LENGTHS:
                out[f"turn_{n}"] = p50_ms(per_turn[n - 1:n - 1 + WINDOW])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints the figures (and writes ``--json``). Exit 0."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick-train", action="store_true", help="train a small custom model first (1-2 min)")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP server measurement")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = p.parse_args(argv)
    os.environ.update(BANKING_TORCH_THREADS="1", BANKING_RATE_LIMIT_PER_MINUTE="0", BANKING_BENCH_EVERY="0")
    import torch

    torch.set_num_threads(1)
    from config.settings import get_settings
    from bank.seed import seed_demo
    from bank.store import get_engine
    from models.custom import latest_version

    get_settings.cache_clear()
    if args.quick_train:
        from models.transformer import TransformerConfig
        from training.custom import TrainConfig, train_custom

        train_custom(cfg=TrainConfig(epochs=6, batch_size=64, lr=3e-3, patience=6, max_minutes=4.0, aug_copies=0,
                                     outlier_rows=2000, outlier_aug_copies=0,
                                     model=TransformerConfig(max_len=64, d_model=64, n_heads=2, n_layers=1, d_ff=128,
                                                             ngram_buckets=32768, ngram_dim=64)),
                     progress=False, evaluate_test=False, use_teacher=False)
    if latest_version() is None:
        print("no trained custom model: run `banking-assistant train custom` or pass --quick-train", file=sys.stderr)
        return 2
    ids = {c.username: c.customer_id for c in seed_demo(get_engine())}
    load = os.getloadavg()
    figures: dict[str, object] = {"load_average": load, "model_p50_ms": model_p50()}
    figures["in_process"] = in_process(ids["alice"])
    if not args.no_http:
        figures["http"] = over_http({**os.environ})
    model = figures["model_p50_ms"]
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; custom model single-query p50 {model:.2f} ms")
    for where in ("in_process", "http"):
        f = figures.get(where)
        if not f:
            continue
        row = "  ".join(f"turn {n}: {f[f'turn_{n}']:.2f} ms ({f[f'turn_{n}'] / model:.1f}x)" for n in LENGTHS)
        print(f"{where:10s} new conversation {f['new']:.2f} ms ({f['new'] / model:.1f}x)  {row}  "
              f"turn 400 / turn 1 = {f['turn_400'] / f['turn_1']:.2f}")
    ip = figures["in_process"]
    print("checkpoint storage of one conversation: " + ", ".join(f"{ip[f'bytes_{n}'] / 1000:.1f} KB after {n} turns"
                                                                 for n in LENGTHS))
    if "http" in figures:
        print(f"serve ready in {figures['http']['ready_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
