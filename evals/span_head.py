"""The custom model's learned entity-span head on the hand-written request dev set (issue 16).

``python -m evals.span_head [MODEL_DIR] [--no-names] [--errors]`` prints (JSON) exact-match span
P/R/F1 (``evals.spans.span_scores``) for: the learned head's raw spans, the spans each
``CustomIntentModel.entity_source`` serves ("learned": head spans with a parsed value; "merged":
those first, then rule entities overlapping none; "rules_first": rule entities first, then head
spans overlapping none), the rules alone (``models.entities.extract_entities``, gazetteer
``evals.spans.DEMO_NAMES`` unless ``--no-names``), and the model's new-intent accuracy
(``evals.spans.intent_accuracy``). MODEL_DIR: a custom model version (default: the newest under
BANKING_HOME).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from evals.spans import DEMO_NAMES, DEV_NOW, intent_accuracy, load_dev, rules_extractor, span_scores


def scores(model_dir: Path | None, names: tuple[str, ...] = DEMO_NAMES) -> dict:
    """{"learned" (raw head spans), "learned_valued" (head spans with a parsed value, what
    ``entity_source="learned"`` serves), "rules", "merged", "rules_first" (what those entity
    sources serve; the model's rules run without a gazetteer, as served): span_scores; "intent":
    intent_accuracy; "model": version name}. A version without a span head scores no learned spans.
    Raises ``models.base.BackendUnavailable`` without a trained model."""
    from models.custom import CustomIntentModel
    from training.spans import predict_spans

    cm = CustomIntentModel(model_dir=model_dir)
    lm = cm.load()
    rows = load_dev()
    texts = [r["text"] for r in rows]
    has_head = lm.model.span_head is not None
    learned = dict(zip(texts, predict_spans(lm.model, lm.tokenizer, texts) if has_head else [[] for _ in texts]))

    def served(source: str):
        model = cm.model_copy(update={"entity_source": source})
        return lambda t: model.entities(t, learned[t], now=DEV_NOW)

    out = {"model": lm.version, "span_head": has_head,
           "learned": span_scores(rows, lambda t: [{"start": s, "end": e, "label": lab} for s, e, lab in learned[t]]),
           "learned_valued": span_scores(rows, served("learned")),
           "rules": span_scores(rows, rules_extractor(names, DEV_NOW)),
           "merged": span_scores(rows, served("merged")),
           "rules_first": span_scores(rows, served("rules_first")),
           "intent": intent_accuracy(rows, lambda ts: [p.intent for p in cm.classify_batch(ts)])}
    for k in KINDS:
        out[k]["errors"] = out[k]["errors"][:15]
    return out


KINDS = ("learned", "learned_valued", "rules", "merged", "rules_first")


def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", nargs="?", type=Path)
    ap.add_argument("--no-names", action="store_true")
    ap.add_argument("--errors", action="store_true", help="keep up to 15 error rows per extractor")
    args = ap.parse_args(argv)
    res = scores(args.model_dir, () if args.no_names else DEMO_NAMES)
    if not args.errors:
        for k in KINDS:
            res[k].pop("errors")
    print(json.dumps(res, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
