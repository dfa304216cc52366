"""LangServe's own client on every /assistant route the README offers (issue 19), against a
real server process with the fake backend: ``invoke``, ``batch`` (bad items answered as their
own errors), ``stream`` (more than one chunk, no "unsupported event" warning), ``astream_events``
for the authenticated customer only, and the per-request ``backend``. Plus non-finite numbers
(``1e999``) anywhere in a body, refused with 400 (issue 20)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import httpx
import pytest
from langserve import RemoteRunnable

from servers import free_port, running_server
from test_stream_abort import LAUNCHER

REPO = Path(__file__).resolve().parent.parent
ALICE = {"Authorization": "Bearer demo-alice-key"}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("remote")
    port = free_port()
    launcher = tmp / "serve_fake.py"
    launcher.write_text(LAUNCHER.format(tests=str(REPO / "tests"), port=port))
    env = {**os.environ, "BANKING_HOME": str(tmp / "home"), "BANKING_RATE_LIMIT_PER_MINUTE": "0",
           "BANKING_BENCH_EVERY": "0", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("BANKING_DATABASE_URL", None)
    url = f"http://127.0.0.1:{port}"
    with running_server([sys.executable, str(launcher)], f"{url}/health", tmp / "server.log", env, cwd=REPO,
                        timeout_s=180):
        yield url


def test_remote_runnable_invoke_batch_and_backend(server_url) -> None:
    remote = RemoteRunnable(f"{server_url}/assistant/", headers=ALICE)
    out = remote.invoke({"message": "where is my new card", "conversation_id": "rr-1"})
    assert out["intent"] == "card_arrival" and out["status"] == "answered"
    items = remote.batch([{"message": "where is my new card"}, {"message": "   "}, {"message": "x" * 2001},
                          {"message": "hello"}])
    assert [i["status"] for i in items] == ["answered", "error", "error", "small_talk"]
    assert [i["error"]["status"] for i in items[1:3]] == [422, 422] and "empty" in items[1]["error"]["detail"]
    with pytest.raises(httpx.HTTPStatusError) as e:  # an unknown backend: LangServe validates the field
        remote.invoke({"message": "hello"}, config={"configurable": {"backend": "nope"}})
    assert e.value.response.status_code == 422
    custom = remote.invoke({"message": "hello", "conversation_id": "rr-2"}, config={"configurable": {"backend": "custom"}})
    assert custom["backend"] == "custom"


def test_remote_runnable_streams_chunks_without_warnings(server_url, caplog) -> None:
    remote = RemoteRunnable(f"{server_url}/assistant/", headers=ALICE)
    with caplog.at_level(logging.WARNING):
        chunks = list(remote.stream({"message": "what is the exchange rate for euros?", "conversation_id": "rr-3"}))
    assert not [r for r in caplog.records if "unsupported event" in r.getMessage().lower()]
    pieces = [c["answer_chunk"] for c in chunks if "answer_chunk" in c]
    (final,) = [c for c in chunks if "status" in c]
    assert len(pieces) > 1 and "".join(pieces) == final["answer"] and final["intent"] == "exchange_rate"


def test_astream_events_for_the_authenticated_customer_only(server_url) -> None:
    async def events(headers: dict) -> list[dict]:
        remote = RemoteRunnable(f"{server_url}/assistant/", headers=headers)
        return [e async for e in remote.astream_events({"message": "hello", "conversation_id": "rr-4"}, version="v2")]

    seen = asyncio.run(events(ALICE))
    kinds = {e["event"] for e in seen}
    assert "on_chain_start" in kinds and "on_chain_end" in kinds
    root = seen[-1]  # LangServe names the root run after the route
    assert (root["event"], root["name"]) == ("on_chain_end", "/assistant")
    assert root["data"]["output"]["status"] == "small_talk"
    assert {"intake", "settle", "classify", "respond"} <= {e["name"] for e in seen}  # the graph's nodes
    assert sum(e["event"] == "on_chain_stream" and e["name"] == "/assistant" for e in seen) > 1
    with pytest.raises(httpx.HTTPStatusError) as e:
        asyncio.run(events({}))
    assert e.value.response.status_code == 401


@pytest.mark.parametrize("body", [
    {"input": {"message": 1e999}},
    {"input": {"message": "hi", "approve": 1e999}},
    {"input": {"message": "hi"}, "config": {"configurable": {"backend": 1e999}}},
])
def test_non_finite_numbers_are_refused_with_400(server_url, body) -> None:
    import json

    raw = json.dumps(body)  # Python writes Infinity; send the literal a client would
    raw = raw.replace("Infinity", "1e999")
    for route in ("/assistant/invoke", "/assistant/stream", "/classify/invoke"):
        r = httpx.post(server_url + route, content=raw, headers={**ALICE, "Content-Type": "application/json"})
        assert r.status_code == 400 and "not a finite number" in r.json()["detail"], (route, r.text)
    r = httpx.post(server_url + "/classify/invoke", content='{"input": {"text": 1e999}}',
                   headers={**ALICE, "Content-Type": "application/json"})
    assert r.status_code == 400


def test_a_foreign_configurable_field_is_refused(server_url) -> None:
    r = httpx.post(server_url + "/assistant/invoke", headers=ALICE,
                   json={"input": {"message": "hello"}, "config": {"configurable": {"customer_id": 2}}})
    assert r.status_code == 400 and "customer_id" in r.json()["detail"]
