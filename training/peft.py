"""`banking-assistant train peft`: QLoRA supervised fine-tuning of a causal LM on prompt -> label.

Config + data + ``transformers.Trainer`` (peft examples' layout): the base is loaded in 4-bit NF4
with bitsandbytes (its torch fallback on CPU, its kernels on CUDA), prepared with
``prepare_model_for_kbit_training`` and wrapped with a LoRA adapter. Each example is the chat
prompt (short system prompt + the query) followed by the label's tokens and the end-of-turn
token; the loss is on the label tokens only (prompt positions are -100). Early stopping on the
validation loss (``EarlyStoppingCallback``), a wall-clock cap, tqdm progress from the Trainer.

The saved version folder ``<home>/models/peft/<UTC time>-<data checksum[:8]>/`` holds
``adapter/`` (peft adapter: also what vLLM serves with ``--lora-modules``), ``base.json``,
``labels.json``, ``prompt.json`` and ``metrics.json`` (same keys as the custom backend's).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from assistant.settings import Settings, get_settings
from models.peft import (
    ADAPTER_DIR,
    SYSTEM_PROMPT,
    ConstrainedScorer,
    PeftSettings,
    label_token_ids,
    load_local_runtime,
    nf4_config,
    prompt_text,
    versions_root,
)
from training.data import Banking77, Split, load_banking77, load_oos
from training.peft_base import resolve_base_model


def new_version_name(checksum: str) -> str:
    """Folder name of a new version: UTC timestamp + first 8 hex digits of the data checksum."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + f"-{checksum[:8]}"


def encode_examples(tokenizer: Any, split: Split, labels: list[str], max_query_tokens: int) -> list[dict[str, list[int]]]:
    """Tokenised SFT examples: ``input_ids`` = prompt + label + end token, ``labels`` = -100 on
    the prompt and the token ids on the answer (loss on the label tokens only)."""
    answer = dict(zip(labels, label_token_ids(tokenizer, labels)))
    rows = []
    for text, lab in zip(split.texts, split.labels):
        prompt = tokenizer(prompt_text(tokenizer, text, SYSTEM_PROMPT, max_query_tokens), add_special_tokens=False)["input_ids"]
        target = answer[lab]
        rows.append({"input_ids": list(prompt) + target, "labels": [-100] * len(prompt) + target,
                     "attention_mask": [1] * (len(prompt) + len(target))})
    return rows


def load_trainable(base_ref: str, ps: PeftSettings) -> tuple[Any, Any]:
    """(peft model ready to train, tokenizer). 4-bit NF4 base when ``ps.load_in_4bit``."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(base_ref)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"  # positions 0..n-1 as at inference (left pads get explicit positions)
    kwargs: dict[str, Any] = {"device_map": "auto"} if cuda else {}
    if ps.load_in_4bit:
        kwargs["quantization_config"] = nf4_config()
    else:
        kwargs["dtype"] = torch.bfloat16 if cuda else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base_ref, **kwargs)
    if ps.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cuda)
    lora = LoraConfig(r=ps.lora_r, lora_alpha=ps.lora_alpha, lora_dropout=ps.lora_dropout,
                      target_modules=list(ps.target_modules), task_type="CAUSAL_LM", bias="none")
    return get_peft_model(model, lora), tokenizer


def train_peft(
    settings: Settings | None = None,
    peft_settings: PeftSettings | None = None,
    *,
    data: Banking77 | None = None,
    progress: bool = True,
    out_root: Path | None = None,
    evaluate_test: bool = False,
) -> Path:
    """Train a QLoRA adapter and save a version folder; returns its path.

    ``peft_settings`` fields used: base_model, lora_*, target_modules, load_in_4bit, epochs,
    max_steps, max_minutes, learning_rate, batch_size, grad_accum, warmup_steps, eval_steps,
    eval_rows, patience, train_rows, final_eval_rows, max_query_tokens. After training, the
    saved folder is reloaded as the in-process runtime and scored on validation (and test when
    ``evaluate_test``) with constrained decoding. Raises ``BaseModelError``/``DataError``.
    """
    import numpy as np
    import torch
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (DataCollatorForSeq2Seq, EarlyStoppingCallback, Trainer, TrainerCallback,
                              TrainingArguments)

    s = settings or get_settings()
    ps = peft_settings or PeftSettings()
    if ps.threads:
        torch.set_num_threads(ps.threads)
    data = data or load_banking77(s)
    base_ref = resolve_base_model(ps.base_model, s)
    model, tokenizer = load_trainable(base_ref, ps)
    train_split = data.train
    if ps.train_rows:
        train_split = Split(train_split.texts[: ps.train_rows], train_split.labels[: ps.train_rows])
    eval_split = Split(data.validation.texts[: ps.eval_rows], data.validation.labels[: ps.eval_rows])
    train_rows = encode_examples(tokenizer, train_split, data.intents, ps.max_query_tokens)
    eval_rows = encode_examples(tokenizer, eval_split, data.intents, ps.max_query_tokens)

    class _Deadline(TrainerCallback):
        """Stops training after ``max_minutes`` of wall-clock time."""

        def __init__(self, minutes: float):
            self.deadline = time.perf_counter() + minutes * 60.0

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001 - Trainer callback API
            if time.perf_counter() > self.deadline:
                control.should_training_stop = True
                control.should_evaluate = control.should_save = True
            return control

    cuda = torch.cuda.is_available()
    work = Path(tempfile.mkdtemp(prefix="peft-train-"))
    args = TrainingArguments(
        output_dir=str(work),
        per_device_train_batch_size=ps.batch_size,
        per_device_eval_batch_size=ps.batch_size * 2,
        gradient_accumulation_steps=ps.grad_accum,
        learning_rate=ps.learning_rate,
        num_train_epochs=ps.epochs,
        max_steps=ps.max_steps,
        lr_scheduler_type="cosine",
        warmup_steps=ps.warmup_steps,
        weight_decay=0.0,
        logging_steps=max(1, min(ps.eval_steps, 20)),
        eval_strategy="steps",
        eval_steps=ps.eval_steps,
        save_strategy="steps",
        save_steps=ps.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=cuda,
        report_to=[],
        disable_tqdm=not progress,
        seed=s.seed,
        dataloader_num_workers=0,
        use_cpu=not cuda,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=ps.patience), _Deadline(ps.max_minutes)],
    )
    t0 = time.perf_counter()
    result = trainer.train()
    training_seconds = time.perf_counter() - t0
    history = [h for h in trainer.state.log_history if "loss" in h or "eval_loss" in h]

    root = out_root or versions_root(s)
    root.mkdir(parents=True, exist_ok=True)
    name = new_version_name(data.checksum)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    trainer.model.save_pretrained(str(tmp / ADAPTER_DIR))
    (tmp / "labels.json").write_text(json.dumps(data.intents, indent=2))
    (tmp / "prompt.json").write_text(json.dumps({
        "system_prompt": SYSTEM_PROMPT, "chat_template": getattr(tokenizer, "chat_template", None),
        "max_query_tokens": ps.max_query_tokens, "end_token": tokenizer.eos_token}, indent=2))
    (tmp / "base.json").write_text(json.dumps({
        "base_model": base_ref, "quantization": "nf4-double-quant" if ps.load_in_4bit else None,
        "lora": {"r": ps.lora_r, "alpha": ps.lora_alpha, "dropout": ps.lora_dropout,
                 "target_modules": list(ps.target_modules)}}, indent=2))
    n_trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    metrics: dict[str, Any] = {
        "backend": "peft",
        "training_seconds": round(training_seconds, 1),
        "steps": int(result.global_step),
        "epochs_run": float(trainer.state.epoch or 0.0),
        "best_eval_loss": trainer.state.best_metric,
        "n_train": len(train_rows),
        "n_parameters": int(n_trainable),
        "base_model": base_ref,
        "data_checksum": data.checksum,
        "history": history,
        "torch_threads": torch.get_num_threads(),
    }
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
    del trainer, model
    shutil.rmtree(work, ignore_errors=True)

    # Score the saved folder exactly as it will answer (reload, constrained decoding).
    runtime = load_local_runtime(tmp, ps)
    val = data.validation
    n_val = ps.final_eval_rows or len(val)
    val_texts, val_y = val.texts[:n_val], val.labels[:n_val]
    val_rank = _rank_all(runtime.scorer, val_texts, ps.inference_batch_size, progress, "validation")
    val_pred = [r[0][0] for r in val_rank]
    metrics["validation_accuracy"] = float(accuracy_score(val_y, val_pred))
    metrics["validation_macro_f1"] = float(f1_score(val_y, val_pred, average="macro"))
    metrics["n_validation"] = n_val
    oos = load_oos(s)[:n_val]
    if oos:
        from training.thresholds import tune_thresholds

        oos_rank = _rank_all(runtime.scorer, oos, ps.inference_batch_size, progress, "out-of-scope")
        metrics["thresholds"] = tune_thresholds(
            np.array([r[0][1] for r in val_rank]), np.array(val_pred) == np.array(val_y),
            np.array([r[0][1] for r in oos_rank]))
    if evaluate_test:
        test_pred = [r[0][0] for r in _rank_all(runtime.scorer, data.test.texts, ps.inference_batch_size, progress, "test")]
        metrics["test_accuracy"] = float(accuracy_score(data.test.labels, test_pred))
        metrics["test_macro_f1"] = float(f1_score(data.test.labels, test_pred, average="macro"))
        metrics["n_test"] = len(test_pred)
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
    final = root / name
    os.replace(tmp, final)
    return final


def _rank_all(scorer: ConstrainedScorer, texts: list[str], batch: int, progress: bool, desc: str) -> list[list[tuple[str, float]]]:
    """Beam rankings for ``texts`` in batches of ``batch`` (tqdm progress when ``progress``)."""
    from tqdm import tqdm

    out: list[list[tuple[str, float]]] = []
    for i in tqdm(range(0, len(texts), batch), desc=desc, disable=not progress):
        out.extend(scorer.beam(texts[i:i + batch]))
    return out
