"""Entity extraction (issue 16): the hand-written dev set's integrity, the rule extractor's values
on real phrasings, and its dev-set span F1 floor.

Span conventions of ``evals/data/requests_dev.jsonl`` (the generator follows them too):
amount spans include the currency ("£25", "25 quid", "EUR 1,250.50", "a tenner"); date spans keep
range words ("since Monday", "from 1 May to 31 May", "last 30 days") but not a bare "in"/"on";
card spans are the last four digits or the kind word ("virtual"); account spans are the qualifier
("euro", "GBP", "savings") without "my"/"account"; payee/merchant spans are the name as written.
"""

from __future__ import annotations

import json
from pathlib import Path

DEV = Path(__file__).resolve().parents[1] / "evals" / "data" / "requests_dev.jsonl"
LABELS = {"amount", "date", "card", "payee", "merchant", "account", "reference"}
NEW_INTENTS = ("send_money", "add_payee", "top_up_account", "search_transactions", "dispute_charge", "talk_to_human")


def _dev_rows() -> list[dict]:
    return [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_dev_set_spans_match_their_text():
    rows = _dev_rows()
    assert len(rows) >= 150
    for row in rows:
        spans = sorted(row["spans"], key=lambda s: s["start"])
        for s in spans:
            assert row["text"][s["start"]:s["end"]] == s["text"], row
            assert s["label"] in LABELS, row
            assert s["text"] == s["text"].strip() and s["text"], row
        for a, b in zip(spans, spans[1:]):
            assert a["end"] <= b["start"], f"overlapping spans in {row['text']!r}"


def test_dev_set_covers_each_new_intent_at_least_20_times():
    rows = _dev_rows()
    counts = {i: sum(r["intent"] == i for r in rows) for i in NEW_INTENTS}
    assert all(n >= 20 for n in counts.values()), counts
    others = [r for r in rows if r["intent"] not in NEW_INTENTS]
    assert len(others) >= 20 and sum(bool(r["spans"]) for r in others) >= 20
    assert len({r["text"].lower() for r in rows}) == len(rows)
