"""The version-folder protocol shared by every trained backend (custom, peft).

A backend keeps its trained versions under ``<BANKING_HOME>/models/<backend>/``, one folder per
version, named ``<UTC %Y%m%d-%H%M%S>-<data checksum[:8]>`` so that names sort by time. A folder
is *complete* when it holds the marker file ``COMPLETE`` (JSON: the list of files the writer
promised, their sizes and the UTC time) and every file the marker lists still exists with that
size. A version is written into a hidden temporary sibling (``.tmp-<name>-<pid>``), the marker is
written last, and the folder is renamed into place with ``os.replace`` (atomic on one file
system), so readers never see a half-written version: ``latest`` ignores hidden folders and
folders without a valid marker.

Usage (writer)::

    with atomic_version(root, checksum) as tmp:   # tmp: Path of the hidden folder
        save_everything_into(tmp)
    # -> root/<name>, with COMPLETE listing every file written under tmp

Usage (reader): ``latest(root)`` -> newest complete folder or None; ``is_complete(path)``;
``list_versions(root)`` -> complete folders, oldest first.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

MARKER = "COMPLETE"


class VersionError(RuntimeError):
    """A version folder cannot be written (e.g. required files are missing when it is sealed)."""


def new_version_name(checksum: str, now: datetime | None = None) -> str:
    """``<UTC %Y%m%d-%H%M%S>-<checksum[:8]>``: the name of a new version folder (sorts by time)."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S") + f"-{checksum[:8]}"


def _files_of(folder: Path) -> dict[str, int]:
    """Relative POSIX path -> size in bytes of every regular file under ``folder`` (marker excluded)."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def is_complete(path: Path, required: tuple[str, ...] = ()) -> bool:
    """True when ``path`` is a sealed version: its ``COMPLETE`` marker parses, every file it lists
    exists with the listed size, and every name in ``required`` (relative paths) exists."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return False
    try:
        files = json.loads(marker.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    for rel, size in files.items():
        f = Path(path) / rel
        if not f.is_file() or f.stat().st_size != size:
            return False
    return all((Path(path) / r).exists() for r in required)


def list_versions(root: Path, required: tuple[str, ...] = ()) -> list[Path]:
    """Complete version folders under ``root``, oldest first (by name); [] when ``root`` is missing.
    Hidden folders (temporary writes) are skipped."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_complete(p, required)),
        key=lambda p: p.name,
    )


def latest(root: Path, required: tuple[str, ...] = ()) -> Path | None:
    """The newest complete version folder under ``root``, or None."""
    done = list_versions(root, required)
    return done[-1] if done else None


def seal(folder: Path, required: tuple[str, ...] = ()) -> None:
    """Write the ``COMPLETE`` marker of ``folder`` listing every file now in it.

    Raises ``VersionError`` when a name in ``required`` is missing."""
    folder = Path(folder)
    missing = [r for r in required if not (folder / r).exists()]
    if missing:
        raise VersionError(f"Cannot seal {folder}: missing {', '.join(missing)}.")
    body = {"files": _files_of(folder), "sealed_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    tmp = folder / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(body, indent=2))
    os.replace(tmp, folder / MARKER)


@contextmanager
def atomic_version(root: Path, checksum: str, required: tuple[str, ...] = (), name: str | None = None) -> Iterator[Path]:
    """Write a new version atomically.

    Yields a fresh hidden folder ``root/.tmp-<name>-<pid>``; on normal exit it is sealed (see
    ``seal``; ``required`` names must exist) and renamed to ``root/<name>`` (``name`` defaults to
    ``new_version_name(checksum)``). On an exception the temporary folder is removed and the
    exception propagates. The final path is available afterwards as ``root / name``; use
    ``latest(root)`` or the returned value of ``commit_version`` when you need it.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = name or new_version_name(checksum)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        seal(tmp, required)
        os.replace(tmp, root / name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_version(root: Path, checksum: str, write, required: tuple[str, ...] = ()) -> Path:  # noqa: ANN001
    """Call ``write(tmp_folder)`` inside ``atomic_version`` and return the final folder's path."""
    name = new_version_name(checksum)
    with atomic_version(root, checksum, required, name) as tmp:
        write(tmp)
    return Path(root) / name
