"""BANKING77 loading: checksums, splits, clear errors; models/ never imports training/."""

from __future__ import annotations

import ast
import shutil
from collections import Counter
from pathlib import Path

import pytest

from config.settings import Settings
from models.banking77 import DataError, load_banking77, read_csv, verify_dir


def test_real_data_verifies_and_splits(banking77) -> None:
    assert len(banking77.intents) == 77
    assert len(banking77.train) + len(banking77.validation) == 10003
    assert len(banking77.test) == 3080
    assert len(banking77.validation) == 1001  # 10 % of 10,003, rounded up by scikit-learn
    # Stratified: every intent appears in the validation split.
    assert set(banking77.validation.labels) == set(banking77.intents)
    assert not set(banking77.validation.texts) & set(banking77.train.texts) - {t for t, n in Counter(banking77.train.texts).items() if n > 1}


def test_split_is_seeded(banking77, session_home: Path) -> None:
    import os

    again = load_banking77(Settings(data_dir=os.environ["BANKING_DATA_DIR"], home=session_home))
    assert again.validation.texts == banking77.validation.texts
    other_seed = load_banking77(Settings(data_dir=os.environ["BANKING_DATA_DIR"], home=session_home, seed=99))
    assert other_seed.validation.texts != banking77.validation.texts


def test_checksum_failure_names_the_setting(banking77, tmp_path: Path) -> None:
    for name in ("train.csv", "test.csv", "categories.json"):
        shutil.copy(banking77.data_dir / name, tmp_path / name)
    verify_dir(tmp_path)  # an exact copy passes
    with open(tmp_path / "train.csv", "a", encoding="utf-8") as f:
        f.write("free money please,card_arrival\n")
    with pytest.raises(DataError, match="BANKING_DATA_DIR") as exc:
        verify_dir(tmp_path)
    assert "Checksum mismatch" in str(exc.value)


def test_missing_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="BANKING_DATA_DIR"):
        load_banking77(Settings(data_dir=tmp_path / "nope", home=tmp_path))
    with pytest.raises(DataError, match="BANKING_DATA_DIR"):
        load_banking77(Settings(data_dir=tmp_path, home=tmp_path))  # folder exists, files do not


def test_read_csv_rejects_bad_header_and_unknown_labels(tmp_path: Path, banking77) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("query,label\nhello,card_arrival\n")
    with pytest.raises(DataError, match="text,category"):
        read_csv(bad)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("text,category\nhello,not_an_intent\n")
    with pytest.raises(DataError, match="not_an_intent"):
        read_csv(unknown, banking77.intents)


def test_unset_data_dir_uses_the_verified_default_folder(banking77, tmp_path: Path) -> None:
    """With BANKING_DATA_DIR unset, a complete <home>/data/banking77 is used without download."""
    from models.banking77 import resolve_data_dir

    default = tmp_path / "data" / "banking77"
    default.mkdir(parents=True)
    for name in ("train.csv", "test.csv", "categories.json"):
        shutil.copy(banking77.data_dir / name, default / name)
    assert resolve_data_dir(Settings(data_dir=None, home=tmp_path)) == default


def test_failed_download_is_clear_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    import models.banking77 as data_mod

    monkeypatch.setattr(data_mod, "DOWNLOAD_URL", "http://127.0.0.1:9/{commit}/{name}")  # refused at once
    dest = tmp_path / "data" / "banking77"
    with pytest.raises(DataError, match="BANKING_DATA_DIR"):
        data_mod.download(dest, timeout_s=2)
    assert not dest.exists()
    assert list((tmp_path / "data").iterdir()) == []  # no temporary folder left behind


FORBIDDEN_IN_MODELS = ("training", "evals", "assistant.server", "assistant.cli", "assistant.ui",
                      "assistant.ui_app", "assistant.graph_auth", "assistant.errors",
                      "assistant.http_limits", "assistant.metrics")


def test_models_never_import_training_evals_or_interfaces() -> None:
    """Imports point one way (issue 19): no module under models/ imports training/, evals/ or an
    interface, at the top or lazily inside a function (every import statement, via ``ast``)."""
    root = Path(__file__).resolve().parents[1] / "models"
    bad = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            bad += [f"{path.relative_to(root.parent)}:{node.lineno} {n}" for n in names
                    if any(n == f or n.startswith(f + ".") for f in FORBIDDEN_IN_MODELS)]
    assert len(list(root.rglob("*.py"))) > 10  # the scan really read models/
    assert bad == []


def test_label_vocabulary_is_listed_once() -> None:
    """The guard and training use models/labels.py's labels (issue 19: they were listed twice)."""
    import chains.guard
    import models.banking77
    import models.labels
    import training.data

    assert chains.guard.NON_TOOL_LABELS is models.labels.NON_TOOL_LABELS
    assert models.labels.NON_TOOL_LABELS == {"out_of_scope", "small_talk"}
    assert training.data.load_banking77 is models.banking77.load_banking77


# --- CLINC150 extras, oos_dev halves, augmentation (issue 9) -------------------------------------

def test_extras_load_with_internal_labels(session_home: Path) -> None:
    from models.labels import OUT_OF_SCOPE, public_label
    from training.data import load_extras

    from models.labels import REQUEST_LABELS
    from training.data import REQUEST_ROWS_TRAIN

    ex = load_extras()
    # 1,500 small talk + 200 account basics + 90 % of 9,100 outliers + generated requests (issue 16);
    # validation: the _val files + 10 % + a separate draw of requests
    n_req_val = sum(y in REQUEST_LABELS for y in ex.validation.labels)
    from training.data import EN_SMALL_TALK_REPEAT, PHRASES_DIR

    n_en = sum(1 for line in (PHRASES_DIR / "en_small_talk.jsonl").read_text(encoding="utf-8").splitlines() if line.strip())
    # + the hand-written English small-talk phrases (issue 18), repeated
    assert n_en >= 100
    assert len(ex.train) == 1500 + 200 + 8190 + len(REQUEST_LABELS) * REQUEST_ROWS_TRAIN + n_en * EN_SMALL_TALK_REPEAT
    assert len(ex.validation) == 300 + 40 + 910 + n_req_val and n_req_val >= 20 * len(REQUEST_LABELS)
    c = Counter(ex.train.labels)
    assert c["check_balance"] == 100 and c["recent_transactions"] == 100 and c[OUT_OF_SCOPE] == 8190
    assert c["small_talk:greeting"] >= 100 and len([k for k in c if k.startswith("small_talk:")]) == 15
    # the held-out outliers are not training outliers
    tr_out = {t for t, y in zip(ex.train.texts, ex.train.labels) if y == OUT_OF_SCOPE}
    va_out = {t for t, y in zip(ex.validation.texts, ex.validation.labels) if y == OUT_OF_SCOPE}
    assert len(va_out - tr_out) >= 900
    assert public_label("small_talk:thank_you") == ("small_talk", "thank_you")
    assert public_label("card_arrival") == ("card_arrival", None)


def test_extras_missing_is_a_clear_error(tmp_path: Path) -> None:
    from training.data import load_extras

    with pytest.raises(DataError, match="not found"):
        load_extras(extra_dir=tmp_path)


def test_oos_halves_are_seeded_and_disjoint() -> None:
    from training.data import oos_halves

    texts = [f"q{i}" for i in range(201)]
    a, b = oos_halves(texts, 13)
    assert len(a) == 101 and len(b) == 100 and sorted(a + b) == sorted(texts)
    assert oos_halves(texts, 13) == (a, b) and oos_halves(texts, 14) != (a, b)


def test_augment_is_deterministic_per_seed_and_covers_every_kind() -> None:
    from training.augment import KINDS, augment, perturb, perturbed_copy

    texts = ["I still haven't received my new card, what should I do?", "Please cancel my transfer to you",
             "Why is my top-up still pending?"] * 4
    a1 = augment(texts, 2, seed=7)
    assert a1 == augment(texts, 2, seed=7) and a1 != augment(texts, 2, seed=8)
    new, src, kinds = a1
    assert len(new) == len(src) == len(kinds) == 24 and set(kinds) == set(KINDS)
    assert all(n != texts[s] for n, s in zip(new, src))  # every copy differs from its source
    noisy, kind_of = perturbed_copy(texts, seed=3)
    assert kind_of[:6] == list(KINDS) and noisy == perturbed_copy(texts, seed=3)[0]
    import random

    rng = random.Random(0)
    assert perturb("Please tell me why you are late", "abbrev", random.Random(1)).startswith("pls")
    assert perturb("What's my Balance?", "casing", rng) in ("whats my balance", "WHATS MY BALANCE")
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb("x", "nope", rng)
