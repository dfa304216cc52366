"""Confirmation of proposed state-changing actions (durable, idempotent, customer-scoped).

A tool never changes state itself: it stores a ``pending_actions`` row (see
``ToolContext.propose``). :func:`confirm_action` then, in ONE transaction:

1. loads the row by id AND customer id (another customer's id is "not found");
2. claims it with a conditional ``UPDATE ... WHERE status = 'pending'`` so two concurrent
   confirmations cannot both run it (the loser replays the stored result);
3. re-checks the preconditions against current data, applies the change, and stores the result.

A retried confirmation of a decided action returns the stored result and changes nothing.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from bank.store import (
    Account, Card, CardTransaction, DirectDebit, PendingAction, Transfer, add_to_balance, session_scope, utcnow,
)
from bank.tools.money_exec import MONEY_EXECUTORS
from bank.tools.card_rules import FEE_MERCHANT, cap_problem, physical_card_fee
from bank.tools.base import ACTION_TTL, STATE_CHANGING_ACTIONS, ToolResult
from bank.tools.formatting import card_label, day, jsonable, money
from config.i18n import gettext as _

NEW_CARD_DELIVERY_DAYS = 7
CARD_VALIDITY_YEARS = 3


class ActionNotFoundError(LookupError):
    """No pending action with that id belongs to this customer."""


class ActionExpiredError(RuntimeError):
    """The action was proposed more than 15 minutes ago; it can no longer be confirmed."""


Outcome = tuple[bool, str, dict[str, Any]]  # (changed?, customer-facing answer, facts)


def _card(s: Session, customer_id: int, card_id: Any) -> Card | None:
    return s.execute(select(Card).where(Card.id == card_id, Card.customer_id == customer_id)
                     .execution_options(populate_existing=True)).scalar_one_or_none()


def _lock_accounts(s: Session, customer_id: int) -> dict[int, Account]:
    """Lock ALL the customer's account rows (``SELECT ... FOR UPDATE``, id order, re-read with
    populate_existing) and return them by id.

    Every card action takes these locks before it reads or changes a card, and
    ``_terminate_account`` takes the same rows in the same order first, so a card action and a
    close serialise (the later one sees the other's outcome) and cannot deadlock. On SQLite the
    confirmation's claim already holds the database's write lock.
    """
    rows = s.scalars(select(Account).where(Account.customer_id == customer_id).order_by(Account.id)
                     .with_for_update().execution_options(populate_existing=True))
    return {a.id: a for a in rows}


def _locked_card(s: Session, cid: int, card_id: Any) -> tuple[Card | None, str | None]:
    """The card re-read under its customer's account locks, and why it may not be changed
    (its account is closed) or None."""
    accounts = _lock_accounts(s, cid)
    card = _card(s, cid, card_id)
    if card is None:
        return None, None
    acc = accounts.get(card.account_id)
    if acc is None or acc.status != "open":
        return card, _("Nothing was changed: that card's account is closed.")
    return card, None


def _new_last4(s: Session, customer_id: int) -> str:
    taken = set(s.scalars(select(Card.last4).where(Card.customer_id == customer_id)))
    while True:
        last4 = f"{secrets.randbelow(10000):04d}"
        if last4 not in taken:
            return last4


def _new_card(s: Session, customer_id: int, account_id: int, kind: str, now: datetime,
              replaces: Card | None = None) -> Card:
    physical = kind == "physical"
    today = now.date()
    card = Card(customer_id=customer_id, account_id=account_id, last4=_new_last4(s, customer_id), kind=kind,
                status="ordered" if physical else "active", ordered_at=now,
                expected_delivery=today + timedelta(days=NEW_CARD_DELIVERY_DAYS) if physical else None,
                expires_on=today.replace(year=today.year + CARD_VALIDITY_YEARS, day=1),
                replaces_card_id=replaces.id if replaces else None)
    s.add(card)
    s.flush()
    return card


def _card_facts(c: Card) -> dict[str, Any]:
    return {"card_id": c.id, "last4": c.last4, "kind": c.kind, "status": c.status,
            "expected_delivery": c.expected_delivery}


def _freeze_card(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    frozen, new, closed = [], [], 0
    accounts = _lock_accounts(s, cid)
    for card_id in p.get("card_ids", []):
        card = _card(s, cid, card_id)
        if card is None or card.status != "active":
            continue
        if accounts.get(card.account_id) is None or accounts[card.account_id].status != "open":
            closed += 1
            continue
        card.status = "frozen"
        frozen.append(card)
        if p.get("order_replacement"):
            new.append(_new_card(s, cid, card.account_id, card.kind, now, replaces=card))
    if not frozen:
        if closed:
            return False, _("Nothing was changed: the card's account is closed (its cards are cancelled)."), {}
        return False, _("Nothing was changed: the card is no longer active (already frozen or cancelled)."), {}
    labels = ", ".join(card_label(c) for c in frozen)
    answer = (_("Done: your {cards} is frozen.") if len(frozen) == 1 else _("Done: your {cards} are frozen.")).format(
        cards=labels)
    for c in new:
        answer += " " + (_("A new {card} is ordered and should arrive by {day}.").format(
            card=card_label(c), day=day(c.expected_delivery))
            if c.kind == "physical" else _("Your new {card} is ready to use.").format(card=card_label(c)))
    return True, answer, {"frozen": [_card_facts(c) for c in frozen], "new_cards": [_card_facts(c) for c in new]}


def _unfreeze_card(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    card, refused = _locked_card(s, cid, p.get("card_id"))
    if card is None or card.status != "frozen":
        return False, _("Nothing was changed: that card is not frozen any more."), {}
    if refused:
        return False, refused, {}
    if card.expires_on < now.date():
        return False, _("Nothing was changed: that card has expired, so it cannot be unfrozen."), {}
    card.status = "active"
    return True, _("Done: your {card} works again.").format(card=card_label(card)), {"card": _card_facts(card)}


def _activate_card(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    card, refused = _locked_card(s, cid, p.get("card_id"))
    if card is None or card.status != "shipped":
        return False, _("Nothing was changed: that card is not waiting for activation."), {}
    if refused:
        return False, refused, {}
    card.status = "active"
    facts: dict[str, Any] = {"card": _card_facts(card)}
    answer = _("Done: your {card} is active. Your PIN is in the app under Card > Show PIN.").format(card=card_label(card))
    if card.replaces_card_id:
        old = _card(s, cid, card.replaces_card_id)
        if old is not None and old.status in ("active", "frozen", "expired"):
            old.status = "cancelled"
            facts["cancelled_old_card"] = _card_facts(old)
            answer += f" Your old {card_label(old)} is now cancelled."
    return True, answer, facts


def _order_replacement_card(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    old, refused = _locked_card(s, cid, p.get("card_id"))
    if old is None or old.status == "cancelled":
        return False, _("Nothing was changed: that card no longer exists."), {}
    if refused:
        return False, refused, {}
    existing = s.execute(select(Card).where(Card.customer_id == cid, Card.replaces_card_id == old.id,
                                            Card.status.in_(("ordered", "shipped", "active")))).scalars().first()
    if existing is not None:
        return False, f"Nothing was changed: a replacement ({card_label(existing)}) is already {existing.status}.", {}
    new = _new_card(s, cid, old.account_id, old.kind, now, replaces=old)
    when = (" " + _("It should arrive by {day}.").format(day=day(new.expected_delivery))) if new.expected_delivery else ""
    return True, (_("Done: a replacement for your {card} is ordered (new card ending {last4}).").format(
        card=card_label(old), last4=new.last4) + when + " "
        + _("Your current card keeps working until you activate the new one.")), {"new_card": _card_facts(new)}


def _order_card(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    # Under the account locks: the account is still open, the cap is re-counted, and the fee of
    # an extra physical card is taken in this same transaction (a ``kind="fee"`` card transaction
    # plus ``balance = balance - fee``); never more than the fee quoted in the proposal.
    kind = p.get("kind")
    if kind not in ("physical", "virtual", "disposable"):
        return False, _("Nothing was changed: unknown card type."), {}
    acc = _lock_accounts(s, cid).get(p.get("account_id"))
    if acc is None or acc.status != "open":
        return False, _("Nothing was changed: that account is not open."), {}
    problem = cap_problem(s, cid, kind, now)
    if problem:
        return False, f"Nothing was changed: {problem}.", {"cap_reached": True}
    fee = physical_card_fee(s, cid) if kind == "physical" else Decimal("0.00")
    if "fee" in p and fee > Decimal(str(p["fee"])):
        return False, (f"Nothing was changed: this card now costs {money(fee, acc.currency)} (you have another "
                       "physical card by now), more than when you asked. Ask again if you still want it."), {"fee": fee}
    if fee and acc.balance < fee:
        return False, (f"Nothing was changed: the {money(fee, acc.currency)} fee for an extra physical card is more "
                       f"than your balance ({money(acc.balance, acc.currency)}). Top up and ask again."), {
            "fee": fee, "balance": acc.balance}
    new = _new_card(s, cid, acc.id, kind, now)
    facts: dict[str, Any] = {"new_card": _card_facts(new), "fee": fee}
    if kind == "physical":
        answer = _("Done: your new {card} is ordered and should arrive by {day}.").format(
            card=card_label(new), day=day(new.expected_delivery))
    else:
        answer = _("Done: your new {card} is ready to use in the app.").format(card=card_label(new))
    if fee:
        s.add(CardTransaction(card_id=new.id, merchant=FEE_MERCHANT, amount=fee, currency=acc.currency,
                              account_amount=fee, status="settled", kind="fee", created_at=now, settled_at=now))
        facts["new_balance"] = add_to_balance(s, acc.id, -fee)
        answer += (f" The {money(fee, acc.currency)} fee is taken from your balance "
                   f"(now {money(facts['new_balance'], acc.currency)}).")
    return True, answer, facts


def _cancel_transfer(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    # The transfer row is locked (FOR UPDATE on PostgreSQL; SQLite holds the write lock since the
    # claim) and re-read, so two confirmations cannot both refund it; the refund itself is one
    # SQL ``balance = balance + :refund``, so concurrent refunds to one account never lose one.
    t = s.execute(select(Transfer).join(Account, Transfer.account_id == Account.id).where(
        Transfer.id == p.get("transfer_id"), Account.customer_id == cid)
        .with_for_update(of=Transfer).execution_options(populate_existing=True)).scalar_one_or_none()
    if t is None or t.status != "pending" or t.direction != "outgoing":
        status = t.status if t is not None else "gone"
        return False, _("Nothing was changed: the transfer is no longer pending ({status}).").format(status=status), {}
    t.status = "cancelled"
    t.completed_at = None
    refund = t.amount + (t.fee or Decimal("0"))
    new_balance = add_to_balance(s, t.account_id, refund)
    currency = s.scalar(select(Account.currency).where(Account.id == t.account_id))
    return True, _("Done: the transfer of {amount} to {payee} is cancelled and {refund} is back in your balance.").format(
        amount=money(t.amount, t.currency), payee=t.beneficiary_name, refund=money(refund, currency)), {
        "transfer_id": t.id, "refunded": refund, "new_balance": new_balance}


def _terminate_account(s: Session, cid: int, p: dict, now: datetime) -> Outcome:
    # Lock the customer's accounts (the same rows, in the same order, as every card action) before
    # reading their balances, so no refund lands between the zero check and the closing and no
    # card is ordered, frozen or unfrozen meanwhile; a transfer still pending also blocks it.
    accounts = [a for a in _lock_accounts(s, cid).values() if a.status == "open"]
    if not accounts:
        return False, _("Nothing was changed: your accounts are already closed."), {}
    if any(a.balance != 0 for a in accounts):
        return False, _("Nothing was changed: a balance is no longer zero; move it out first."), {}
    pending = s.scalar(select(Transfer.id).where(Transfer.account_id.in_([a.id for a in accounts]),
                                                 Transfer.status == "pending").limit(1))
    if pending is not None:
        return False, _("Nothing was changed: a transfer is still pending; once it has cleared I can close it."), {}
    for a in accounts:
        a.status, a.closed_at = "closed", now
    cards = list(s.scalars(select(Card).where(Card.customer_id == cid,
                                              Card.status.in_(("ordered", "shipped", "active", "frozen")))))
    for c in cards:
        c.status = "cancelled"
    debits = list(s.scalars(select(DirectDebit).join(Account, DirectDebit.account_id == Account.id).where(
        Account.customer_id == cid, DirectDebit.status == "active")))
    for d in debits:
        d.status = "cancelled"
    return True, _("Done: your account is closed and your cards are cancelled. We are sorry to see you go."), {
        "closed_accounts": [a.id for a in accounts], "cancelled_cards": [c.id for c in cards],
        "cancelled_direct_debits": [d.id for d in debits]}


Executor = Callable[[Session, int, dict, datetime], Outcome]
_CARD_AND_ACCOUNT_EXECUTORS: dict[str, Executor] = {
    "freeze_card": _freeze_card,
    "unfreeze_card": _unfreeze_card,
    "cancel_transfer": _cancel_transfer,
    "activate_card": _activate_card,
    "order_replacement_card": _order_replacement_card,
    "order_card": _order_card,
    "terminate_account": _terminate_account,
}
_ALL_EXECUTORS = {**_CARD_AND_ACCOUNT_EXECUTORS, **MONEY_EXECUTORS}  # + the issue-16 money actions
if set(_ALL_EXECUTORS) != set(STATE_CHANGING_ACTIONS):
    raise RuntimeError(f"executors {sorted(_ALL_EXECUTORS)} != STATE_CHANGING_ACTIONS {sorted(STATE_CHANGING_ACTIONS)}")
EXECUTORS: dict[str, Executor] = {action: _ALL_EXECUTORS[action] for action in STATE_CHANGING_ACTIONS}
"""action -> ``(session, customer_id, params, now) -> (changed, answer, facts)``, keyed by
``STATE_CHANGING_ACTIONS`` in its order: a proposable action without an executor, or an
executor of no proposable action, fails at import."""


def _replay(row: PendingAction) -> ToolResult:
    result = row.result or {}
    stored = result.get("answer", "")
    note = {"confirmed": _("This was already confirmed; nothing was changed again."),
            "failed": _("This was already confirmed; nothing was changed again."),
            "declined": _("This was already declined; nothing was changed again.")}.get(
        row.status, _("This action is {status}; nothing was changed again.").format(status=row.status))
    return ToolResult(tool="confirm_action", intent="confirm_action",
                      answer=f"{note} {stored}".strip(),
                      data=jsonable({"action_id": row.id, "action": row.action, "status": row.status,
                                     "result": result, "replayed": True}))


def _expired_message(row: PendingAction) -> str:
    return _("This request ({description}) expired: confirmations must come within {minutes} minutes. Nothing was "
             "changed; please ask again.").format(description=row.description,
                                                  minutes=int(ACTION_TTL.total_seconds() // 60))


def confirm_action(engine: Engine, customer_id: int, action_id: str, approve: bool, *,
                   now: datetime | None = None) -> ToolResult:
    """Approve (run) or decline a proposed action of this customer, exactly once.

    Approve: the change and the row's status update (``confirmed``, or ``failed`` when the
    preconditions no longer hold and nothing changed) commit in one transaction. Decline: marks
    ``declined``, changes nothing else. A repeated call with the same ``action_id`` returns the
    stored outcome (``data["replayed"] is True``) and changes nothing.

    Returns a :class:`ToolResult` with ``tool="confirm_action"`` and ``data`` =
    ``{action_id, action, status, result, replayed}``.

    Raises :class:`ActionNotFoundError` (a ``LookupError``) when no action with that id belongs
    to ``customer_id`` (another customer's id included), and :class:`ActionExpiredError` when it
    was proposed more than 15 minutes before ``now`` (default: current UTC time); the row is
    then marked ``expired``.
    """
    now = now or utcnow()
    not_found = ActionNotFoundError(f"No action {action_id!r} awaits your confirmation.")
    if not isinstance(action_id, str) or not action_id or len(action_id) > 36:
        raise not_found
    expired_msg: str | None = None
    with session_scope(engine) as s:
        row = s.execute(select(PendingAction).where(PendingAction.id == action_id,
                                                    PendingAction.customer_id == customer_id)).scalar_one_or_none()
        if row is None:
            raise not_found
        if row.status == "expired":
            expired_msg = _expired_message(row)
        elif row.status != "pending":
            return _replay(row)
        elif now - row.created_at > ACTION_TTL:
            s.execute(update(PendingAction).where(PendingAction.id == row.id, PendingAction.status == "pending")
                      .values(status="expired", decided_at=now, result={"ok": False, "answer": _expired_message(row)}))
            expired_msg = _expired_message(row)
        else:
            claimed = s.execute(
                update(PendingAction).where(PendingAction.id == row.id, PendingAction.status == "pending")
                .values(status="confirmed" if approve else "declined", decided_at=now)
                .execution_options(synchronize_session=False)).rowcount
            if claimed != 1:  # a concurrent confirmation decided it first
                s.refresh(row)
                return _replay(row)
            if approve:
                changed, answer, facts = EXECUTORS[row.action](s, customer_id, dict(row.params or {}), now)
                status = "confirmed" if changed else "failed"
            else:
                changed, facts, status = False, {}, "declined"
                answer = _("OK, nothing was changed (declined: {description})").format(description=row.description)
            result = jsonable({"ok": changed, "answer": answer, **facts})
            s.execute(update(PendingAction).where(PendingAction.id == row.id)
                      .values(status=status, result=result).execution_options(synchronize_session=False))
            return ToolResult(tool="confirm_action", intent="confirm_action", answer=answer,
                              data=jsonable({"action_id": row.id, "action": row.action, "status": status,
                                             "result": result, "replayed": False}))
    raise ActionExpiredError(expired_msg)


def latest_pending_action(engine: Engine, customer_id: int, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The customer's most recent action still pending and proposed within the last 15 minutes.

    Returns ``{action_id, action, description, params, created_at, expires_at}`` (ISO strings)
    or None; lets a chat layer map a "yes"/"no" reply to :func:`confirm_action`.
    """
    now = now or utcnow()
    with session_scope(engine) as s:
        row = s.execute(select(PendingAction).where(
            PendingAction.customer_id == customer_id, PendingAction.status == "pending",
            PendingAction.created_at >= now - ACTION_TTL).order_by(PendingAction.created_at.desc()).limit(1)
        ).scalar_one_or_none()
        if row is None:
            return None
        return jsonable({"action_id": row.id, "action": row.action, "description": row.description,
                         "params": row.params, "created_at": row.created_at,
                         "expires_at": row.created_at + ACTION_TTL})


def close_action(engine: Engine, customer_id: int, action_id: str, status: str = "superseded", *,
                 now: datetime | None = None) -> bool:
    """Close a still-pending action of this customer without running it: the customer moved on
    (``status="superseded"``) or it timed out (``"expired"``). Nothing else changes.

    Returns True when this call closed it, False when it was already decided or closed (or is
    not this customer's). Raises ``ValueError`` for any other ``status``.
    """
    if status not in ("superseded", "expired"):
        raise ValueError(f"an action can only be closed as superseded or expired, not {status!r}")
    now = now or utcnow()
    with session_scope(engine) as s:
        closed = s.execute(
            update(PendingAction).where(PendingAction.id == action_id, PendingAction.customer_id == customer_id,
                                        PendingAction.status == "pending")
            .values(status=status, decided_at=now,
                    result={"ok": False, "answer": _("Not done: the request was {status} before it was confirmed.").format(status=status)})
            .execution_options(synchronize_session=False)).rowcount
    return closed == 1
