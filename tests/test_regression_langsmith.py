"""Regression suite of must-pass queries, LangSmith pytest-plugin style.

Each query is a ``@pytest.mark.langsmith`` test case: inputs, reference output and the model's
output are logged with ``langsmith.testing``. With ``LANGSMITH_API_KEY`` set (and
``LANGSMITH_TEST_TRACKING`` not "false") the results become a LangSmith experiment; offline
(``LANGSMITH_TEST_TRACKING=false``, set by tests/conftest.py) the same tests run locally.

The queries go through ``chains.backends.get_backend("custom")``: the shared custom backend,
which picks up the model trained by the session fixture ``trained_custom_model_dir``
(tests/conftest.py, a short real training run).
"""

from __future__ import annotations

import os

os.environ.setdefault("LANGSMITH_TEST_TRACKING", "false")

import pytest  # noqa: E402
from langsmith import testing as lst  # noqa: E402

# Plain, unambiguous customer phrasings (none copied from the dataset), one per intent family
# the assistant must never get wrong.
MUST_PASS: list[tuple[str, str]] = [
    ("I ordered a card two weeks ago and it still has not arrived", "card_arrival"),
    ("how do I activate my new card?", "activate_my_card"),
    ("I lost my card, please help", "lost_or_stolen_card"),
    ("my phone got stolen", "lost_or_stolen_phone"),
    ("I forgot my passcode", "passcode_forgotten"),
    ("I want to close my account", "terminate_account"),
    ("can I use apple pay?", "apple_pay_or_google_pay"),
    ("the ATM swallowed my card", "card_swallowed"),
    ("I was charged twice for the same purchase", "transaction_charged_twice"),
    ("my top up failed", "top_up_failed"),
    ("how do I get a virtual card?", "getting_virtual_card"),
    ("how old do I need to be to open an account?", "age_limit"),
]


@pytest.fixture(scope="module")
def custom_backend(trained_custom_model_dir):
    from chains.backends import get_backend

    model = get_backend("custom")
    ok, reason = model.availability()
    assert ok, reason
    assert model.model_version == trained_custom_model_dir.name
    return model


@pytest.mark.langsmith
@pytest.mark.parametrize("query, expected", MUST_PASS, ids=[e for _, e in MUST_PASS])
def test_must_pass_query(custom_backend, query, expected):
    lst.log_inputs({"text": query})
    lst.log_reference_outputs({"intent": expected})
    msg = custom_backend.invoke(query)
    meta = msg.response_metadata
    lst.log_outputs({"intent": msg.content, "confidence": meta["confidence"],
                     "model_version": meta["model_version"]})
    assert msg.content == expected, f"{query!r}: got {msg.content} ({meta['confidence']:.2f}), ranking {meta['ranking'][:3]}"
    assert meta["intent"] == expected and meta["ranking"][0]["intent"] == expected
