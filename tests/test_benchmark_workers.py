"""The automatic benchmark with several workers: one round at a time across workers (PostgreSQL
advisory lock, or a file lock on SQLite), and rounds measured under load are marked and left
out of the latency means. Real TF-IDF model (tests/test_evals.py), real BANKING77 probe set."""

from __future__ import annotations

import threading

from sqlalchemy import text

from bank.store import make_engine
from db_backends import db_url  # noqa: F401 - fixture: SQLite and PostgreSQL
from evals.bench_log import read_log, summarise_log
from evals.benchmark import ADVISORY_LOCK_KEY, BenchmarkScheduler
from test_evals import TfidfIntentModel, data, settings, tfidf_model  # noqa: F401 - shared fixtures


def _gated(model: TfidfIntentModel) -> tuple[threading.Event, threading.Event, object]:
    """``get_models`` for a round that holds until ``gate`` is set; ``entered`` says it started."""
    entered, gate = threading.Event(), threading.Event()

    def get_models():
        entered.set()
        assert gate.wait(60)
        return {"tfidf": model}

    return entered, gate, get_models


def test_one_round_at_a_time_across_workers(db_url, settings, tfidf_model, tmp_path):
    """Two workers (two schedulers, as two processes would have) on one database and log: while
    one runs a round the other's rounds are skipped, never queued; round numbers continue."""
    worker_settings = settings.model_copy(update={"database_url": db_url})
    log = tmp_path / "bench.jsonl"
    entered, gate, slow_models = _gated(tfidf_model)
    a = BenchmarkScheduler(worker_settings, slow_models, log, latency_sample=5)
    b = BenchmarkScheduler(worker_settings, lambda: {"tfidf": tfidf_model}, log, latency_sample=5)
    assert a.round_lock.uses_postgres == db_url.startswith("postgresql")

    out: list = []
    t = threading.Thread(target=lambda: out.append(a.run_round()))
    t.start()
    assert entered.wait(60)  # worker A holds the lock now
    if a.round_lock.uses_postgres:
        k = ADVISORY_LOCK_KEY & 0xFFFFFFFFFFFFFFFF  # a bigint key shows as classid (high) + objid (low)
        with make_engine(db_url).connect() as conn:
            held = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                     "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"),
                                {"hi": k >> 32, "lo": k & 0xFFFFFFFF}).scalar()
        assert held == 1
    assert b.run_round() == [] and b.rounds_skipped == 1
    assert [b.record_request() for _ in range(settings.bench_every)][-1] is True  # a trigger: its thread skips
    assert b.wait_idle(60) and b.rounds_skipped == 2
    assert read_log(log) == []
    gate.set()
    t.join(60)
    assert [r["round"] for r in out[0]] == [1]
    assert [r["round"] for r in b.run_round()] == [2]  # the lock is free again; numbers follow the log
    assert [(r["round"], r["backend"], r["error"]) for r in read_log(log)] == [(1, "tfidf", None), (2, "tfidf", None)]


def test_a_round_under_load_is_marked_and_left_out_of_latency_means(settings, tfidf_model, tmp_path):
    log = tmp_path / "bench.jsonl"
    entered, gate, slow_models = _gated(tfidf_model)
    sched = BenchmarkScheduler(settings, slow_models, log, latency_sample=5)
    assert [sched.record_request() for _ in range(settings.bench_every)][-1] is True
    assert entered.wait(60)
    for _ in range(7):  # requests arriving while the round measures
        sched.record_request()
    gate.set()
    assert sched.wait_idle(60)
    (busy,) = read_log(log)
    assert busy["concurrent_requests"] == 7 and busy["error"] is None and sched.rounds_skipped == 1
    (row,) = summarise_log(log)
    assert row["busy_rounds"] == 1 and row["mean_p50_ms"] is None and row["mean_accuracy"] == busy["accuracy"]
    sched.get_models = lambda: {"tfidf": tfidf_model}
    (quiet,) = sched.run_round()
    assert quiet["round"] == 2 and quiet["concurrent_requests"] == 0
    (row,) = summarise_log(log)
    assert row["rounds"] == 2 and row["busy_rounds"] == 1
    assert row["mean_p50_ms"] == round(quiet["p50_ms"], 4) and row["mean_p99_ms"] == round(quiet["p99_ms"], 4)
