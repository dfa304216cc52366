"""What the banking flows of issue 16 change in the database, read the same way by the HTTP, terminal
and browser tests (tests/test_http_banking.py, tests/test_cli.py, tests/test_ui_banking_flows.py):
one snapshot of a demo customer's rows before a flow and one after, compared in full."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

# Flows and the seeded facts they rely on (bank/seed.py; the same as tests/conversations/*.yaml)
PAY = "pay Northside Energy £40"
ASK_PAYEE = "send money to Northside Energy"
UNKNOWN_PAYEE = "send £20 to Bob Builder"
OVER_BALANCE = "pay Northside Energy £2,000"
SEARCH = "how much did I spend at Pret A Manger?"
SEARCH_TOTAL = "You spent £13.70 at Pret A Manger (2 payments)"
DISPUTE = "I want to dispute the Amazon charge"
TWO_REQUESTS = "freeze my card and tell me my balance"
HANDOFF = "can I talk to a person?"
ALICE_GBP = Decimal("1520.40")


@dataclass(frozen=True)
class Rows:
    """One customer's rows: outgoing ``transfers`` as (payee, amount, currency, status) in id order,
    ``balances`` per currency, ``cards`` as {last4: status}, ``disputes`` as (merchant, status),
    ``tickets`` as (ticket id, status), ``pending`` (open proposals)."""

    transfers: tuple[tuple[str, Decimal, str, str], ...]
    balances: dict[str, Decimal]
    cards: dict[str, str]
    disputes: tuple[tuple[str, str], ...]
    tickets: tuple[tuple[int, str], ...]
    pending: int


def rows(username: str) -> Rows:
    """A snapshot of ``username``'s rows in the session's bank (``bank.store.get_engine()``)."""
    from bank.models_extra import Dispute, HandoffTicket
    from bank.store import Account, Card, CardTransaction, Customer, PendingAction, Transfer, get_engine, session_scope

    with session_scope(get_engine()) as s:
        cid = s.execute(select(Customer.id).where(Customer.username == username)).scalar_one()
        transfers = s.execute(select(Transfer.beneficiary_name, Transfer.amount, Transfer.currency, Transfer.status)
                              .join(Account, Transfer.account_id == Account.id)
                              .where(Account.customer_id == cid, Transfer.direction == "outgoing")
                              .order_by(Transfer.id)).all()
        balances = dict(s.execute(select(Account.currency, Account.balance).where(Account.customer_id == cid)).all())
        cards = dict(s.execute(select(Card.last4, Card.status).where(Card.customer_id == cid)).all())
        disputes = s.execute(select(CardTransaction.merchant, Dispute.status)
                             .join(CardTransaction, Dispute.card_transaction_id == CardTransaction.id)
                             .where(Dispute.customer_id == cid).order_by(Dispute.id)).all()
        tickets = s.execute(select(HandoffTicket.id, HandoffTicket.status)
                            .where(HandoffTicket.customer_id == cid).order_by(HandoffTicket.id)).all()
        pending = len(s.execute(select(PendingAction.id).where(PendingAction.customer_id == cid,
                                                               PendingAction.status == "pending")).all())
    return Rows(tuple(map(tuple, transfers)), balances, cards, tuple(map(tuple, disputes)), tuple(map(tuple, tickets)),
                pending)


def paid(before: Rows, after: Rows, payee: str, amount: str) -> None:
    """Assert that exactly one GBP payment of ``amount`` to ``payee`` was made and nothing else."""
    assert after.transfers[:-1] == before.transfers, after.transfers
    assert after.transfers[-1][:3] == (payee, Decimal(amount), "GBP"), after.transfers[-1]
    assert after.balances == {**before.balances, "GBP": before.balances["GBP"] - Decimal(amount)}
    assert (after.cards, after.disputes, after.tickets) == (before.cards, before.disputes, before.tickets)


def unchanged(before: Rows, after: Rows) -> None:
    """Assert that nothing changed: no payment, same balances, cards, disputes, tickets, no proposal."""
    assert after == Rows(before.transfers, before.balances, before.cards, before.disputes, before.tickets, 0), after
