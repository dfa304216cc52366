"""The graph served by ``langgraph dev`` (langgraph-cli, in-memory server) from langgraph.json,
driven over HTTP with langgraph-sdk: custom auth with the demo API keys, a thread, the freeze
confirmation interrupt, resume, the database row, and thread ownership between customers."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bank.store import Card, Customer, PendingAction, session_scope
from servers import free_port, running_server

REPO = Path(__file__).resolve().parent.parent
ALICE = {"Authorization": "Bearer demo-alice-key"}
BOB = {"Authorization": "Bearer demo-bob-key"}


@pytest.fixture(scope="module")
def server(trained_custom_model_dir, session_home, tmp_path_factory):
    from bank.seed import seed_demo
    from bank.store import get_engine

    seed_demo(get_engine(), reset=True)
    exe = shutil.which("langgraph") or str(Path(sys.executable).parent / "langgraph")
    port = free_port()
    workdir = tmp_path_factory.mktemp("langgraph_dev")  # server log
    env = {**os.environ, "BANKING_HOME": str(session_home), "BANKING_DATA_DIR": os.environ["BANKING_DATA_DIR"],
           "BANKING_BENCH_EVERY": "0", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
    cmd = [exe, "dev", "--config", str(REPO / "langgraph.json"), "--host", "127.0.0.1", "--port", str(port),
           "--no-browser", "--no-reload"]
    url = f"http://127.0.0.1:{port}"
    # cwd=REPO: the auth path in langgraph.json resolves from the working directory.
    with running_server(cmd, f"{url}/ok", workdir / "server.log", env, cwd=REPO):
        yield url


def _customer(username: str) -> int:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return s.execute(select(Customer.id).where(Customer.username == username)).scalar_one()


def _card_status(customer_id: int, last4: str) -> str:
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        return s.execute(select(Card.status).where(Card.customer_id == customer_id, Card.last4 == last4)).scalar_one()


def test_requests_without_a_valid_key_are_refused(server) -> None:
    from langgraph_sdk import get_sync_client

    assert httpx.post(f"{server}/threads", json={}).status_code == 401
    assert httpx.post(f"{server}/threads", json={}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.post(f"{server}/threads", json={}, headers={"Authorization": "Bearer demo-operator-key"}).status_code in (401, 403)
    get_sync_client(url=server, headers=ALICE).threads.search()  # a valid key works


def test_freeze_confirmation_through_the_server(server) -> None:
    from langgraph_sdk import get_sync_client

    alice_id = _customer("alice")
    assert _card_status(alice_id, "4821") == "active"
    alice = get_sync_client(url=server, headers=ALICE)
    thread = alice.threads.create()
    out = alice.runs.wait(thread["thread_id"], "assistant", input={"messages": [{"role": "user", "content": "I lost my card"}]})
    assert out["output"]["status"] == "confirmation_required" and out["output"]["intent"] == "lost_or_stolen_card"
    state = alice.threads.get_state(thread["thread_id"])
    (intr,) = state["interrupts"]
    assert intr["value"]["action"] == "freeze_card" and "4821" in intr["value"]["description"]
    assert _card_status(alice_id, "4821") == "active"  # nothing changed before the confirmation

    # Bob can neither see nor resume Alice's thread.
    bob = get_sync_client(url=server, headers=BOB)
    r = httpx.get(f"{server}/threads/{thread['thread_id']}", headers=BOB)
    assert r.status_code == 404
    assert all(t["thread_id"] != thread["thread_id"] for t in bob.threads.search())

    done = alice.runs.wait(thread["thread_id"], "assistant", command={"resume": "yes, freeze it"})
    assert done["output"]["status"] == "confirmed"
    assert _card_status(alice_id, "4821") == "frozen"
    from bank.store import get_engine

    with session_scope(get_engine()) as s:
        row = s.get(PendingAction, intr["value"]["action_id"])
        assert row.status == "confirmed" and row.customer_id == alice_id
    assert alice.threads.get_state(thread["thread_id"])["interrupts"] == []


def test_customer_id_cannot_be_claimed_by_the_client(server) -> None:
    from langgraph_sdk import get_sync_client

    bob = get_sync_client(url=server, headers=BOB)
    thread = bob.threads.create()
    run = bob.runs.create(thread["thread_id"], "assistant", input={"messages": [{"role": "user", "content": "What is my balance?"}]},
                          config={"configurable": {"customer_id": _customer("alice")}})
    bob.runs.join(thread["thread_id"], run["run_id"])
    final = bob.runs.get(thread["thread_id"], run["run_id"])
    assert final["status"] == "error"
    # Without the claim the graph acts for Bob himself: his card (ending 3307), never Alice's.
    fresh = bob.threads.create()
    ok = bob.runs.wait(fresh["thread_id"], "assistant", input={"messages": [{"role": "user", "content": "I lost my card"}]})
    assert ok["output"]["status"] == "confirmation_required"
    assert "3307" in ok["output"]["answer"] and "4821" not in ok["output"]["answer"]
    done = bob.runs.wait(fresh["thread_id"], "assistant", command={"resume": False})
    assert done["output"]["status"] == "declined" and _card_status(_customer("bob"), "3307") == "active"
