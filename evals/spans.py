"""Span F1 and new-intent accuracy on the hand-written request dev set (issue 16).

``python -m evals.spans --extractor rules [--no-names] [--errors]`` prints micro-averaged span
precision/recall/F1 (a predicted span counts only with exactly the gold start, end and label; per
label too) for the rule extractor ``models.entities.extract_entities``. Any extractor
``fn(text) -> list[{"start", "end", "label"}]`` can be scored with ``span_scores``; any classifier
``fn(texts) -> list[label]`` with ``intent_accuracy``.

Why not seqeval: it scores BIO tag sequences over tokens, so character spans would first have to be
mapped to one tokenisation and back, and a span that does not fall on token boundaries would be
scored on the wrong unit. Exact character-span matching is what the issue asks ("span F1"); the counter
below is a few lines and counts exactly that.

Scored labels: amount, date, card, payee, merchant, account, reference (``iban`` is extracted but
not annotated in the dev set, so it is left out of the score). The dev set's reference time is
``DEV_NOW`` and its gazetteer ``DEMO_NAMES`` (the demo customers' payees and merchants from
``bank/seed.py`` plus the issue's "Mark Ellis").
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

DEV_PATH = Path(__file__).resolve().parent / "data" / "requests_dev.jsonl"
SCORED = ("amount", "date", "card", "payee", "merchant", "account", "reference")
NEW_INTENTS = ("send_money", "add_payee", "top_up_account", "search_transactions", "dispute_charge", "talk_to_human")
DEV_NOW = datetime(2025, 6, 18, 12, 0)
DEMO_NAMES = ("Mark Thompson", "Mark Ellis", "Northside Energy", "Lena Fischer", "Oakwood Lettings", "J Smith",
              "Muller Consulting GmbH", "Amazon UK", "ASOS", "Pret A Manger", "Ryanair", "Spotify", "Tesco Metro",
              "Trainline", "Waitrose", "Whole Foods Market", "eBay", "Lidl")


def load_dev(path: Path = DEV_PATH) -> list[dict]:
    """The dev rows: ``{"text", "intent", "spans": [{"start", "end", "label", "text"}]}``."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def span_scores(rows: Iterable[dict], extractor: Callable[[str], list[dict]]) -> dict:
    """Exact-match span counts over ``rows``. Returns ``{"precision", "recall", "f1", "tp", "fp", "fn",
    "per_label": {label: {"precision", "recall", "f1", "support"}}, "errors": [...]}`` (micro averages;
    F1 is 0.0 when nothing was predicted or expected)."""
    tp, fp, fn = Counter(), Counter(), Counter()
    errors = []
    for row in rows:
        gold = {(s["start"], s["end"], s["label"]) for s in row["spans"] if s["label"] in SCORED}
        pred = {(p["start"], p["end"], p["label"]) for p in extractor(row["text"]) if p["label"] in SCORED}
        for _, _, lab in gold & pred:
            tp[lab] += 1
        for _, _, lab in pred - gold:
            fp[lab] += 1
        for _, _, lab in gold - pred:
            fn[lab] += 1
        if gold != pred:
            t = row["text"]
            errors.append({"text": t, "missed": sorted(f"{lab}:{t[s:e]}" for s, e, lab in gold - pred),
                           "spurious": sorted(f"{lab}:{t[s:e]}" for s, e, lab in pred - gold)})

    def prf(a: int, b: int, c: int) -> tuple[float, float, float]:
        p = a / (a + b) if a + b else 0.0
        r = a / (a + c) if a + c else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    per = {}
    for lab in SCORED:
        p, r, f = prf(tp[lab], fp[lab], fn[lab])
        per[lab] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": tp[lab] + fn[lab]}
    p, r, f = prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return {"precision": p, "recall": r, "f1": f, "tp": sum(tp.values()), "fp": sum(fp.values()),
            "fn": sum(fn.values()), "per_label": per, "errors": errors}


def intent_accuracy(rows: list[dict], classify: Callable[[list[str]], list[str]],
                    intents: tuple[str, ...] = NEW_INTENTS) -> dict:
    """Accuracy of ``classify`` on the rows whose gold intent is in ``intents``:
    ``{"accuracy", "n", "per_intent": {intent: accuracy}}``."""
    sel = [r for r in rows if r["intent"] in intents]
    pred = classify([r["text"] for r in sel])
    ok = [p == r["intent"] for p, r in zip(pred, sel)]
    per = {i: sum(o for o, r in zip(ok, sel) if r["intent"] == i) / max(1, sum(r["intent"] == i for r in sel))
           for i in intents}
    return {"accuracy": sum(ok) / max(1, len(ok)), "n": len(ok), "per_intent": per}


def rules_extractor(names: tuple[str, ...] = DEMO_NAMES, now: datetime = DEV_NOW) -> Callable[[str], list[dict]]:
    """``models.entities.extract_entities`` as an extractor function for ``span_scores``."""
    from models.entities import extract_entities

    return lambda text: [e.model_dump() for e in extract_entities(text, now=now, names=names)]


def main(argv: list[str] | None = None) -> int:
    """CLI: print the span scores of one extractor on the dev set (JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extractor", choices=["rules"], default="rules")
    ap.add_argument("--no-names", action="store_true", help="no gazetteer (names=())")
    ap.add_argument("--errors", action="store_true", help="list the rows with a missed or spurious span")
    ap.add_argument("--dev", type=Path, default=DEV_PATH)
    args = ap.parse_args(argv)
    res = span_scores(load_dev(args.dev), rules_extractor(() if args.no_names else DEMO_NAMES))
    if not args.errors:
        res.pop("errors")
    print(json.dumps(res, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
