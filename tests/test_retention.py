"""Bounded checkpoint storage (issue 17): a conversation's checkpoints stay within a fixed size
whatever its length, idle conversations are swept, and what resuming needs survives both (a
confirmation waiting for an answer, after a new checkpointer connection as after a restart).
Runs on SQLite and PostgreSQL through the conversation holder with the fake backend."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from assistant.conversations import Conversations, run_config
from bank.store import Customer, PendingAction, session_scope
from bank.transcript import TranscriptTurn, transcript
from chains.retention import thread_storage_bytes
from chains.assistant import AssistantInput
from db_backends import db_url  # noqa: F401
from fake_backend import FakeIntentModel

TURNS = 500
MAX_CHECKPOINT_BYTES = 20_000
"""The bound on one thread's checkpoint storage (checkpoints + writes), in bytes."""


@pytest.fixture()
def bank_on(db_url, monkeypatch, session_home):  # noqa: F811
    from config.settings import get_settings
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine

    monkeypatch.setenv("BANKING_DATABASE_URL", db_url)
    get_settings.cache_clear()
    create_schema(get_engine())
    seed_demo(get_engine(), reset=True)
    with session_scope(get_engine()) as s:
        ids = {u: i for i, u in s.execute(select(Customer.id, Customer.username)).all()}
    yield ids
    monkeypatch.delenv("BANKING_DATABASE_URL")
    get_settings.cache_clear()


def thread_bytes(holder: Conversations, thread: str) -> int:
    return thread_storage_bytes(holder._saver, thread)


def test_500_turns_of_one_conversation_keep_the_checkpoints_bounded(bank_on) -> None:
    holder = Conversations(FakeIntentModel())
    alice = bank_on["alice"]
    thread = f"api-{alice}-{uuid.uuid4().hex}"
    config = run_config(thread, alice)
    sizes = []
    try:
        for i in range(TURNS):
            text = ["Where is my new card?", "hello", "what about the other one?", "exchange rate please"][i % 4]
            holder.say(AssistantInput(message=text), config)
            if i in (0, 99, TURNS - 1):
                sizes.append(thread_bytes(holder, thread))
        print(f"checkpoint bytes of one thread after 1, 100, {TURNS} turns: {sizes}")
        assert max(sizes) < MAX_CHECKPOINT_BYTES, sizes
        assert sizes[-1] < 1.5 * sizes[0] + 2_000, sizes  # flat: turn 500 costs what turn 1 does
        assert len(transcript(holder_engine(), thread, alice, limit=1000)) == TURNS
    finally:
        holder.close()


def holder_engine():
    from bank.store import get_engine

    return get_engine()


def test_a_pending_confirmation_survives_pruning_a_restart_and_the_sweep(bank_on) -> None:
    bob = bank_on["bob"]
    thread = f"api-{bob}-{uuid.uuid4().hex}"
    config = run_config(thread, bob)
    holder = Conversations(FakeIntentModel())
    out = holder.say(AssistantInput(message="I lost my card"), config)
    assert out.status == "confirmation_required"
    holder.close()
    holder = Conversations(FakeIntentModel())  # a new connection, as after a restart (the sweep runs on open)
    try:
        assert holder.pending(config)["action_id"] == out.pending_confirmation["action_id"]
        assert holder.sweep() == []  # not idle
        done = holder.say(AssistantInput(message="yes"), config)
        assert done.status == "confirmed"
        with session_scope(holder_engine()) as s:
            assert s.get(PendingAction, out.pending_confirmation["action_id"]).status == "confirmed"
    finally:
        holder.close()


def test_the_sweep_deletes_idle_conversations_and_their_transcript(bank_on, monkeypatch) -> None:
    from chains import retention

    alice = bank_on["alice"]
    old, fresh = (f"api-{alice}-{uuid.uuid4().hex}" for _ in range(2))
    holder = Conversations(FakeIntentModel())
    try:
        holder.say(AssistantInput(message="hello"), run_config(old, alice))
        holder.say(AssistantInput(message="hello"), run_config(fresh, alice))
        later = retention.utcnow() + timedelta(days=31)
        gone = retention.sweep(holder._saver, holder_engine(), 30, now=later)
        assert old in gone and fresh in gone  # both idle 31 days later
        assert holder.pending(run_config(old, alice)) is None
        assert holder._saver.get_tuple(run_config(old, alice)) is None
        with session_scope(holder_engine()) as s:
            left = s.scalar(select(func.count()).select_from(TranscriptTurn).where(TranscriptTurn.thread_id.in_([old, fresh])))
        assert left == 0
        holder.say(AssistantInput(message="hello"), run_config(old, alice))  # a swept conversation starts afresh
        assert holder.sweep() == []  # nothing idle for 30 days now
    finally:
        holder.close()
