"""Banking tools: one handler per BANKING77 intent, run against the customer's own data.

Public API::

    run_tool(engine, customer_id, intent, text) -> ToolResult
    confirm_action(engine, customer_id, action_id, approve, *, now=None) -> ToolResult
    latest_pending_action(engine, customer_id, *, now=None) -> dict | None
    ToolResult, TOOLS (intent -> Tool), INTENTS, STATE_CHANGING_ACTIONS, ACTION_TTL,
    ActionNotFoundError (LookupError), ActionExpiredError

Handlers live in area modules (cards, card_orders, payments, exchange, transfers, account) and register themselves
with ``@tool(intent)``. State-changing handlers only *propose* (a ``pending_actions`` row) and
return ``pending_confirmation``; :func:`confirm_action` runs the change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from bank.store import Customer, session_scope, utcnow
from bank.tools import account, card_orders, cards, disputes, exchange, handoff, money, payees, payments, search, transfers
from bank.tools.actions import (
    ActionExpiredError, ActionNotFoundError, close_action, confirm_action, latest_pending_action,
)
from bank.tools.base import (
    ACTION_TTL, STATE_CHANGING_ACTIONS, TOOLS, ProposalRefused, Tool, ToolContext, ToolResult,
)

__all__ = [
    "run_tool", "confirm_action", "close_action", "latest_pending_action", "ProposalRefused", "ToolResult", "Tool", "TOOLS", "INTENTS",
    "STATE_CHANGING_ACTIONS", "ACTION_TTL", "ActionNotFoundError", "ActionExpiredError",
]

_AREA_MODULES = (account, cards, card_orders, payments, exchange, transfers, money, payees, search, disputes, handoff)
"""Imported for their ``@tool`` registrations."""

INTENTS: frozenset[str] = frozenset(TOOLS)
"""Every intent with a handler: the 77 BANKING77 labels plus ``check_balance`` and
``recent_transactions`` (CLINC150's balance/transactions), and the issue-16 requests
(``send_money``, ``add_payee``, ``top_up_account``, ``search_transactions``, ``dispute_charge``,
``talk_to_human``)."""


def run_tool(engine: Engine, customer_id: int, intent: str, text: str, *, slots: dict[str, Any] | None = None,
             now: datetime | None = None, may_propose: bool = True) -> ToolResult:
    """Run the handler of ``intent`` for the authenticated ``customer_id`` in one transaction.

    ``text`` is the customer's message; handlers use it only for details such as which currency
    pair to quote, never to decide whose data to read. Any proposal (``pending_confirmation``) is
    committed with the call. ``may_propose=False``: a handler that would propose a state change
    raises :class:`ProposalRefused` instead and nothing is stored. ``slots``: details already
    known (see ``ToolContext.slots``); the issue-16 tools read them, the others ignore them. A
    tool that needs one more detail returns ``slot_request`` instead of an answer or proposal.

    Raises ValueError for an unknown intent, LookupError when ``customer_id`` does not exist.
    """
    entry = TOOLS.get(intent)
    if entry is None:
        raise ValueError(f"unknown intent {intent!r}: no banking tool handles it")
    now = now or utcnow()
    with session_scope(engine) as s:
        if s.execute(select(Customer.id).where(Customer.id == customer_id)).scalar_one_or_none() is None:
            raise LookupError(f"no customer with id {customer_id}")
        ctx = ToolContext(session=s, customer_id=customer_id, intent=intent, tool=entry.name, text=text or "", now=now,
                          may_propose=may_propose, slots=dict(slots or {}), details_extracted=slots is not None)
        return entry.func(ctx)
