"""The hand-written dev sets (evals/devsets.py, issue 18): reading, the figures per set on the
fake backend (tests/fake_backend.py RULES) computed by hand, the report and the eval CLI, and
the shipped files themselves (sizes, labels, one or two edits per misspelt word)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from config.settings import REPO_ROOT, Settings
from evals import cli as eval_cli
from evals.devsets import DEVSET_DIR, DevSet, DevSetError, load_devsets, read_devset, score_devset
from evals.report import write_report
from evals.runner import evaluate_model
from fake_backend import FakeIntentModel
from models.base import IntentPrediction
from models.labels import EXTRA_LABELS

DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "banking77"

# Fake thresholds: oos 0.3, clarify 0.6. Per row: the rule that answers, right or wrong.
TYPOS = [
    ("my crad hasnt arived", "card_arrival", "where is my new card"),          # card_arrival 0.45 ok | ok
    ("i lsot my card", "lost_or_stolen_card", "i lost my card"),               # DEFAULT 0.2 wrong | ok
    ("exchnge rate for pizza", "exchange_rate", "exchange rate for pizza"),    # out_of_scope 0.9 wrong | ok
    ("thnaks", "small_talk", "thanks"),                                        # DEFAULT 0.2 wrong | ok
    ("pizza pleese", "out_of_scope", "pizza please"),                          # out_of_scope 0.9 ok | ok
]
CHATTY = [
    ("hello, I lost my card on the bus", "lost_or_stolen_card"),   # "lost my card" rule first: ok
    ("thanks, that's all", "small_talk"),                          # ok
    ("could you cancel my transfer please", "cancel_transfer"),    # ok
    ("what's the weather like", "out_of_scope"),                   # DEFAULT exchange_rate: wrong
]


def _write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "typos.jsonl").write_text("".join(json.dumps({"text": t, "label": y, "clean": c}) + "\n" for t, y, c in TYPOS))
    (folder / "chatty.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in CHATTY))
    return folder


def test_figures_on_a_hand_made_set(tmp_path):
    sets = load_devsets(_write(tmp_path / "d"))
    assert [s.name for s in sets] == ["chatty", "typos"] and sets[0].clean is None and len(sets[1].clean) == 5
    rep = evaluate_model(FakeIntentModel(), ["where is my new card"], ["card_arrival"], latency_sample=0,
                         progress=False, devsets=sets)
    assert rep.error is None
    ty, ch = rep.devsets["typos"], rep.devsets["chatty"]
    assert ty["n"] == 5 and ty["accuracy"] == 0.4 and ty["clean_accuracy"] == 1.0 and ty["gap"] == 0.6
    # only the in-scope misspelt row at out_of_scope 0.9 counts, not the out_of_scope row
    assert ty["confident_oos"] == 1 and ty["confident_oos_examples"] == [
        {"text": "exchnge rate for pizza", "gold": "exchange_rate", "confidence": 0.9}]
    assert ty["declined"] == 0.75  # rows 2-4 of the 4 in-scope rows
    assert [e["text"] for e in ty["errors"]] == ["i lsot my card", "exchnge rate for pizza", "thnaks"]
    assert ch == {"n": 4, "accuracy": 0.75, "declined": 0.0, "errors": [
        {"text": "what's the weather like", "gold": "out_of_scope", "predicted": "exchange_rate", "confidence": 0.2}]}
    assert "clean_accuracy" not in ch and rep.summary()["devsets"]["typos"]["gap"] == 0.6

    files = write_report({"custom": rep}, tmp_path / "r", {"dataset": "x"})
    md = files["report.md"].read_text()
    assert "| custom | 75.0 % (0.0 %) | 40.0 % (75.0 %) |" in md
    assert "| custom | 40.0 % | 100.0 % | 60.0 | 1 |" in md
    assert '"exchnge rate for pizza" (exchange_rate) → out_of_scope 0.90' in md
    assert json.loads(files["report.json"].read_text())["backends"]["custom"]["devsets"]["typos"]["confident_oos"] == 1


def test_sub_kinds_count_as_their_public_label():
    ds = DevSet("x", ["ta", "cheers"], ["small_talk", "small_talk"])
    preds = [IntentPrediction("small_talk:thank_you", 0.8, [("small_talk:thank_you", 0.8)]),
             IntentPrediction("out_of_scope", 0.95, [("out_of_scope", 0.95)])]
    got = score_devset(ds, preds, None, 0.3, 0.6)
    assert got["accuracy"] == 0.5 and got["declined"] == 0.5 and "confident_oos" not in got


@pytest.mark.parametrize("content, msg", [
    ('{"text": "hi"}\n', ":1: expected an object with non-empty string 'text' and 'label'"),
    ('{"text": "hi", "label": "small_talk"}\nnot json\n', ":2: not JSON"),
    ('{"text": "hi", "label": "no_such_intent"}\n', ":1: unknown label 'no_such_intent'"),
    ('{"text": "hi", "label": "small_talk", "clean": "hi"}\n{"text": "yo", "label": "small_talk"}\n', "1 rows lack 'clean'"),
    ("\n", "has no rows"),
])
def test_bad_files_name_the_line(tmp_path, content, msg):
    p = tmp_path / "bad.jsonl"
    p.write_text(content)
    with pytest.raises(DevSetError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        read_devset(p, {"small_talk", "card_arrival"})


def _parse(argv):
    p = argparse.ArgumentParser()
    eval_cli.register(p.add_subparsers(dest="command", required=True))
    return p.parse_args(argv)


def test_cli_scores_the_dev_sets_and_refuses_a_bad_one(tmp_path, capsys):
    settings = Settings(data_dir=DATA_DIR, home=tmp_path / "home")
    factory = lambda name, s: FakeIntentModel()  # noqa: E731
    folder = _write(tmp_path / "d")
    ns = _parse(["eval", "--backends", "custom", "--limit", "5", "--latency-sample", "0", "--json", "--no-progress",
                 "--devsets", str(folder)])
    assert eval_cli.cmd_eval(ns, factory, settings) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert row["devsets"]["typos"]["clean_accuracy"] == 1.0 and row["devsets"]["chatty"]["accuracy"] == 0.75
    ns = _parse(["eval", "--backends", "custom", "--limit", "5", "--latency-sample", "0", "--no-progress", "--no-devsets",
                 "--json"])
    assert eval_cli.cmd_eval(ns, factory, settings) == 0
    assert "devsets" not in json.loads(capsys.readouterr().out.strip().splitlines()[0])
    (folder / "lang_xx.jsonl").write_text('{"text": "hola", "label": "hola"}\n')
    ns = _parse(["eval", "--backends", "custom", "--limit", "5", "--no-progress", "--devsets", str(folder)])
    assert eval_cli.cmd_eval(ns, factory, settings) == 2
    assert "lang_xx.jsonl:1: unknown label 'hola'" in capsys.readouterr().err
    ns = _parse(["eval", "--backends", "custom", "--no-progress", "--devsets", str(tmp_path / "nowhere")])
    assert eval_cli.cmd_eval(ns, factory, settings) == 2


def _edits(a: str, b: str) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def test_the_shipped_english_sets():
    intents = json.loads((DATA_DIR / "categories.json").read_text())
    sets = {s.name: s for s in load_devsets(DEVSET_DIR, intents)}
    chatty, typos = sets["chatty"], sets["typos"]
    assert len(chatty) >= 200 and set(chatty.labels) == {*intents, *EXTRA_LABELS}
    assert chatty.labels.count("out_of_scope") >= 15 and chatty.labels.count("small_talk") >= 15
    assert {"cheers, that's all I needed", "ta", "brill, thanks"} <= set(chatty.texts)
    assert len(typos) >= 150 and typos.clean is not None
    for text, clean in zip(typos.texts, typos.clean):
        pairs = [(w, c) for w, c in zip(text.split(), clean.split()) if w != c]
        assert len(text.split()) == len(clean.split()) and pairs, text
        assert all(1 <= _edits(w, c) <= 2 for w, c in pairs), text
