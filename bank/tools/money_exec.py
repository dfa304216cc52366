"""Executors of the issue-16 actions, run by ``confirm_action`` after the customer said yes.

Each runs inside the confirmation's ONE transaction, after the pending action was claimed (so it
runs once per action id), and first locks the customer's account rows (``SELECT ... FOR UPDATE``;
on SQLite the claim holds the write lock). Every money rule is checked again against the locked,
current rows; a broken rule changes nothing and returns a plain reason.
Signature, as in ``bank.tools.actions``: ``(session, customer_id, params, now) -> (changed, answer, facts)``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bank.models_extra import Dispute, Payee, PaymentDetail
from bank.store import Card, CardTransaction, TopUp, Transfer, add_to_balance
from bank.tools.formatting import card_label, day, money
from config.i18n import gettext as _
from bank.tools.money_rules import (
    clean_iban, currency_problem, lock_accounts, mask_iban, parse_amount, payment_problem,
)

__all__ = ["MONEY_EXECUTORS"]

Outcome = tuple[bool, str, dict[str, Any]]


def _send_payment(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    acc = lock_accounts(s, cid).get(p.get("account_id"))
    if acc is None:
        return False, _("Nothing was sent: that account no longer exists."), {}
    payee = s.scalar(select(Payee).where(Payee.id == p.get("payee_id"), Payee.customer_id == cid))
    if payee is None:
        return False, _("Nothing was sent: that payee is no longer saved."), {}
    currency = str(p.get("currency", ""))
    bad = currency_problem(currency)
    amount, reason = (None, bad) if bad else parse_amount(str(p.get("amount", "")), currency)
    if amount is None:
        return False, _("Nothing was sent: {reason}").format(reason=reason), {}
    try:
        debit, fee = Decimal(str(p["debit_amount"])), Decimal(str(p.get("fee", "0")))
    except (KeyError, ArithmeticError, ValueError):
        return False, _("Nothing was sent: the payment details are incomplete."), {}
    if currency == acc.currency and debit != amount:
        return False, _("Nothing was sent: the payment details do not add up."), {}
    problem = payment_problem(s, acc, debit + fee, now)
    if problem:
        return False, _("Nothing was sent.") + " " + problem, {"refused": True}
    t = Transfer(account_id=acc.id, direction="outgoing", beneficiary_name=payee.name, beneficiary_iban=payee.iban,
                 amount=amount, currency=currency, fee=fee, status="completed", created_at=now, completed_at=now)
    s.add(t)
    s.flush()
    rate = p.get("fx_rate")
    s.add(PaymentDetail(transfer_id=t.id, payee_id=payee.id, reference=str(p.get("reference") or "")[:140],
                        debit_amount=debit + fee, fx_rate=Decimal(str(rate)) if rate is not None else None))
    balance = add_to_balance(s, acc.id, -(debit + fee))
    answer = _("Done: {amount} sent to {payee} ({iban}). Your {currency} balance is now {balance}.").format(
        amount=money(amount, currency), payee=payee.name, iban=mask_iban(payee.iban), currency=acc.currency,
        balance=money(balance, acc.currency))
    return True, answer, {"transfer_id": t.id, "amount": amount, "currency": currency, "debit_amount": debit + fee,
                          "new_balance": balance}


def _add_payee(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    iban, reason = clean_iban(str(p.get("iban", "")))
    if iban is None:
        return False, _("Nothing was saved: {reason}").format(reason=reason), {}
    name = str(p.get("name") or "").strip()[:100]
    if not name:
        return False, _("Nothing was saved: the payee has no name."), {}
    existing = s.scalar(select(Payee).where(Payee.customer_id == cid, Payee.iban == iban))
    if existing is not None:
        return False, _("Nothing was saved: that IBAN is already saved as {name}.").format(name=existing.name), {}
    payee = Payee(customer_id=cid, name=name, iban=iban, currency=p.get("currency"), created_at=now)
    try:
        with s.begin_nested():  # a concurrent confirmation saving the same IBAN wins: no 500
            s.add(payee)
            s.flush()
    except IntegrityError:
        return False, _("Nothing was saved: that IBAN was just saved already."), {}
    return True, _("Done: {name} ({iban}) is saved as a payee.").format(name=name, iban=mask_iban(iban)), {"payee_id": payee.id}


def _top_up_account(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    from bank.tools.money import card_problem

    acc = lock_accounts(s, cid).get(p.get("account_id"))
    if acc is None or acc.status != "open":
        return False, _("Nothing was changed: that account is not open."), {}
    card = s.scalar(select(Card).where(Card.id == p.get("card_id"), Card.customer_id == cid)
                    .execution_options(populate_existing=True))
    if card is None:
        return False, _("Nothing was changed: that card no longer exists."), {}
    problem = card_problem(card, now.date())
    if problem:
        return False, problem, {"refused": True}
    amount, reason = parse_amount(str(p.get("amount", "")), acc.currency)
    if amount is None or p.get("currency") != acc.currency:
        return False, _("Nothing was changed: {reason}").format(reason=reason or _("the currency no longer matches the account.")), {}
    top = TopUp(account_id=acc.id, method="card", amount=amount, currency=acc.currency, status="completed",
                fee=Decimal("0"), created_at=now, completed_at=now)
    s.add(top)
    s.flush()
    balance = add_to_balance(s, acc.id, amount)
    return True, _("Done: {amount} topped up from your {card}. Your {currency} balance is now {balance}.").format(
                      amount=money(amount, acc.currency), card=card_label(card), currency=acc.currency,
                      balance=money(balance, acc.currency)), {
        "top_up_id": top.id, "new_balance": balance}


def _open_dispute(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    lock_accounts(s, cid)
    tx = s.scalar(select(CardTransaction).join(Card, CardTransaction.card_id == Card.id).where(
        CardTransaction.id == p.get("transaction_id"), Card.customer_id == cid))
    if tx is None:
        return False, _("Nothing was opened: that payment is not on your cards."), {}
    open_ = s.scalar(select(Dispute).where(Dispute.card_transaction_id == tx.id, Dispute.status == "open"))
    if open_ is not None:
        return False, _("Nothing new was opened: dispute #{id} on that payment is already open.").format(id=open_.id), {
            "dispute_id": open_.id}
    d = Dispute(customer_id=cid, card_transaction_id=tx.id, reason=str(p.get("reason") or "")[:300], status="open",
                created_at=now)
    s.add(d)
    s.flush()
    return True, _("Done: dispute #{id} is open on the {merchant} payment of {amount} ({day}). We will reply within 10 "
                    "working days.").format(id=d.id, merchant=tx.merchant, amount=money(tx.amount, tx.currency),
                                            day=day(tx.created_at)), {"dispute_id": d.id}


MONEY_EXECUTORS: dict[str, Callable[[Session, int, dict, datetime], Outcome]] = {
    "send_payment": _send_payment,
    "add_payee": _add_payee,
    "top_up_account": _top_up_account,
    "open_dispute": _open_dispute,
}
