"""The from-scratch transformer: tokenizer, shapes, a real short training run, artifacts, contract."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models.base import BackendUnavailable
from models.custom import ArtifactError, CustomIntentModel, load_version
from models.transformer import IntentTransformer, TransformerConfig
from training.tokenizer import ngram_features, train_tokenizer


def test_tokenizer_round_trip(banking77) -> None:
    tok = train_tokenizer(banking77.train.texts[:3000], vocab_size=2000)
    assert tok.token_to_id("[PAD]") == 0
    text = "i still haven't received my new card"
    enc = tok.encode(text)
    assert "[UNK]" not in enc.tokens
    assert tok.decode(enc.ids) == "i still haven ' t received my new card"  # WordPiece splits punctuation
    assert tok.decode(tok.encode("my card").ids) == "my card"


def test_ngram_features_are_stable_and_bounded() -> None:
    a = ngram_features("Card arrived?", 1000)
    assert a == ngram_features("card arrived ?", 1000)  # case and spacing normalised
    assert all(1 <= i < 1000 for i in a)
    assert ngram_features("", 1000) == [0]


def test_model_output_shapes_and_padding_invariance() -> None:
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=50, n_labels=7, d_model=32, n_heads=4, n_layers=2, d_ff=64, ngram_buckets=100, ngram_dim=16)
    model = IntentTransformer(cfg).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]])
    grams = torch.tensor([[3, 4, 0], [5, 6, 7]])
    logits = model(ids, grams)
    assert logits.shape == (2, 7) and logits.dtype == torch.float32
    # Extra padding must not change the result (attention mask and pooling ignore it).
    longer = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    assert torch.allclose(model(longer, grams), logits, atol=1e-5)
    with pytest.raises(ValueError):
        TransformerConfig(d_model=30, n_heads=4)


def test_short_training_run_learns_banking77(trained_custom_model_dir: Path, banking77) -> None:
    metrics = json.loads((trained_custom_model_dir / "metrics.json").read_text())
    # A 6-epoch run of a tiny model already separates the 77 intents on held-out validation rows.
    assert metrics["validation_accuracy"] >= 0.80, metrics["validation_accuracy"]
    assert metrics["data_checksum"] == banking77.checksum
    t = metrics["thresholds"]
    assert 0.0 <= t["oos_threshold"] <= t["clarify_threshold"] <= 1.0
    assert t["oos_rejection"] > 0.5  # most CLINC150 out-of-scope queries fall below the threshold


def test_chat_model_contract_on_real_queries(trained_custom_model_dir: Path, banking77) -> None:
    model = CustomIntentModel(model_dir=trained_custom_model_dir)
    msg = model.invoke("My new card still hasn't arrived, where is it?")
    meta = msg.response_metadata
    assert msg.content == meta["intent"] == "card_arrival"
    assert len(meta["ranking"]) == 5 and meta["ranking"][0]["intent"] == meta["intent"]
    confs = [r["confidence"] for r in meta["ranking"]]
    assert confs == sorted(confs, reverse=True) and 0 < meta["confidence"] <= 1
    assert meta["backend"] == "custom" and meta["model_version"] == trained_custom_model_dir.name
    assert meta["latency_ms"] > 0
    # batch == one forward pass; same answers as one by one
    texts = banking77.validation.texts[:40]
    batched = [m.content for m in model.batch(texts)]
    single = [model.invoke(t).content for t in texts[:5]]
    assert batched[:5] == single
    acc = np.mean([p == y for p, y in zip(batched, banking77.validation.labels[:40])])
    assert acc >= 0.75


def test_loading_validates_the_folder(trained_custom_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(trained_custom_model_dir, broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="missing tokenizer.json"):
        load_version(broken)
    shutil.copy(trained_custom_model_dir / "tokenizer.json", broken / "tokenizer.json")
    (broken / "labels.json").write_text(json.dumps(["only_one"]))
    with pytest.raises(ArtifactError, match="labels"):
        load_version(broken)


def test_no_model_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    empty = CustomIntentModel(model_dir=tmp_path / "none")
    ok, reason = empty.availability()
    assert not ok and "none" in reason
    with pytest.raises(BackendUnavailable, match="missing"):
        empty.invoke("hello")
