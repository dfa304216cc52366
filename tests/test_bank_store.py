"""Bank store, demo seed and authentication, on a real SQLite file."""

from __future__ import annotations

import hashlib
from datetime import UTC
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from bank.auth import (
    Principal, authenticate_key, authenticate_password, create_api_key, hash_password, verify_password,
)
from bank.seed import DEMO_USERS, OPERATOR_KEY, seed_demo
from bank.store import (
    Account, ApiKey, Base, Card, CardTransaction, Customer, create_schema, get_engine, make_engine, session_scope,
)
from assistant.settings import Settings


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "bank.db"
    engine = make_engine(f"sqlite:///{path}")
    creds = seed_demo(engine)
    return engine, path, {c.username: c for c in creds}


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in Base.metadata.tables}


def test_seed_is_idempotent(db):
    engine, _, creds = db
    before = _counts(engine)
    assert before["customers"] == 4 and before["api_keys"] == 5
    assert before["cards"] >= 8 and before["card_transactions"] >= 10 and before["fx_rates"] == 8
    again = {c.username: c for c in seed_demo(engine)}
    assert _counts(engine) == before
    assert {k: v.customer_id for k, v in again.items()} == {k: v.customer_id for k, v in creds.items()}


def test_seed_reset_recreates_without_duplicates(db):
    engine, _, creds = db
    before = _counts(engine)
    new = {c.username: c for c in seed_demo(engine, reset=True)}
    assert _counts(engine) == before
    assert authenticate_key(engine, "demo-alice-key").customer_id == new["alice"].customer_id


def test_seed_situations(db):
    engine, _, creds = db
    with session_scope(engine) as s:
        alice_cards = s.scalars(select(Card).where(Card.customer_id == creds["alice"].customer_id)).all()
        shipped = [c for c in alice_cards if c.status == "shipped"]
        assert len(shipped) == 1 and shipped[0].expected_delivery > shipped[0].shipped_at.date()
        carol = {c.status for c in s.scalars(select(Card).where(Card.customer_id == creds["carol"].customer_id))}
        assert {"frozen", "expired", "active"} <= carol
        currencies = set(s.scalars(select(Account.currency)))
        assert {"GBP", "EUR", "USD"} <= currencies


def test_keys_and_passwords_stored_hashed_only(db):
    engine, path, creds = db
    engine.dispose()
    raw = path.read_bytes()
    for username, (_, _, key, password) in DEMO_USERS.items():
        assert key.encode() not in raw
        assert password.encode() not in raw
    assert OPERATOR_KEY.encode() not in raw
    with session_scope(engine) as s:
        hashes = set(s.scalars(select(ApiKey.key_hash)))
        stored_pw = s.scalars(select(Customer.password_hash)).all()
    assert hashlib.sha256(b"demo-alice-key").hexdigest() in hashes
    assert all(h.startswith("scrypt$") for h in stored_pw)
    assert len(set(stored_pw)) == len(stored_pw)  # salted


def test_authenticate_key(db):
    engine, _, creds = db
    p = authenticate_key(engine, "demo-alice-key")
    assert p == Principal(customer_id=creds["alice"].customer_id, role="customer", name="Alice Martin")
    op = authenticate_key(engine, OPERATOR_KEY)
    assert op.role == "operator" and op.customer_id is None and op.is_operator
    assert authenticate_key(engine, "demo-alice-key ") is None
    assert authenticate_key(engine, "wrong") is None
    assert authenticate_key(engine, "") is None
    assert authenticate_key(engine, None) is None
    assert authenticate_key(engine, "x" * 10_000) is None


def test_authenticate_password(db):
    engine, _, creds = db
    assert authenticate_password(engine, "bob", "bob-demo").customer_id == creds["bob"].customer_id
    assert authenticate_password(engine, " BOB ", "bob-demo").customer_id == creds["bob"].customer_id
    assert authenticate_password(engine, "bob", "alice-demo") is None
    assert authenticate_password(engine, "mallory", "bob-demo") is None
    assert authenticate_password(engine, "", "") is None
    assert verify_password("pw", hash_password("pw")) and not verify_password("pw", "garbage")


def test_create_api_key(db):
    engine, _, creds = db
    key = create_api_key(engine, creds["carol"].customer_id, label="test")
    assert authenticate_key(engine, key).customer_id == creds["carol"].customer_id
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.key_hash == key)) == 0
    with pytest.raises(ValueError):
        create_api_key(engine, None, role="customer")
    with pytest.raises(ValueError):
        create_api_key(engine, 9999)
    with pytest.raises(ValueError):
        create_api_key(engine, None, role="admin")


def test_money_is_exact_decimal_and_times_are_utc(db):
    engine, _, creds = db
    with session_scope(engine) as s:
        acc = s.scalars(select(Account).where(Account.customer_id == creds["alice"].customer_id)).first()
        assert isinstance(acc.balance, Decimal) and acc.balance == Decimal("1520.40")
        acc.balance = acc.balance + Decimal("0.10") + Decimal("0.20")
    with session_scope(engine) as s:
        acc2 = s.get(Account, acc.id)
        assert acc2.balance == Decimal("1520.70")
        tx = s.scalars(select(CardTransaction).where(CardTransaction.fx_rate.is_not(None))).first()
        assert tx.fx_rate == Decimal("0.928500") and tx.created_at.tzinfo == UTC
        with pytest.raises(Exception):
            acc2.balance = 1.5
            s.flush()


def test_get_engine_creates_sqlite_folder(tmp_path):
    settings = Settings(home=tmp_path / "nested" / "home")
    engine = get_engine(settings)
    assert (tmp_path / "nested" / "home" / "bank.db").exists()
    assert engine is make_engine(settings.resolved_database_url)
    create_schema(engine)  # idempotent
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
