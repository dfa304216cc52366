"""BANKING77 loading, checksum verification, download at a pinned commit, and splits.

Dataset: Casanueva et al., "Efficient Intent Detection with Dual Sentence Encoders" (ACL 2020
NLP4ConvAI workshop, arXiv 2003.04807), CC BY 4.0, repository PolyAI-LDN/task-specific-datasets.
The files are read from ``BANKING_DATA_DIR``; when that setting is unset and the default folder
is missing, they are downloaded at the pinned commit below and their SHA-256 checked.

Here in ``models/`` because backends need it at inference time (the gemini backend retrieves
few-shot examples from the train split and takes its 77 intents from categories.json);
``training/data.py`` builds on it (CLINC150 extras, out-of-scope queries).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from config.settings import REPO_ROOT, Settings, get_settings

PINNED_COMMIT = "57ec275d8078af65b7731c2a98be812d844a6d6b"
DOWNLOAD_URL = "https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/{commit}/banking_data/{name}"
SHA256 = {
    "train.csv": "b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b",
    "test.csv": "d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d",
    "categories.json": "53261da888122daf2d120d925458631d9619e15d82e56052e7a42e535ce32b63",
}
VALIDATION_FRACTION = 0.10


class DataError(RuntimeError):
    """BANKING77 is missing, unreadable or fails its checksum. The message names the setting."""


@dataclass(frozen=True)
class Split:
    """Parallel lists of texts and intent labels (label strings from categories.json)."""

    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Banking77:
    """The dataset: 77 ``intents`` (categories.json order), seeded ``train``/``validation`` split
    of train.csv (90/10, stratified), ``test`` (test.csv, 3,080 rows: reporting only) and
    ``checksum`` (SHA-256 over the three files' digests, to tie a model to its data)."""

    intents: list[str]
    train: Split
    validation: Split
    test: Split
    checksum: str
    data_dir: Path


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_dir(data_dir: Path) -> str:
    """Check the three files exist and match their pinned SHA-256.

    Returns the combined checksum (hex SHA-256 of the three digests in name order).
    Raises ``DataError`` naming ``BANKING_DATA_DIR`` on a missing file or a checksum mismatch.
    """
    digests = []
    for name, expected in sorted(SHA256.items()):
        path = data_dir / name
        if not path.is_file():
            raise DataError(
                f"BANKING77 file {path} not found. Set BANKING_DATA_DIR to the folder holding "
                f"train.csv, test.csv and categories.json."
            )
        got = sha256_file(path)
        if got != expected:
            raise DataError(
                f"Checksum mismatch for {path}: expected SHA-256 {expected}, got {got}. "
                f"BANKING_DATA_DIR must point at an unmodified copy of BANKING77 (commit {PINNED_COMMIT})."
            )
        digests.append(got)
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def download(dest: Path, commit: str = PINNED_COMMIT, timeout_s: float = 30.0) -> Path:
    """Download the three BANKING77 files at ``commit`` into ``dest`` atomically.

    Files go to a temporary folder first and are moved into place only after every checksum
    matches, so a failed download never leaves half-written data. Raises ``DataError``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        tmp_path = Path(tmp)
        for name in SHA256:
            url = DOWNLOAD_URL.format(commit=commit, name=name)
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as r, open(tmp_path / name, "wb") as f:
                    f.write(r.read())
            except OSError as e:
                raise DataError(
                    f"Could not download BANKING77 ({url}): {e}. Offline? Set BANKING_DATA_DIR to a "
                    f"local copy of the dataset."
                ) from e
        verify_dir(tmp_path)
        dest.mkdir(parents=True, exist_ok=True)
        for name in SHA256:
            os.replace(tmp_path / name, dest / name)
    return dest


def resolve_data_dir(settings: Settings | None = None) -> Path:
    """The BANKING77 folder: ``BANKING_DATA_DIR`` if set (never downloaded into); else
    ``<home>/data/banking77`` if complete; else ``../shared/data/banking77`` beside the
    repository if present; else ``<home>/data/banking77``, downloaded at the pinned commit."""
    s = settings or get_settings()
    if s.data_dir is not None:
        if not s.data_dir.is_dir():
            raise DataError(f"BANKING_DATA_DIR={s.data_dir} is not a folder.")
        return s.data_dir
    default = s.home / "data" / "banking77"
    if all((default / n).is_file() for n in SHA256):
        return default
    shared = REPO_ROOT.parent / "shared" / "data" / "banking77"
    if all((shared / n).is_file() for n in SHA256):
        return shared
    return download(default)


def read_csv(path: Path, intents: list[str] | None = None) -> Split:
    """Read a ``text,category`` CSV. Raises ``DataError`` on a missing column or, when
    ``intents`` is given, a label outside it."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"text", "category"} <= set(reader.fieldnames):
                raise DataError(f"{path}: expected a CSV with header 'text,category', got {reader.fieldnames}.")
            rows = [(r["text"], r["category"]) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"Cannot read {path}: {e}") from e
    if intents is not None:
        known = set(intents)
        bad = sorted({c for _, c in rows if c not in known})
        if bad:
            raise DataError(f"{path}: unknown intent labels {bad[:5]} (not among the 77 BANKING77 intents).")
    return Split([t for t, _ in rows], [c for _, c in rows])


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Seeded stratified split into (rest, held_out) with ``fraction`` of each label held out
    (scikit-learn ``train_test_split``)."""
    from sklearn.model_selection import train_test_split

    tr_x, va_x, tr_y, va_y = train_test_split(
        split.texts, split.labels, test_size=fraction, random_state=seed, stratify=split.labels
    )
    return Split(list(tr_x), list(tr_y)), Split(list(va_x), list(va_y))


def load_banking77(settings: Settings | None = None) -> Banking77:
    """Load and verify BANKING77 and carve the seeded 10 % validation split from train.csv.

    Raises ``DataError`` (naming BANKING_DATA_DIR) when the data is missing or altered.
    """
    s = settings or get_settings()
    data_dir = resolve_data_dir(s)
    checksum = verify_dir(data_dir)
    intents = json.loads((data_dir / "categories.json").read_text(encoding="utf-8"))
    full_train = read_csv(data_dir / "train.csv", intents)
    train, validation = stratified_split(full_train, VALIDATION_FRACTION, s.seed)
    test = read_csv(data_dir / "test.csv", intents)
    return Banking77(intents, train, validation, test, checksum, data_dir)
