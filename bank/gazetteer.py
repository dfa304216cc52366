"""The names a customer's messages may mention: their saved payees, the payees of their past
transfers and the merchants of their card payments. Passed to entity extraction as a gazetteer
(models/entities.py ``extract_entities(names=...)``), so "pay Northside" or "at Pret" is found
as written; only this customer's own names, read through customer-scoped queries."""

from __future__ import annotations

from sqlalchemy import Engine, select

from bank.models_extra import Payee
from bank.store import Account, Card, CardTransaction, Transfer, session_scope

MAX_NAMES = 200


def customer_names(engine: Engine, customer_id: int) -> list[str]:
    """Distinct payee and merchant names of ``customer_id`` (at most :data:`MAX_NAMES`), sorted."""
    with session_scope(engine) as s:
        payees = s.scalars(select(Payee.name).where(Payee.customer_id == customer_id)).all()
        merchants = s.scalars(select(CardTransaction.merchant).join(Card, CardTransaction.card_id == Card.id)
                              .where(Card.customer_id == customer_id).distinct()).all()
        counterparties = s.scalars(select(Transfer.beneficiary_name).join(Account, Transfer.account_id == Account.id)
                                   .where(Account.customer_id == customer_id).distinct()).all()
    return sorted({n.strip() for n in (*payees, *merchants, *counterparties) if n and n.strip()})[:MAX_NAMES]
