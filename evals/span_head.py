"""The custom model's learned entity-span head on the hand-written request dev set (issue 16).

``python -m evals.span_head [MODEL_DIR] [--no-names]`` prints (JSON) exact-match span P/R/F1
(``evals.spans.span_scores``) for: the learned head alone (values aside: only spans are scored),
the rules (``models.entities.extract_entities``; gazetteer ``evals.spans.DEMO_NAMES`` unless
``--no-names``), learned + rules merged (what ``models.custom`` reports: learned spans first, rule
entities that overlap none of them), rules first (rule entities, then learned spans that overlap
none of them), and the model's new-intent accuracy
(``evals.spans.intent_accuracy``). MODEL_DIR: a custom model version (default: the newest under
BANKING_HOME).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from evals.spans import DEMO_NAMES, DEV_NOW, intent_accuracy, load_dev, rules_extractor, span_scores


def scores(model_dir: Path | None, names: tuple[str, ...] = DEMO_NAMES) -> dict:
    """{"learned", "rules", "merged": span_scores without errors, "intent": intent_accuracy,
    "model": version name}. Raises ``models.base.BackendUnavailable`` without a trained model."""
    from models.custom import CustomIntentModel
    from models.span_tags import merge_entities
    from training.spans import predict_spans

    cm = CustomIntentModel(model_dir=model_dir)
    lm = cm.load()
    rows = load_dev()
    texts = [r["text"] for r in rows]
    learned = dict(zip(texts, predict_spans(lm.model, lm.tokenizer, texts)))
    rules = rules_extractor(names, DEV_NOW)

    def as_dicts(t: str) -> list[dict]:
        return [{"start": s, "end": e, "label": lab} for s, e, lab in learned[t]]

    out = {"model": lm.version,
           "learned": span_scores(rows, as_dicts),
           "rules": span_scores(rows, rules),
           "merged": span_scores(rows, lambda t: merge_entities(as_dicts(t), rules(t))),
           "rules_first": span_scores(rows, lambda t: merge_entities(rules(t), as_dicts(t))),
           "intent": intent_accuracy(rows, lambda ts: [p.intent for p in cm.classify_batch(ts)])}
    for k in ("learned", "rules", "merged", "rules_first"):
        out[k]["errors"] = out[k]["errors"][:15]
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", nargs="?", type=Path)
    ap.add_argument("--no-names", action="store_true")
    ap.add_argument("--errors", action="store_true", help="keep up to 15 error rows per extractor")
    args = ap.parse_args(argv)
    res = scores(args.model_dir, () if args.no_names else DEMO_NAMES)
    if not args.errors:
        for k in ("learned", "rules", "merged", "rules_first"):
            res[k].pop("errors")
            res[k].pop("per_label") if k == "rules" else None
    print(json.dumps(res, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
