"""Eval runner, LangSmith suite (offline), report, CLI and the every-N benchmark scheduler.

The backend under test is a real model trained here: TF-IDF + logistic regression on a slice of
the BANKING77 train split, wrapped in the ``IntentChatModel`` contract. The gemini backend runs
against the local fake Gemini server (tests/fake_gemini.py).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline

from config.settings import REPO_ROOT, Settings
from evals import cli as eval_cli
from evals.bench_log import read_log, summarise_log
from evals.benchmark import BenchmarkScheduler, probe_set
from evals.langsmith_suite import make_examples, run_suite
from evals.report import write_report
from evals.metrics import resolve_threshold
from evals.runner import evaluate_model, evaluate_models
from fake_gemini import FakeGemini
from models.base import BackendUnavailable, IntentChatModel, IntentPrediction
from models.gemini import GeminiIntentModel, GeminiSettings
from models.retrieval import ExampleRetriever
from training.data import load_banking77

DATA_DIR = Path(os.environ.get("BANKING_DATA_DIR") or REPO_ROOT.parent / "shared" / "data" / "banking77")
OOS_FILE = REPO_ROOT.parent / "shared" / "data" / "clinc150_oos" / "oos_dev.json"


class TfidfIntentModel(IntentChatModel):
    """TF-IDF + logistic regression intent model (scikit-learn), trained in the fixture."""

    backend_name: ClassVar[str] = "tfidf"
    pipeline: Any = None
    version: str = "tfidf-lr-test"
    saved_thresholds: dict = {}

    @property
    def model_version(self) -> str:
        return self.version

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.saved_thresholds)

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        proba = self.pipeline.predict_proba(texts)
        classes = self.pipeline.classes_
        out = []
        for row in proba:
            top = np.argsort(-row)[:5]
            out.append(IntentPrediction(classes[top[0]], float(row[top[0]]),
                                        [(classes[i], float(row[i])) for i in top]))
        return out


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return Settings(data_dir=DATA_DIR, home=tmp_path_factory.mktemp("home"), bench_every=5, bench_size=40)


@pytest.fixture(scope="module")
def data(settings):
    return load_banking77(settings)


@pytest.fixture(scope="module")
def tfidf_model(data):
    # 40 rows per intent (3,080 rows): trains in a few seconds on 2 cores.
    per: Counter = Counter()
    texts, labels = [], []
    for t, y in zip(data.train.texts, data.train.labels):
        if per[y] < 40:
            per[y] += 1
            texts.append(t)
            labels.append(y)
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                         LogisticRegression(C=20, max_iter=2000))
    pipe.fit(texts, labels)
    return TfidfIntentModel(pipeline=pipe)


@pytest.fixture()
def fake():
    with FakeGemini() as f:
        yield f


def gemini_model(data, base_url: str, **kw) -> GeminiIntentModel:
    gs = GeminiSettings(_env_file=None, **{"api_key": "test-key", "base_url": base_url, "retrieval": "tfidf",
                                           "k_examples": 8, "backoff_s": 0.01, "max_concurrency": 4, **kw})
    return GeminiIntentModel.from_settings(gemini=gs, examples=(data.train.texts, data.train.labels),
                                           intents=data.intents)


# --- runner ----------------------------------------------------------------------------------

def test_runner_metrics_match_sklearn_on_real_model(tfidf_model, data):
    texts, labels = data.validation.texts[:300], data.validation.labels[:300]
    rep = evaluate_model(tfidf_model, texts, labels, name="tfidf", latency_sample=40, progress=False)
    assert rep.error is None and rep.n == 300
    pred = [p.intent for p in tfidf_model.classify_batch(texts)]
    assert rep.accuracy == pytest.approx(accuracy_score(labels, pred))
    assert rep.macro_f1 == pytest.approx(f1_score(labels, pred, labels=sorted(set(labels)), average="macro",
                                                  zero_division=0))
    assert 0.6 < rep.accuracy < 1.0  # a real, imperfect classifier
    assert rep.latency_n == 40 and 0 < rep.p50_ms <= rep.p99_ms < 5000
    assert rep.model_version == "tfidf-lr-test" and rep.device == "cpu"
    # confused pairs are real off-diagonal counts, most frequent first
    assert rep.confused_pairs
    counts = Counter((y, p) for y, p in zip(labels, pred) if y != p)
    for pair in rep.confused_pairs:
        assert counts[(pair["gold"], pair["predicted"])] == pair["count"]
    assert [p["count"] for p in rep.confused_pairs] == sorted((p["count"] for p in rep.confused_pairs), reverse=True)
    assert rep.confused_pairs[0]["count"] == max(counts.values())
    assert set(rep.per_intent) == set(labels)
    assert sum(v["support"] for v in rep.per_intent.values()) == 300


def test_oos_rejection_and_threshold_precedence(tfidf_model, data, settings):
    oos = json.loads(OOS_FILE.read_text())[:100]
    confs = [p.confidence for p in tfidf_model.classify_batch(oos)]
    texts, labels = data.validation.texts[:80], data.validation.labels[:80]
    rep = evaluate_model(tfidf_model, texts, labels, oos_texts=oos, threshold=0.3, latency_sample=0, progress=False)
    assert rep.oos_n == 100 and rep.threshold == 0.3
    assert rep.oos_rejection == pytest.approx(sum(c < 0.3 for c in confs) / 100)
    assert rep.summary()["oos_rejection"] == round(rep.oos_rejection, 4)
    # precedence: explicit > settings.oos_threshold > the model's saved threshold > 0.5
    plain = settings.model_copy(update={"oos_threshold": None, "clarify_threshold": None})
    assert resolve_threshold(tfidf_model, None, plain) == 0.5
    saved = tfidf_model.model_copy(update={"saved_thresholds": {"oos_threshold": 0.25}})
    assert resolve_threshold(saved, None, plain) == 0.25
    assert resolve_threshold(saved, None, plain.model_copy(update={"oos_threshold": 0.1})) == 0.1
    assert resolve_threshold(saved, 0.7, plain) == 0.7


def test_one_failing_backend_does_not_stop_the_others(tfidf_model, data, fake, monkeypatch):
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    no_key = GeminiIntentModel.from_settings(
        gemini=GeminiSettings(_env_file=None, base_url=fake.base_url),
        examples=(data.train.texts[:100], data.train.labels[:100]))
    reps = evaluate_models({"gemini": no_key, "tfidf": tfidf_model}, data.validation.texts[:30],
                           data.validation.labels[:30], latency_sample=5, progress=False)
    assert "GOOGLE_API_KEY" in reps["gemini"].error and reps["gemini"].accuracy is None
    assert reps["tfidf"].error is None and reps["tfidf"].accuracy > 0.5
    assert fake.requests == []


def test_gemini_row_against_fake_server(tfidf_model, data, fake):
    texts, labels = data.validation.texts[:40], data.validation.labels[:40]
    gem = gemini_model(data, fake.base_url)
    reps = evaluate_models({"tfidf": tfidf_model, "gemini": gem}, texts, labels, latency_sample=20, progress=False)
    g = reps["gemini"]
    assert g.error is None and len(fake.requests) == 40  # one request per query, no extra latency calls
    # the fake answers with the majority label of the 8 retrieved examples: recompute that here
    r = ExampleRetriever(data.train.texts, data.train.labels, method="tfidf")
    votes = []
    for hs in r.search_batch(texts, 8):
        c = [h.label for h in hs]
        votes.append(max(set(c), key=lambda lab: (c.count(lab), -c.index(lab))))
    assert g.accuracy == pytest.approx(accuracy_score(labels, votes))
    assert g.latency_n == 20 and g.p50_ms > 0 and g.model_version == "gemini-2.5-flash+knn8"
    assert g.device == "remote" and "per-query" in g.latency_source


def test_one_refused_gemini_answer_counts_as_wrong_not_as_a_dead_backend(data, fake):
    from evals.runner import FAILED_LABEL
    from fake_gemini import refusal_body

    texts, labels = data.validation.texts[:12], data.validation.labels[:12]
    fake.script = [(200, refusal_body())]  # the first request to arrive is refused
    rep = evaluate_model(gemini_model(data, fake.base_url), texts, labels, latency_sample=5, progress=False)
    assert rep.error is None and len(rep.failures) == 1 and "refused" in rep.failures[0]
    assert len(fake.requests) == 12  # nothing re-sent: the batch error carried the other answers
    assert rep.y_pred.count(FAILED_LABEL) == 1
    assert rep.accuracy == pytest.approx(accuracy_score(labels, rep.y_pred))
    assert rep.summary()["failed_queries"] == 1


# --- LangSmith (offline) -----------------------------------------------------------------------

def test_langsmith_suite_offline_matches_runner(tfidf_model, data, monkeypatch):
    monkeypatch.delenv("LANGSMITH_API_KEY", raising=False)
    monkeypatch.delenv("LANGCHAIN_API_KEY", raising=False)
    texts, labels = data.validation.texts[:60], data.validation.labels[:60]
    exs = make_examples(texts, labels, "banking77-validation")
    assert exs[0].inputs == {"text": texts[0]} and exs[0].outputs == {"intent": labels[0]}
    out = run_suite({"tfidf": tfidf_model}, texts, labels, "banking77-validation")
    rep = evaluate_model(tfidf_model, texts, labels, latency_sample=0, progress=False)
    assert out["tfidf"]["uploaded"] is False and out["tfidf"]["n"] == 60
    assert out["tfidf"]["accuracy"] == pytest.approx(rep.accuracy)
    assert out["tfidf"]["macro_f1"] == pytest.approx(rep.macro_f1)


# --- report ----------------------------------------------------------------------------------

def test_report_folder_with_plots(tfidf_model, data, fake, tmp_path):
    texts, labels = data.validation.texts[:40], data.validation.labels[:40]
    reps = evaluate_models({"tfidf": tfidf_model, "gemini": gemini_model(data, fake.base_url)}, texts, labels,
                           oos_texts=json.loads(OOS_FILE.read_text())[:20], latency_sample=20, progress=False)
    files = write_report(reps, tmp_path / "rep", {"dataset": "banking77-validation", "n": 40})
    for name in ("report.json", "report.md", "latency_cdf", "accuracy_vs_p50", "confusion_tfidf"):
        assert files[name].is_file() and files[name].stat().st_size > 0
    for key, p in files.items():
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rj = json.loads(files["report.json"].read_text())
    for name in ("tfidf", "gemini"):
        row = rj["backends"][name]
        assert {"accuracy", "macro_f1", "p50_ms", "p99_ms", "oos_rejection", "n", "model_version"} <= set(row)
        assert row["accuracy"] == round(reps[name].accuracy, 4) and row["n"] == 40
    md = files["report.md"].read_text()
    assert "| tfidf |" in md and "| gemini |" in md and "latency_cdf.png" in md


# --- CLI -------------------------------------------------------------------------------------

def _factory(tfidf_model, gem):
    def factory(name, settings):
        if name == "custom":  # the TF-IDF model stands in for a trained custom backend here
            return tfidf_model
        if name == "gemini":
            return gem
        raise BackendUnavailable(f"no trained {name} model")
    return factory


def test_cli_eval_json_and_report(tfidf_model, data, fake, settings, tmp_path, capsys):
    oos = tmp_path / "oos.json"
    oos.write_text(json.dumps(json.loads(OOS_FILE.read_text())[:15]))
    args = ["eval", "--backends", "custom,peft,gemini,bogus", "--split", "validation", "--limit", "30",
            "--json", "--oos-file", str(oos), "--latency-sample", "10", "--out", str(tmp_path / "r"), "--no-progress"]
    ns = _parse(args)
    code = eval_cli.cmd_eval(ns, _factory(tfidf_model, gemini_model(data, fake.base_url)), settings)
    out, err = capsys.readouterr()
    assert code == 0
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["backend"] for r in rows] == ["custom", "gemini"]
    for r in rows:
        assert {"backend", "model_version", "n", "accuracy", "macro_f1", "p50_ms", "p99_ms",
                "confused_pairs", "oos_rejection"} <= set(r)
        assert r["n"] == 30 and 0 <= r["oos_rejection"] <= 1
    assert "'peft' skipped" in err and "no trained peft model" in err and "unknown backend 'bogus'" in err
    assert (tmp_path / "r" / "report.json").is_file() and (tmp_path / "r" / "latency_cdf.png").is_file()


def test_cli_eval_table_on_user_csv(tfidf_model, data, settings, tmp_path, capsys):
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text("text,category\nI lost my card\tlost_or_stolen_card\n".replace("\t", ",")
                        + "how do I activate my card,activate_my_card\nwhat is the exchange rate,exchange_rate\n")
    ns = _parse(["eval", "--backends", "custom", "--file", str(csv_path), "--latency-sample", "3", "--no-progress"])
    assert eval_cli.cmd_eval(ns, _factory(tfidf_model, None), settings) == 0
    out = capsys.readouterr().out
    assert "custom" in out and "tfidf-lr-test" in out and "accuracy" in out


@pytest.mark.parametrize("content, msg", [
    ("sentence,label\nhello,card_arrival\n", "expected a CSV with header 'text,category'"),
    ("text,category\nhello,not_an_intent\n", "unknown intent labels"),
    ("text,category\n", "has no rows"),
])
def test_cli_eval_bad_csv_exits_2(tfidf_model, settings, tmp_path, capsys, content, msg):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    ns = _parse(["eval", "--backends", "custom", "--file", str(bad), "--no-progress"])
    assert eval_cli.cmd_eval(ns, _factory(tfidf_model, None), settings) == 2
    assert msg in capsys.readouterr().err


def test_cli_eval_bad_options_and_no_backend(tfidf_model, settings, tmp_path, capsys):
    ns = _parse(["eval", "--backends", "custom", "--file", str(tmp_path / "missing.csv")])
    assert eval_cli.cmd_eval(ns, _factory(tfidf_model, None), settings) == 2
    (tmp_path / "o.json").write_text('{"not": "a list"}')
    ns = _parse(["eval", "--backends", "custom", "--oos-file", str(tmp_path / "o.json")])
    assert eval_cli.cmd_eval(ns, _factory(tfidf_model, None), settings) == 2
    assert "JSON list of strings" in capsys.readouterr().err
    ns = _parse(["eval", "--backends", "peft", "--limit", "5", "--no-progress"])
    assert eval_cli.cmd_eval(ns, _factory(tfidf_model, None), settings) == 1
    assert "none of the requested backends" in capsys.readouterr().err


def _parse(argv):
    import argparse

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    eval_cli.register(sub)
    return p.parse_args(argv)


# --- benchmark every N requests ---------------------------------------------------------------

def test_scheduler_2n_requests_make_exactly_2_rounds(tfidf_model, settings, tmp_path):
    log = tmp_path / "bench.jsonl"
    sched = BenchmarkScheduler(settings, lambda: {"tfidf": tfidf_model}, log, latency_sample=10)
    started = []
    for _ in range(2):
        for _ in range(settings.bench_every):
            started.append(sched.record_request())
        assert sched.wait_idle(60)
    assert started.count(True) == 2 and started[4] and started[9]
    rows = read_log(log)
    assert [r["round"] for r in rows] == [1, 2] and {r["backend"] for r in rows} == {"tfidf"}
    texts, labels = probe_set(settings)
    expected = accuracy_score(labels, [p.intent for p in tfidf_model.classify_batch(texts)])
    for r in rows:
        assert set(r) == {"timestamp", "round", "backend", "model_version", "n", "accuracy", "p50_ms",
                          "p99_ms", "device", "error", "concurrent_requests", "kind", "arm", "rss_mb",
                          "cost_per_1k_usd", "escalation_rate"}
        assert r["kind"] == "probe" and r["arm"] == "tfidf" and r["rss_mb"] > 50 and r["cost_per_1k_usd"] > 0
        assert r["escalation_rate"] is None
        assert r["concurrent_requests"] == 0  # no request arrived while the round ran
        assert r["n"] == 40 and r["error"] is None and r["device"] == "cpu"
        assert r["accuracy"] == round(expected, 4) and 0 < r["p50_ms"] <= r["p99_ms"] < 5000
    # a new scheduler on the same log continues the round numbers
    again = BenchmarkScheduler(settings, lambda: {"tfidf": tfidf_model}, log, latency_sample=5)
    assert again.run_round()[0]["round"] == 3


def test_scheduler_never_blocks_and_never_runs_two_rounds_at_once(tfidf_model, settings, tmp_path):
    gate = threading.Event()

    def slow_models():
        gate.wait(30)  # the round cannot finish until the test opens the gate
        return {"tfidf": tfidf_model}

    log = tmp_path / "bench.jsonl"
    sched = BenchmarkScheduler(settings, slow_models, log, latency_sample=5)
    t0 = time.perf_counter()
    flags = [sched.record_request() for _ in range(3 * settings.bench_every)]
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0  # the callers were never held up by the running round
    assert flags.count(True) == 1 and sched.rounds_skipped == 2
    gate.set()
    assert sched.wait_idle(60)
    assert [r["round"] for r in read_log(log)] == [1]


def test_scheduler_off_when_every_is_zero(tfidf_model, settings, tmp_path):
    sched = BenchmarkScheduler(settings.model_copy(update={"bench_every": 0}), lambda: {"tfidf": tfidf_model},
                               tmp_path / "b.jsonl")
    assert not any(sched.record_request() for _ in range(20))
    assert not (tmp_path / "b.jsonl").exists()


def test_summarise_log_and_bench_log_cli(settings, tmp_path, capsys):
    log = tmp_path / "b.jsonl"
    lines = [
        {"timestamp": "2025-01-01T00:00:00+00:00", "round": 1, "backend": "custom", "model_version": "v1", "n": 40,
         "accuracy": 0.8, "p50_ms": 2.0, "p99_ms": 5.0, "device": "cpu", "error": None},
        {"timestamp": "2025-01-01T00:00:01+00:00", "round": 1, "backend": "gemini", "model_version": "g", "n": 0,
         "accuracy": None, "p50_ms": None, "p99_ms": None, "device": "remote", "error": "BackendUnavailable: x"},
        {"timestamp": "2025-01-01T00:10:00+00:00", "round": 2, "backend": "custom", "model_version": "v1", "n": 40,
         "accuracy": 0.9, "p50_ms": 4.0, "p99_ms": 7.0, "device": "cpu", "error": None},
    ]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    rows = summarise_log(log)
    assert [r["backend"] for r in rows] == ["custom", "gemini"]
    c, g = rows
    assert c["rounds"] == 2 and c["errors"] == 0 and c["mean_accuracy"] == 0.85 and c["last_accuracy"] == 0.9
    assert c["mean_p50_ms"] == 3.0 and c["mean_p99_ms"] == 6.0 and c["min_accuracy"] == 0.8
    assert g["errors"] == 1 and g["mean_accuracy"] is None and g["last_error"] == "BackendUnavailable: x"
    assert summarise_log(tmp_path / "missing.jsonl") == []
    assert eval_cli.cmd_bench_log(_parse(["bench-log", "--path", str(log)]), settings) == 0
    out = capsys.readouterr().out
    assert "custom" in out and "0.85" in out and "gemini" in out
    assert eval_cli.cmd_bench_log(_parse(["bench-log", "--path", str(log), "--json"]), settings) == 0
    assert [json.loads(x)["backend"] for x in capsys.readouterr().out.splitlines()] == ["custom", "gemini"]


# --- guard metrics, AUROC, robustness, label noise (issue 9) -----------------------------------

class TableModel(IntentChatModel):
    """Answers from a fixed table text -> (intent, confidence, ranking): a hand-made case whose
    metrics are computed by hand below."""

    backend_name: ClassVar[str] = "table"
    table: dict = {}

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        return [IntentPrediction(self.table[t][0], self.table[t][1], self.table[t][2],
                                 extra={"thresholds": {"oos_threshold": 0.3, "clarify_threshold": 0.6}})
                for t in texts]


def test_guard_metrics_auroc_and_ece_on_a_hand_made_case(settings):
    table = {
        "a": ("card_arrival", 0.9, [("card_arrival", 0.9), ("out_of_scope", 0.05)]),   # routed, right
        "b": ("card_arrival", 0.7, [("card_arrival", 0.7), ("lost_or_stolen_card", 0.2)]),  # routed, wrong
        "c": ("lost_or_stolen_card", 0.5, [("lost_or_stolen_card", 0.5), ("card_arrival", 0.4)]),  # clarify
        "d": ("out_of_scope", 0.8, [("out_of_scope", 0.8), ("card_arrival", 0.15)]),  # declined by label
        "x": ("out_of_scope", 0.9, [("out_of_scope", 0.9), ("card_arrival", 0.05)]),  # OOS, declined by label
        "y": ("card_arrival", 0.2, [("card_arrival", 0.2), ("out_of_scope", 0.1)]),  # OOS, declined by threshold
        "z": ("card_arrival", 0.95, [("card_arrival", 0.95), ("out_of_scope", 0.01)]),  # OOS, routed
    }
    model = TableModel(table=table)
    plain = settings.model_copy(update={"oos_threshold": None, "clarify_threshold": None})
    rep = evaluate_model(model, ["a", "b", "c", "d"], ["card_arrival", "lost_or_stolen_card", "lost_or_stolen_card",
                                                       "card_arrival"], oos_texts=["x", "y", "z"], settings=plain,
                         latency_sample=0, progress=False)
    assert rep.error is None
    assert (rep.threshold, rep.clarify_threshold) == (0.3, 0.6)  # from response_metadata["thresholds"]
    assert rep.accuracy == 0.5  # a and c right; d's out_of_scope counts as an error
    assert rep.in_scope_rejection == 0.25 and rep.clarify_rate == 0.25
    assert rep.routed_accuracy == 0.5  # a right, b wrong
    assert rep.oos_rejection == pytest.approx(2 / 3)
    # in-scope scores (best non-OOS confidence): a .9, b .7, c .5, d .15; OOS: x .05, y .2, z .95
    # pairs (in > out): a beats x,y; b beats x,y; c beats x,y; d beats x -> 7 of 12
    assert rep.oos_auroc == pytest.approx(7 / 12)
    # ECE, 15 bins: .9 right (bin 13), .7 wrong (bin 10), .5 right (bin 7), .8 wrong (bin 11)
    assert rep.ece == pytest.approx((0.1 + 0.7 + 0.5 + 0.8) / 4)
    row = rep.summary()
    assert row["in_scope_rejection"] == 0.25 and row["oos_auroc"] == round(7 / 12, 4)


def test_robustness_on_a_real_model(tfidf_model, data):
    from training.augment import KINDS

    texts, labels = data.validation.texts[:120], data.validation.labels[:120]
    rep = evaluate_model(tfidf_model, texts, labels, latency_sample=0, progress=False, robust=True, seed=5)
    assert rep.error is None and set(rep.robustness_per_kind) == set(KINDS)
    assert sum(v["n"] for v in rep.robustness_per_kind.values()) == 120
    weighted = sum(v["accuracy"] * v["n"] for v in rep.robustness_per_kind.values()) / 120
    assert rep.robustness_accuracy == pytest.approx(weighted, abs=1e-3)
    # a word-level TF-IDF model loses accuracy on typos / abbreviations: the perturbation is real
    assert 0.3 < rep.robustness_accuracy < rep.accuracy


def test_label_noise_pairs_on_real_test_and_by_hand(data):
    from evals.report import near_duplicate_label_pairs

    pairs = near_duplicate_label_pairs(data.test.texts, data.test.labels)
    assert {"text_a": "What are the fees for top-ups?", "label_a": "top_up_by_bank_transfer_charge",
            "text_b": "What are the fees for top ups?", "label_b": "top_up_by_card_charge"} in pairs
    assert near_duplicate_label_pairs(["Lost card!", "lost card", "lost-card?"], ["a", "a", "b"]) == [
        {"text_a": "Lost card!", "label_a": "a", "text_b": "lost-card?", "label_b": "b"}]


def test_cli_robustness_report_with_one_backend(tfidf_model, settings, tmp_path, capsys):
    out_dir = tmp_path / "rob"
    ns = _parse(["eval", "--backends", "custom", "--split", "validation", "--limit", "60", "--robustness",
                 "--json", "--latency-sample", "5", "--out", str(out_dir), "--no-progress"])
    assert eval_cli.cmd_eval(ns, _factory(tfidf_model, None), settings) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert {"robustness_accuracy", "in_scope_rejection", "clarify_rate", "routed_accuracy", "ece"} <= set(row)
    assert 0 <= row["robustness_accuracy"] <= 1 and set(row["robustness_per_kind"]) >= {"typo", "casing"}
    md = (out_dir / "report.md").read_text()
    assert "Robustness per perturbation kind" in md and "| typo (n=10)" in md
    # one backend: no accuracy-vs-latency plot; the confusion plot exists
    assert not (out_dir / "accuracy_vs_p50.png").exists() and (out_dir / "confusion_custom.png").is_file()
