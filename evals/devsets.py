"""The hand-written dev sets of ``evals/data/devsets/`` (issue 18), scored per backend by ``eval``.

Each ``*.jsonl`` file holds one JSON object per line: ``{"text", "label"}`` with the public
label (the 77 BANKING77 intents or ``models.labels.EXTRA_LABELS``; small talk is
``"small_talk"``). A row may add ``"clean"``: the same message spelt right (``typos.jsonl``),
and then the clean twins are scored too. Files: ``chatty.jsonl`` (long, chatty English messages),
``typos.jsonl`` (one or two character edits in some words), ``lang_<code>.jsonl`` (other
languages). They were written before any tuning and are never trained on.

Per set (:func:`score_devset`), as a dict in ``BackendReport.devsets[name]``:

- ``n``, ``accuracy``: exact match of the public label (fraction in [0, 1]);
- ``declined``: the fraction of in-scope rows the guard declines (label ``out_of_scope`` or
  confidence below the out-of-scope threshold; ``evals.metrics.guard_actions``), None when the
  set has no in-scope row;
- with clean twins: ``clean_accuracy`` (same rows spelt right), ``gap`` (clean_accuracy -
  accuracy, a fraction; positive = the misspellings cost accuracy), ``confident_oos``: the
  number of misspelt in-scope rows labelled ``out_of_scope`` with confidence >=
  ``CONFIDENT_OOS`` (0.9), and ``confident_oos_examples`` (at most ``MAX_EXAMPLES``);
- ``errors``: at most ``MAX_EXAMPLES`` wrong rows ``{text, gold, predicted, confidence}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from models.labels import EXTRA_LABELS, OUT_OF_SCOPE, public_label

DEVSET_DIR = Path(__file__).resolve().parent / "data" / "devsets"
"""The dev sets kept with the evals (``evals/data/devsets``)."""
CONFIDENT_OOS = 0.9
"""A misspelt in-scope message labelled out_of_scope at this confidence or above is counted."""
MAX_EXAMPLES = 10


class DevSetError(ValueError):
    """A dev set file that cannot be read or has a bad row; the message names file and line."""


@dataclass(frozen=True)
class DevSet:
    """One dev set file: ``name`` (file stem), parallel ``texts`` and ``labels`` (public labels),
    and ``clean`` (the correctly spelt twin per row) or None when the file has none."""

    name: str
    texts: list[str]
    labels: list[str]
    clean: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)


def read_devset(path: Path, known_labels: Iterable[str] | None = None) -> DevSet:
    """Read one ``.jsonl`` dev set. ``known_labels``: the accepted labels (default: none
    checked beyond being non-empty strings). Either every row has ``clean`` or none does.
    Raises ``DevSetError`` (file:line and what is wrong) for an unreadable file, a line that is
    not a JSON object with string ``text`` and ``label``, an unknown label or an empty file."""
    path = Path(path)
    known = set(known_labels) if known_labels is not None else None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DevSetError(f"cannot read dev set {path}: {e}") from e
    texts, labels, clean = [], [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise DevSetError(f"{path}:{n}: not JSON ({e})") from e
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) and row[k].strip() for k in ("text", "label")):
            raise DevSetError(f"{path}:{n}: expected an object with non-empty string 'text' and 'label'")
        if known is not None and row["label"] not in known:
            raise DevSetError(f"{path}:{n}: unknown label {row['label']!r}")
        if "clean" in row and not (isinstance(row["clean"], str) and row["clean"].strip()):
            raise DevSetError(f"{path}:{n}: 'clean' must be a non-empty string")
        texts.append(row["text"])
        labels.append(row["label"])
        clean.append(row.get("clean"))
    if not texts:
        raise DevSetError(f"dev set {path} has no rows")
    has_clean = [c is not None for c in clean]
    if any(has_clean) and not all(has_clean):
        raise DevSetError(f"{path}: {has_clean.count(False)} rows lack 'clean' (all rows have it or none)")
    return DevSet(path.stem, texts, labels, clean if all(has_clean) else None)


def load_devsets(folder: Path | None = None, intents: Iterable[str] | None = None) -> list[DevSet]:
    """Every ``*.jsonl`` in ``folder`` (default ``DEVSET_DIR``), sorted by file name. Labels are
    checked against ``intents`` + ``EXTRA_LABELS`` when ``intents`` is given. A missing folder
    gives []; a bad file raises ``DevSetError``."""
    folder = Path(folder) if folder is not None else DEVSET_DIR
    if not folder.is_dir():
        return []
    known = None if intents is None else {*intents, *EXTRA_LABELS}
    return [read_devset(p, known) for p in sorted(folder.glob("*.jsonl"))]


def _is_wrong(pred: Any, gold: str) -> bool:
    return public_label(pred.intent)[0] != gold


def score_devset(ds: DevSet, preds: Sequence[Any], clean_preds: Sequence[Any] | None,
                 oos_threshold: float, clarify_threshold: float) -> dict[str, Any]:
    """The figures of one dev set (see the module docstring) from its predictions (parallel to
    ``ds.texts``; ``clean_preds`` parallel to ``ds.clean``). Rates are rounded to 4 digits."""
    from evals.metrics import guard_actions

    if len(preds) != len(ds) or (clean_preds is not None and len(clean_preds) != len(ds)):
        raise ValueError(f"dev set {ds.name}: {len(ds)} rows but {len(preds)} predictions")
    wrong = [_is_wrong(p, y) for p, y in zip(preds, ds.labels)]
    in_scope = [i for i, y in enumerate(ds.labels) if y != OUT_OF_SCOPE]
    acts = guard_actions(preds, oos_threshold, clarify_threshold)
    out: dict[str, Any] = {
        "n": len(ds),
        "accuracy": round(1 - sum(wrong) / len(ds), 4),
        "declined": round(sum(acts[i] == "out_of_scope" for i in in_scope) / len(in_scope), 4) if in_scope else None,
        "errors": [{"text": ds.texts[i], "gold": ds.labels[i], "predicted": preds[i].intent,
                    "confidence": round(float(preds[i].confidence), 4)}
                   for i in range(len(ds)) if wrong[i]][:MAX_EXAMPLES],
    }
    if clean_preds is not None:
        clean_acc = 1 - sum(_is_wrong(p, y) for p, y in zip(clean_preds, ds.labels)) / len(ds)
        confident = [i for i in in_scope if preds[i].intent == OUT_OF_SCOPE and preds[i].confidence >= CONFIDENT_OOS]
        out.update(clean_accuracy=round(clean_acc, 4), gap=round(clean_acc - (1 - sum(wrong) / len(ds)), 4),
                   confident_oos=len(confident),
                   confident_oos_examples=[{"text": ds.texts[i], "gold": ds.labels[i],
                                            "confidence": round(float(preds[i].confidence), 4)}
                                           for i in confident[:MAX_EXAMPLES]])
    return out


def devset_rows(devsets: Sequence[DevSet]) -> int:
    """How many texts scoring ``devsets`` classifies (rows plus clean twins): for progress bars."""
    return sum(len(d) * (2 if d.clean is not None else 1) for d in devsets)


def evaluate_devsets(model: Any, devsets: Sequence[DevSet], oos_threshold: float, clarify_threshold: float,
                     batch_size: int = 64, progress: Any = None, failures: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Classify every dev set (and its clean twins) with ``model`` (``evals.runner.predict_all``)
    and score it: name -> :func:`score_devset` dict, in the order of ``devsets``."""
    from evals.runner import predict_all

    out = {}
    for ds in devsets:
        preds = predict_all(model, ds.texts, batch_size, progress, failures)
        clean = predict_all(model, ds.clean, batch_size, progress, failures) if ds.clean is not None else None
        out[ds.name] = score_devset(ds, preds, clean, oos_threshold, clarify_threshold)
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f} %"


def devsets_markdown(reports: Mapping[str, Any]) -> list[str]:
    """Markdown lines for report.md: one row per backend, one column per dev set (accuracy),
    then the misspelling figures of every set with clean twins. [] when no backend scored one.
    ``reports``: name -> ``BackendReport`` (reads ``backend`` and ``devsets``)."""
    reps = [r for r in reports.values() if r.devsets]
    if not reps:
        return []
    names = list(dict.fromkeys(n for r in reps for n in r.devsets))
    size = {n: next(r.devsets[n]["n"] for r in reps if n in r.devsets) for n in names}
    lines = ["", "### Dev sets (hand-written, evals/data/devsets; accuracy, in-scope declined in brackets)", "",
             "| backend | " + " | ".join(f"{n} (n={size[n]})" for n in names) + " |", "|---|" + "---:|" * len(names)]
    for r in reps:
        cells = [f"{_pct(r.devsets[n]['accuracy'])} ({_pct(r.devsets[n]['declined'])})" if n in r.devsets else "–"
                 for n in names]
        lines.append(f"| {r.backend} | " + " | ".join(cells) + " |")
    twins = [n for n in names if any("clean_accuracy" in r.devsets.get(n, {}) for r in reps)]
    for n in twins:
        lines += ["", f"#### {n}: misspelt vs spelt right", "",
                  f"| backend | misspelt | spelt right | gap (points) | in-scope misspelt declined as out_of_scope at >= {CONFIDENT_OOS} |",
                  "|---|---:|---:|---:|---:|"]
        for r in reps:
            d = r.devsets.get(n)
            if d and "clean_accuracy" in d:
                lines.append(f"| {r.backend} | {_pct(d['accuracy'])} | {_pct(d['clean_accuracy'])} | "
                             f"{d['gap'] * 100:.1f} | {d['confident_oos']} |")
        for r in reps:
            for ex in (r.devsets.get(n) or {}).get("confident_oos_examples", []):
                lines.append(f"- {r.backend}: \"{ex['text'].replace('|', '/')}\" ({ex['gold']}) → out_of_scope {ex['confidence']:.2f}")
    return lines
