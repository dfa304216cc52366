"""Bank store, demo seed, authentication and the money type, on a real SQLite file and a real
PostgreSQL database (``db_url`` runs each test on both)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from datetime import UTC
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.engine import make_url

from bank.auth import (
    Principal, authenticate_key, authenticate_password, create_api_key, hash_password, verify_password,
)
from bank.seed import DEMO_USERS, OPERATOR_KEY, seed_demo
from bank.store import (
    Account, ApiKey, Base, Card, CardTransaction, Customer, InvalidAmount, add_to_balance, create_schema, get_engine,
    make_engine, session_scope,
)
from config.settings import Settings
from db_backends import db_url  # noqa: F401 - fixture: SQLite and PostgreSQL


@pytest.fixture()
def db(db_url):
    engine = make_engine(db_url)
    creds = seed_demo(engine)
    return engine, db_url, {c.username: c for c in creds}


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
    engine, url, creds = db
    with engine.connect() as conn:  # every stored value of every table, as text
        raw = "\n".join(repr(tuple(r)) for t in Base.metadata.sorted_tables for r in conn.execute(t.select())).encode()
    if url.startswith("sqlite"):  # and the database file itself
        engine.dispose()
        raw += Path(make_url(url).database).read_bytes()
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


BAD_AMOUNTS = [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity"), "inf", "nan",
               Decimal("10000000000000000.00"), -(10 ** 16), Decimal("1E+30"), Decimal("0.001"),
               Decimal("12.345"), "1.999", 1.5, True, "twelve"]


@pytest.mark.parametrize("bad", BAD_AMOUNTS, ids=repr)
def test_money_refuses_bad_amounts_before_sql(db, bad):
    """NaN, Infinity, out of range, extra places, float, bool, text: InvalidAmount on assignment
    (ORM) and before SQL (Core), the same on SQLite and PostgreSQL; nothing is stored."""
    engine, _, creds = db
    alice = creds["alice"].customer_id
    with session_scope(engine) as s:
        acc = s.scalars(select(Account).where(Account.customer_id == alice).order_by(Account.id)).first()
        with pytest.raises(InvalidAmount):
            acc.balance = bad
        assert acc.balance == Decimal("1520.40")
        with pytest.raises(InvalidAmount):
            Account(customer_id=alice, currency="GBP", balance=bad)
    n = _counts(engine)["accounts"]
    with engine.connect() as conn:
        with pytest.raises(StatementError) as err:
            conn.execute(insert(Account).values(customer_id=alice, currency="GBP", balance=bad, status="open"))
        assert isinstance(err.value.orig, InvalidAmount)
        conn.rollback()
    assert _counts(engine)["accounts"] == n
    with session_scope(engine) as s:
        with pytest.raises(InvalidAmount):
            add_to_balance(s, acc.id, bad)
    with session_scope(engine) as s:
        assert s.get(Account, acc.id).balance == Decimal("1520.40")


def test_money_range_edges_round_trip_exactly(db):
    engine, _, creds = db
    top = Decimal("9999999999999999.99")  # 10**16 - 0.01: the largest 2-place amount in 18 digits
    assert Account.__table__.c.balance.type.max_value == top
    with session_scope(engine) as s:
        s.add_all([Account(customer_id=creds["dave"].customer_id, currency=c, balance=b)
                   for c, b in (("AAA", top), ("BBB", -top), ("CCC", "0.01"), ("DDD", Decimal("12.50000")))])
    with session_scope(engine) as s:
        got = dict(s.execute(select(Account.currency, Account.balance).where(
            Account.currency.in_(["AAA", "BBB", "CCC", "DDD"]))).all())
    assert got == {"AAA": top, "BBB": -top, "CCC": Decimal("0.01"), "DDD": Decimal("12.50")}
    assert all(v.as_tuple().exponent == -2 for v in got.values())


def test_add_to_balance_is_exact_and_bounded(db):
    engine, _, creds = db
    with session_scope(engine) as s:
        acc = s.scalars(select(Account).where(Account.customer_id == creds["dave"].customer_id)).one()
        assert acc.balance == Decimal("0.00")
        assert add_to_balance(s, acc.id, Decimal("0.10")) == Decimal("0.10")
        assert add_to_balance(s, acc.id, "0.20") == Decimal("0.30")
        assert acc.balance == Decimal("0.30")  # the loaded object sees the SQL update
        assert add_to_balance(s, acc.id, -1) == Decimal("-0.70")
        assert add_to_balance(s, acc.id, Decimal("9999999999999999.99")) == Decimal("9999999999999999.29")
        with pytest.raises(InvalidAmount, match="out of range"):
            add_to_balance(s, acc.id, 1)  # would pass 10**16
        with pytest.raises(LookupError):
            add_to_balance(s, 987654, 1)
    with session_scope(engine) as s:
        assert s.get(Account, acc.id).balance == Decimal("9999999999999999.29")
