"""Demo data: four customers in varied situations, fixed demo API keys and passwords.

``seed_demo(engine)`` is idempotent: a customer whose username already exists is left as it is,
an API key whose hash is already stored is not added again, and FX pairs already present are
kept. ``seed_demo(engine, reset=True)`` deletes the demo customers (and, by cascade, all their
rows) first and seeds them again with dates relative to now.

Demo credentials (documented, not secret; stored only as SHA-256 / scrypt hashes):

==========  ====================  ==============  ==========================================
username    API key               password        situation
==========  ====================  ==============  ==========================================
alice       demo-alice-key        alice-demo      card in the post, pending payment, duplicate
                                                  charge, declined payment, pending transfer
bob         demo-bob-key          bob-demo        failed transfer, reverted/pending/failed
                                                  top-ups, USD payment with FX, unknown direct
                                                  debit, cash withdrawal abroad, PIN blocked
carol       demo-carol-key        carol-demo      frozen, expiring and expired cards, completed
                                                  and cancelled transfers, cash deposit pending
dave        demo-dave-key         dave-demo       empty account (can close it)
(operator)  demo-operator-key     -               operator role, no customer
==========  ====================  ==============  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal as D

from sqlalchemy import Engine, delete, select

from bank.auth import hash_api_key, hash_password
from bank.models_extra import Payee
from bank.store import (
    Account, ApiKey, Card, CardTransaction, Customer, DirectDebit, FxRate, TopUp, Transfer,
    create_schema, session_scope, setup_lock, utcnow,
)

__all__ = ["DemoCredential", "DEMO_USERS", "OPERATOR_KEY", "FX_RATES", "DEMO_PAYEES", "seed_demo"]


@dataclass(frozen=True)
class DemoCredential:
    """One demo login: ``name`` (display), ``username`` (None for the operator),
    ``customer_id`` (None for the operator), ``api_key``, ``role``, ``password`` (None for the
    operator)."""

    name: str
    username: str | None
    customer_id: int | None
    api_key: str
    role: str
    password: str | None


# username -> (display name, email, api key, password)
DEMO_USERS: dict[str, tuple[str, str, str, str]] = {
    "alice": ("Alice Martin", "alice@example.com", "demo-alice-key", "alice-demo"),
    "bob": ("Bob Schneider", "bob@example.com", "demo-bob-key", "bob-demo"),
    "carol": ("Carol Nguyen", "carol@example.com", "demo-carol-key", "carol-demo"),
    "dave": ("Dave Okafor", "dave@example.com", "demo-dave-key", "dave-demo"),
}
OPERATOR_KEY = "demo-operator-key"

# username -> saved payees (name, IBAN valid per schwifty, currency): the payees of their past
# transfers, plus near-namesakes for alice so "Mark" is ambiguous (Mark Thompson / Mark Ellis).
DEMO_PAYEES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "alice": (("Mark Thompson", "GB29NWBK60161331926819", "GBP"),
              ("Northside Energy", "GB33BUKB20201555555555", "GBP"),
              ("Mark Ellis", "GB82NWBK60161355779911", "GBP"),
              ("Lena Fischer", "DE89370400440532013000", "EUR")),
    "bob": (("Lena Fischer", "DE89370400440532013000", "EUR"),
            ("Anna Weber", "DE62370400440532013777", "EUR")),
    "carol": (("Oakwood Lettings", "GB82WEST12345698765432", "GBP"),
              ("J Smith", "GB94BARC10201530093459", "GBP")),
    "dave": (),
}

# 1 base = rate quote (mid-market demo rates).
FX_RATES: dict[tuple[str, str], D] = {
    ("GBP", "EUR"): D("1.168000"),
    ("GBP", "USD"): D("1.271000"),
    ("EUR", "USD"): D("1.088000"),
    ("GBP", "CHF"): D("1.122000"),
    ("GBP", "JPY"): D("191.450000"),
    ("EUR", "THB"): D("38.900000"),
    ("GBP", "PLN"): D("5.030000"),
    ("EUR", "CHF"): D("0.961000"),
}


def _alice(c: Customer, now: datetime):
    today = now.date()
    gbp = Account(currency="GBP", balance=D("1520.40"), created_at=now - timedelta(days=400))
    eur = Account(currency="EUR", balance=D("230.00"), created_at=now - timedelta(days=200))
    c.accounts += [gbp, eur]
    main = Card(account=gbp, last4="4821", kind="physical", status="active",
                ordered_at=now - timedelta(days=390), shipped_at=now - timedelta(days=388),
                expires_on=today.replace(year=today.year + 2, day=1))
    in_post = Card(account=gbp, last4="7390", kind="physical", status="shipped",
                   ordered_at=now - timedelta(days=8), shipped_at=now - timedelta(days=5),
                   expected_delivery=today + timedelta(days=2),
                   expires_on=today.replace(year=today.year + 3, day=1))
    virtual = Card(account=eur, last4="1155", kind="virtual", status="active",
                   ordered_at=now - timedelta(days=150), expires_on=today.replace(year=today.year + 1, day=1))
    c.cards += [main, in_post, virtual]
    dup_time = now - timedelta(days=2, hours=3)
    c_tx = [
        CardTransaction(card=main, merchant="Tesco Metro", country="GB", amount=D("23.45"), currency="GBP",
                        account_amount=D("23.45"), status="pending", created_at=now - timedelta(hours=1)),
        CardTransaction(card=main, merchant="Pret A Manger", country="GB", amount=D("6.85"), currency="GBP",
                        account_amount=D("6.85"), status="settled", created_at=dup_time,
                        settled_at=dup_time + timedelta(hours=20)),
        CardTransaction(card=main, merchant="Pret A Manger", country="GB", amount=D("6.85"), currency="GBP",
                        account_amount=D("6.85"), status="settled", created_at=dup_time + timedelta(minutes=3),
                        settled_at=dup_time + timedelta(hours=20)),
        CardTransaction(card=main, merchant="Amazon UK", country="GB", amount=D("42.10"), currency="GBP",
                        account_amount=D("42.10"), status="settled", created_at=now - timedelta(days=6),
                        settled_at=now - timedelta(days=5)),
        CardTransaction(card=virtual, merchant="Ryanair", country="IE", amount=D("189.99"), currency="EUR",
                        account_amount=D("189.99"), status="declined",
                        decline_reason="the online payment failed the 3-D Secure check (code not confirmed in the app)",
                        created_at=now - timedelta(hours=5)),
        CardTransaction(card=main, merchant="ASOS", country="GB", amount=D("35.00"), currency="GBP",
                        account_amount=D("35.00"), status="pending", kind="refund",
                        created_at=now - timedelta(days=4)),
        CardTransaction(card=virtual, merchant="Spotify", country="SE", amount=D("10.99"), currency="EUR",
                        account_amount=D("10.99"), status="settled", created_at=now - timedelta(days=12),
                        settled_at=now - timedelta(days=11)),
    ]
    gbp_transfers = [
        Transfer(account=gbp, beneficiary_name="Mark Thompson", beneficiary_iban="GB29NWBK60161331926819",
                 amount=D("250.00"), currency="GBP", status="pending", created_at=now - timedelta(hours=3)),
        Transfer(account=gbp, beneficiary_name="Northside Energy", beneficiary_iban="GB33BUKB20201555555555",
                 amount=D("86.40"), currency="GBP", status="completed", created_at=now - timedelta(days=9),
                 completed_at=now - timedelta(days=9, hours=-1)),
    ]
    top_ups = [
        TopUp(account=gbp, method="card", amount=D("300.00"), currency="GBP", status="completed",
              created_at=now - timedelta(days=15), completed_at=now - timedelta(days=15)),
    ]
    return c_tx, gbp_transfers, top_ups, []


def _bob(c: Customer, now: datetime):
    today = now.date()
    eur = Account(currency="EUR", balance=D("845.10"), created_at=now - timedelta(days=300))
    c.accounts += [eur]
    card = Card(account=eur, last4="3307", kind="physical", status="active", pin_blocked=True,
                ordered_at=now - timedelta(days=290), shipped_at=now - timedelta(days=288),
                expires_on=today.replace(year=today.year + 2, day=1))
    c.cards += [card]
    usd_rate = D("0.928500")   # EUR per USD applied by the card scheme (market: 1/1.088)
    thb_rate = D("0.025980")   # EUR per THB (market: 1/38.9, weekend mark-up)
    c_tx = [
        CardTransaction(card=card, merchant="Whole Foods Market", country="US", amount=D("64.30"), currency="USD",
                        account_amount=(D("64.30") * usd_rate).quantize(D("0.01")), fx_rate=usd_rate,
                        status="settled", created_at=now - timedelta(days=3), settled_at=now - timedelta(days=2)),
        CardTransaction(card=card, merchant="Bangkok Bank ATM, Sukhumvit", country="TH", amount=D("3000.00"),
                        currency="THB", account_amount=(D("3000.00") * thb_rate).quantize(D("0.01")),
                        fx_rate=thb_rate, fee=D("2.00"), status="settled", kind="cash_withdrawal",
                        created_at=now - timedelta(days=8), settled_at=now - timedelta(days=7)),
        CardTransaction(card=card, merchant="Kasikornbank ATM, Silom", country="TH", amount=D("2000.00"),
                        currency="THB", account_amount=(D("2000.00") * thb_rate).quantize(D("0.01")),
                        fx_rate=thb_rate, status="declined", kind="cash_withdrawal",
                        decline_reason="the PIN was entered wrongly three times, so the PIN is now blocked",
                        created_at=now - timedelta(days=1, hours=2)),
        CardTransaction(card=card, merchant="Bangkok Bank ATM, Sukhumvit", country="TH", amount=D("1000.00"),
                        currency="THB", account_amount=(D("1000.00") * thb_rate).quantize(D("0.01")),
                        fx_rate=thb_rate, status="pending", kind="cash_withdrawal",
                        created_at=now - timedelta(hours=20)),
        CardTransaction(card=card, merchant="eBay", country="DE", amount=D("15.00"), currency="EUR",
                        account_amount=D("15.00"), status="reverted", created_at=now - timedelta(days=5)),
        CardTransaction(card=card, merchant="Lidl", country="DE", amount=D("31.72"), currency="EUR",
                        account_amount=D("31.72"), status="settled", created_at=now - timedelta(days=4),
                        settled_at=now - timedelta(days=3)),
    ]
    transfers = [
        Transfer(account=eur, beneficiary_name="Lena Fischer", beneficiary_iban="DE89370400440532013000",
                 amount=D("500.00"), currency="EUR", status="failed",
                 failure_reason="the beneficiary's bank rejected it because that account is closed",
                 created_at=now - timedelta(days=2)),
        Transfer(account=eur, direction="incoming", beneficiary_name="Muller Consulting GmbH",
                 beneficiary_iban="DE75512108001245126199", amount=D("1200.00"), currency="EUR",
                 status="pending", created_at=now - timedelta(days=1)),
    ]
    top_ups = [
        TopUp(account=eur, method="card", amount=D("100.00"), currency="EUR", status="reverted",
              failure_reason="the bank that issued the paying card reversed the payment",
              created_at=now - timedelta(days=3)),
        TopUp(account=eur, method="bank_transfer", amount=D("200.00"), currency="EUR", status="pending",
              created_at=now - timedelta(hours=6)),
        TopUp(account=eur, method="card", amount=D("50.00"), currency="EUR", status="failed",
              failure_reason="the paying card was declined by its issuer", created_at=now - timedelta(days=1)),
        TopUp(account=eur, method="card", amount=D("400.00"), currency="EUR", status="completed",
              fee=D("0.00"), created_at=now - timedelta(days=20), completed_at=now - timedelta(days=20)),
    ]
    debits = [
        DirectDebit(account=eur, creditor="Vodafone GmbH", reference="Mobile contract 0176", amount=D("39.99"),
                    currency="EUR", created_at=now - timedelta(days=250), last_collected_at=now - timedelta(days=10)),
        DirectDebit(account=eur, creditor="GLOBALFIT SUBS LTD", reference="GF-884120", amount=D("29.99"),
                    currency="EUR", created_at=now - timedelta(days=2), last_collected_at=now - timedelta(days=2)),
    ]
    return c_tx, transfers, top_ups, debits


def _carol(c: Customer, now: datetime):
    today = now.date()
    gbp = Account(currency="GBP", balance=D("3105.75"), created_at=now - timedelta(days=1500))
    usd = Account(currency="USD", balance=D("410.00"), created_at=now - timedelta(days=600))
    c.accounts += [gbp, usd]
    frozen = Card(account=gbp, last4="2288", kind="physical", status="frozen",
                  ordered_at=now - timedelta(days=500), shipped_at=now - timedelta(days=498),
                  expires_on=today.replace(year=today.year + 1, day=1))
    expiring = Card(account=gbp, last4="6604", kind="physical", status="active", contactless_enabled=False,
                    ordered_at=now - timedelta(days=1100), shipped_at=now - timedelta(days=1098),
                    expires_on=today + timedelta(days=20))
    expired = Card(account=usd, last4="9012", kind="physical", status="expired",
                   ordered_at=now - timedelta(days=1200), shipped_at=now - timedelta(days=1198),
                   expires_on=today - timedelta(days=60))
    c.cards += [frozen, expiring, expired]
    c_tx = [
        CardTransaction(card=expiring, merchant="Waitrose", country="GB", amount=D("54.20"), currency="GBP",
                        account_amount=D("54.20"), status="settled", created_at=now - timedelta(days=2),
                        settled_at=now - timedelta(days=1)),
        CardTransaction(card=frozen, merchant="Trainline", country="GB", amount=D("18.60"), currency="GBP",
                        account_amount=D("18.60"), status="declined",
                        decline_reason="the card is frozen", created_at=now - timedelta(days=1)),
    ]
    transfers = [
        Transfer(account=gbp, beneficiary_name="Oakwood Lettings", beneficiary_iban="GB82WEST12345698765432",
                 amount=D("1200.00"), currency="GBP", status="completed", created_at=now - timedelta(days=5),
                 completed_at=now - timedelta(days=5) + timedelta(minutes=40)),
        Transfer(account=gbp, beneficiary_name="J Smith", beneficiary_iban="GB94BARC10201530093459",
                 amount=D("75.00"), currency="GBP", status="cancelled", created_at=now - timedelta(days=8)),
    ]
    top_ups = [
        TopUp(account=gbp, method="cash_or_cheque", amount=D("150.00"), currency="GBP", status="pending",
              created_at=now - timedelta(days=2)),
    ]
    return c_tx, transfers, top_ups, []


def _dave(c: Customer, now: datetime):
    today = now.date()
    gbp = Account(currency="GBP", balance=D("0.00"), created_at=now - timedelta(days=90))
    c.accounts += [gbp]
    c.cards += [Card(account=gbp, last4="5530", kind="virtual", status="active",
                     ordered_at=now - timedelta(days=90), expires_on=today.replace(year=today.year + 2, day=1))]
    return [], [], [], []


_BUILDERS = {"alice": _alice, "bob": _bob, "carol": _carol, "dave": _dave}


def seed_demo(engine: Engine, *, reset: bool = False, now: datetime | None = None) -> list[DemoCredential]:
    """Create the schema if needed and the demo customers, keys, passwords and FX rates.

    Idempotent: running it twice creates nothing twice; a demo customer without saved payees
    (a database from before payees existed) gets the ``DEMO_PAYEES``. ``reset=True`` deletes the demo
    customers (their accounts, cards, transactions, transfers, top-ups, direct debits, payees,
    disputes, hand-over tickets, keys and pending actions go with them through ON DELETE CASCADE) and recreates them with dates
    relative to ``now`` (default: the current UTC time). Everything runs in one transaction.

    Returns one :class:`DemoCredential` per demo customer plus the operator, in a fixed order
    (alice, bob, carol, dave, operator).
    """
    now = now or utcnow()
    with setup_lock(engine):  # several workers seeding a fresh database at once: each row once
        return _seed(engine, reset, now)


def _seed(engine: Engine, reset: bool, now: datetime) -> list[DemoCredential]:
    create_schema(engine)
    creds: list[DemoCredential] = []
    with session_scope(engine) as s:
        if reset:
            s.execute(delete(Customer).where(Customer.username.in_(list(DEMO_USERS))))
            s.flush()
        for (base, quote), rate in FX_RATES.items():
            exists = s.execute(select(FxRate).where(FxRate.base == base, FxRate.quote == quote)).scalar_one_or_none()
            if exists is None:
                s.add(FxRate(base=base, quote=quote, rate=rate, updated_at=now))
        for username, (name, email, key, password) in DEMO_USERS.items():
            customer = s.execute(select(Customer).where(Customer.username == username)).scalar_one_or_none()
            if customer is None:
                customer = Customer(username=username, name=name, email=email,
                                    password_hash=hash_password(password), created_at=now - timedelta(days=400))
                s.add(customer)
                card_txs, transfers, top_ups, debits = _BUILDERS[username](customer, now)
                s.add_all([*card_txs, *transfers, *top_ups, *debits])
                s.flush()
            if s.execute(select(Payee.id).where(Payee.customer_id == customer.id).limit(1)).first() is None:
                s.add_all([Payee(customer_id=customer.id, name=n, iban=iban, currency=cur,
                                 created_at=now - timedelta(days=120)) for n, iban, cur in DEMO_PAYEES[username]])
            digest = hash_api_key(key)
            if s.execute(select(ApiKey).where(ApiKey.key_hash == digest)).scalar_one_or_none() is None:
                s.add(ApiKey(key_hash=digest, customer_id=customer.id, role="customer", label=f"demo key of {username}"))
            creds.append(DemoCredential(name=name, username=username, customer_id=customer.id, api_key=key,
                                        role="customer", password=password))
        digest = hash_api_key(OPERATOR_KEY)
        if s.execute(select(ApiKey).where(ApiKey.key_hash == digest)).scalar_one_or_none() is None:
            s.add(ApiKey(key_hash=digest, customer_id=None, role="operator", label="demo operator"))
        creds.append(DemoCredential(name="Demo operator", username=None, customer_id=None, api_key=OPERATOR_KEY,
                                    role="operator", password=None))
    return creds
