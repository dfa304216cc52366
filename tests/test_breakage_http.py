"""Adversarial regressions (breakage tests) for the HTTP error mapping; no trained model needed.

Faults found by probing a served app (loopback, demo bank):

- ``/assistant/stream`` with ``"config": {"configurable": "x"}`` (or a list) answered a bare
  HTTP 500 (``dict("x")`` in the route), where ``/classify/invoke`` answers 422;
- ``/assistant/stream`` with an unknown backend (``"nope"``, ``7``, ``"custom@../x"``) sent an
  ``error`` event with status 500 instead of a 4xx;
- ``/assistant/invoke`` and ``/batch`` silently ignore ``config.configurable.backend``
  (LangServe drops it: the assistant runnable declares no configurable field), so a request for
  ``gemini`` without a key got 200 from another backend while ``/stream`` answered 503;
- a 422 for an unknown ``chosen_intent`` repeated 300 characters of it (README: at most 40).
"""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

DAVE = {"Authorization": "Bearer demo-dave-key"}


@pytest.fixture(scope="module")
def client(session_home):
    from assistant.app import create_app
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine

    create_schema(get_engine())
    seed_demo(get_engine())
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def _error_event(text: str) -> dict | None:
    current = None
    for line in text.splitlines():
        if line.startswith("event:"):
            current = line[6:].strip()
        elif line.startswith("data:") and current == "error":
            return json.loads(line[5:])
    return None


@pytest.mark.parametrize("configurable", ["x", [1]])
def test_stream_refuses_a_configurable_that_is_not_an_object(client: TestClient, configurable) -> None:
    r = client.post("/assistant/stream", headers=DAVE,
                    json={"input": {"message": "what is my balance"}, "config": {"configurable": configurable}})
    assert r.status_code in (400, 422), r.text[:200]
    assert "configurable" in json.dumps(r.json()["detail"])


@pytest.mark.parametrize("backend", ["nope", 7, "custom@../../etc"])
def test_stream_refuses_an_unknown_backend_with_a_4xx(client: TestClient, backend) -> None:
    r = client.post("/assistant/stream", headers=DAVE,
                    json={"input": {"message": "what is my balance"}, "config": {"configurable": {"backend": backend}}})
    status = r.status_code if r.status_code != 200 else (_error_event(r.text) or {}).get("status_code")
    assert status in (400, 422), r.text[:300]


def test_invoke_honours_the_requested_backend(client: TestClient) -> None:
    """conftest removes GOOGLE_API_KEY, so gemini is unavailable: /invoke must say so (503), as
    /stream does, not answer from another backend."""
    body = {"input": {"message": "what is my balance"}, "config": {"configurable": {"backend": "gemini"}}}
    r = client.post("/assistant/invoke", headers=DAVE, json=body)
    assert r.status_code == 503, r.text[:200]
    assert "gemini" in r.json()["detail"].lower()
    r = client.post("/assistant/invoke", headers=DAVE,
                    json={"input": {"message": "hi"}, "config": {"configurable": {"backend": "nope"}}})
    assert r.status_code in (400, 422), r.text[:200]


def test_unknown_choice_422_echoes_at_most_40_characters(client: TestClient) -> None:
    r = client.post("/assistant/invoke", headers=DAVE, json={"input": {"message": "hi", "chosen_intent": "q" * 500}})
    assert r.status_code == 422
    assert not re.search("q{41}", r.text)


@pytest.mark.parametrize("flag", ["\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F",   # England
                                  "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"])  # Scotland
def test_emoji_tag_sequence_flags_are_accepted(client: TestClient, flag: str) -> None:
    """RGI emoji flags of England/Scotland/Wales are tag sequences (U+E0020-E007F, category Cf);
    like ZWJ emoji they are ordinary text, not control characters."""
    from chains.assistant import validate_message

    message = f"{flag} what is my balance"
    assert validate_message(message) == message
    r = client.post("/classify/invoke", headers=DAVE, json={"input": {"text": message}})
    assert r.status_code != 422, r.text[:200]
