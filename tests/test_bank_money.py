"""Issue 16 bank layer: payments to saved payees, top-ups, money rules (on proposing AND on
executing), FX shown before confirming, SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from bank.models_extra import Payee, PaymentDetail
from bank.seed import seed_demo
from bank.store import Account, Card, PendingAction, TopUp, Transfer, make_engine, session_scope
from bank.tools import confirm_action, run_tool
from db_backends import db_url  # noqa: F401 - fixture: SQLite and PostgreSQL

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture()
def bank(db_url):
    engine = make_engine(db_url)
    ids = {c.username: c.customer_id for c in seed_demo(engine, now=NOW) if c.username}
    return engine, ids


def _acc(engine, cid: int, currency: str) -> Account:
    with session_scope(engine) as s:
        return s.scalars(select(Account).where(Account.customer_id == cid, Account.currency == currency)).one()


def _counts(engine) -> tuple[int, int, int]:
    with session_scope(engine) as s:
        return (s.scalar(select(func.count()).select_from(Transfer)),
                s.scalar(select(func.count()).select_from(PendingAction)),
                s.scalar(select(func.count()).select_from(TopUp)))


def pay(engine, cid, text="", **slots):
    return run_tool(engine, cid, "send_money", text, slots=slots, now=NOW)


def test_payment_confirmed_moves_balance_once_and_writes_one_row(bank):
    engine, ids = bank
    before = _acc(engine, ids["alice"], "GBP").balance
    transfers_before = _counts(engine)[0]
    r = pay(engine, ids["alice"], payee="Northside Energy", amount="40", currency="GBP", reference="March bill")
    assert r.pending_confirmation["action"] == "send_payment"
    desc = r.pending_confirmation["description"]
    for part in ("Northside Energy", "GB33 **** 5555", "£40.00", "GBP account", "fee £0.00",
                 f"balance after £{before - 40:,.2f}"):
        assert part in desc
    assert _acc(engine, ids["alice"], "GBP").balance == before  # nothing moves before the yes
    done = confirm_action(engine, ids["alice"], r.pending_confirmation["action_id"], True, now=NOW)
    assert done.data["status"] == "confirmed"
    assert _acc(engine, ids["alice"], "GBP").balance == before - Decimal("40.00")
    again = confirm_action(engine, ids["alice"], r.pending_confirmation["action_id"], True, now=NOW)
    assert again.data["replayed"] is True
    assert _acc(engine, ids["alice"], "GBP").balance == before - Decimal("40.00")
    assert _counts(engine)[0] == transfers_before + 1
    with session_scope(engine) as s:
        t = s.scalars(select(Transfer).where(Transfer.beneficiary_name == "Northside Energy",
                                             Transfer.amount == Decimal("40.00"))).one()
        detail = s.get(PaymentDetail, t.id)
        assert (t.status, t.direction, t.beneficiary_iban) == ("completed", "outgoing", "GB33BUKB20201555555555")
        assert (detail.reference, detail.debit_amount) == ("March bill", Decimal("40.00"))


@pytest.mark.parametrize("slots, fragment", [
    ({"amount": "5000", "currency": "GBP"}, "more than your GBP balance"),
    ({"amount": "800", "currency": "GBP"}, "daily limit"),  # £250 to Mark Thompson already left today
    ({"amount": "0", "currency": "GBP"}, "more than zero"),
    ({"amount": "-5", "currency": "GBP"}, "more than zero"),
    ({"amount": "10.555", "currency": "GBP"}, "at most 2 decimal places"),
    ({"amount": "10", "currency": "XYZ"}, "don't know the currency"),
    ({"amount": "abc", "currency": "GBP"}, "not an amount"),
])
def test_bad_payments_are_refused_and_change_nothing(bank, slots, fragment):
    engine, ids = bank
    before, counts = _acc(engine, ids["alice"], "GBP").balance, _counts(engine)
    r = pay(engine, ids["alice"], payee="Mark Ellis", **slots)
    assert fragment in r.answer and r.pending_confirmation is None and r.slot_request is None
    assert _acc(engine, ids["alice"], "GBP").balance == before and _counts(engine) == counts


def test_closed_account_is_refused(bank):
    engine, ids = bank
    with session_scope(engine) as s:
        s.execute(update(Account).where(Account.customer_id == ids["alice"], Account.currency == "EUR")
                  .values(status="closed"))
    counts = _counts(engine)
    r = pay(engine, ids["alice"], payee="Lena Fischer", amount="20", currency="EUR", account="EUR")
    assert "closed" in r.answer and r.pending_confirmation is None and _counts(engine) == counts


def test_confirmation_rechecks_the_balance(bank):
    engine, ids = bank
    r = pay(engine, ids["alice"], payee="Mark Ellis", amount="500", currency="GBP")
    acc = _acc(engine, ids["alice"], "GBP")
    with session_scope(engine) as s:
        s.execute(update(Account).where(Account.id == acc.id).values(balance=Decimal("100.00")))
    transfers = _counts(engine)[0]
    done = confirm_action(engine, ids["alice"], r.pending_confirmation["action_id"], True, now=NOW)
    assert done.data["status"] == "failed" and "more than your GBP balance" in done.answer
    assert _acc(engine, ids["alice"], "GBP").balance == Decimal("100.00") and _counts(engine)[0] == transfers


def test_unknown_payee_pays_nobody_and_lists_the_closest(bank):
    engine, ids = bank
    counts = _counts(engine)
    r = pay(engine, ids["alice"], payee="Bob Builder", amount="20", currency="EUR")
    assert r.pending_confirmation is None and "not one of your saved payees" in r.answer
    assert len(r.data["closest_payees"]) == 3 and set(r.data["closest_payees"]) <= {
        "Mark Thompson", "Mark Ellis", "Northside Energy", "Lena Fischer"}
    assert _counts(engine) == counts


def test_ambiguous_payee_and_missing_details_are_asked_for(bank):
    engine, ids = bank
    r = pay(engine, ids["alice"], "send 20 pounds to Mark")
    assert r.slot_request == {"slot": "payee", "question": "Mark Thompson or Mark Ellis?",
                              "options": ["Mark Thompson", "Mark Ellis"]}
    r = pay(engine, ids["alice"], payee="Northside Energy")
    assert r.slot_request["slot"] == "amount"
    assert r.slot_request["question"] == "How much would you like to send to Northside Energy?"
    r = pay(engine, ids["alice"], payee="Northside Energy", amount="40")
    assert r.slot_request["slot"] == "account" and r.slot_request["options"] == ["GBP", "EUR"]
    assert r.pending_confirmation is None


def test_payment_in_another_currency_shows_the_rate_and_debits_the_converted_amount(bank):
    engine, ids = bank
    before = _acc(engine, ids["alice"], "GBP").balance
    r = pay(engine, ids["alice"], payee="Lena", amount="20", currency="EUR", account="GBP")
    rate = (Decimal(1) / Decimal("1.168000")).quantize(Decimal("0.000001"))  # seeded GBP->EUR, inverted
    debit = (Decimal("20") * rate).quantize(Decimal("0.01"))
    assert r.answer.startswith(f"The rate is 1 EUR = {rate} GBP.")
    assert f"£{debit}" in r.pending_confirmation["description"]
    confirm_action(engine, ids["alice"], r.pending_confirmation["action_id"], True, now=NOW)
    assert _acc(engine, ids["alice"], "GBP").balance == before - debit
    assert _acc(engine, ids["alice"], "EUR").balance == Decimal("230.00")


def test_top_up_from_a_card_and_frozen_or_expired_cards_refused(bank):
    engine, ids = bank
    before = _acc(engine, ids["alice"], "GBP").balance
    r = run_tool(engine, ids["alice"], "top_up_account", "", slots={"amount": "50", "card": "4821"}, now=NOW)
    confirm_action(engine, ids["alice"], r.pending_confirmation["action_id"], True, now=NOW)
    confirm_action(engine, ids["alice"], r.pending_confirmation["action_id"], True, now=NOW)
    assert _acc(engine, ids["alice"], "GBP").balance == before + 50
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(TopUp).where(
            TopUp.amount == Decimal("50.00"), TopUp.status == "completed", TopUp.method == "card")) == 1
    counts = _counts(engine)
    for last4, word in (("2288", "frozen"), ("9012", "expired")):
        r = run_tool(engine, ids["carol"], "top_up_account", "", slots={"amount": "50", "card": last4}, now=NOW)
        assert word in r.answer and r.pending_confirmation is None
    # frozen between proposal and confirmation: refused on executing too
    r = run_tool(engine, ids["carol"], "top_up_account", "", slots={"amount": "20", "card": "6604"}, now=NOW)
    with session_scope(engine) as s:
        s.execute(update(Card).where(Card.last4 == "6604").values(status="frozen"))
    done = confirm_action(engine, ids["carol"], r.pending_confirmation["action_id"], True, now=NOW)
    assert done.data["status"] == "failed" and "frozen" in done.answer
    assert _counts(engine)[0::2] == counts[0::2]


def test_add_payee_validates_the_iban(bank):
    engine, ids = bank
    r = run_tool(engine, ids["alice"], "add_payee", "", slots={"payee": "Jo Bloggs", "iban": "GB00WEST12345698765432"},
                 now=NOW)
    assert r.pending_confirmation is None and r.slot_request["slot"] == "iban" and "not a valid IBAN" in r.answer
    r = run_tool(engine, ids["alice"], "add_payee", "",
                 slots={"payee": "Jo Bloggs", "iban": "gb22 barc 2015 3041 8822 77"}, now=NOW)
    assert "GB22 **** 2277" in r.pending_confirmation["description"]
    confirm_action(engine, ids["alice"], r.pending_confirmation["action_id"], True, now=NOW)
    with session_scope(engine) as s:
        row = s.scalars(select(Payee).where(Payee.customer_id == ids["alice"], Payee.name == "Jo Bloggs")).one()
        assert row.iban == "GB22BARC20153041882277"
    r = run_tool(engine, ids["alice"], "add_payee", "", slots={"payee": "Joe", "iban": "GB22BARC20153041882277"},
                 now=NOW)
    assert r.pending_confirmation is None and "already saved" in r.answer
