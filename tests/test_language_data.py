"""Spanish, French and German data (issue 18): the hand-written dev sets
(evals/data/devsets/lang_*.jsonl, public labels) and training phrases (training/phrases/*.jsonl,
internal labels), and their loading into ``ExtraData.language_rows`` / ``language_validation``."""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from config.settings import REPO_ROOT, Settings
from models.banking77 import DataError
from models.labels import EXTRA_LABELS, KIND_SEP, REQUEST_LABELS, SMALL_TALK

LANGS = ("es", "fr", "de")
DEV_DIR = REPO_ROOT / "evals" / "data" / "devsets"
PHRASES = REPO_ROOT / "training" / "phrases"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _loose(text: str) -> str:
    """Stricter than case/space-insensitive: accents, case, spaces and punctuation dropped."""
    return re.sub(r"[^a-z0-9]", "", unicodedata.normalize("NFKD", text.lower()))


@pytest.fixture(scope="module")
def intents() -> list[str]:
    return json.loads((Path(os.environ["BANKING_DATA_DIR"]) / "categories.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def extras(session_home: Path):
    from training.data import load_extras

    return load_extras()


@pytest.mark.parametrize("lang", LANGS)
def test_dev_set_has_60_rows_over_30_public_labels(lang, intents) -> None:
    rows = _rows(DEV_DIR / f"lang_{lang}.jsonl")
    labels = Counter(r["label"] for r in rows)
    assert len(rows) >= 60 and len(labels) >= 30
    assert set(labels) <= set(intents) | set(EXTRA_LABELS)  # public labels: no "small_talk:<kind>"
    assert labels["out_of_scope"] >= 8 and labels[SMALL_TALK] >= 3
    assert len({_loose(r["text"]) for r in rows}) == len(rows)


@pytest.mark.parametrize("lang", LANGS)
def test_phrases_cover_every_internal_label_with_8_and_none_is_a_dev_text(lang, intents, extras) -> None:
    rows = _rows(PHRASES / f"{lang}.jsonl")
    internal = set(intents) | set(extras.classes)
    counts = Counter(r["label"] for r in rows)
    assert set(counts) == internal  # every internal label, nothing else
    assert len(internal) == 77 + 2 + 6 + 15 + 1
    assert min(counts.values()) >= 8, [k for k, v in counts.items() if v < 8]
    assert counts["out_of_scope"] >= 40 and min(counts[y] for y in REQUEST_LABELS) >= 15
    assert not [k for k in counts if k == SMALL_TALK or (KIND_SEP in k and not k.startswith(SMALL_TALK))]
    assert len({_loose(r["text"]) for r in rows}) == len(rows)
    dev = {_loose(r["text"]) for name in LANGS for r in _rows(DEV_DIR / f"lang_{name}.jsonl")}
    assert not [r["text"] for r in rows if _loose(r["text"]) in dev]


def test_loader_keeps_phrases_apart_with_a_stratified_seeded_10_percent(extras) -> None:
    from training.data import load_language_phrases

    by_lang = load_language_phrases()
    everything = Counter((t, y) for s in by_lang.values() for t, y in zip(s.texts, s.labels))
    rows, val = extras.language_rows, extras.language_validation
    assert Counter(zip(rows.texts, rows.labels)) + Counter(zip(val.texts, val.labels)) == everything
    assert len(val) == sum(round(0.1 * n) for s in by_lang.values() for n in Counter(s.labels).values())
    assert 0.09 <= len(val) / (len(rows) + len(val)) <= 0.11
    assert set(val.labels) == set(rows.labels)  # every label keeps rows for training
    es = by_lang["es"]
    held = set(val.texts)
    assert sum(t in held for t, y in zip(es.texts, es.labels) if y == "send_money") == 2  # round(0.1 * 15)
    # not mixed into the teacher-labelled English extras (which hold the loanwords "hola", "gracias", "hi")
    english = set(extras.train.texts) | set(extras.validation.texts)
    assert (set(rows.texts) | set(val.texts)) & english <= {"hola", "gracias", "hi"}


def test_validation_draw_is_seeded(session_home: Path, extras) -> None:
    from training.data import load_extras

    data_dir = os.environ["BANKING_DATA_DIR"]
    same = Settings(data_dir=data_dir, home=session_home)
    again = load_extras(same)
    other = load_extras(Settings(data_dir=data_dir, home=session_home, seed=same.seed + 1))
    assert again.language_validation.texts == extras.language_validation.texts
    assert other.language_validation.texts != extras.language_validation.texts
    assert len(other.language_validation) == len(extras.language_validation)


def _copy_phrases(tmp_path: Path) -> Path:
    d = tmp_path / "phrases"
    d.mkdir()
    for path in PHRASES.glob("*.jsonl"):
        shutil.copy(path, d / path.name)
    return d


def test_checksum_covers_the_phrase_files(tmp_path: Path, extras, intents) -> None:
    from training.data import load_extras

    d = _copy_phrases(tmp_path)
    assert load_extras(phrases_dir=d, intents=intents).checksum == extras.checksum
    with (d / "fr.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "je voudrais connaître mon solde actuel", "label": "check_balance"}) + "\n")
    changed = load_extras(phrases_dir=d, intents=intents)
    assert changed.checksum != extras.checksum
    assert len(changed.language_rows) + len(changed.language_validation) == \
        len(extras.language_rows) + len(extras.language_validation) + 1


@pytest.mark.parametrize("line, match", [
    ("{not json", r"de\.jsonl:\d+: not a JSON object"),
    ('{"text": "", "label": "change_pin"}', r"de\.jsonl:\d+: expected"),
    ('["hallo", "small_talk:greeting"]', r"de\.jsonl:\d+: expected"),
    ('{"text": "hallo", "label": "small_talk"}', r"unknown label 'small_talk'"),
    ('{"text": "Karte weg", "label": "lost_card"}', r"unknown label 'lost_card'"),
])
def test_bad_phrase_lines_are_clear_errors(tmp_path: Path, intents, line, match) -> None:
    from training.data import load_extras

    d = _copy_phrases(tmp_path)
    with (d / "de.jsonl").open("a", encoding="utf-8") as f:
        f.write(line + "\n")
    with pytest.raises(DataError, match=match):
        load_extras(phrases_dir=d, intents=intents)


def test_missing_phrase_file_is_a_clear_error(tmp_path: Path, intents) -> None:
    from training.data import load_extras

    d = _copy_phrases(tmp_path)
    (d / "es.jsonl").unlink()
    with pytest.raises(DataError, match=r"Training phrases for 'es' not readable"):
        load_extras(phrases_dir=d, intents=intents)


def test_extra_data_built_by_hand_has_empty_language_splits(tmp_path: Path) -> None:
    from training.data import ExtraData, Split

    ex = ExtraData(Split(["hi"], ["small_talk:greeting"]), Split([], []), ["small_talk:greeting"], "x", tmp_path)
    assert len(ex.language_rows) == 0 and len(ex.language_validation) == 0
