"""The shared version-folder protocol (models/versions.py): atomic writes sealed by a COMPLETE
marker, newest complete version wins, half-written / altered / hidden folders are ignored."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from models.versions import (
    MARKER,
    VersionError,
    atomic_version,
    is_complete,
    latest,
    list_versions,
    new_version_name,
    save_version,
)


def _write(files: dict[str, str]):
    def write(tmp):
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
    return write


def test_names_sort_by_utc_time_and_carry_the_checksum():
    a = new_version_name("abcdef0123", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    b = new_version_name("00000000ff", datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc))
    assert a == "20260102-030405-abcdef01" and sorted([b, a]) == [a, b]


def test_saved_version_is_sealed_with_every_file_and_its_size(tmp_path):
    path = save_version(tmp_path, "abcdef0123", _write({"a.json": "{}", "sub/w.bin": "xyz"}), required=("a.json",))
    marker = json.loads((path / MARKER).read_text())
    assert marker["files"] == {"a.json": 2, "sub/w.bin": 3}
    assert is_complete(path, ("a.json", "sub/w.bin")) and latest(tmp_path) == path
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary folder left


def test_altered_or_missing_files_make_a_version_incomplete(tmp_path):
    path = save_version(tmp_path, "abcdef0123", _write({"a.json": "{}", "b.json": "[]"}))
    (path / "a.json").write_text('{"x": 1}')  # size changed
    assert not is_complete(path) and latest(tmp_path) is None
    (path / "a.json").write_text("{}")
    (path / "b.json").unlink()
    assert not is_complete(path)
    (path / "b.json").write_text("[]")
    assert is_complete(path) and not is_complete(path, required=("c.json",))
    (path / MARKER).write_text("not json")
    assert not is_complete(path)


def test_a_failed_write_leaves_nothing_and_required_files_are_enforced(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_version(tmp_path, "abcdef0123") as tmp:
            (tmp / "a.json").write_text("{}")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(VersionError, match="missing b.json"):
        save_version(tmp_path, "abcdef0123", _write({"a.json": "{}"}), required=("b.json",))
    assert list(tmp_path.iterdir()) == []


def test_latest_is_the_newest_complete_folder_ignoring_hidden_and_unsealed_ones(tmp_path):
    old = save_version(tmp_path, "1111111111", _write({"a": "1"}))
    (tmp_path / "29991231-235959-ffffffff").mkdir()  # newer name, never sealed
    (tmp_path / ".tmp-29991231-235959-eeeeeeee-1").mkdir()  # a write in progress
    assert latest(tmp_path) == old and list_versions(tmp_path) == [old]
    assert latest(tmp_path / "missing") is None and list_versions(tmp_path / "missing") == []
