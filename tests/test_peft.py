"""peft backend on a tiny randomly initialised Llama (real SmolLM2 tokenizer from the shipped GGUF,
tied embeddings like SmolLM2): LoRA training on a float32 base lowers the label loss and saves a
sealed version with a learning curve and thresholds; the 4-bit NF4 (QLoRA) path builds and trains;
an interrupted run resumes from its checkpoint; the merged runtime scores exactly as the unmerged
adapter; one forward pass gives a distribution over exactly the 77 labels; the chat-model
contract carries the version's thresholds; a clear error for an unreachable or misconfigured
vLLM server."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

import training.peft as tp
from config.settings import Settings
from models.base import BackendUnavailable
from models.peft import (
    ADAPTER_DIR,
    LabelScorer,
    PeftIntentModel,
    PeftSettings,
    is_version,
    label_token,
    load_local_runtime,
    use_4bit,
)
from models.peft.chat_model import _RUNTIMES
from models.peft.vllm import VllmClient
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
    """A random 2-layer Llama (hidden 64: bitsandbytes 4-bit needs rows of >= 64 values) with
    SmolLM2's tokenizer and tied input/output embeddings, saved as an HF folder."""
    gguf = find_smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, intermediate_size=128, max_position_embeddings=512,
                      tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _ps(base: Path, **kw) -> PeftSettings:
    defaults = dict(base_model=str(base), lora_r=4, lora_alpha=8, lora_dropout=0.0, lora_layers=1, batch_size=8,
                    learning_rate=5e-3, warmup_steps=0, max_steps=12, evals_per_epoch=2, save_steps=4,
                    final_eval_rows=8, threads=1, load_in_4bit=False, bf16=False)
    defaults.update(kw)
    return PeftSettings(**defaults)


@pytest.fixture(scope="module")
def trained(settings, data, tiny_base) -> Path:
    """A version folder from a short real LoRA run on the float32 base (12 steps on 24 rows)."""
    return train_peft(settings, _ps(tiny_base), data=data, progress=False)


def test_lora_training_lowers_the_label_loss_and_saves_a_sealed_version(trained, data):
    assert is_version(trained) and (trained / "COMPLETE").is_file()
    metrics = json.loads((trained / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"] if "loss" in h]
    assert len(losses) >= 2 and losses[-1] < losses[0], losses
    # Learning curve: validation accuracy every half epoch (3 steps of 8 rows = 1 epoch here).
    assert [round(p["epoch"], 2) for p in metrics["learning_curve"]][:2] == [0.67, 1.33]
    assert all(0.0 <= p["validation_accuracy"] <= 1.0 for p in metrics["learning_curve"])
    assert metrics["backend"] == "peft" and metrics["n_train"] == 24 and metrics["steps"] == 12
    assert metrics["quantization"] is None and metrics["resumed"] is False
    assert 0.0 <= metrics["validation_accuracy"] <= 1.0 and metrics["n_validation"] == 8
    th = metrics["thresholds"]
    assert 0.0 <= th["oos_threshold"] <= th["clarify_threshold"] <= 1.0
    assert json.loads((trained / "labels.json").read_text()) == data.intents
    prompt = json.loads((trained / "prompt.json").read_text())
    assert prompt["template"] == "{text}\nIntent:" and prompt["label_tokens"]["card_arrival"] == "<|card_arrival|>"
    cfg = json.loads((trained / ADAPTER_DIR / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and cfg["layers_to_transform"] == [1] and len(cfg["trainable_token_indices"]["lm_head"]) == 77
    assert not [p for p in trained.parent.iterdir() if p.name.startswith(".")]  # work dir removed


def test_label_tokens_are_single_added_tokens_initialised_from_the_label_words(tiny_base, data):
    from models.peft import add_label_tokens

    tok = AutoTokenizer.from_pretrained(tiny_base)
    model = LlamaForCausalLM.from_pretrained(tiny_base)
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    words = tok("card arrival", add_special_tokens=False)["input_ids"]
    before = model.get_input_embeddings().weight[words].mean(0).detach().clone()
    ids = add_label_tokens(tok, model, data.intents)
    assert len(ids) == 77 and len(set(ids)) == 77 and min(ids) >= 49152
    i = ids[data.intents.index("card_arrival")]
    assert tok(label_token("card_arrival"), add_special_tokens=False)["input_ids"] == [i]
    head, emb = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    assert head.data_ptr() != emb.data_ptr() and not model.config.tie_word_embeddings  # untied
    assert torch.allclose(head[i], before) and torch.allclose(emb[i], before)
    peft_model, _, _ = load_trainable(str(tiny_base), _ps(tiny_base), data.intents)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("lm_head" in n and "trainable_tokens_delta" in n for n in trainable)
    assert not any("embed_tokens" in n for n in trainable)  # label tokens are never inputs
    assert trainable and all("layers.0." not in n for n in trainable)  # lora_layers=1: only the top layer


def test_4bit_is_automatic_and_the_nf4_path_trains(tiny_base, data, tmp_path, settings):
    """The QLoRA path (NF4 base) runs here with bitsandbytes' pure-torch CPU fallback on the tiny
    model (its fast kernels need CUDA; on SmolLM2-135M the fallback is 50-275 s per step)."""
    import bitsandbytes as bnb

    assert use_4bit(PeftSettings()) == torch.cuda.is_available()
    model, _, _ = load_trainable(str(tiny_base), _ps(tiny_base, load_in_4bit=True), data.intents)
    q = model.base_model.model.model.layers[1].self_attn.q_proj.base_layer
    assert isinstance(q, bnb.nn.Linear4bit) and q.weight.quant_type == "nf4"
    path = train_peft(settings, _ps(tiny_base, load_in_4bit=True, max_steps=3, evals_per_epoch=1), data=data,
                      progress=False, out_root=tmp_path)
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["quantization"] == "nf4-double-quant" and metrics["steps"] == 3
    assert json.loads((path / "base.json").read_text())["quantization"] == "nf4-double-quant"


def test_interrupted_training_resumes_from_its_last_checkpoint(tiny_base, data, tmp_path, settings, monkeypatch):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:
                raise KeyboardInterrupt("simulated kill")

    real = tp._callbacks
    monkeypatch.setattr(tp, "_callbacks", lambda *a: real(*a) + [Crash()])
    ps = _ps(tiny_base, max_steps=8, save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        train_peft(settings, ps, data=data, progress=False, out_root=tmp_path)
    work = [p for p in tmp_path.iterdir() if p.name.startswith(".work-")]
    assert len(work) == 1 and (work[0] / "checkpoint-4").is_dir() and (work[0] / "elapsed.json").is_file()
    monkeypatch.setattr(tp, "_callbacks", real)
    path = train_peft(settings, ps, data=data, progress=False, out_root=tmp_path)
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["resumed"] is True and metrics["steps"] == 8
    assert metrics["training_seconds_total"] >= metrics["training_seconds"]
    assert not work[0].exists()


def test_merged_runtime_scores_exactly_as_the_unmerged_adapter(trained, tiny_base, data):
    merged = load_local_runtime(trained, _ps(tiny_base)).scorer
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from models.peft.prompt import resize_for_labels

    base = AutoModelForCausalLM.from_pretrained(str(tiny_base))
    resize_for_labels(base, len(merged.tokenizer))
    peft_model = PeftModel.from_pretrained(base, str(trained / ADAPTER_DIR)).eval()
    plain = LabelScorer(peft_model, merged.tokenizer, data.intents)
    a, b = merged.probabilities(QUERIES), plain.probabilities(QUERIES)
    assert np.abs(a - b).max() < 1e-5
    with peft_model.disable_adapter():  # the adapter matters: the comparison is not vacuous
        untrained = plain.probabilities(QUERIES)
    assert np.abs(untrained - b).max() > 1e-3


def test_one_forward_pass_gives_a_distribution_over_the_77_labels(trained, tiny_base, data):
    scorer = load_local_runtime(trained, _ps(tiny_base)).scorer
    probs = scorer.probabilities(QUERIES)
    assert probs.shape == (3, 77) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5) and (probs > 0).all()
    # Batched (left-padded) and single-query scoring agree.
    single = np.concatenate([scorer.probabilities([q]) for q in QUERIES])
    assert np.abs(single - probs).max() < 1e-5
    ranked = scorer.rank(QUERIES)
    for row, r in zip(probs, ranked):
        assert [lab for lab, _ in r] == [data.intents[j] for j in np.argsort(-row)[:5]]
        assert math.isclose(r[0][1], float(row.max()), rel_tol=1e-6)


def test_chat_model_contract_carries_the_versions_thresholds(trained, settings, tiny_base, data):
    _RUNTIMES.clear()
    model = PeftIntentModel(app_settings=settings, peft_settings=_ps(tiny_base))
    assert not _RUNTIMES  # construction loads nothing
    saved = json.loads((trained / "metrics.json").read_text())["thresholds"]
    assert model.thresholds == {"oos_threshold": saved["oos_threshold"], "clarify_threshold": saved["clarify_threshold"]}
    assert model.availability() == (True, "ok") and model.model_version == trained.name
    msg = model.invoke(QUERIES[0])
    meta = msg.response_metadata
    assert msg.content in data.intents and meta["intent"] == msg.content and meta["backend"] == "peft"
    assert meta["thresholds"] == model.thresholds
    assert 0.0 < meta["confidence"] <= 1.0 and meta["ranking"][0]["intent"] == msg.content
    assert len(meta["ranking"]) == 5 and meta["latency_ms"] > 0 and meta["runtime"] == "local"
    batch = model.batch(QUERIES)
    assert batch[0].content == msg.content and all(m.content in data.intents for m in batch)
    assert math.isclose(batch[0].response_metadata["confidence"], meta["confidence"], rel_tol=1e-4)
    assert len(_RUNTIMES) == 1  # loaded once, shared


def test_unavailable_without_a_trained_model(tmp_path):
    model = PeftIntentModel(app_settings=Settings(home=tmp_path, data_dir=DATA_DIR))
    ok, reason = model.availability()
    assert not ok and "train peft" in reason
    assert model.thresholds == {}
    with pytest.raises(BackendUnavailable, match="train peft"):
        model.invoke("hello")


def test_unreachable_vllm_is_unavailable_with_the_reason(trained, settings, tiny_base):
    url = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    model = PeftIntentModel(app_settings=settings, runtime="vllm",
                            peft_settings=_ps(tiny_base, vllm_base_url=url, vllm_timeout_s=2, vllm_check_s=1))
    ok, reason = model.availability()
    assert not ok and url in reason and "unreachable" in reason
    with pytest.raises(BackendUnavailable, match="127.0.0.1:9"):
        model.invoke("I lost my card")


def test_vllm_answers_that_are_not_labels_or_raw_logprobs_are_refused_and_a_label_is_parsed(trained, tiny_base, data):
    """The parsing half of the self-check, on completion bodies shaped like vLLM's."""
    from transformers import AutoTokenizer

    client = VllmClient(_ps(tiny_base), data.intents, AutoTokenizer.from_pretrained(trained / "tokenizer"))
    with pytest.raises(BackendUnavailable, match="not a label token"):
        client.prediction({"choices": [{"text": "card_arrival", "logprobs": None}]}, 1.0)
    raw = {"choices": [{"text": "<|card_arrival|>", "logprobs": {  # vLLM's default raw_logprobs mode
        "token_logprobs": [math.log(0.3)], "top_logprobs": [{" arriving": math.log(0.5), "<|card_arrival|>": math.log(0.3)}]}}]}
    with pytest.raises(BackendUnavailable, match="processed_logprobs"):
        client.prediction(raw, 1.0)
    body = {"choices": [{"text": "<|card_arrival|>", "logprobs": {
        "token_logprobs": [math.log(0.6)],
        "top_logprobs": [{"<|card_arrival|>": math.log(0.6), "<|card_delivery_estimate|>": math.log(0.3)}]}}]}
    p = client.prediction(body, 5.0)
    assert p.intent == "card_arrival" and math.isclose(p.confidence, 0.6 / 0.9)
    assert [lab for lab, _ in p.ranking] == ["card_arrival", "card_delivery_estimate"]


def test_langserve_classify_with_backend_peft(trained, session_home, data):
    """The LangServe app answers through the peft backend (config backend=peft)."""
    import shutil

    from fastapi.testclient import TestClient

    from assistant.app import create_app
    from bank.seed import seed_demo
    from bank.store import get_engine

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
