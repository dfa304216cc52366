"""Benchmark the peft backend: BANKING77 test accuracy / macro-F1, single-query latency p50/p99 and
batched throughput, in-process (``local``) or through a vLLM server (``vllm``).

    python benchmarks/bench_peft.py                       # newest version, full 3,080-row test set
    python benchmarks/bench_peft.py --limit 500 --latency-queries 30
    python benchmarks/bench_peft.py --runtime vllm        # BANKING_PEFT_VLLM_BASE_URL etc.
    python benchmarks/bench_peft.py --export-vllm DIR     # write DIR/base + DIR/adapter for vLLM, then exit

Prints one JSON object (and writes it to --out when given). The test set is for reporting only.
Latency is timed around ``classify_batch([text])`` after one warm-up call (weights loaded).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (2 when the backend is unavailable)."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score
    from tqdm import tqdm

    from config.settings import get_settings
    from models.base import BackendUnavailable
    from models.peft import PeftIntentModel, PeftSettings, export_for_vllm
    from training.data import load_banking77

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", type=Path, help="version folder (default: newest under <home>/models/peft)")
    ap.add_argument("--runtime", choices=["local", "vllm"], default=None)
    ap.add_argument("--limit", type=int, default=None, help="first N test rows (default: all 3,080)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--latency-queries", type=int, default=50, help="single-query calls timed for p50/p99")
    ap.add_argument("--export-vllm", type=Path, help="write the vLLM export of the version here and exit")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)

    ps = PeftSettings(inference_batch_size=a.batch_size)
    model = PeftIntentModel(model_dir=a.version, runtime=a.runtime, peft_settings=ps)
    if a.export_vllm:
        path = model.version_dir()
        if path is None:
            print("no trained peft version to export", file=sys.stderr)
            return 2
        print(export_for_vllm(path, a.export_vllm))
        return 0
    ok, reason = model.availability()
    if not ok:
        print(f"peft backend unavailable: {reason}", file=sys.stderr)
        return 2
    data = load_banking77(get_settings())
    texts, gold = data.test.texts, data.test.labels
    if a.limit:
        texts, gold = texts[: a.limit], gold[: a.limit]
    try:
        t_load = time.perf_counter()
        model.classify_batch(texts[:1])  # loads weights (local) / warms the server
        load_s = time.perf_counter() - t_load
        lat = []
        for t in texts[: a.latency_queries]:
            t0 = time.perf_counter()
            model.classify_batch([t])
            lat.append((time.perf_counter() - t0) * 1000.0)
        preds, t0 = [], time.perf_counter()
        for i in tqdm(range(0, len(texts), a.batch_size), desc="test"):
            preds.extend(model.classify_batch(texts[i:i + a.batch_size]))
        total_s = time.perf_counter() - t0
    except BackendUnavailable as e:
        print(f"peft backend failed: {e}", file=sys.stderr)
        return 2
    pred = [p.intent for p in preds]
    result = {
        "backend": "peft",
        "runtime": a.runtime or ps.runtime,
        "model_version": model.model_version,
        "n_test": len(gold),
        "test_accuracy": float(accuracy_score(gold, pred)),
        "test_macro_f1": float(f1_score(gold, pred, average="macro")),
        "mean_confidence": float(np.mean([p.confidence for p in preds])),
        "latency_ms_p50": float(np.percentile(lat, 50)) if lat else None,
        "latency_ms_p99": float(np.percentile(lat, 99)) if lat else None,
        "batch_size": a.batch_size,
        "throughput_qps": len(texts) / total_s,
        "first_call_s": round(load_s, 2),
        "torch_threads": _threads(),
    }
    path = model.version_dir()
    if path and (path / "metrics.json").is_file():
        m = json.loads((path / "metrics.json").read_text())
        result.update({k: m.get(k) for k in ("training_seconds_total", "steps", "epochs_run", "n_train",
                                             "validation_accuracy", "learning_curve", "thresholds")})
    print(json.dumps(result, indent=2))
    if a.out:
        a.out.write_text(json.dumps(result, indent=2))
    return 0


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())
