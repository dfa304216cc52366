"""Calibration of a trained custom model version: temperature scaling (Guo et al. 2017) on the
validation split, the out-of-scope logit bias and the guard's thresholds chosen on validation
plus the tuning half of CLINC150's out-of-scope queries (training/thresholds.py), and
:func:`recalibrate` for a saved version. :func:`predict_logits` is the batched forward pass both
training and calibration use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score

from config.settings import Settings, get_settings
from models.banking77 import Banking77, load_banking77
from models.custom import REQUIRED_FILES, calibrated_probs, public_probs
from models.labels import OUT_OF_SCOPE, REQUEST_LABELS, public_label
from models.tokenizer import encode_inputs
from models.transformer import IntentTransformer
from models.versions import save_version
from training.augment import typo_augment
from training.data import ExtraData, load_extras, load_oos, oos_halves
from training.thresholds import expected_calibration_error, fit_temperature, tune_thresholds


@torch.no_grad()
def predict_logits(model: IntentTransformer, tok, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Logits (N, n_labels) float32 over the model's internal classes (model put in eval mode)."""
    model.eval()
    out = []
    for i in range(0, len(texts), batch_size):
        ids, ngrams = encode_inputs(tok, texts[i : i + batch_size], model.cfg.max_len, model.cfg.ngram_buckets)
        out.append(model(ids, ngrams).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg.n_labels), dtype=np.float32)



OOS_BIAS_GRID = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
MISSPELT_REJECTION_BUDGET = 0.08
"""At most this fraction of misspelt copies of the BANKING77 validation rows (``typo_augment``,
seeded; issue 18) may be declined as out of scope by a chosen bias: without it the bias that
declines the most out-of-scope queries also declined "whats my balnace" at confidence 1.0.
Chosen on validation: 3 % was infeasible for every bias (the least over budget kept 88 % of the
out-of-scope tuning queries declined), 8 % allows bias 3.0 (91 %) with 6.6 % misspelt declined."""


def calibrate(model: IntentTransformer, tok, classes: list[str], data: Banking77, extras: ExtraData,
              settings: Settings, evaluate_test: bool = True, max_in_scope_rejection: float = 0.015) -> dict:
    """Calibrate a trained model on validation and choose the guard thresholds.

    1. Temperature scaling (Guo et al. 2017) on the validation logits (all classes).
    2. An additive bias on the ``out_of_scope`` logit (grid ``OOS_BIAS_GRID``) and, for each,
       ``tune_thresholds`` with at most ``max_in_scope_rejection`` of the BANKING77 validation
       rows declined (the quantity the in_scope_rejection target measures) and, held to the same
       budget on their own, of the generated request-intent validation rows (issue 16: a budget
       over BANKING77 alone let the bias decline "send money to <a new name>"); the small-talk and
       account rows' rejection is reported in ``in_scope_kept``; a bias is feasible only when it
       also declines at most ``MISSPELT_REJECTION_BUDGET`` of misspelt copies of the BANKING77
       validation rows (``thresholds.misspelt_declined``); kept: the bias whose thresholds decline the most out-of-scope tuning rows
       (the mean of the tuning half of oos_dev.json and the held-out outliers, so the small
       oos_dev half weighs as much as the 910 outliers).
    Returns the metrics.json fields: labels, temperature, oos_logit_bias, thresholds (with
    ``report_half_oos_rejection`` on the other half of oos_dev), validation accuracy / macro-F1
    (BANKING77 rows) / all-rows accuracy / ECE, and test accuracy / macro-F1 when ``evaluate_test``.
    """
    val_texts = list(data.validation.texts) + list(extras.validation.texts)
    index = {c: i for i, c in enumerate(classes)}
    val_y = np.array([index[y] for y in list(data.validation.labels) + list(extras.validation.labels)])
    oos_internal = index[OUT_OF_SCOPE]
    val_logits = predict_logits(model, tok, val_texts)
    temperature = fit_temperature(val_logits, val_y)
    b77_val = list(data.validation.texts)
    typo_texts, _ = typo_augment(b77_val, 1.0, 1, settings.seed + 11)
    typo_logits = predict_logits(model, tok, typo_texts)
    oos_tune, oos_report = oos_halves(load_oos(settings), settings.seed)
    oos_logits = predict_logits(model, tok, oos_tune + oos_report)
    labels_pub = public_probs(np.zeros((0, len(classes))), classes)[0]
    gold_pub = np.array([labels_pub.index(public_label(classes[i])[0]) for i in val_y])
    in_scope = np.array([labels_pub[g] != OUT_OF_SCOPE for g in gold_pub])
    oos_idx = labels_pub.index(OUT_OF_SCOPE)
    is_b77 = np.arange(len(val_y)) < len(data.validation)
    request_ids = [index[r] for r in REQUEST_LABELS if r in index]
    is_request = np.isin(val_y, request_ids)
    n_tune = len(oos_tune)
    best = None
    for bias in OOS_BIAS_GRID:
        _, vp = public_probs(calibrated_probs(val_logits, temperature, bias, oos_internal), classes)
        _, op = public_probs(calibrated_probs(oos_logits, temperature, bias, oos_internal), classes)
        vtop, vconf = vp.argmax(1), vp.max(1)
        tune_conf = np.concatenate([op[:n_tune].max(1), vconf[~in_scope]])
        tune_declined = np.concatenate([op[:n_tune].argmax(1) == oos_idx, vtop[~in_scope] == oos_idx])
        n_out = int((~in_scope).sum())
        weights = np.concatenate([np.full(n_tune, 0.5 / max(1, n_tune)), np.full(n_out, 0.5 / max(1, n_out))])
        thr = tune_thresholds(vconf[in_scope], (vtop == gold_pub)[in_scope], tune_conf,
                              val_declined=vtop[in_scope] == oos_idx, oos_declined=tune_declined,
                              max_in_scope_rejection=max_in_scope_rejection, oos_weights=weights,
                              budget_rows=is_b77[in_scope], budget_groups=[is_request[in_scope]])
        _, tp = public_probs(calibrated_probs(typo_logits, temperature, bias, oos_internal), classes)
        typo_declined = float(((tp.argmax(1) == oos_idx) | (tp.max(1) < thr["oos_threshold"])).mean()) if len(tp) else 0.0
        thr["misspelt_declined"] = typo_declined
        feasible = (1 - min([thr["budget_rows_kept"], *thr["budget_groups_kept"]]) <= max_in_scope_rejection + 1e-9
                    and typo_declined <= MISSPELT_REJECTION_BUDGET + 1e-9)
        violation = max(0.0, typo_declined - MISSPELT_REJECTION_BUDGET,
                        1 - min([thr["budget_rows_kept"], *thr["budget_groups_kept"]]) - max_in_scope_rejection)
        # feasible: the most out-of-scope declined; else the least over budget
        key = (feasible, thr["oos_rejection"] if feasible else -violation, -abs(bias))
        if best is None or key > best[0]:
            rep = op[n_tune:]
            if len(rep):
                thr["report_half_oos_rejection"] = float(((rep.argmax(1) == oos_idx) | (rep.max(1) < thr["oos_threshold"])).mean())
            best = (key, bias, thr, vtop, vconf)
    _, bias, thresholds, val_top, val_conf = best
    b77 = slice(0, len(data.validation))
    out = {
        "labels": labels_pub,
        "temperature": temperature,
        "oos_logit_bias": bias,
        "thresholds": thresholds,
        "validation_accuracy": float(accuracy_score(gold_pub[b77], val_top[b77])),
        "validation_macro_f1": float(f1_score(gold_pub[b77], val_top[b77], average="macro")),
        "validation_all_accuracy": float((val_top == gold_pub).mean()),
        "validation_ece": expected_calibration_error(val_conf, val_top == gold_pub),
    }
    if evaluate_test:
        test_y = list(data.test.labels)
        _, test_pub = public_probs(calibrated_probs(predict_logits(model, tok, data.test.texts), temperature, bias,
                                                    oos_internal), classes)
        test_pred = [labels_pub[i] for i in test_pub.argmax(1)]
        out["test_accuracy"] = float(accuracy_score(test_y, test_pred))
        out["test_macro_f1"] = float(f1_score(test_y, test_pred, labels=sorted(set(test_y)), average="macro"))
        out["n_test"] = len(test_y)
    return out


def recalibrate(path: Path, settings: Settings | None = None, out_root: Path | None = None) -> Path:
    """Re-run ``calibrate`` on a saved version (same weights, tokenizer and config) and save the
    result as a new version beside it (``models.versions`` protocol); returns its path. Raises
    ``models.custom.ArtifactError`` for an unreadable folder."""
    from models.custom import load_version

    s = settings or get_settings()
    lm = load_version(Path(path))
    data, extras = load_banking77(s), load_extras(s)
    metrics = {**lm.metrics, **calibrate(lm.model, lm.tokenizer, lm.labels, data, extras, s),
               "recalibrated_from": lm.version}

    def write(tmp: Path) -> None:
        for name in ("model.safetensors", "tokenizer.json", "config.json", "labels.json", "model.onnx", "model.int8.onnx"):
            if name.endswith(".onnx") and not (lm.path / name).is_file():
                continue  # optional inference graphs (training/onnx_export.py): same weights, still valid
            (tmp / name).write_bytes((lm.path / name).read_bytes())
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))

    return save_version(out_root or Path(path).parent, data.checksum, write, REQUIRED_FILES)
