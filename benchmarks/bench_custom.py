"""Benchmark of the custom backend against a word+char TF-IDF + logistic-regression baseline.

Prints, side by side on the same seeded split: BANKING77 test accuracy and macro-F1 (all 3,080
rows), training seconds, single-query latency p50/p99 (ms) and batched throughput (queries/s).

    python benchmarks/bench_custom.py              # trains a new custom model version first
    python benchmarks/bench_custom.py --no-train   # measures the newest saved version
    python benchmarks/bench_custom.py --json out.json

Targets (issue 2): test accuracy >= 92.0 %, training <= 10 min on 2 cores, p50 <= 5 ms,
p99 <= 15 ms, batched throughput >= 2,000 queries/s.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline, make_union

from assistant.settings import get_settings
from models.custom import CustomIntentModel, latest_version
from training.custom import train_custom
from training.data import load_banking77


def tfidf_baseline(data) -> dict:
    """Word (1-2) + char_wb (2-5) TF-IDF features, logistic regression (C=10), trained on the
    train split; scored on test. Returns accuracy, macro_f1, training_seconds."""
    t0 = time.perf_counter()
    clf = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        ),
        LogisticRegression(C=10, max_iter=2000),
    )
    clf.fit(data.train.texts, data.train.labels)
    seconds = time.perf_counter() - t0
    pred = clf.predict(data.test.texts)
    return {
        "accuracy": accuracy_score(data.test.labels, pred),
        "macro_f1": f1_score(data.test.labels, pred, average="macro"),
        "training_seconds": seconds,
    }


def latency(model: CustomIntentModel, texts: list[str], n: int = 500) -> dict:
    """Single-query latency over ``n`` queries (ms, p50/p99) and batched throughput (queries/s)."""
    model.classify_batch(texts[:8])  # warm-up
    times = []
    for t in texts[:n]:
        t0 = time.perf_counter()
        model.classify_batch([t])
        times.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    model.classify_batch(texts)
    qps = len(texts) / (time.perf_counter() - t0)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)), "throughput_qps": qps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-train", action="store_true", help="measure the newest saved model instead of training")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()

    s = get_settings()
    data = load_banking77(s)
    path = latest_version() if args.no_train else train_custom(s, data=data)
    if path is None:
        raise SystemExit("No saved custom model; run without --no-train.")
    metrics = json.loads((path / "metrics.json").read_text())
    model = CustomIntentModel(model_dir=path)
    preds = [p.intent for p in model.classify_batch(data.test.texts)]
    custom = {
        "model_version": path.name,
        "accuracy": accuracy_score(data.test.labels, preds),
        "macro_f1": f1_score(data.test.labels, preds, average="macro"),
        "training_seconds": metrics["training_seconds"],
        "validation_accuracy": metrics["validation_accuracy"],
        "n_parameters": metrics["n_parameters"],
        **latency(model, data.test.texts),
    }
    base = tfidf_baseline(data)
    print(f"BANKING77 test, n={len(data.test)}; torch threads={torch.get_num_threads()}")
    print(f"{'model':<28}{'accuracy':>10}{'macro-F1':>10}{'train s':>10}{'p50 ms':>9}{'p99 ms':>9}{'q/s':>9}")
    print(f"{'custom transformer':<28}{custom['accuracy']:>10.4f}{custom['macro_f1']:>10.4f}{custom['training_seconds']:>10.1f}"
          f"{custom['p50_ms']:>9.2f}{custom['p99_ms']:>9.2f}{custom['throughput_qps']:>9.0f}")
    print(f"{'TF-IDF + logistic regression':<28}{base['accuracy']:>10.4f}{base['macro_f1']:>10.4f}{base['training_seconds']:>10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"custom": custom, "tfidf_logreg": base}, f, indent=2)


if __name__ == "__main__":
    main()
