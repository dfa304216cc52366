"""Training data beyond what inference needs: the out-of-scope queries for threshold tuning,
the CLINC150 extras (small talk, account basics, outliers) and their seeded splits, and the
hand-written Spanish, French and German training phrases (issue 18, ``training/phrases/``).

BANKING77 itself (loading, checksums, download, the 90/10 split) lives in ``models/banking77.py``
and the label vocabulary in ``models/labels.py``, because backends need them at inference time;
the names offline callers (evals, benchmarks, the CLI) import from here are re-exported.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import REPO_ROOT, Settings, get_settings
from models.banking77 import DataError, Split, resolve_data_dir, sha256_file
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
PHRASES_DIR = REPO_ROOT / "training" / "phrases"
PHRASE_LANGUAGES: tuple[str, ...] = ("es", "fr", "de")
"""Languages with hand-written training phrases: ``PHRASES_DIR / f"{code}.jsonl"``, one
``{"text", "label"}`` object per line, internal labels (issue 18)."""
LANGUAGE_VALIDATION_FRACTION = 0.10
EN_SMALL_TALK, EN_SMALL_TALK_REPEAT = "en_small_talk", 2
"""Hand-written English small-talk closers and thanks (``training/phrases/en_small_talk.jsonl``,
issue 18: "ta", "brill, thanks"), added to ``train`` this many times (120 rows among ~1,500
CLINC150 small-talk rows)."""


def _empty_split() -> Split:
    return Split([], [])


@dataclass(frozen=True)
class ExtraData:
    """CLINC150 queries beyond BANKING77 with *internal* labels: ``check_balance``,
    ``recent_transactions``, ``small_talk:<clinc intent>`` (greeting, thank_you, goodbye,
    are_you_a_bot, ...) and ``out_of_scope`` (outlier exposure, Hendrycks et al. 2019).

    ``train``: small_talk.json + account_basics.json + 90 % of outliers.json (seeded) + generated
    request rows (issue 16, ``training.requests``, ``REQUEST_ROWS_TRAIN`` per intent) + the English
    small-talk phrases (``EN_SMALL_TALK``, repeated ``EN_SMALL_TALK_REPEAT`` times);
    ``validation``: the ``_val`` files + the other 10 % of outliers.json + a differently seeded draw
    of request rows (``REQUEST_ROWS_VALIDATION``, none equal to a train row); ``classes``: the sorted
    internal class names; ``checksum``: SHA-256 over the files' digests (the phrase files' too).

    ``language_rows`` / ``language_validation`` (issue 18): the hand-written Spanish, French and
    German phrases (``PHRASE_LANGUAGES``, ``load_language_phrases``), kept OUT of ``train`` and
    ``validation`` so the trainer decides their weight and gives them hard labels (the English
    teacher does not label them). ``language_validation`` holds a seeded, per (language, label)
    stratified ``LANGUAGE_VALIDATION_FRACTION`` of them (rounded per group), ``language_rows`` the
    rest; every label of them is in ``classes`` or among the 77 BANKING77 intents. Both default
    to empty, so code that builds an ``ExtraData`` by hand keeps working."""

    train: Split
    validation: Split
    classes: list[str]
    checksum: str
    data_dir: Path
    language_rows: Split = field(default_factory=_empty_split)
    language_validation: Split = field(default_factory=_empty_split)


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


def load_language_phrases(phrases_dir: Path | None = None, languages: tuple[str, ...] = PHRASE_LANGUAGES,
                          allowed: set[str] | None = None) -> dict[str, Split]:
    """Read ``<phrases_dir>/<code>.jsonl`` for each language code -> ``{code: Split}`` in file
    order (``phrases_dir`` defaults to ``PHRASES_DIR``). Each line is a JSON object with a non-empty
    string ``text`` and an internal ``label`` (in ``allowed`` when given). Raises ``DataError``
    naming the file and line for a missing file, a line that is not such an object, or a label
    outside ``allowed``."""
    d = Path(phrases_dir) if phrases_dir else PHRASES_DIR
    out: dict[str, Split] = {}
    for code in languages:
        path = d / f"{code}.jsonl"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise DataError(f"Training phrases for '{code}' not readable at {path}: {e}") from e
        texts, labels = [], []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise DataError(f"{path}:{n}: not a JSON object ({e}).") from e
            text, label = (row.get("text"), row.get("label")) if isinstance(row, dict) else (None, None)
            if not (isinstance(text, str) and text.strip() and isinstance(label, str) and label):
                raise DataError(f"{path}:{n}: expected {{\"text\": non-empty string, \"label\": string}}.")
            if allowed is not None and label not in allowed:
                raise DataError(f"{path}:{n}: unknown label {label!r} (not an internal class name).")
            texts.append(text.strip())
            labels.append(label)
        out[code] = Split(texts, labels)
    return out


def split_language_phrases(by_language: dict[str, Split], seed: int,
                           fraction: float = LANGUAGE_VALIDATION_FRACTION) -> tuple[Split, Split]:
    """(rows, validation) from ``load_language_phrases``' output: within each (language, label)
    group ``round(fraction * n)`` rows, drawn with ``random.Random(seed)``, go to validation, the
    rest to rows; both keep the languages' order (as given) and the files' order inside each."""
    import random

    rng = random.Random(seed)
    tr_x, tr_y, va_x, va_y = [], [], [], []
    for code in by_language:
        split = by_language[code]
        groups: dict[str, list[int]] = {}
        for i, y in enumerate(split.labels):
            groups.setdefault(y, []).append(i)
        held = set()
        for y in sorted(groups):
            idx = list(groups[y])
            rng.shuffle(idx)
            held.update(idx[: int(round(fraction * len(idx)))])
        for i, (t, y) in enumerate(zip(split.texts, split.labels)):
            (va_x if i in held else tr_x).append(t)
            (va_y if i in held else tr_y).append(y)
    return Split(tr_x, tr_y), Split(va_x, va_y)


def load_extras(settings: Settings | None = None, extra_dir: Path | None = None,
                phrases_dir: Path | None = None, intents: list[str] | None = None) -> ExtraData:
    """Load and verify the CLINC150 extras and the language phrases (see ``ExtraData``).
    ``phrases_dir`` defaults to ``PHRASES_DIR``; ``intents`` (the 77 BANKING77 names a phrase label
    may also be) defaults to categories.json in ``models.banking77.resolve_data_dir``. Raises
    ``DataError`` when a file is missing, unreadable or fails its SHA-256, or a phrase is malformed
    or has a label that is neither an extras class nor an intent."""
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
    if intents is None:
        cats = resolve_data_dir(s) / "categories.json"
        try:
            intents = json.loads(cats.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"Cannot read the BANKING77 intents from {cats}: {e}") from e
    pdir = Path(phrases_dir) if phrases_dir else PHRASES_DIR
    by_language = load_language_phrases(pdir, PHRASE_LANGUAGES, set(classes) | set(intents))
    digests += [sha256_file(pdir / f"{code}.jsonl") for code in PHRASE_LANGUAGES]
    lang_rows, lang_val = split_language_phrases(by_language, s.seed)
    en = load_language_phrases(pdir, (EN_SMALL_TALK,), set(classes))[EN_SMALL_TALK]  # English, teacher-labelled
    digests.append(sha256_file(pdir / f"{EN_SMALL_TALK}.jsonl"))
    train = Split(train.texts + en.texts * EN_SMALL_TALK_REPEAT, train.labels + en.labels * EN_SMALL_TALK_REPEAT)
    return ExtraData(train, validation, classes, hashlib.sha256("".join(digests).encode()).hexdigest(), d,
                     lang_rows, lang_val)


def oos_halves(texts: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Split the out-of-scope queries (oos_dev.json) into a seeded (tuning half, reporting half):
    thresholds are chosen on the first, reported on the second. Shapes: len(tune) = ceil(n / 2)."""
    import random

    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    k = (len(order) + 1) // 2
    return [texts[i] for i in sorted(order[:k])], [texts[i] for i in sorted(order[k:])]
