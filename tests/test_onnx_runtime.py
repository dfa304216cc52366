"""The custom model's ONNX runtime (issue 17): a tiny random IntentTransformer exported with
``training.onnx_export`` gives the torch module's logits (within 1e-4) and span tags (equal) for
any batch and length; a version without a graph, or with a stale one, runs in torch; inference
over an exported version does not import torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models.custom import ArtifactError, CustomIntentModel, load_version
from models.onnx_runtime import INT8_FILE, ONNX_FILE
from models.span_tags import ENTITY_TAGS
from models.tokenizer import encode_ids_offsets, ngram_array
from models.transformer import IntentTransformer, TransformerConfig
from models.versions import MARKER, is_complete, seal
from training.onnx_export import export_version
from training.tokenizer import train_tokenizer

REPO = Path(__file__).resolve().parent.parent
LABELS = ["card_arrival", "lost_or_stolen_card", "transfer", "check_balance", "small_talk:greeting",
          "small_talk:thank_you", "out_of_scope"]
CORPUS = ["where is my new card", "my card was stolen", "send £25 to Mark Thompson on friday",
          "what is my balance", "hello there", "thanks a lot", "how do i cook pasta", "transfer money to my savings"]
TEXTS = ["whats my balance", "", "send £25 to Mark Thompson", "hello", "Crème brûlée for my café, thanks!",
         "my card my card my card was stolen again and again and again and again and again and again"]


def _version(folder: Path, ngrams: bool, spans: bool) -> Path:
    """A sealed version folder of a tiny random model (weights std 0.3, so logits are not ~0)."""
    torch.manual_seed(0)
    tok = train_tokenizer(CORPUS, vocab_size=200)
    cfg = TransformerConfig(vocab_size=tok.get_vocab_size(), n_labels=len(LABELS), max_len=12, d_model=32, n_heads=2,
                            n_layers=2, d_ff=64, ngram_buckets=509 if ngrams else 0, ngram_dim=16,
                            n_entity_labels=len(ENTITY_TAGS) if spans else 0)
    model = IntentTransformer(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
        model.tok.emb.weight[0].zero_()
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    tok.save(str(folder / "tokenizer.json"))
    tags = list(ENTITY_TAGS) if spans else []
    (folder / "config.json").write_text(json.dumps({"model": cfg.to_dict(), "entity_tags": tags}))
    (folder / "labels.json").write_text(json.dumps(LABELS))
    (folder / "metrics.json").write_text(json.dumps({"temperature": 0.8, "oos_logit_bias": 0.5,
                                                      "thresholds": {"oos_threshold": 0.3, "clarify_threshold": 0.5}}))
    seal(folder)
    return folder


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny versions (n-grams + span head; neither), each saved without a graph, then exported
    with ``export_version`` (fp32 and int8)."""
    root = tmp_path_factory.mktemp("onnx_versions")
    out = {}
    for name, ngrams, spans in (("full", True, True), ("plain", False, False)):
        folder = _version(root / name, ngrams, spans)
        shutil.copytree(folder, root / f"{name}-old")  # as saved before issue 17: no graph
        written = export_version(folder, int8=name == "full")
        assert [p.name for p in written] == ([ONNX_FILE, INT8_FILE] if name == "full" else [ONNX_FILE])
        out[name], out[f"{name}-old"] = folder, root / f"{name}-old"
    return out


@pytest.mark.parametrize("name", ["full", "plain"])
def test_onnx_gives_the_torch_logits_and_spans(versions: dict[str, Path], name: str) -> None:
    onnx_lm, torch_lm = load_version(versions[name], "onnx"), load_version(versions[name], "torch")
    assert (onnx_lm.runtime, torch_lm.runtime) == ("onnx", "torch")
    for batch in (TEXTS, TEXTS[:1], TEXTS[2:4] * 5):  # dynamic batch and sequence lengths
        ids, _ = encode_ids_offsets(onnx_lm.tokenizer, batch, onnx_lm.max_len)
        grams = ngram_array(batch, onnx_lm.ngram_buckets) if onnx_lm.ngram_buckets else None
        o_logits, o_spans = onnx_lm.net.run(ids, grams)
        t_logits, t_spans = torch_lm.net.run(ids, grams)
        assert o_logits.shape == (len(batch), len(LABELS))
        assert np.abs(t_logits).max() > 1.0  # not a degenerate all-zero comparison
        np.testing.assert_allclose(o_logits, t_logits, atol=1e-4, rtol=0)
        if name == "full":
            assert o_spans.shape == (len(batch), ids.shape[1], len(ENTITY_TAGS))
            assert (o_spans.argmax(-1) == t_spans.argmax(-1)).all()
            np.testing.assert_allclose(o_spans, t_spans, atol=1e-4, rtol=0)
        else:
            assert o_spans is None and t_spans is None
    got = CustomIntentModel(model_dir=versions[name], entity_source="learned").classify_batch(TEXTS)
    want = CustomIntentModel(model_dir=versions[name], runtime="torch", entity_source="learned").classify_batch(TEXTS)
    assert [p.intent for p in got] == [p.intent for p in want]
    assert [p.confidence for p in got] == pytest.approx([p.confidence for p in want], abs=1e-5)
    assert [p.extra.get("entities") for p in got] == [p.extra.get("entities") for p in want]


def test_export_reseals_the_version_and_int8_loads(versions: dict[str, Path]) -> None:
    folder = versions["full"]
    listed = json.loads((folder / MARKER).read_text())["files"]
    assert listed[ONNX_FILE] == (folder / ONNX_FILE).stat().st_size and INT8_FILE in listed
    assert is_complete(folder)
    int8, fp32 = load_version(folder, "onnx-int8"), load_version(folder, "onnx")
    ids, _ = encode_ids_offsets(int8.tokenizer, TEXTS, int8.max_len)
    grams = ngram_array(TEXTS, int8.ngram_buckets)
    q, f = int8.net.run(ids, grams)[0], fp32.net.run(ids, grams)[0]
    assert int8.runtime == "onnx-int8" and q.shape == f.shape
    assert 0 < np.abs(q - f).max() < 0.25 * np.abs(f).max()  # quantised: close, not identical


def test_a_version_without_a_graph_runs_in_torch(versions: dict[str, Path]) -> None:
    old = versions["full-old"]
    assert not (old / ONNX_FILE).exists()
    lm = load_version(old)
    assert lm.runtime == "torch" and lm.model.span_head is not None
    new = CustomIntentModel(model_dir=versions["full"]).classify_batch(TEXTS)
    assert [p.intent for p in CustomIntentModel(model_dir=old).classify_batch(TEXTS)] == [p.intent for p in new]
    with pytest.raises(ArtifactError, match="model.onnx is missing"):
        load_version(old, "onnx")
    with pytest.raises(ArtifactError, match="Unknown custom runtime 'tensorrt'"):
        load_version(old, "tensorrt")


def test_a_stale_or_broken_graph_is_not_used(versions: dict[str, Path], tmp_path: Path) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(versions["plain"], changed)
    cfg = json.loads((changed / "config.json").read_text())
    cfg["model"]["dropout"] = 0.2  # config.json edited after the export
    (changed / "config.json").write_text(json.dumps(cfg))
    assert load_version(changed).runtime == "torch"
    with pytest.raises(ArtifactError, match="exported from another config or weights"):
        load_version(changed, "onnx")
    broken = tmp_path / "broken"
    shutil.copytree(versions["plain"], broken)
    (broken / ONNX_FILE).write_bytes(b"not a graph")
    assert load_version(broken).runtime == "torch"
    with pytest.raises(ArtifactError, match="cannot be loaded"):
        load_version(broken, "onnx")


def test_inference_over_a_graph_does_not_import_torch(versions: dict[str, Path]) -> None:
    code = ("import sys; from models.custom import CustomIntentModel; "
            f"m = CustomIntentModel(model_dir={str(versions['full'])!r}); p = m.classify_batch(['send £25 to Mark']); "
            "print(m.load().runtime, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["onnx", "False"]
