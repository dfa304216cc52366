"""`banking-assistant train peft`: LoRA supervised fine-tuning of a causal LM on prompt -> label token.

Config + data + ``transformers.Trainer`` (peft examples' layout). Where it runs:

* CPU (no CUDA): LoRA on the full-precision float32 base. bitsandbytes has no fast NF4 kernel on
  CPU (one QLoRA step of SmolLM2-135M took 52-275 s there), so ``load_in_4bit`` is off by default.
* CUDA: QLoRA (Dettmers et al. 2023, arXiv 2305.14314): the base in 4-bit NF4 with double
  quantisation, ``prepare_model_for_kbit_training``, bfloat16 compute, gradient checkpointing.

Each example is the short prompt ``"<query>\\nIntent:"`` followed by the label's single added
token (``models.peft.prompt``); the loss is on that token only (prompt positions are -100). The
adapter trains LoRA (r=16 on all linear layers) plus the 77 label-token embedding rows
(``trainable_token_indices``). Validation accuracy (argmax over the 77 label tokens) is measured
``evals_per_epoch`` times per epoch: the learning curve, kept in metrics.json ``history``.
A progress bar with ETA, a wall-clock cap summed over resumes, a checkpoint every ``save_steps``
steps in ``<home>/models/peft/.work-<key>/`` and automatic resume from the last one when the same
run (same data and settings) is started again. Afterwards the thresholds of the guard are tuned
on the validation split + CLINC150 OOS queries (``training.thresholds``) and the version folder
is written atomically with ``models.versions`` (``adapter/``, ``tokenizer/``, ``labels.json``,
``prompt.json``, ``base.json``, ``metrics.json`` with ``thresholds``).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from config.settings import Settings, get_settings
from models.banking77 import Banking77, Split, load_banking77
from models.peft.chat_model import versions_root
from models.peft.local import ADAPTER_DIR, TOKENIZER_DIR, VERSION_FILES, load_local_runtime, nf4_config
from models.peft.prompt import PROMPT_TEMPLATE, add_label_tokens, prompt_ids
from models.peft.scorer import LabelScorer
from models.peft.settings import PeftSettings, use_4bit
from models.versions import save_version
from training.data import load_oos
from training.peft_base import resolve_base_model


def encode_examples(tokenizer: Any, split: Split, index: dict[str, int], max_query_tokens: int) -> list[dict[str, Any]]:
    """Tokenised rows: ``input_ids`` = the prompt's ids (no label token: the label is predicted at
    the last prompt position, exactly as at inference), ``labels`` = the label's index in the
    label list (int)."""
    return [{"input_ids": ids, "labels": index[lab]}
            for ids, lab in zip(prompt_ids(tokenizer, split.texts, max_query_tokens), split.labels)]


class LeftPadCollator:
    """Batches ``encode_examples`` rows: left-padded ``input_ids`` (B, L) long, ``attention_mask``
    (B, L), ``position_ids`` (B, L) counting from 0 at each row's first real token, ``labels`` (B,)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.tensor([[self.pad_id] * (width - len(r["input_ids"])) + r["input_ids"] for r in rows])
        mask = torch.tensor([[0] * (width - len(r["input_ids"])) + [1] * len(r["input_ids"]) for r in rows])
        return {"input_ids": ids, "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
                "labels": torch.tensor([r["labels"] for r in rows])}


def label_loss_trainer(label_ids: list[int]) -> Any:
    """A ``transformers.Trainer`` subclass whose loss is the cross-entropy of the softmax over the
    label tokens at the last prompt position (loss on the label token only, restricted to the 77
    choices as at inference; only that position's logits are computed, ``logits_to_keep=1``).
    ``compute_loss`` returns ``{"loss", "logits": (B, n_labels)}`` so evaluation yields label
    logits for the accuracy metric."""
    import torch
    from transformers import Trainer

    lab = torch.tensor(label_ids, dtype=torch.long)

    class LabelLossTrainer(Trainer):
        """Trainer with the label-token loss (see ``label_loss_trainer``)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001 - Trainer API
            target = inputs.pop("labels")
            out = model(**inputs, logits_to_keep=1, use_cache=False)
            logits = out.logits[:, -1, :].float()[:, lab.to(out.logits.device)]
            loss = torch.nn.functional.cross_entropy(logits, target)
            return (loss, {"loss": loss, "logits": logits}) if return_outputs else loss

    return LabelLossTrainer


def load_trainable(base_ref: str, ps: PeftSettings, labels: list[str]) -> tuple[Any, Any, list[int]]:
    """(peft model ready to train, tokenizer with the label tokens, label token ids).

    4-bit NF4 base when ``use_4bit(ps)`` (automatic: CUDA only), float32 on CPU."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    four_bit = use_4bit(ps)
    tokenizer = AutoTokenizer.from_pretrained(base_ref)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    kwargs: dict[str, Any] = {"device_map": "auto"} if cuda else {}
    if four_bit:
        kwargs["quantization_config"] = nf4_config()
    else:
        kwargs["dtype"] = torch.bfloat16 if cuda else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base_ref, **kwargs)
    ids = add_label_tokens(tokenizer, model, labels)
    if four_bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cuda)
    n_layers = int(model.config.get_text_config().num_hidden_layers)
    top = min(ps.lora_layers or n_layers, n_layers)
    lora = LoraConfig(r=ps.lora_r, lora_alpha=ps.lora_alpha, lora_dropout=ps.lora_dropout,
                      target_modules=list(ps.target_modules), task_type="CAUSAL_LM", bias="none",
                      layers_to_transform=list(range(n_layers - top, n_layers)), layers_pattern="layers",
                      trainable_token_indices={"lm_head": ids})
    return get_peft_model(model, lora), tokenizer, ids


def run_key(data: Banking77, base_ref: str, ps: PeftSettings) -> str:
    """Identity of a training run (data checksum + base + training settings): a restarted run
    resumes from checkpoints only when its key matches. 16 hex digits."""
    fields = ps.model_dump(include={"lora_r", "lora_alpha", "lora_dropout", "target_modules", "lora_layers", "load_in_4bit", "epochs",
                                    "max_steps", "learning_rate", "bf16", "batch_size", "grad_accum", "warmup_steps",
                                    "train_rows", "max_query_tokens"})
    blob = json.dumps([data.checksum, base_ref, PROMPT_TEMPLATE, fields], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _callbacks(work: Path, max_minutes: float, log: Any) -> list[Any]:
    """Trainer callbacks: wall-clock cap summed over resumes (``work/elapsed.json``), and a log
    line per logging step with s/step, elapsed minutes and the remaining-time estimate."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        """Stops training once the summed wall-clock time passes ``max_minutes``; logs speed."""

        def __init__(self) -> None:
            f = work / "elapsed.json"
            self.before = json.loads(f.read_text())["seconds"] if f.is_file() else 0.0
            self.t0 = time.perf_counter()
            self.last = (self.t0, 0)

        def elapsed(self) -> float:
            return self.before + time.perf_counter() - self.t0

        def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001 - Trainer callback API
            self.last = (time.perf_counter(), state.global_step)

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            if self.elapsed() > max_minutes * 60.0:
                log(f"time cap of {max_minutes:g} min reached at step {state.global_step}: stopping")
                control.should_training_stop = True
                control.should_save = True
            return control

        def on_save(self, args, state, control, **kw):  # noqa: ANN001
            (work / "elapsed.json").write_text(json.dumps({"seconds": self.elapsed(), "step": state.global_step}))

        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
            now, step = time.perf_counter(), state.global_step
            if step > self.last[1]:
                sps = (now - self.last[0]) / (step - self.last[1])
                eta = sps * (state.max_steps - step) / 60.0
                log(f"step {step}/{state.max_steps} epoch {state.epoch:.2f} {sps:.2f} s/step "
                    f"elapsed {self.elapsed() / 60:.1f} min eta {eta:.1f} min {json.dumps(logs)}")
                self.last = (now, step)
            elif logs:
                log(f"step {step} epoch {state.epoch:.2f} {json.dumps(logs)}")

    return [Clock()]


def train_peft(
    settings: Settings | None = None,
    peft_settings: PeftSettings | None = None,
    *,
    data: Banking77 | None = None,
    progress: bool = True,
    out_root: Path | None = None,
    evaluate_test: bool = False,
    log: Any = None,
) -> Path:
    """Train a LoRA adapter with label tokens and save a version folder; returns its path.

    ``peft_settings`` fields used: base_model, lora_*, target_modules, load_in_4bit, epochs,
    max_steps, max_minutes, learning_rate, batch_size, grad_accum, warmup_steps,
    evals_per_epoch, save_steps, eval_rows, resume, train_rows, final_eval_rows,
    max_query_tokens, threads, inference_batch_size. ``log``: a callable taking one line
    (default: ``tqdm.write``). After training the saved adapter is reloaded exactly as it will
    answer (merged) and scored on validation (and test when ``evaluate_test``); thresholds are
    tuned as for the custom backend. Raises ``BaseModelError`` / ``DataError``.
    """
    import torch
    from sklearn.metrics import accuracy_score, f1_score
    from tqdm import tqdm
    from transformers import TrainingArguments

    log = log or tqdm.write
    s = settings or get_settings()
    ps = peft_settings or PeftSettings()
    if ps.threads:
        torch.set_num_threads(ps.threads)
    data = data or load_banking77(s)
    base_ref = resolve_base_model(ps.base_model, s)
    model, tokenizer, ids = load_trainable(base_ref, ps, data.intents)
    index = {lab: i for i, lab in enumerate(data.intents)}
    train_split = data.train
    if ps.train_rows:
        train_split = Split(train_split.texts[: ps.train_rows], train_split.labels[: ps.train_rows])
    n_eval = ps.eval_rows or len(data.validation)
    eval_split = Split(data.validation.texts[:n_eval], data.validation.labels[:n_eval])
    train_rows = encode_examples(tokenizer, train_split, index, ps.max_query_tokens)
    eval_rows = encode_examples(tokenizer, eval_split, index, ps.max_query_tokens)

    cuda = torch.cuda.is_available()
    steps_per_epoch = math.ceil(len(train_rows) / (ps.batch_size * ps.grad_accum))
    total_steps = ps.max_steps if ps.max_steps > 0 else math.ceil(steps_per_epoch * ps.epochs)
    eval_steps = max(1, math.ceil(steps_per_epoch / ps.evals_per_epoch))
    root = out_root or versions_root(s)
    work = root / f".work-{run_key(data, base_ref, ps)}"
    resume = ps.resume and any(work.glob("checkpoint-*"))
    if not resume and work.exists():
        shutil.rmtree(work)  # stale or unwanted: start afresh
    work.mkdir(parents=True, exist_ok=True)
    log(f"peft training: {len(train_rows)} rows, {steps_per_epoch} steps/epoch, {total_steps} steps, "
        f"eval every {eval_steps} steps, 4-bit={use_4bit(ps)}, threads={torch.get_num_threads()}, "
        f"work={work}, resume={resume}")

    def metrics_fn(pred: Any) -> dict[str, float]:
        """Validation accuracy: argmax of the label logits (N, n_labels) against (N,) indices."""
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        return {"accuracy": float(np.mean(np.asarray(logits).argmax(-1) == np.asarray(pred.label_ids)))}

    args = TrainingArguments(
        output_dir=str(work),
        per_device_train_batch_size=ps.batch_size,
        per_device_eval_batch_size=ps.batch_size * 2,
        gradient_accumulation_steps=ps.grad_accum,
        learning_rate=ps.learning_rate,
        num_train_epochs=ps.epochs,
        max_steps=total_steps,
        lr_scheduler_type="cosine",
        warmup_steps=ps.warmup_steps,
        weight_decay=0.0,
        logging_steps=max(1, min(10, eval_steps)),
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=ps.save_steps,
        save_total_limit=2,
        bf16=ps.bf16 and (torch.cuda.is_bf16_supported() if cuda else True),
        gradient_checkpointing=cuda,
        report_to=[],
        disable_tqdm=not progress,
        seed=s.seed,
        dataloader_num_workers=0,
        use_cpu=not cuda,
        train_sampling_strategy="group_by_length",
        remove_unused_columns=False,
        label_names=["labels"],
    )
    trainer = label_loss_trainer(ids)(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=LeftPadCollator(int(tokenizer.pad_token_id)),
        callbacks=_callbacks(work, ps.max_minutes, log),
        compute_metrics=metrics_fn,
    )
    elapsed_file = work / "elapsed.json"
    prior = json.loads(elapsed_file.read_text())["seconds"] if resume and elapsed_file.is_file() else 0.0
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    training_seconds = time.perf_counter() - t0
    history = [h for h in trainer.state.log_history if "loss" in h or "eval_loss" in h]
    curve = [{"epoch": h["epoch"], "step": h["step"], "validation_accuracy": h["eval_accuracy"], "eval_loss": h["eval_loss"]}
             for h in history if "eval_accuracy" in h]
    n_trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    metrics: dict[str, Any] = {
        "backend": "peft",
        "training_seconds": round(training_seconds, 1),
        "training_seconds_total": round(prior + training_seconds, 1),
        "resumed": bool(resume),
        "steps": int(result.global_step),
        "s_per_step": round(training_seconds / max(1, result.global_step), 2),
        "epochs_run": float(trainer.state.epoch or 0.0),
        "n_train": len(train_rows),
        "n_parameters": int(n_trainable),
        "base_model": base_ref,
        "quantization": "nf4-double-quant" if use_4bit(ps) else None,
        "data_checksum": data.checksum,
        "learning_curve": curve,
        "history": history,
        "torch_threads": torch.get_num_threads(),
    }
    staging = work / "final"
    if staging.exists():
        shutil.rmtree(staging)
    # The label rows travel as trainable tokens; the resized embedding matrices need not be saved.
    trainer.model.save_pretrained(str(staging / ADAPTER_DIR), save_embedding_layers=False)
    tokenizer.save_pretrained(str(staging / TOKENIZER_DIR))
    del trainer, model

    def write(tmp: Path) -> None:
        shutil.copytree(staging / ADAPTER_DIR, tmp / ADAPTER_DIR)
        shutil.copytree(staging / TOKENIZER_DIR, tmp / TOKENIZER_DIR)
        (tmp / "labels.json").write_text(json.dumps(data.intents, indent=2))
        (tmp / "prompt.json").write_text(json.dumps({
            "template": PROMPT_TEMPLATE, "max_query_tokens": ps.max_query_tokens,
            "label_tokens": dict(zip(data.intents, tokenizer.convert_ids_to_tokens(ids)))}, indent=2))
        (tmp / "base.json").write_text(json.dumps({
            "base_model": base_ref, "quantization": metrics["quantization"], "vocab_size": len(tokenizer),
            "lora": {"r": ps.lora_r, "alpha": ps.lora_alpha, "dropout": ps.lora_dropout,
                     "target_modules": list(ps.target_modules)}}, indent=2))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        # Score the staged folder exactly as it will answer (reload + merge, one-step scoring).
        runtime = load_local_runtime_unsealed(tmp, ps)
        score_and_tune(runtime, data, s, ps, metrics, progress, evaluate_test, accuracy_score, f1_score)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))

    path = save_version(root, data.checksum, write, required=VERSION_FILES)
    log(f"saved {path}: validation accuracy {metrics.get('validation_accuracy')}, thresholds {metrics.get('thresholds')}")
    shutil.rmtree(work, ignore_errors=True)
    return path


def load_local_runtime_unsealed(folder: Path, ps: PeftSettings) -> Any:
    """``load_local_runtime`` on a folder still being written (not sealed yet): seals a copy of
    its file list in place first, which ``save_version`` rewrites when it finishes."""
    from models.versions import seal

    seal(folder, VERSION_FILES)
    return load_local_runtime(folder, ps)


def score_and_tune(runtime: Any, data: Banking77, s: Settings, ps: PeftSettings, metrics: dict[str, Any],
                   progress: bool, evaluate_test: bool, accuracy_score: Any, f1_score: Any) -> None:
    """Fill ``metrics`` with validation accuracy / macro-F1, tuned ``thresholds`` (validation +
    OOS) and, when ``evaluate_test``, test accuracy / macro-F1."""
    val = data.validation
    n_val = ps.final_eval_rows or len(val)
    val_y = val.labels[:n_val]
    val_p = _probs(runtime.scorer, val.texts[:n_val], ps.inference_batch_size, progress, "validation")
    val_pred = [runtime.scorer.labels[i] for i in val_p.argmax(1)]
    metrics["validation_accuracy"] = float(accuracy_score(val_y, val_pred))
    metrics["validation_macro_f1"] = float(f1_score(val_y, val_pred, average="macro"))
    metrics["n_validation"] = n_val
    oos = load_oos(s)
    from training.thresholds import tune_thresholds

    oos_p = _probs(runtime.scorer, oos, ps.inference_batch_size, progress, "out-of-scope") if oos else np.zeros((0, 1))
    metrics["thresholds"] = tune_thresholds(val_p.max(1), np.array(val_pred) == np.array(val_y), oos_p.max(1))
    metrics["n_oos"] = len(oos)
    if evaluate_test:
        test_p = _probs(runtime.scorer, data.test.texts, ps.inference_batch_size, progress, "test")
        test_pred = [runtime.scorer.labels[i] for i in test_p.argmax(1)]
        metrics["test_accuracy"] = float(accuracy_score(data.test.labels, test_pred))
        metrics["test_macro_f1"] = float(f1_score(data.test.labels, test_pred, average="macro"))
        metrics["n_test"] = len(test_pred)


def _probs(scorer: LabelScorer, texts: list[str], batch: int, progress: bool, desc: str) -> np.ndarray:
    """(len(texts), n_labels) label probabilities in batches of ``batch`` (tqdm when ``progress``)."""
    from tqdm import tqdm

    out = [scorer.probabilities(texts[i:i + batch])
           for i in tqdm(range(0, len(texts), batch), desc=desc, disable=not progress)]
    return np.concatenate(out) if out else np.zeros((0, len(scorer.labels)), dtype=np.float32)


__all__ = ["LeftPadCollator", "encode_examples", "label_loss_trainer", "load_trainable", "run_key", "train_peft"]
