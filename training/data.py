"""BANKING77 loading, checksum verification, download at a pinned commit, and splits.

Dataset: Casanueva et al., "Efficient Intent Detection with Dual Sentence Encoders" (ACL 2020
NLP4ConvAI workshop, arXiv 2003.04807), CC BY 4.0, repository PolyAI-LDN/task-specific-datasets.
The files are read from ``BANKING_DATA_DIR``; when that setting is unset and the default folder
is missing, they are downloaded at the pinned commit below and their SHA-256 checked.
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

from assistant.settings import REPO_ROOT, Settings, get_settings

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


def load_oos(settings: Settings | None = None) -> list[str]:
    """The out-of-scope queries for threshold tuning (a JSON list of strings), or [] if none."""
    path = (settings or get_settings()).resolved_oos_file
    if path is None:
        return []
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"Cannot read out-of-scope file {path} (BANKING_OOS_FILE): {e}") from e
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise DataError(f"{path} (BANKING_OOS_FILE) must be a JSON list of strings.")
    return data


# --- Labels beyond BANKING77 (issue 9) --------------------------------------------------------
#
# The ONE place that names the extra outcomes. Every model label list is the 77 BANKING77
# intents followed by EXTRA_LABELS. Internally a model may split ``small_talk`` into sub-kinds
# ("small_talk:greeting"); ``public_label`` maps those back to (label, kind).

CHECK_BALANCE = "check_balance"
RECENT_TRANSACTIONS = "recent_transactions"
SMALL_TALK = "small_talk"
OUT_OF_SCOPE = "out_of_scope"
EXTRA_LABELS: tuple[str, ...] = (CHECK_BALANCE, RECENT_TRANSACTIONS, SMALL_TALK, OUT_OF_SCOPE)
KIND_SEP = ":"
CLINC_TO_LABEL = {"balance": CHECK_BALANCE, "transactions": RECENT_TRANSACTIONS}
OUTLIER_VALIDATION_FRACTION = 0.10
EXTRA_SHA256 = {
    "outliers.json": "37722ff8aeed5e73e65cd8f0faae82c5af05df19d140c937f89cde4c13585f5c",
    "small_talk.json": "f6e1880b47af5413a4ca97ea0e54680e7a04b3254ae2604d0c5ce605fab4eb9c",
    "small_talk_val.json": "aa2196028c805e9d133e900a449de03f76baad6f9362b51cd976f2963a98aa8e",
    "account_basics.json": "0dd1e4d19a0b1c14f205213986f106c8b21cd663771dbd726356ceb0748f939d",
    "account_basics_val.json": "2597d2362e933f58a1c039212a776f96dbd15abea1982406b99c517666bee728",
}


def public_label(internal: str) -> tuple[str, str | None]:
    """Split an internal class name into (contract label, sub-kind or None):
    ``"small_talk:greeting" -> ("small_talk", "greeting")``, ``"card_arrival" -> ("card_arrival", None)``."""
    label, _, kind = internal.partition(KIND_SEP)
    return label, (kind or None)


@dataclass(frozen=True)
class ExtraData:
    """CLINC150 queries beyond BANKING77 with *internal* labels: ``check_balance``,
    ``recent_transactions``, ``small_talk:<clinc intent>`` (greeting, thank_you, goodbye,
    are_you_a_bot, ...) and ``out_of_scope`` (outlier exposure, Hendrycks et al. 2019).

    ``train``: small_talk.json + account_basics.json + 90 % of outliers.json (seeded);
    ``validation``: the ``_val`` files + the other 10 % of outliers.json; ``classes``: the sorted
    internal class names; ``checksum``: SHA-256 over the files' digests."""

    train: Split
    validation: Split
    classes: list[str]
    checksum: str
    data_dir: Path


def resolve_extra_dir(settings: Settings | None = None) -> Path:
    """The clinc150_extra folder: beside the BANKING77 folder (``<data_dir>/../clinc150_extra``)
    when present, else ``../shared/data/clinc150_extra`` beside the repository.
    Raises ``DataError`` when neither exists."""
    s = settings or get_settings()
    candidates = []
    if s.data_dir is not None:
        candidates.append(s.data_dir.parent / "clinc150_extra")
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "clinc150_extra")
    for c in candidates:
        if all((c / n).is_file() for n in EXTRA_SHA256):
            return c
    raise DataError(
        f"CLINC150 extras (outliers.json, small_talk*.json, account_basics*.json) not found in "
        f"{' or '.join(str(c) for c in candidates)}. Put them beside BANKING_DATA_DIR as clinc150_extra/."
    )


def _read_clinc(path: Path) -> list[dict]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"Cannot read {path}: {e}") from e
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "text" in r and "clinc_intent" in r for r in rows):
        raise DataError(f"{path}: expected a JSON list of objects with 'text' and 'clinc_intent'.")
    return rows


def _clinc_label(row: dict, outlier: bool) -> str:
    if outlier:
        return OUT_OF_SCOPE
    ci = row["clinc_intent"]
    return CLINC_TO_LABEL.get(ci, f"{SMALL_TALK}{KIND_SEP}{ci}")


def load_extras(settings: Settings | None = None, extra_dir: Path | None = None) -> ExtraData:
    """Load and verify the CLINC150 extras (see ``ExtraData``). Raises ``DataError`` when a file
    is missing, unreadable or fails its SHA-256."""
    s = settings or get_settings()
    d = Path(extra_dir) if extra_dir else resolve_extra_dir(s)
    digests = []
    for name, expected in sorted(EXTRA_SHA256.items()):
        if not (d / name).is_file():
            raise DataError(f"CLINC150 extra file {d / name} not found.")
        got = sha256_file(d / name)
        if got != expected:
            raise DataError(f"Checksum mismatch for {d / name}: expected {expected}, got {got}.")
        digests.append(got)

    def split_of(names: list[str]) -> Split:
        rows = [(r["text"], _clinc_label(r, False)) for n in names for r in _read_clinc(d / n)]
        return Split([t for t, _ in rows], [y for _, y in rows])

    train = split_of(["small_talk.json", "account_basics.json"])
    validation = split_of(["small_talk_val.json", "account_basics_val.json"])
    out_texts = [r["text"] for r in _read_clinc(d / "outliers.json")]
    import random

    order = list(range(len(out_texts)))
    random.Random(s.seed).shuffle(order)
    n_val = int(round(OUTLIER_VALIDATION_FRACTION * len(order)))
    val_idx, tr_idx = sorted(order[:n_val]), sorted(order[n_val:])
    train = Split(train.texts + [out_texts[i] for i in tr_idx], train.labels + [OUT_OF_SCOPE] * len(tr_idx))
    validation = Split(validation.texts + [out_texts[i] for i in val_idx], validation.labels + [OUT_OF_SCOPE] * len(val_idx))
    classes = sorted(set(train.labels))
    return ExtraData(train, validation, classes, hashlib.sha256("".join(digests).encode()).hexdigest(), d)


def oos_halves(texts: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Split the out-of-scope queries (oos_dev.json) into a seeded (tuning half, reporting half):
    thresholds are chosen on the first, reported on the second. Shapes: len(tune) = ceil(n / 2)."""
    import random

    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    k = (len(order) + 1) // 2
    return [texts[i] for i in sorted(order[:k])], [texts[i] for i in sorted(order[k:])]
