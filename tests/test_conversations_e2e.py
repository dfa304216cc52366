"""Whole conversations, as ``rasa test e2e`` runs them (issue 16): every YAML file of
tests/conversations/ on the fake backend (tests/fake_backend.py has a rule for every message),
each on a freshly seeded SQLite bank, through the real graph and banking tools. One failure
message per broken expectation (evals/conversations.py). Also: the runner itself fails on a
wrong expectation or an unexpected database change, and ``banking-assistant eval
--conversations DIR`` reports the task completion rate per backend in report.json and report.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from evals.conversations import Conversation, load_conversation, load_conversations, run_conversation
from fake_backend import FakeIntentModel

FOLDER = Path(__file__).parent / "conversations"
FILES = sorted(FOLDER.glob("*.yaml"))
NEW_INTENTS = ("send_money", "add_payee", "top_up_account", "search_transactions", "dispute_charge", "talk_to_human")


@pytest.fixture()
def e2e(session_home):
    """(graph, engine, reseed, customer ids) with the fake backend registered as "custom"."""
    from bank.seed import seed_demo
    from bank.store import Customer, create_schema, get_engine, session_scope
    from chains.checkpoint import open_checkpointer
    from chains.graph import build_graph
    from models import registry as backends

    engine = get_engine()
    create_schema(engine)
    seed_demo(engine, reset=True)
    backends.reset_backends()
    backends._instances["custom"] = FakeIntentModel()

    def ids() -> dict[str, int]:
        with session_scope(engine) as s:
            return {u: i for i, u in s.execute(select(Customer.id, Customer.username)).all()}

    with open_checkpointer() as saver:
        yield build_graph(checkpointer=saver, intent_chain=FakeIntentModel()), engine, ids
    backends.reset_backends()


def run(e2e, conv: Conversation):
    from bank.seed import seed_demo

    graph, engine, ids = e2e
    seed_demo(engine, reset=True)
    return run_conversation(conv, graph, engine, ids())


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_conversation(e2e, path: Path) -> None:
    result = run(e2e, load_conversation(path))
    assert result.completed, f"{path.name} ({result.name}):\n" + "\n".join(result.failures)


def test_the_set_covers_the_issue() -> None:
    convs = load_conversations(FOLDER)
    assert len(convs) >= 60
    said = {t.expect.intent for c in convs for t in c.turns}
    assert set(NEW_INTENTS) <= said
    assert len({c.name for c in convs}) == len(convs), "conversation names must be unique"


def test_a_wrong_expectation_and_an_unexpected_change_fail(e2e) -> None:
    conv = Conversation.model_validate({
        "name": "wrong on purpose", "customer": "alice",
        "turns": [{"say": "pay Northside Energy £40",
                   "expect": {"status": "answered", "slots": {"amount": "45.00"}, "answer_contains": ["£45.00"],
                              "answer_not_contains": ["Northside"]}},
                  {"button": "yes", "expect": {"status": "confirmed"}}],
        "effects": {"disputes": 1}})
    result = run(e2e, conv)
    text = "\n".join(result.failures)
    assert not result.completed
    assert "status 'confirmation_required', expected 'answered'" in text
    assert "slot amount = '40.00', expected '45.00'" in text
    assert "answer lacks '£45.00'" in text and "answer contains 'Northside'" in text
    assert "disputes changed by +0 rows, expected +1" in text
    assert "transfers changed by +1 rows, expected +0" in text
    assert "GBP balance changed by -40.00, expected +0.00" in text


def test_expected_rows_are_matched_by_value(e2e) -> None:
    conv = Conversation.model_validate({
        "name": "row values", "customer": "alice",
        "turns": [{"say": "pay Northside Energy £40"}, {"button": "yes"}],
        "effects": {"transfers": {"added": 1, "rows": [{"beneficiary_name": "Mark Ellis", "amount": "40.00"}]},
                    "payment_details": 1, "balances": {"GBP": "-40.00"}}})
    result = run(e2e, conv)
    assert len(result.failures) == 1 and "no added transfers row with" in result.failures[0]
    ok = conv.model_copy(update={"effects": {**conv.effects, "transfers": {
        "added": 1, "rows": [{"beneficiary_name": "Northside Energy", "amount": "40.00", "currency": "GBP"}]}}})
    assert run(e2e, Conversation.model_validate(ok.model_dump())).failures == []


def test_a_button_with_nothing_pending_is_a_failure(e2e) -> None:
    conv = Conversation.model_validate({"name": "button", "customer": "bob", "turns": [{"say": "hello"}, {"button": "yes"}]})
    result = run(e2e, conv)
    assert result.failures == ["turn 2 ([button yes]): no confirmation is waiting for a button"]


def test_bad_files_are_refused_with_their_name(tmp_path: Path) -> None:
    from evals.conversations import ConversationFormatError

    (tmp_path / "bad.yaml").write_text("name: x\ncustomer: zed\nturns: [{say: hi}]\n", encoding="utf-8")
    with pytest.raises(ConversationFormatError, match="bad.yaml"):
        load_conversations(tmp_path)
    (tmp_path / "bad.yaml").write_text("name: x\ncustomer: bob\nturns: [{say: hi}]\neffects: {loans: 1}\n")
    with pytest.raises(ConversationFormatError, match="unknown effect 'loans'"):
        load_conversations(tmp_path)
    with pytest.raises(ConversationFormatError, match="not a folder"):
        load_conversations(tmp_path / "nothing")


def test_eval_cli_reports_task_completion_per_backend(e2e, tmp_path: Path, capsys) -> None:
    from evals.cli import main

    folder = tmp_path / "convs"
    folder.mkdir()
    for name in ("send_details_in_message.yaml", "search_pret_total.yaml"):
        (folder / name).write_text((FOLDER / name).read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "zz_wrong.yaml").write_text(
        "name: wrong on purpose\ncustomer: bob\nturns:\n  - say: hello\n    expect: {status: answered}\n", encoding="utf-8")
    out = tmp_path / "report"
    code = main(["eval", "--conversations", str(folder), "--backends", "custom", "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    custom = report["conversations"]["custom"]
    assert custom["n"] == 3 and custom["completed"] == 2
    assert custom["task_completion_rate"] == pytest.approx(2 / 3)
    assert [f["file"] for f in custom["failing"]] == ["zz_wrong.yaml"]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| custom | 3 | 2 | 66.7 % |" in md and "zz_wrong.yaml" in md
    assert "66.7 %" in capsys.readouterr().out
