"""BANKING77 loading: checksums, splits, clear errors."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from assistant.settings import Settings
from training.data import DataError, load_banking77, read_csv, verify_dir


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
    from training.data import resolve_data_dir

    default = tmp_path / "data" / "banking77"
    default.mkdir(parents=True)
    for name in ("train.csv", "test.csv", "categories.json"):
        shutil.copy(banking77.data_dir / name, default / name)
    assert resolve_data_dir(Settings(data_dir=None, home=tmp_path)) == default


def test_failed_download_is_clear_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    import training.data as data_mod

    monkeypatch.setattr(data_mod, "DOWNLOAD_URL", "http://127.0.0.1:9/{commit}/{name}")  # refused at once
    dest = tmp_path / "data" / "banking77"
    with pytest.raises(DataError, match="BANKING_DATA_DIR"):
        data_mod.download(dest, timeout_s=2)
    assert not dest.exists()
    assert list((tmp_path / "data").iterdir()) == []  # no temporary folder left behind
