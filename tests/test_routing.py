"""Routing (chains/arms.py, policies.py, live.py, routing.py): the cascade, the sticky A/B rollout, shadow comparison,
their rows in the benchmark log, the eval figures, and the Prometheus ``/metrics`` endpoint.

Backends are fakes with fixed rankings (the pattern of tests/fake_backend.py): each follows the
real contract, so the policies cannot tell them from a trained model, and every threshold
decision is known in advance.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import pytest
from langchain_core.messages import HumanMessage

from chains.guard import guard
from chains.arms import assign_arm, parse_arm, parse_rollout, stable_bucket
from chains.live import ShadowRunner, add_listener, remove_listener
from chains.policies import CascadeIntentModel, RolloutIntentModel, get_arm
from chains.routing import RoutedChain
from evals.bench_log import read_log, summarise_log
from evals.benchmark import BenchmarkScheduler, LiveLog
from evals.runner import evaluate_model
from fake_backend import FakeIntentModel
from models.base import IntentChatModel, IntentPrediction


class TableModel(IntentChatModel):
    """Answers every text from ``table`` (text -> [(intent, confidence), ...]); thresholds
    ``saved``; ``up`` False makes it unavailable; ``calls`` records the texts it was asked."""

    backend_name: ClassVar[str] = "custom"
    table: dict[str, list[tuple[str, float]]] = {}
    saved: dict[str, float] = {"oos_threshold": 0.3, "clarify_threshold": 0.6}
    version: str = "t1"
    up: bool = True
    latency: float = 1.0
    calls: list[str] = []

    @property
    def model_version(self) -> str:
        return self.version

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.saved)

    def availability(self) -> tuple[bool, str]:
        return (True, "ok") if self.up else (False, "switched off in the test")

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        self.calls.extend(texts)
        return [IntentPrediction(self.table[t][0][0], self.table[t][0][1], list(self.table[t]), self.latency)
                for t in texts]


class PeftTable(TableModel):
    backend_name: ClassVar[str] = "peft"


class GeminiTable(TableModel):
    backend_name: ClassVar[str] = "gemini"


TEXTS = ["sure", "edge", "just below", "peft unsure"]
CHEAP = {"sure": [("card_arrival", 0.95)], "edge": [("exchange_rate", 0.6)],
         "just below": [("exchange_rate", 0.5999), ("card_arrival", 0.3)],
         "peft unsure": [("card_arrival", 0.2), ("exchange_rate", 0.1)]}
STRONG = {"just below": [("exchange_charge", 0.9)], "peft unsure": [("cancel_transfer", 0.4)]}
STRONGEST = {"peft unsure": [("top_up_failed", 0.97)]}


@pytest.fixture()
def arms():
    cheap = TableModel(table=CHEAP, calls=[], version="c1")
    strong = PeftTable(table=STRONG, calls=[], version="p1", latency=20.0,
                       saved={"oos_threshold": 0.2, "clarify_threshold": 0.5})
    strongest = GeminiTable(table=STRONGEST, calls=[], version="g1", latency=900.0)
    return {"custom": cheap, "peft": strong, "gemini": strongest}


def test_cascade_escalates_exactly_when_below_the_answering_arms_threshold(arms) -> None:
    cascade = CascadeIntentModel(order="custom,peft,gemini", models=arms)
    metas = [cascade.invoke(t).response_metadata for t in TEXTS]
    assert [m["cascade"] for m in metas] == [["custom"], ["custom"], ["custom", "peft"], ["custom", "peft", "gemini"]]
    assert [m["answered_by"] for m in metas] == ["custom", "custom", "peft", "gemini"]
    assert [m["backend"] for m in metas] == ["custom", "custom", "peft", "gemini"]
    assert [m["model_version"] for m in metas] == ["c1", "c1", "p1", "g1"]
    assert [m["intent"] for m in metas] == ["card_arrival", "exchange_rate", "exchange_charge", "top_up_failed"]
    assert all(m["arm"] == "cascade" for m in metas)
    # the answer carries the answering arm's thresholds, so the guard judges it by its own scale
    assert metas[2]["thresholds"] == {"oos_threshold": 0.2, "clarify_threshold": 0.5}
    assert guard(metas[2]).action == "route" and guard(metas[1]).action == "route"
    # latency adds up along the path; a later arm is asked only about what was passed on
    assert [m["latency_ms"] for m in metas] == [1.0, 1.0, 21.0, 921.0]
    assert arms["peft"].calls == ["just below", "peft unsure"] and arms["gemini"].calls == ["peft unsure"]


def test_cascade_batch_skips_unavailable_arms_and_the_last_arm_answers(arms) -> None:
    arms["gemini"].up = False
    cascade = CascadeIntentModel(order="custom,peft,gemini", models=arms)
    out = cascade.batch(TEXTS)
    last = out[3].response_metadata
    assert last["cascade"] == ["custom", "peft"] and last["answered_by"] == "peft"
    assert last["intent"] == "cancel_transfer" and guard(last).action == "clarify"  # unsure, nobody left to ask
    assert arms["gemini"].calls == []
    assert cascade.availability()[0] and "gemini: switched off" in cascade.availability()[1]
    assert cascade.model_version == "custom:c1+peft:p1"
    for a in arms.values():
        a.up = False
    assert cascade.availability() == (False, "no cascade arm is available (custom: switched off in the test; "
                                      "peft: switched off in the test; gemini: switched off in the test)")


def test_eval_reports_escalation_rate_and_cost(arms) -> None:
    cascade = CascadeIntentModel(order="custom,peft,gemini", models=arms)
    gold = ["card_arrival", "exchange_rate", "exchange_charge", "top_up_failed"]
    rep = evaluate_model(cascade, TEXTS, gold, name="cascade", latency_sample=4, progress=False)
    cheap = evaluate_model(arms["custom"], TEXTS, gold, name="custom", latency_sample=4, progress=False)
    assert rep.error is None and rep.accuracy == 1.0 and cheap.accuracy == 0.5
    assert rep.escalation_rate == 0.5 and cheap.escalation_rate is None
    assert rep.cost_per_1k_usd is not None and rep.cost_per_1k_usd >= 0
    row = rep.summary()
    assert row["escalation_rate"] == 0.5 and "cost_per_1k_usd" in row and "escalation_rate" not in cheap.summary()


def test_rollout_split_90_10_is_sticky_per_customer() -> None:
    arms = parse_rollout("custom@v1:90,custom@v2:10")
    assert arms == [("custom@v1", 0.9), ("custom@v2", 0.1)]
    first = {cid: assign_arm(f"customer:{cid}", arms) for cid in range(1, 1001)}
    share = sum(a == "custom@v1" for a in first.values()) / 1000
    assert 0.85 <= share <= 0.95
    assert all(assign_arm(f"customer:{cid}", arms) == a for cid, a in first.items())
    # SHA-256, not hash(): the same number in every process and Python version
    assert stable_bucket("customer:1") == pytest.approx(0.6117236184, abs=1e-9)

    v1 = TableModel(table={"hi": [("card_arrival", 0.9)]}, calls=[], version="v1")
    v2 = TableModel(table={"hi": [("card_arrival", 0.8)]}, calls=[], version="v2")
    rollout = RolloutIntentModel(spec="custom@v1:90,custom@v2:10", models={"custom@v1": v1, "custom@v2": v2})
    for cid in (1, 2, 3, 7, 42):
        expected = first[cid]
        for config in ({"configurable": {"customer_id": cid}},
                       {"configurable": {"langgraph_auth_user": {"customer_id": cid}}}):
            meta = rollout.invoke([HumanMessage("hi")], config).response_metadata
            assert meta["arm"] == expected and meta["model_version"] == expected.split("@")[1]
    batch = rollout.batch(["hi"] * 3, [{"configurable": {"customer_id": c}} for c in (1, 2, 3)])
    assert [m.response_metadata["arm"] for m in batch] == [first[1], first[2], first[3]]
    # without a customer (offline eval) the text picks the arm, the same way every time
    by_text = assign_arm("text:hi", arms)
    assert rollout.invoke("hi").response_metadata["arm"] == by_text
    (pred,) = rollout.classify_batch(["hi"])
    assert pred.extra["arm"] == by_text and pred.extra["model_version"] == by_text.split("@")[1]


def test_rollout_settings_are_checked() -> None:
    for bad, reason in [("", "empty"), ("custom", "needs a weight"), ("custom:0", "positive"),
                        ("custom:x", "not a number"), ("custom:1,custom:2", "twice"), ("nope:5", "Unknown backend 'nope'"),
                        ("gemini@m:5", "model-version folders"), ("custom@../x:5", "folder name")]:
        with pytest.raises(ValueError, match=reason):
            parse_rollout(bad)
    assert parse_arm("custom@20261130-101500-1a2b3c4d") == ("custom", "20261130-101500-1a2b3c4d")
    ok, reason = RolloutIntentModel(spec=None).availability()
    assert not ok and "BANKING_ROLLOUT" in reason


def test_a_pinned_arm_loads_that_version_folder(session_home) -> None:
    model = get_arm("custom@20000101-000000-deadbeef")
    assert model.model_version == "20000101-000000-deadbeef"
    assert model.model_dir == session_home / "models" / "custom" / "20000101-000000-deadbeef"
    ok, reason = model.availability()
    assert not ok and "missing or incomplete" in reason
    assert get_arm("custom@20000101-000000-deadbeef") is model


@pytest.fixture()
def registry():
    """models.registry with its cache saved and restored around the test."""
    from models import registry

    saved = dict(registry._instances)
    registry._instances.clear()
    yield registry
    registry._instances.clear()
    registry._instances.update(saved)


def test_one_registry_holds_backends_and_pinned_arms_and_one_reset_forgets_both(session_home, registry) -> None:
    pinned, plain = get_arm("custom@20000101-000000-deadbeef"), get_arm("custom")
    assert registry.get_backend("custom", "20000101-000000-deadbeef") is pinned
    assert registry.get_backend("custom") is plain and pinned is not plain
    assert sorted(registry._instances) == ["custom", "custom@20000101-000000-deadbeef"]
    registry.reset_backends()
    assert registry._instances == {}
    assert get_arm("custom@20000101-000000-deadbeef") is not pinned and get_arm("custom") is not plain


def test_an_unknown_backend_is_one_error_everywhere() -> None:
    from assistant.cli import build_parser
    from chains.arms import CHOICES
    from chains.intent import build_intent_chain
    from models.registry import UnknownBackend, get_backend

    raised = []
    for call in (lambda: get_backend("nope"), lambda: parse_arm("nope"), lambda: get_arm("nope"),
                 lambda: build_intent_chain("nope")):
        with pytest.raises(UnknownBackend) as e:
            call()
        raised.append(e.value)
    assert all(isinstance(e, KeyError) and isinstance(e, ValueError) for e in raised)
    assert [str(e) for e in raised] == [
        "Unknown backend 'nope'; choose one of custom, peft, gemini.",
        "Unknown backend 'nope'; choose one of custom, peft, gemini, cascade.",
        "Unknown backend 'nope'; choose one of custom, peft, gemini, cascade.",
        "Unknown backend 'nope'; choose one of custom, peft, gemini, cascade, rollout."]
    ask = next(a for a in build_parser()._subparsers._group_actions[0].choices["ask"]._actions
               if a.dest == "backend")
    assert tuple(ask.choices) == CHOICES == ("custom", "peft", "gemini", "cascade", "rollout")


def test_a_backend_that_cannot_be_imported_is_missing_the_same_way_plain_or_pinned(session_home, registry,
                                                                                    monkeypatch) -> None:
    from models.base import BackendUnavailable

    monkeypatch.setitem(registry.BACKENDS, "peft", ("models.no_such_module", "PeftIntentModel"))
    for model, name in [(get_arm("peft"), "peft"), (get_arm("peft@v1"), "peft@v1")]:
        assert isinstance(model, registry.MissingBackend) and model.name_ == name
        ok, reason = model.availability()
        assert not ok and "No module named 'models.no_such_module'" in reason
        assert reason.endswith("install with `pip install -e .[peft]`")
        with pytest.raises(BackendUnavailable, match=f"Backend '{name}' is unavailable: optional dependencies"):
            model.classify_batch(["hi"])


def test_shadow_rows_appear_in_the_log_with_agreement(tmp_path, arms) -> None:
    from config.settings import Settings

    settings = Settings(home=tmp_path, bench_every=0)
    scheduler = BenchmarkScheduler(settings, lambda: {}, tmp_path / "bench.jsonl")
    candidate = PeftTable(table={"I lost my card": [("lost_or_stolen_card", 0.9)],
                                 "exchange rate please": [("exchange_charge", 0.7)]}, calls=[], version="p9")
    runner = ShadowRunner()
    chain = RoutedChain(bound=FakeIntentModel(), default="custom", shadow_arm="peft", resolve={"peft": candidate}.get,
                        runner=runner)
    live_log = LiveLog(scheduler)
    add_listener(live_log)
    try:
        answers = [chain.invoke(t) for t in ("I lost my card", "exchange rate please")]
        assert runner.drain(30)
    finally:
        remove_listener(live_log)
    assert [a.response_metadata["arm"] for a in answers] == ["custom", "custom"]
    rows = read_log(tmp_path / "bench.jsonl")
    live = [r for r in rows if r["kind"] == "live"]
    shadow = [r for r in rows if r["kind"] == "shadow"]
    assert [(r["arm"], r["intent"], r["action"]) for r in live] == [
        ("custom", "lost_or_stolen_card", "route"), ("custom", "exchange_rate", "route")]
    assert [(r["arm"], r["against"], r["intent"], r["agree"]) for r in shadow] == [
        ("peft", "custom", "lost_or_stolen_card", True), ("peft", "custom", "exchange_charge", False)]
    summary = {r["arm"]: r for r in summarise_log(tmp_path / "bench.jsonl")}
    assert summary["custom"]["live_requests"] == 2 and summary["custom"]["mean_confidence"] == 0.94
    assert summary["custom"]["clarified_share"] == 0.0 and summary["custom"]["live_p50_ms"] == 0.5
    assert summary["peft"]["shadow_n"] == 2 and summary["peft"]["shadow_agreement"] == 0.5


# --- the served app: arm in the output, /metrics, /benchmarks --------------------------------------

OPERATOR = {"Authorization": "Bearer demo-operator-key"}
ALICE = {"Authorization": "Bearer demo-alice-key"}


@pytest.fixture()
def app_client(session_home, monkeypatch):
    """The app on the fake backend (no training): rollout 90/10 between the plain custom arm and
    the cascade (here custom alone), shadow arm the cascade; the benchmark log emptied first."""
    from fastapi.testclient import TestClient

    from assistant.app import create_app
    from config.settings import get_settings
    from bank.seed import seed_demo
    from bank.store import get_engine
    from models import registry as backends

    monkeypatch.setenv("BANKING_ROLLOUT", "custom:90,cascade:10")
    monkeypatch.setenv("BANKING_CASCADE", "custom")
    monkeypatch.setenv("BANKING_SHADOW", "cascade")
    get_settings.cache_clear()
    log = session_home / "benchmarks" / "benchmarks.jsonl"
    log.unlink(missing_ok=True)
    seed_demo(get_engine(), reset=True)
    saved = dict(backends._instances)
    backends._instances["custom"] = FakeIntentModel(calls=[])
    try:
        with TestClient(create_app()) as c:
            yield c, log
    finally:
        backends._instances.clear()
        backends._instances.update(saved)
        get_settings.cache_clear()


def _sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    pattern = name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    for line in text.splitlines():
        if line.startswith(pattern + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_refuse_customers_and_count_requests_by_route_backend_arm_status(app_client) -> None:
    from chains.live import SHADOW

    client, log = app_client
    assert client.get("/metrics", headers=ALICE).status_code == 403
    assert client.get("/metrics").status_code == 401  # no key, not from loopback
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401

    r = client.post("/classify/invoke", json={"input": {"text": "I lost my card"}}, headers=ALICE)
    assert r.status_code == 200 and r.json()["output"]["intent"] == "lost_or_stolen_card"
    assert r.json()["output"]["arm"] == "custom"
    r = client.post("/assistant/invoke", json={"input": {"message": "what is the exchange rate"}}, headers=ALICE)
    assert r.status_code == 200 and r.json()["output"]["arm"] == "custom"
    alice = r.json()["output"]
    rollout = client.post("/classify/invoke", json={"input": {"text": "what is the exchange rate"},
                                                    "config": {"configurable": {"backend": "rollout"}}}, headers=ALICE)
    assert rollout.status_code == 200
    assert client.post("/classify/invoke", json={"input": {"text": "x"}}, headers={}).status_code == 401

    m = client.get("/metrics", headers=OPERATOR)
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    text = m.text
    base = {"backend": "custom", "arm": "custom", "status": "200"}
    assert _sample(text, "banking_http_requests_total", {**base, "route": "/assistant/invoke"}) == 1.0
    assert _sample(text, "banking_http_request_duration_seconds_count", {**base, "route": "/assistant/invoke"}) == 1.0
    assert _sample(text, "banking_http_requests_total",
                   {"backend": "none", "arm": "none", "status": "401", "route": "/classify/invoke"}) == 1.0
    # the rollout's arm for alice is sticky: the one her id hashes to
    from bank.store import get_engine
    from bank.auth import authenticate_key

    cid = authenticate_key(get_engine(), "demo-alice-key").customer_id
    arm = assign_arm(f"customer:{cid}", parse_rollout("custom:90,cascade:10"))
    expected = {"custom": 1.0}
    expected[arm] = expected.get(arm, 0.0) + 1.0  # the plain request, plus the rollout's
    for a, n in expected.items():
        assert _sample(text, "banking_http_requests_total", {**base, "arm": a, "route": "/classify/invoke"}) == n
    assert not re.search(r'route="/metrics"', text)  # scrapes are not counted

    # live rows and shadow rows (shadow arm: the cascade) in the benchmark log, summarised per arm
    assert SHADOW.drain(30)
    rows = read_log(log)
    assert {r["kind"] for r in rows} == {"live", "shadow"}
    shadow = [r for r in rows if r["kind"] == "shadow"]
    assert shadow and all(r["arm"] == "cascade" and r["agree"] is True for r in shadow)
    body = client.get("/benchmarks", headers=OPERATOR).json()
    per_arm = {r["arm"]: r for r in body["backends"]}
    assert per_arm["custom"]["live_requests"] >= 2 and per_arm["cascade"]["shadow_agreement"] == 1.0
    assert alice["backend"] == "custom" and json.dumps(per_arm)  # JSON-serialisable


def test_metrics_without_a_key_from_loopback(app_client) -> None:
    from fastapi.testclient import TestClient

    client, _ = app_client
    local = TestClient(client.app, client=("127.0.0.1", 40000))
    r = local.get("/metrics")
    assert r.status_code == 200 and "banking_http_requests_total" in r.text
    assert local.get("/metrics", headers=ALICE).status_code == 403  # a customer key stays refused
