"""Training the custom (from-scratch) transformer: ``banking-assistant train custom``.

Data: BANKING77 train split (90 % of train.csv), model selection and early stopping on the
seeded validation split (10 %); test.csv is scored once at the end for the report only.
Optimiser: AdamW (Loshchilov & Hutter, ICLR 2019) with linear warm-up and cosine decay; label
smoothing (Szegedy et al. 2016); token dropout (random tokens replaced by [MASK]) as augmentation.
Saves one folder per model version under ``<BANKING_HOME>/models/custom/``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from sklearn.metrics import accuracy_score, f1_score
from tqdm.auto import tqdm

from assistant.settings import Settings, get_settings
from models.transformer import IntentTransformer, TransformerConfig
from training.data import Banking77, load_banking77, load_oos
from training.thresholds import tune_thresholds
from training.tokenizer import MASK, encode_batch, encode_inputs, encode_ngrams, train_tokenizer


@dataclass
class TrainConfig:
    """Optimisation hyper-parameters (chosen on the validation split).

    lr: peak learning rate; batch_size: rows per step; epochs: upper bound; warmup_frac: fraction
    of steps with linear warm-up; weight_decay: AdamW decoupled decay; label_smoothing: epsilon;
    token_dropout: probability of replacing a real token with [MASK] during training;
    patience: epochs without validation-accuracy gain before stopping; max_minutes: wall-clock cap;
    vocab_size: tokenizer vocabulary bound (tokens); seed: RNG seed for torch/numpy/random.
    """

    lr: float = 2e-3
    batch_size: int = 64
    epochs: int = 20
    warmup_frac: float = 0.06
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    token_dropout: float = 0.1
    patience: int = 6
    max_minutes: float = 9.0
    vocab_size: int = 6000
    seed: int = 13
    model: TransformerConfig = field(default_factory=lambda: TransformerConfig(
        d_model=128, n_heads=4, n_layers=2, d_ff=256, ngram_buckets=65536, ngram_dim=128))


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def predict_proba(model: IntentTransformer, tok, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (N, n_labels) float32 for ``texts`` (model put in eval mode)."""
    model.eval()
    out = []
    for i in range(0, len(texts), batch_size):
        ids, ngrams = encode_inputs(tok, texts[i : i + batch_size], model.cfg.max_len, model.cfg.ngram_buckets)
        out.append(torch.softmax(model(ids, ngrams), dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg.n_labels), dtype=np.float32)


def _lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def new_version_name(checksum: str) -> str:
    """Folder name of a new model version: UTC timestamp + first 8 hex digits of the data checksum."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + f"-{checksum[:8]}"


def train_custom(
    settings: Settings | None = None,
    cfg: TrainConfig | None = None,
    data: Banking77 | None = None,
    out_root: Path | None = None,
    progress: bool = True,
    train_limit: int | None = None,
    evaluate_test: bool = True,
) -> Path:
    """Train the custom transformer and save a model-version folder; returns its path.

    ``train_limit`` keeps only the first N (shuffled, seeded) training rows (for quick tests).
    The folder holds model.safetensors, tokenizer.json, config.json (model + training config),
    labels.json (77 intents, index = logit position) and metrics.json (validation/test accuracy
    and macro-F1 as fractions, training_seconds, data_checksum, thresholds). It is written to a
    temporary folder and renamed into place, so an interrupted run leaves no half-written version.
    Raises ``training.data.DataError`` when BANKING77 is missing or altered.
    """
    s = settings or get_settings()
    cfg = cfg or TrainConfig(epochs=s.custom_epochs, max_minutes=s.custom_max_minutes, seed=s.seed)
    # One intra-op thread by default: this model's matrices are small, and on 2 cores a second
    # thread gains little when idle but slows a step >10x when another process holds a core.
    torch.set_num_threads(s.torch_threads or 1)
    data = data or load_banking77(s)
    set_seed(cfg.seed)
    label_index = {lab: i for i, lab in enumerate(data.intents)}

    train_texts, train_labels = list(data.train.texts), list(data.train.labels)
    if train_limit:
        order = np.random.RandomState(cfg.seed).permutation(len(train_texts))[:train_limit]
        train_texts = [train_texts[i] for i in order]
        train_labels = [train_labels[i] for i in order]

    t_start = time.perf_counter()
    tok = train_tokenizer(train_texts, vocab_size=cfg.vocab_size)
    mcfg = TransformerConfig(**{**asdict(cfg.model), "vocab_size": tok.get_vocab_size(), "n_labels": len(data.intents)})
    cfg.model = mcfg
    model = IntentTransformer(mcfg)
    mask_id = tok.token_to_id(MASK)

    # Pre-tokenise once into padded tensors; each batch is cut to its longest row.
    ids_all = encode_batch(tok, train_texts, mcfg.max_len)
    ids_len = (ids_all != 0).sum(1).clamp(min=1)
    grams_all = grams_len = None
    if mcfg.ngram_buckets:
        grams_all = encode_ngrams(train_texts, mcfg.ngram_buckets)
        grams_len = (grams_all != 0).sum(1).clamp(min=1)
    y_all = torch.tensor([label_index[lab] for lab in train_labels], dtype=torch.long)
    val_y = np.array([label_index[lab] for lab in data.validation.labels])

    # AdamW on the dense parameters; SparseAdam on the n-gram table (sparse gradients).
    sparse = [p for n, p in model.named_parameters() if n.startswith("ngrams.")]
    dense = [(n, p) for n, p in model.named_parameters() if not n.startswith("ngrams.")]
    decay = [p for n, p in dense if p.dim() >= 2 and "emb" not in n]
    no_decay = [p for n, p in dense if not (p.dim() >= 2 and "emb" not in n)]
    optimizers = [torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.98),
    )]
    if sparse:
        optimizers.append(torch.optim.SparseAdam(sparse, lr=cfg.lr, betas=(0.9, 0.98)))
    dense_params = [p for _, p in dense]
    steps_per_epoch = math.ceil(len(train_texts) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    warmup = max(1, int(cfg.warmup_frac * total_steps))

    best_acc, best_state, best_epoch, bad_epochs, step = -1.0, None, 0, 0, 0
    history = []
    deadline = t_start + cfg.max_minutes * 60
    bar = tqdm(total=total_steps, desc="train custom", unit="step", disable=not progress, dynamic_ncols=True)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(len(train_texts))
        loss_sum = 0.0
        for b in range(steps_per_epoch):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            ids = ids_all[idx, : int(ids_len[idx].max())]
            ngram_ids = None
            if grams_all is not None:
                ngram_ids = grams_all[idx, : int(grams_len[idx].max())]
            if cfg.token_dropout > 0:
                drop = (torch.rand(ids.shape) < cfg.token_dropout) & (ids != 0)
                ids = ids.masked_fill(drop, mask_id)
                if ngram_ids is not None:
                    ngram_ids = ngram_ids.masked_fill(torch.rand(ngram_ids.shape) < cfg.token_dropout, 0)
            lr = _lr_at(step, total_steps, warmup, cfg.lr)
            for opt in optimizers:
                for g in opt.param_groups:
                    g["lr"] = lr
            logits = model(ids, ngram_ids)
            loss = F.cross_entropy(logits, y_all[idx], label_smoothing=cfg.label_smoothing)
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(dense_params, 1.0)
            for opt in optimizers:
                opt.step()
            step += 1
            loss_sum += loss.item()
            bar.update(1)
        val_pred = predict_proba(model, tok, data.validation.texts).argmax(1)
        val_acc = float((val_pred == val_y).mean())
        history.append({"epoch": epoch, "loss": loss_sum / steps_per_epoch, "val_accuracy": val_acc})
        bar.set_postfix(epoch=epoch, loss=f"{loss_sum / steps_per_epoch:.3f}", val_acc=f"{val_acc:.4f}")
        if val_acc > best_acc:
            best_acc, best_epoch, bad_epochs = val_acc, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        if bad_epochs >= cfg.patience or time.perf_counter() > deadline:
            break
    bar.close()
    train_seconds = time.perf_counter() - t_start
    model.load_state_dict(best_state)
    model.eval()

    # Metrics: validation (selection) and thresholds; test for the report only.
    val_proba = predict_proba(model, tok, data.validation.texts)
    val_pred = val_proba.argmax(1)
    oos_texts = load_oos(s)
    oos_conf = predict_proba(model, tok, oos_texts).max(1) if oos_texts else np.zeros(0)
    thresholds = tune_thresholds(val_proba.max(1), val_pred == val_y, oos_conf)
    metrics = {
        "backend": "custom",
        "validation_accuracy": float(accuracy_score(val_y, val_pred)),
        "validation_macro_f1": float(f1_score(val_y, val_pred, average="macro")),
        "training_seconds": round(train_seconds, 1),
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "n_train": len(train_texts),
        "n_parameters": model.num_parameters(),
        "data_checksum": data.checksum,
        "thresholds": thresholds,
        "history": history,
        "torch_threads": torch.get_num_threads(),
    }
    if evaluate_test:
        test_y = np.array([label_index[lab] for lab in data.test.labels])
        test_pred = predict_proba(model, tok, data.test.texts).argmax(1)
        metrics["test_accuracy"] = float(accuracy_score(test_y, test_pred))
        metrics["test_macro_f1"] = float(f1_score(test_y, test_pred, average="macro"))
        metrics["n_test"] = int(len(test_y))

    root = out_root or (s.models_dir / "custom")
    root.mkdir(parents=True, exist_ok=True)
    name = new_version_name(data.checksum)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    tok.save(str(tmp / "tokenizer.json"))
    cfg_dict = asdict(cfg)
    cfg_dict["model"] = mcfg.to_dict()
    (tmp / "config.json").write_text(json.dumps(cfg_dict, indent=2))
    (tmp / "labels.json").write_text(json.dumps(data.intents, indent=2))
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
    final = root / name
    os.replace(tmp, final)
    return final
