"""peft backend on a tiny randomly initialised Llama (real SmolLM2 tokenizer from the shipped GGUF):
QLoRA training lowers the loss, adapter save -> load keeps the label scores, exhaustive scoring
is a distribution over exactly the 77 labels that agrees with the beam, the chat-model contract,
and a clear error for an unreachable vLLM server."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from assistant.settings import Settings
from models.base import BackendUnavailable
from models.peft import (
    ADAPTER_DIR,
    SYSTEM_PROMPT,
    ConstrainedScorer,
    PeftIntentModel,
    PeftSettings,
    _RUNTIMES,
    is_version,
    load_local_runtime,
)
from training.data import Banking77, Split, load_banking77
from training.peft import load_trainable, train_peft
from training.peft_base import find_smollm2_gguf

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
QUERIES = ["I still have not received my new card", "How do I top up with Apple Pay?", "what exchange rate do you use"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"), data_dir=DATA_DIR)


@pytest.fixture(scope="module")
def data(settings) -> Banking77:
    full = load_banking77(settings)
    small = Split(full.train.texts[:24], full.train.labels[:24])
    val = Split(full.validation.texts[:8], full.validation.labels[:8])
    return Banking77(full.intents, small, val, val, full.checksum, full.data_dir)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A random 2-layer Llama (hidden 64: bitsandbytes 4-bit needs rows of >= 64 values) with SmolLM2's tokenizer, saved as an HF folder."""
    gguf = find_smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, intermediate_size=128, max_position_embeddings=512,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _ps(base: Path, **kw) -> PeftSettings:
    defaults = dict(base_model=str(base), lora_r=4, lora_alpha=8, lora_dropout=0.0, batch_size=8,
                    learning_rate=5e-3, warmup_steps=0, max_steps=12, eval_steps=6, eval_rows=8,
                    final_eval_rows=8, threads=2)
    defaults.update(kw)
    return PeftSettings(**defaults)


@pytest.fixture(scope="module")
def trained(settings, data, tiny_base) -> Path:
    """A version folder from a short real QLoRA run (12 steps on 24 rows)."""
    return train_peft(settings, _ps(tiny_base), data=data, progress=False)


def test_qlora_training_lowers_loss_and_saves_a_version(trained, data):
    assert is_version(trained)
    metrics = json.loads((trained / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"] if "loss" in h]
    assert len(losses) >= 2 and losses[-1] < losses[0], losses
    for key in ("validation_accuracy", "validation_macro_f1", "training_seconds", "n_train", "data_checksum"):
        assert key in metrics
    assert metrics["backend"] == "peft" and metrics["n_train"] == 24 and metrics["steps"] == 12
    assert json.loads((trained / "labels.json").read_text()) == data.intents
    base = json.loads((trained / "base.json").read_text())
    assert base["quantization"] == "nf4-double-quant"
    adapter_cfg = json.loads((trained / ADAPTER_DIR / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 4 and set(adapter_cfg["target_modules"]) >= {"q_proj", "v_proj"}


def test_base_is_4bit_nf4(tiny_base):
    import bitsandbytes as bnb

    model, _ = load_trainable(str(tiny_base), _ps(tiny_base))
    q = model.base_model.model.model.layers[0].self_attn.q_proj.base_layer
    assert isinstance(q, bnb.nn.Linear4bit) and q.weight.quant_type == "nf4"
    assert model.get_nb_trainable_parameters()[0] > 0


def _random_adapter_version(tmp_path: Path, base: Path, labels: list[str]) -> tuple[Path, ConstrainedScorer]:
    """QLoRA model whose LoRA B matrices are random (so the adapter matters), saved as a version."""
    model, tok = load_trainable(str(base), _ps(base))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.eval()
    folder = tmp_path / "v"
    model.save_pretrained(folder / ADAPTER_DIR)
    (folder / "labels.json").write_text(json.dumps(labels))
    (folder / "prompt.json").write_text(json.dumps({"system_prompt": SYSTEM_PROMPT, "max_query_tokens": 96}))
    (folder / "base.json").write_text(json.dumps({"base_model": str(base)}))
    (folder / "metrics.json").write_text("{}")
    return folder, ConstrainedScorer(model, tok, labels)


def test_adapter_save_load_gives_identical_scores(tmp_path, tiny_base, data):
    folder, in_memory = _random_adapter_version(tmp_path, tiny_base, data.intents)
    before = in_memory.exhaustive(QUERIES)
    loaded = load_local_runtime(folder, _ps(tiny_base, inference_4bit=True)).scorer
    after = loaded.exhaustive(QUERIES)
    for b, a in zip(before, after):
        assert max(abs(b[k] - a[k]) for k in b) < 1e-6
    # The adapter changes the scores (the comparison above is not vacuous).
    base_only = ConstrainedScorer(in_memory.model.get_base_model(), in_memory.tokenizer, data.intents)
    with in_memory.model.disable_adapter():
        plain = base_only.exhaustive(QUERIES[:1])[0]
    assert max(abs(plain[k] - before[0][k]) for k in plain) > 1e-4


def test_exhaustive_is_a_distribution_and_agrees_with_beam(tmp_path, tiny_base, data):
    _, scorer = _random_adapter_version(tmp_path, tiny_base, data.intents)
    dists = scorer.exhaustive(QUERIES)
    beams = scorer.beam(QUERIES)
    for dist, ranked in zip(dists, beams):
        assert set(dist) == set(data.intents) and len(dist) == 77
        assert math.isclose(sum(dist.values()), 1.0, abs_tol=1e-5)
        assert len(ranked) >= 5
        probs = [p for _, p in ranked]
        assert probs == sorted(probs, reverse=True)
        for label, p in ranked:
            assert math.isclose(p, dist[label], rel_tol=1e-4, abs_tol=1e-7), (label, p, dist[label])
        # The beam's best label is the distribution's mode here.
        assert ranked[0][0] == max(dist, key=dist.get)


def test_chat_model_contract_local(trained, settings, tiny_base, data):
    _RUNTIMES.clear()
    ps = _ps(tiny_base)
    model = PeftIntentModel(app_settings=settings, peft_settings=ps)
    assert not _RUNTIMES  # construction loads nothing
    assert model.availability() == (True, "ok") and model.model_version == trained.name
    msg = model.invoke(QUERIES[0])
    meta = msg.response_metadata
    assert msg.content in data.intents and meta["intent"] == msg.content and meta["backend"] == "peft"
    assert 0.0 < meta["confidence"] <= 1.0 and meta["ranking"][0]["intent"] == msg.content
    assert len(meta["ranking"]) == 5 and meta["latency_ms"] > 0 and meta["model_version"] == trained.name
    batch = model.batch(QUERIES)
    assert [m.content for m in batch][0] == msg.content
    assert all(m.content in data.intents for m in batch)
    exhaustive = PeftIntentModel(app_settings=settings, peft_settings=ps, exhaustive=True).invoke(QUERIES[0])
    assert exhaustive.content == msg.content
    assert math.isclose(exhaustive.response_metadata["confidence"], meta["confidence"], rel_tol=1e-4)
    assert len(_RUNTIMES) == 1  # loaded once, shared


def test_unavailable_without_a_trained_model(tmp_path):
    model = PeftIntentModel(app_settings=Settings(home=tmp_path, data_dir=DATA_DIR))
    ok, reason = model.availability()
    assert not ok and "train peft" in reason
    with pytest.raises(BackendUnavailable, match="train peft"):
        model.invoke("hello")


def test_unreachable_vllm_gives_a_clear_error(settings):
    url = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    model = PeftIntentModel(app_settings=settings, runtime="vllm",
                            peft_settings=PeftSettings(vllm_base_url=url, vllm_timeout_s=2))
    ok, reason = model.availability()
    assert not ok and url in reason and "unreachable" in reason
    with pytest.raises(BackendUnavailable, match="127.0.0.1:9"):
        model.invoke("I lost my card")


def test_langserve_classify_with_backend_peft(trained, session_home, data):
    """The lead's LangServe app answers through the peft backend (config backend=peft)."""
    import shutil

    from fastapi.testclient import TestClient

    from bank.seed import seed_demo
    from bank.store import get_engine
    from assistant.server import create_app

    dest = session_home / "models" / "peft" / trained.name
    if not dest.exists():
        shutil.copytree(trained, dest)
    seed_demo(get_engine(), reset=True)
    body = {"input": {"text": QUERIES[0]}, "config": {"configurable": {"backend": "peft"}}}
    with TestClient(create_app()) as client:
        r = client.post("/classify/invoke", json=body, headers={"Authorization": "Bearer demo-alice-key"})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert out["backend"] == "peft" and out["intent"] in data.intents and out["model_version"] == trained.name
    assert 0.0 < out["confidence"] <= 1.0 and len(out["ranking"]) == 5
