"""Shared pieces of the banking tools: the result model, the registry, the per-call context
with customer-scoped queries and the proposal helper (wording helpers: ``bank.tools.formatting``).

Every query helper here filters by the authenticated ``customer_id`` held in :class:`ToolContext`
(card transactions through their card, transfers/top-ups/direct debits through their account).
Handlers never read identity from the message text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from bank.store import (
    Account, Card, CardTransaction, DirectDebit, FxRate, PendingAction, TopUp, Transfer,
)
from bank.tools.formatting import join_lines, jsonable

ACTION_TTL = timedelta(minutes=15)
"""How long a proposed action can be confirmed."""

STATE_CHANGING_ACTIONS: tuple[str, ...] = (
    "freeze_card",
    "unfreeze_card",
    "cancel_transfer",
    "activate_card",
    "order_replacement_card",
    "order_card",
    "terminate_account",
    "send_payment",
    "add_payee",
    "top_up_account",
    "open_dispute",
)
"""Every action a tool may propose; none runs before ``confirm_action(..., approve=True)``."""


class ProposalRefused(RuntimeError):
    """A tool tried to propose a state change in a call that may not propose one
    (``ToolContext.may_propose`` is False)."""


class ToolResult(BaseModel):
    """What a banking tool returns.

    ``tool``: handler name; ``intent``: the BANKING77 label it served (or ``"confirm_action"``);
    ``answer``: customer-facing text; ``data``: JSON-serialisable facts the answer used (money as
    strings like ``"23.45"``, dates ISO 8601); ``pending_confirmation``: None, or
    ``{"action_id", "action", "description"}`` when the customer must confirm a change;
    ``slot_request``: None, or ``{"slot", "question", "options"}`` when the tool needs one more
    detail before it can answer or propose (``slot``: a slot name such as ``"amount"``;
    ``question``: the customer-facing question, also the ``answer``; ``options``: the choices
    to offer, possibly empty).
    """

    tool: str
    intent: str
    answer: str
    data: dict[str, Any] = Field(default_factory=dict)
    pending_confirmation: dict[str, str] | None = None
    slot_request: dict[str, Any] | None = None

    model_config = ConfigDict(validate_assignment=True)

    @field_validator("data", mode="before")
    @classmethod
    def _jsonable(cls, v: Any) -> Any:
        return jsonable(v) if isinstance(v, dict) else v


@dataclass
class ToolContext:
    """One tool call: an open session (one transaction), the authenticated customer, the text."""

    session: Session
    customer_id: int
    intent: str
    tool: str
    text: str
    now: datetime
    may_propose: bool = True
    """False when the conversation only inferred this intent from earlier context: a proposal
    then raises :class:`ProposalRefused` (and the call's transaction rolls back)."""
    slots: dict[str, Any] = field(default_factory=dict)
    details_extracted: bool = False
    """True when the caller (the conversation) already extracted the message's details into
    ``slots``: a tool then reads values only from ``slots`` and never parses ``text`` again for
    them (one extraction per message, models/entities.py; a detail it could not read is asked for)."""
    """Details of the request already known (issue 16 slot names: ``amount``, ``currency``,
    ``payee``, ``iban``, ``account``, ``card``, ``reference``, ``merchant``, ``date_from``,
    ``date_to``, ``min_amount``, ``max_amount``, ``direction``, ``transaction_id``, and for a
    hand-over ``transcript``/``thread_id``); empty for the BANKING77 tools."""

    def slot(self, name: str) -> str | None:
        """The slot ``name`` as stripped text, or None when absent or empty."""
        value = self.slots.get(name)
        if value is None:
            return None
        value = str(value).strip()
        return value or None

    @property
    def today(self) -> date:
        """Today's date (UTC)."""
        return self.now.date()

    # -- customer-scoped queries -------------------------------------------------------------
    def accounts(self, *, open_only: bool = True) -> list[Account]:
        """The customer's accounts (open ones by default), oldest first."""
        q = select(Account).where(Account.customer_id == self.customer_id)
        if open_only:
            q = q.where(Account.status == "open")
        return list(self.session.scalars(q.order_by(Account.id)))

    def cards(self, statuses: Iterable[str] | None = None, kinds: Iterable[str] | None = None) -> list[Card]:
        """The customer's cards, optionally filtered by status and kind, oldest first."""
        q = select(Card).where(Card.customer_id == self.customer_id)
        if statuses is not None:
            q = q.where(Card.status.in_(list(statuses)))
        if kinds is not None:
            q = q.where(Card.kind.in_(list(kinds)))
        return list(self.session.scalars(q.order_by(Card.id)))

    def card_txs(self, *, kinds: Iterable[str] | None = None, statuses: Iterable[str] | None = None,
                 days: int | None = None, limit: int | None = None) -> list[CardTransaction]:
        """The customer's card transactions, newest first (``days``: only the last N days)."""
        q = select(CardTransaction).join(Card, CardTransaction.card_id == Card.id).where(
            Card.customer_id == self.customer_id)
        if kinds is not None:
            q = q.where(CardTransaction.kind.in_(list(kinds)))
        if statuses is not None:
            q = q.where(CardTransaction.status.in_(list(statuses)))
        if days is not None:
            q = q.where(CardTransaction.created_at >= self.now - timedelta(days=days))
        return self._newest_first(q, CardTransaction, limit)

    def transfers(self, *, direction: str | None = "outgoing", statuses: Iterable[str] | None = None,
                  limit: int | None = None) -> list[Transfer]:
        """The customer's transfers, newest first."""
        q = select(Transfer).join(Account, Transfer.account_id == Account.id).where(
            Account.customer_id == self.customer_id)
        if direction is not None:
            q = q.where(Transfer.direction == direction)
        if statuses is not None:
            q = q.where(Transfer.status.in_(list(statuses)))
        return self._newest_first(q, Transfer, limit)

    def top_ups(self, *, methods: Iterable[str] | None = None, statuses: Iterable[str] | None = None,
                limit: int | None = None) -> list[TopUp]:
        """The customer's top-ups, newest first."""
        q = select(TopUp).join(Account, TopUp.account_id == Account.id).where(Account.customer_id == self.customer_id)
        if methods is not None:
            q = q.where(TopUp.method.in_(list(methods)))
        if statuses is not None:
            q = q.where(TopUp.status.in_(list(statuses)))
        return self._newest_first(q, TopUp, limit)

    def _newest_first(self, q: Select, model: type[CardTransaction | Transfer | TopUp],
                      limit: int | None) -> list[Any]:
        """Run ``q`` ordered by ``model.created_at`` then ``model.id``, newest first, at most ``limit`` rows."""
        q = q.order_by(model.created_at.desc(), model.id.desc())
        if limit is not None:
            q = q.limit(limit)
        return list(self.session.scalars(q))

    def direct_debits(self) -> list[DirectDebit]:
        """The customer's direct debit mandates, most recently collected first."""
        q = select(DirectDebit).join(Account, DirectDebit.account_id == Account.id).where(
            Account.customer_id == self.customer_id)
        rows = list(self.session.scalars(q))
        return sorted(rows, key=lambda d: d.last_collected_at or d.created_at, reverse=True)

    def fx_rate(self, base: str, quote: str) -> tuple[Decimal, datetime] | None:
        """Mid-market rate (1 ``base`` = rate ``quote``) from ``fx_rates``, direct, inverse or
        crossed through GBP/EUR; None when unknown. Shared reference data (not per customer)."""
        base, quote = base.upper(), quote.upper()
        if base == quote:
            return Decimal("1"), self.now
        rows = {(r.base, r.quote): r for r in self.session.scalars(select(FxRate))}

        def direct(b: str, q: str) -> tuple[Decimal, datetime] | None:
            if (b, q) in rows:
                return rows[(b, q)].rate, rows[(b, q)].updated_at
            if (q, b) in rows:
                return (Decimal(1) / rows[(q, b)].rate).quantize(Decimal("0.000001")), rows[(q, b)].updated_at
            return None

        found = direct(base, quote)
        if found:
            return found
        for via in ("GBP", "EUR", "USD"):
            a, b = direct(base, via), direct(via, quote)
            if a and b:
                return (a[0] * b[0]).quantize(Decimal("0.000001")), min(a[1], b[1])
        return None

    def currencies(self) -> list[str]:
        """Every currency with a stored FX rate, sorted."""
        out: set[str] = set()
        for r in self.session.scalars(select(FxRate)):
            out.update((r.base, r.quote))
        return sorted(out)

    # -- results and proposals ---------------------------------------------------------------
    def result(self, answer: str, data: dict[str, Any] | None = None,
               pending: dict[str, str] | None = None) -> ToolResult:
        """Build this call's :class:`ToolResult`."""
        return ToolResult(tool=self.tool, intent=self.intent, answer=answer, data=jsonable(data or {}),
                          pending_confirmation=pending)

    def ask(self, slot: str, question: str, options: Sequence[str] = (),
            data: dict[str, Any] | None = None) -> ToolResult:
        """A result that asks for one more detail: ``slot_request`` set, ``answer`` = ``question``."""
        res = self.result(question, data)
        res.slot_request = {"slot": slot, "question": question, "options": list(options)}
        return res

    def policy_answer(self, text: str, heading: str, rows: Sequence[Any], line: Callable[[Any], str],
                      to_dict: Callable[[Any], dict[str, Any]], key: str, *, empty: str = "",
                      extra_data: dict[str, Any] | None = None) -> ToolResult:
        """A fixed policy ``text`` followed by the customer's matching ``rows``.

        ``text``: the policy sentence(s); ``heading``: the list's title, appended as
        ``" {heading}:\\n"`` plus one bullet per row (``line(row) -> str``) when ``rows`` is non-empty;
        ``empty``: appended instead when ``rows`` is empty (default nothing); ``to_dict(row) -> dict``
        gives the facts stored under ``data[key]``; ``extra_data`` entries follow ``key`` in ``data``.
        Returns this call's :class:`ToolResult` (no pending confirmation).
        """
        answer = text + (f" {heading}:\n" + join_lines([line(r) for r in rows]) if rows else empty)
        return self.result(answer, {key: [to_dict(r) for r in rows], **(extra_data or {})})

    def propose(self, action: str, params: dict[str, Any], description: str) -> dict[str, str]:
        """Store a pending action for this customer and return ``{action_id, action, description}``.

        An identical proposal (same action, params and description) still pending and not expired
        is reused, so asking twice does not create two confirmable actions; a proposal whose
        wording changed (e.g. the balance after) is a new one, so a confirmation never executes
        an action described differently from what the customer saw.
        """
        if action not in STATE_CHANGING_ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if not self.may_propose:
            raise ProposalRefused(f"{action} was not asked for in this message")
        params = jsonable(params)
        rows = self.session.scalars(
            select(PendingAction).where(PendingAction.customer_id == self.customer_id,
                                        PendingAction.action == action, PendingAction.status == "pending",
                                        PendingAction.created_at >= self.now - ACTION_TTL))
        for row in rows:  # the same proposal, worded the same (a changed balance after is a new one)
            if row.params == params and row.description == description:
                return {"action_id": row.id, "action": row.action, "description": row.description}
        row = PendingAction(customer_id=self.customer_id, action=action, params=params, description=description,
                            status="pending", created_at=self.now)
        self.session.add(row)
        self.session.flush()
        return {"action_id": row.id, "action": action, "description": description}


Handler = Callable[[ToolContext], ToolResult]


@dataclass(frozen=True)
class Tool:
    """A registered handler: ``name`` (handler function name), ``intent``, ``func``, ``summary``."""

    name: str
    intent: str
    func: Handler
    summary: str = field(default="")


TOOLS: dict[str, Tool] = {}
"""intent label -> :class:`Tool`; filled by the ``@tool`` decorator in the area modules."""


def tool(*intents: str) -> Callable[[Handler], Handler]:
    """Register ``func`` as the handler of each of ``intents`` (a label may be registered once)."""

    def deco(func: Handler) -> Handler:
        for intent in intents:
            if intent in TOOLS:
                raise RuntimeError(f"intent {intent!r} registered twice")
            summary = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else ""
            TOOLS[intent] = Tool(name=func.__name__, intent=intent, func=func, summary=summary)
        return func

    return deco
