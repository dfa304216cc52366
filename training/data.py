"""Training data beyond what inference needs: the out-of-scope queries for threshold tuning,
the CLINC150 extras (small talk, account basics, outliers) and their seeded splits.

BANKING77 itself (loading, checksums, download, the 90/10 split) lives in ``models/banking77.py``
and the label vocabulary in ``models/labels.py``, because backends need them at inference time;
the names offline callers (evals, benchmarks, the CLI) import from here are re-exported.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from config.settings import REPO_ROOT, Settings, get_settings
from models.banking77 import DataError, Split, sha256_file
from models.banking77 import Banking77, load_banking77, read_csv  # noqa: F401  (re-exported: evals, CLI, benchmarks)
from models.labels import CHECK_BALANCE, KIND_SEP, OUT_OF_SCOPE, RECENT_TRANSACTIONS, SMALL_TALK


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


# --- CLINC150 extras (issue 9) ----------------------------------------------------------------
#
# Internal labels: EXTRA_LABELS (models/labels.py), small talk split into its CLINC150 kinds.

CLINC_TO_LABEL = {"balance": CHECK_BALANCE, "transactions": RECENT_TRANSACTIONS}
OUTLIER_VALIDATION_FRACTION = 0.10
REQUEST_ROWS_TRAIN, REQUEST_ROWS_VALIDATION = 300, 30
"""Generated request rows per intent (``training.requests``) in the extras' train / validation splits."""
EXTRA_SHA256 = {
    "outliers.json": "37722ff8aeed5e73e65cd8f0faae82c5af05df19d140c937f89cde4c13585f5c",
    "small_talk.json": "f6e1880b47af5413a4ca97ea0e54680e7a04b3254ae2604d0c5ce605fab4eb9c",
    "small_talk_val.json": "aa2196028c805e9d133e900a449de03f76baad6f9362b51cd976f2963a98aa8e",
    "account_basics.json": "0dd1e4d19a0b1c14f205213986f106c8b21cd663771dbd726356ceb0748f939d",
    "account_basics_val.json": "2597d2362e933f58a1c039212a776f96dbd15abea1982406b99c517666bee728",
}


@dataclass(frozen=True)
class ExtraData:
    """CLINC150 queries beyond BANKING77 with *internal* labels: ``check_balance``,
    ``recent_transactions``, ``small_talk:<clinc intent>`` (greeting, thank_you, goodbye,
    are_you_a_bot, ...) and ``out_of_scope`` (outlier exposure, Hendrycks et al. 2019).

    ``train``: small_talk.json + account_basics.json + 90 % of outliers.json (seeded) + generated
    request rows (issue 16, ``training.requests``, ``REQUEST_ROWS_TRAIN`` per intent);
    ``validation``: the ``_val`` files + the other 10 % of outliers.json + a differently seeded draw
    of request rows (``REQUEST_ROWS_VALIDATION``, none equal to a train row); ``classes``: the sorted
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
    from training.requests import generate_requests  # issue 16: the six request intents

    req_train = generate_requests(s.seed, REQUEST_ROWS_TRAIN)
    req_val = [r for r in generate_requests(s.seed + 7919, REQUEST_ROWS_VALIDATION)
               if r["text"] not in {t["text"] for t in req_train}]
    train = Split(train.texts + [r["text"] for r in req_train], train.labels + [r["intent"] for r in req_train])
    validation = Split(validation.texts + [r["text"] for r in req_val], validation.labels + [r["intent"] for r in req_val])
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
