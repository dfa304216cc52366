"""Whole conversations as tests, as ``rasa test e2e`` runs them: YAML files of customer turns with
the expected status, intent, slots and answer fragments of each reply, and the database effects
expected after the last turn ("nothing else changed" included). Shared by the pytest runner on
the fake backend (tests/test_conversations_e2e.py) and ``banking-assistant eval --conversations
DIR`` on the real backends (evals/cli.py), which reports the **task completion rate** per backend.

File format (PyYAML, ``yaml.safe_load``), one conversation per file::

    name: pay a saved payee, amount in the message
    customer: alice                       # alice | bob | carol | dave (bank/seed.py)
    turns:
      - say: pay Northside Energy £40
        expect:
          status: confirmation_required   # AssistantOutput.status
          intent: send_money
          slots: {payee: Northside Energy, amount: "40.00"}   # subset of data["slots"] or the open form
          answer_contains: ["GB33 **** 5555"]               # case-insensitive substrings
          answer_not_contains: ["sorry"]
      - button: yes                       # yes | no: the confirmation buttons (a graph resume)
        expect: {status: confirmed}
    effects:                              # relative to the freshly seeded bank before the first turn
      transfers: {added: 1, rows: [{beneficiary_name: Northside Energy, amount: "40.00"}]}
      balances: {GBP: "-40.00"}           # change of this customer's account in that currency
      card_statuses: {"4821": frozen}     # a card's status after
      transfer_statuses: {Mark Thompson: cancelled}   # the status after of the seeded transfers to that name

A table effect is ``N`` (rows added) or ``{added: N, rows: [{column: value}]}`` (each expected
row matches a distinct added row, values compared as text). Every table of :data:`TABLES` not
named must keep its row count, every balance, card and seeded transfer not named its value.

A conversation is completed when every turn's expectations hold and the effects are exactly the
expected ones; :func:`completion_rate` is the share of completed conversations.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from evals.conversation_files import (  # noqa: F401 - re-exported: the runner's API
    CUSTOMERS, TABLES, Conversation, ConversationFormatError, Expect, TableEffect, Turn, load_conversation,
    load_conversations,
)
from sqlalchemy import Engine, func, select

__all__ = ["Expect", "Turn", "TableEffect", "Conversation", "ConversationResult", "ConversationFormatError",
           "TABLES", "load_conversation", "load_conversations", "Snapshot", "snapshot", "effect_failures",
           "turn_failures", "run_conversation", "run_conversations", "completion_rate", "summary"]

def _tables() -> dict[str, Any]:
    from bank.models_extra import Dispute, HandoffTicket, Payee, PaymentDetail
    from bank.store import Account, Card, CardTransaction, DirectDebit, TopUp, Transfer

    return {"transfers": Transfer, "payment_details": PaymentDetail, "top_ups": TopUp, "payees": Payee,
            "disputes": Dispute, "handoff_tickets": HandoffTicket, "cards": Card, "accounts": Account,
            "card_transactions": CardTransaction, "direct_debits": DirectDebit}




@dataclass
class Snapshot:
    """What the bank holds: ``counts`` (table -> rows), ``ids`` (table -> row ids), ``balances``
    (the customer's account currency -> balance), ``cards`` (last4 -> status), ``transfers``
    (transfer id -> (beneficiary name, status)), of one customer where per customer."""

    counts: dict[str, int] = field(default_factory=dict)
    ids: dict[str, set[int]] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)
    cards: dict[str, str] = field(default_factory=dict)
    transfers: dict[int, tuple[str, str]] = field(default_factory=dict)


def _pk(model: Any) -> Any:
    return model.transfer_id if model.__tablename__ == "payment_details" else model.id


def snapshot(engine: Engine, customer_id: int) -> Snapshot:
    """The :class:`Snapshot` of the bank now, for ``customer_id``."""
    from bank.store import Account, Card, Transfer, session_scope

    snap = Snapshot()
    with session_scope(engine) as s:
        for name, model in _tables().items():
            snap.ids[name] = set(s.scalars(select(_pk(model))))
            snap.counts[name] = int(s.scalar(select(func.count()).select_from(model)) or 0)
        for cur, bal in s.execute(select(Account.currency, Account.balance).where(Account.customer_id == customer_id)):
            snap.balances[cur] = snap.balances.get(cur, Decimal("0")) + bal
        snap.cards = dict(s.execute(select(Card.last4, Card.status).where(Card.customer_id == customer_id)).all())
        rows = s.execute(select(Transfer.id, Transfer.beneficiary_name, Transfer.status).join(Account)
                         .where(Account.customer_id == customer_id)).all()
        snap.transfers = {i: (n, st) for i, n, st in rows}
    return snap


def _row_values(engine: Engine, table: str, ids: set[int]) -> list[dict[str, str]]:
    """The added rows as text columns (a dispute also gets ``merchant``)."""
    from bank.store import CardTransaction, session_scope

    model = _tables()[table]
    out = []
    with session_scope(engine) as s:
        for row in s.scalars(select(model).where(_pk(model).in_(sorted(ids)))):
            values = {c.key: "" if getattr(row, c.key) is None else str(getattr(row, c.key))
                      for c in model.__table__.columns}
            if table == "disputes":
                tx = s.get(CardTransaction, row.card_transaction_id)
                values["merchant"] = tx.merchant if tx else ""
            out.append(values)
    return out


def effect_failures(conv: Conversation, before: Snapshot, after: Snapshot, engine: Engine) -> list[str]:
    """One message per effect that differs from ``conv.effects`` (nothing else may change)."""
    fails: list[str] = []
    eff = conv.effects
    for table in TABLES:
        want: TableEffect = eff.get(table) or TableEffect()
        added = after.ids[table] - before.ids[table]
        delta = after.counts[table] - before.counts[table]
        if delta != want.added or len(added) != want.added:
            fails.append(f"effects: {table} changed by {delta:+d} rows, expected {want.added:+d}")
            continue
        if want.rows:
            rows = _row_values(engine, table, added)
            for expected in want.rows:
                match = next((r for r in rows if all(r.get(k) == v for k, v in expected.items())), None)
                if match is None:
                    fails.append(f"effects: no added {table} row with {expected} (added: {rows})")
                else:
                    rows.remove(match)
    want_bal = eff.get("balances") or {}
    for cur in sorted(set(before.balances) | set(after.balances)):
        change = after.balances.get(cur, Decimal("0")) - before.balances.get(cur, Decimal("0"))
        expected = Decimal(want_bal.get(cur, "0"))
        if change != expected:
            fails.append(f"effects: {cur} balance changed by {change:+.2f}, expected {expected:+.2f}")
    for cur in set(want_bal) - set(before.balances):
        fails.append(f"effects: the customer has no {cur} account")
    want_cards = eff.get("card_statuses") or {}
    for last4 in sorted(set(before.cards) | set(want_cards)):  # a new card counts in ``cards`` rows
        expected = want_cards.get(last4, before.cards.get(last4))
        if after.cards.get(last4) != expected:
            fails.append(f"effects: card {last4} is {after.cards.get(last4)!r}, expected {expected!r}")
    want_tr = eff.get("transfer_statuses") or {}
    for tid, (name, status) in sorted(before.transfers.items()):
        expected = want_tr.get(name, status)
        now = after.transfers.get(tid, (name, None))[1]
        if now != expected:
            fails.append(f"effects: the transfer to {name} (#{tid}) is {now!r}, expected {expected!r}")
    return fails


# ----------------------------------------------------------------------------- the turns
def _form_slots(graph: Any, config: dict) -> dict[str, Any]:
    try:
        form = graph.get_state(config).values.get("form")
    except Exception:  # noqa: BLE001 - a graph without state: no form to read
        return {}
    if form is None:
        return {}
    return dict(getattr(form, "slots", None) or (form.get("slots") if isinstance(form, dict) else {}) or {})


def turn_failures(index: int, turn: Turn, out: dict[str, Any], form_slots: dict[str, Any]) -> list[str]:
    """One message per expectation of ``turn`` that ``out`` (the reply, ``AssistantOutput`` JSON)
    does not meet; ``form_slots``: the open form's slots after the turn."""
    said = turn.say if turn.say is not None else f"[button {turn.button}]"
    where = f"turn {index + 1} ({said[:60]!r})"
    e, fails = turn.expect, []
    answer = str(out.get("answer") or "")
    if e.status is not None and out.get("status") != e.status:
        fails.append(f"{where}: status {out.get('status')!r}, expected {e.status!r} (answer: {answer[:160]!r})")
    if e.intent is not None and out.get("intent") != e.intent:
        fails.append(f"{where}: intent {out.get('intent')!r}, expected {e.intent!r}")
    data = out.get("data") or {}
    have = {**{k: str(v) for k, v in form_slots.items() if v is not None},
            **{k: str(v) for k, v in (data.get("slots") or {}).items() if v is not None}}
    for req in data.get("requests") or []:  # several requests in one message: any part's slots
        for k, v in ((req.get("data") or {}).get("slots") or {}).items():
            have.setdefault(k, str(v))
    for k, v in e.slots.items():
        if have.get(k) != v:
            fails.append(f"{where}: slot {k} = {have.get(k)!r}, expected {v!r}")
    low = answer.casefold()
    for frag in e.answer_contains:
        if frag.casefold() not in low:
            fails.append(f"{where}: answer lacks {frag!r} (answer: {answer[:240]!r})")
    for frag in e.answer_not_contains:
        if frag.casefold() in low:
            fails.append(f"{where}: answer contains {frag!r} (answer: {answer[:240]!r})")
    return fails


@dataclass
class ConversationResult:
    """The outcome of one conversation: ``completed`` when ``failures`` is empty; ``replies``:
    each turn's output (JSON); ``seconds``: wall time."""

    name: str
    file: str
    customer: str
    failures: list[str]
    replies: list[dict[str, Any]]
    seconds: float

    @property
    def completed(self) -> bool:
        """Every turn's expectations and exactly the expected effects."""
        return not self.failures


def run_conversation(conv: Conversation, graph: Any, engine: Engine, customer_ids: dict[str, int], *,
                     backend: str | None = None, reseed: Callable[[], None] | None = None) -> ConversationResult:
    """Run ``conv`` on ``graph`` (compiled with a checkpointer) in a new thread of its customer
    (``customer_ids``: username -> id) with ``backend`` (None: the graph's default). ``reseed``
    resets the bank first. A turn that raises counts as a failure (the error is named); the
    remaining turns are not run."""
    from langchain_core.messages import HumanMessage
    from langgraph.types import Command

    start = time.perf_counter()
    if reseed is not None:
        reseed()
    cid = customer_ids[conv.customer]
    conf: dict[str, Any] = {"configurable": {"thread_id": f"e2e-{uuid.uuid4()}", "customer_id": cid,
                                             **({"backend": backend} if backend else {})}}
    before = snapshot(engine, cid)
    fails: list[str] = []
    replies: list[dict[str, Any]] = []
    for i, turn in enumerate(conv.turns):
        try:
            if turn.say is not None:
                state = graph.invoke({"messages": [HumanMessage(turn.say)], "confirm": None, "chosen_intent": None}, conf)
            else:
                if not graph.get_state(conf).next:
                    fails.append(f"turn {i + 1} ([button {turn.button}]): no confirmation is waiting for a button")
                    break
                state = graph.invoke(Command(resume={"approve": turn.button == "yes"}), conf)
            out = dict(state.get("output") or {})
        except Exception as exc:  # noqa: BLE001 - a crash is a failed conversation, reported by name
            fails.append(f"turn {i + 1}: raised {type(exc).__name__}: {str(exc)[:200]}")
            break
        replies.append(out)
        fails += turn_failures(i, turn, out, _form_slots(graph, conf))
    fails += effect_failures(conv, before, snapshot(engine, cid), engine)
    return ConversationResult(conv.name, conv.file, conv.customer, fails, replies, time.perf_counter() - start)


def run_conversations(convs: list[Conversation], graph: Any, engine: Engine, *, backend: str | None = None,
                      progress: Callable[[ConversationResult], None] | None = None) -> list[ConversationResult]:
    """Run every conversation, each on a freshly seeded demo bank (``seed_demo(reset=True)`` on
    ``engine``: use a throw-away database)."""
    from bank.seed import seed_demo
    from bank.store import Customer, session_scope

    def reseed() -> None:
        seed_demo(engine, reset=True)

    reseed()
    results = []
    for conv in convs:
        with session_scope(engine) as s:
            ids = {u: i for i, u in s.execute(select(Customer.id, Customer.username)).all()}
        res = run_conversation(conv, graph, engine, ids, backend=backend, reseed=reseed)
        results.append(res)
        if progress:
            progress(res)
    return results


def completion_rate(results: list[ConversationResult]) -> float | None:
    """Share (0-1) of completed conversations; None for no results."""
    return sum(r.completed for r in results) / len(results) if results else None


def summary(backend: str, results: list[ConversationResult]) -> dict[str, Any]:
    """``{backend, n, completed, task_completion_rate, failing: [{file, name, failures}]}``
    (the report.json entry of one backend)."""
    return {"backend": backend, "n": len(results), "completed": sum(r.completed for r in results),
            "task_completion_rate": completion_rate(results),
            "seconds": round(sum(r.seconds for r in results), 2),
            "failing": [{"file": r.file, "name": r.name, "failures": r.failures} for r in results if not r.completed]}
