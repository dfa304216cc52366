"""The custom model's inference runtimes side by side (issue 17): torch over model.safetensors,
ONNX Runtime over model.onnx (fp32) and over model.int8.onnx (int8 dynamic quantisation).

Per runtime, on one saved version and one intra-op thread (``--threads``):

- load: seconds to load the version (``models.custom.load_version``);
- single query: p50/p99 ms of ``CustomIntentModel.classify_batch([text])`` (the whole backend call:
  encoding, forward pass, calibration, rule entities), and of the forward pass alone (numpy
  encoding + ``net.run``), over ``--queries`` test texts one at a time;
- batch-64 throughput: test rows/s of the forward pass alone in batches of 64;
- accuracy on all 3,080 BANKING77 test rows (temperature + out-of-scope bias, small-talk kinds
  summed, as ``models.custom``), its difference from torch in points, top-1 agreement with
  torch, largest |logit - torch logit|, and span-tag agreement with torch.

The load average (1/5/15 min) is printed before and after: the timings say what a shared machine
did, not what an idle one would.

    python benchmarks/bench_onnx.py                      # newest version under BANKING_HOME
    python benchmarks/bench_onnx.py --model DIR --export # export the graphs first if missing (writes DIR)
    python benchmarks/bench_onnx.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.custom import CustomIntentModel, calibrated_probs, latest_version, load_version, public_probs  # noqa: E402
from models.onnx_runtime import onnx_file  # noqa: E402
from models.tokenizer import encode_ids_offsets, ngram_array  # noqa: E402
from training.data import load_banking77  # noqa: E402

RUNTIMES = ("torch", "onnx", "onnx-int8")


def _forward(lm, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    ids, _ = encode_ids_offsets(lm.tokenizer, texts, lm.max_len)
    return lm.net.run(ids, ngram_array(texts, lm.ngram_buckets) if lm.ngram_buckets else None)


def _pct(ts: list[float]) -> tuple[float, float]:
    return float(np.percentile(ts, 50) * 1e3), float(np.percentile(ts, 99) * 1e3)


def measure(path: Path, runtime: str, texts: list[str], gold: list[str], n_queries: int, threads: int) -> dict:
    """One runtime's figures (see the module docstring); logits and span tags kept for comparison."""
    t0 = time.perf_counter()
    lm = load_version(path, runtime, threads)
    load_s = time.perf_counter() - t0
    chat = CustomIntentModel(model_dir=path, runtime=runtime)
    chat._loaded = lm  # the version just loaded (same object the backend would load)
    queries = [texts[i % len(texts)] for i in range(n_queries)]
    for q in queries[:20]:  # warm-up
        chat.classify_batch([q])
    call, fwd = [], []
    for q in queries:
        t = time.perf_counter()
        chat.classify_batch([q])
        call.append(time.perf_counter() - t)
        t = time.perf_counter()
        _forward(lm, [q])
        fwd.append(time.perf_counter() - t)
    logits, tags = [], []
    t = time.perf_counter()
    for i in range(0, len(texts), 64):
        lg, sp = _forward(lm, texts[i : i + 64])
        logits.append(lg)
        tags += [] if sp is None else list(sp.argmax(-1))
    batch_s = time.perf_counter() - t
    logits_all = np.concatenate(logits)
    labels, pub = public_probs(calibrated_probs(logits_all, lm.temperature, lm.oos_bias, lm.oos_index), lm.labels)
    pred = [labels[j] for j in pub.argmax(1)]
    return {
        "runtime": runtime, "load_s": load_s,
        "call_p50_ms": _pct(call)[0], "call_p99_ms": _pct(call)[1],
        "forward_p50_ms": _pct(fwd)[0], "forward_p99_ms": _pct(fwd)[1],
        "batch64_rows_per_s": len(texts) / batch_s,
        "accuracy": float(np.mean([p == g for p, g in zip(pred, gold)])),
        "_logits": logits_all, "_pred": pred, "_tags": tags,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="version folder (default: newest under BANKING_HOME)")
    ap.add_argument("--queries", type=int, default=500, help="single queries timed per runtime")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (ONNX Runtime and torch)")
    ap.add_argument("--export", action="store_true", help="export model.onnx / model.int8.onnx first when missing")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    path = args.model or latest_version()
    if path is None:
        print("No trained custom model: run `banking-assistant train custom` or pass --model.", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    if args.export and not all((path / onnx_file(r)).is_file() for r in RUNTIMES[1:]):
        from training.onnx_export import export_version

        export_version(path, int8=True)
    data = load_banking77()
    texts, gold = list(data.test.texts), list(data.test.labels)
    load_before = os.getloadavg()
    rows = []
    for r in RUNTIMES:
        if r != "torch" and not (path / onnx_file(r)).is_file():
            print(f"{r}: {path / onnx_file(r)} missing (rerun with --export)")
            continue
        rows.append(measure(path, r, texts, gold, args.queries, args.threads))
    load_after = os.getloadavg()
    base = rows[0]
    print(f"version {path.name}, {len(texts)} test rows, {args.threads} thread(s), load average before "
          f"{'/'.join(f'{x:.2f}' for x in load_before)}, after {'/'.join(f'{x:.2f}' for x in load_after)}")
    print(f"{'runtime':10} {'load s':>7} {'call p50/p99 ms':>16} {'fwd p50/p99 ms':>15} {'b64 rows/s':>10} "
          f"{'accuracy':>9} {'Δ pts':>6} {'agree':>7} {'max|Δlogit|':>11} {'tags agree':>10}")
    out = []
    for r in rows:
        r["accuracy_delta_points"] = 100 * (r["accuracy"] - base["accuracy"])
        r["top1_agreement"] = float(np.mean([a == b for a, b in zip(r["_pred"], base["_pred"])]))
        r["max_abs_logit_diff"] = float(np.abs(r["_logits"] - base["_logits"]).max())
        same = [np.array_equal(a, b) for a, b in zip(r["_tags"], base["_tags"])]
        r["span_rows_equal"] = float(np.mean(same)) if same else None
        tags = "-" if r["span_rows_equal"] is None else f"{r['span_rows_equal']:.2%}"
        print(f"{r['runtime']:10} {r['load_s']:7.2f} {r['call_p50_ms']:7.3f}/{r['call_p99_ms']:<8.3f} "
              f"{r['forward_p50_ms']:6.3f}/{r['forward_p99_ms']:<8.3f} {r['batch64_rows_per_s']:10.0f} "
              f"{r['accuracy']:9.2%} {r['accuracy_delta_points']:+6.2f} {r['top1_agreement']:7.2%} "
              f"{r['max_abs_logit_diff']:11.2e} {tags:>10}")
        out.append({k: v for k, v in r.items() if not k.startswith("_")})
    if args.json:
        args.json.write_text(json.dumps({"version": path.name, "load_average_before": load_before,
                                         "load_average_after": load_after, "runtimes": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
