"""The custom model's learned entity-span head (issue 16): BIO alignment of character spans to
tokens and back, the span loss only on annotated rows, the head trained in the shared small
fixture run, backward-compatible loading of versions without a head, and entities in
``response_metadata``."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.custom import ArtifactError, CustomIntentModel, load_version
from models.span_tags import ENTITY_TAGS, decode_spans, encode_with_offsets, merge_entities, span_value
from models.transformer import IntentTransformer, TransformerConfig
from training.spans import IGNORE, TAG_ID, align_tags, span_loss, tag_targets
from training.tokenizer import train_tokenizer

TEXTS = ["send £25 to Mark Thompson", "pay Northside Energy EUR 1,250.50 from my euro account", "what is a card fee"]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXTS * 3, vocab_size=200)


def test_spans_align_to_bio_tags_and_decode_back(tok) -> None:
    spans = [{"start": 5, "end": 8, "label": "amount"}, {"start": 12, "end": 25, "label": "payee"}]
    _, (offsets,) = encode_with_offsets(tok, TEXTS[:1], 64)
    tags = align_tags(offsets, spans)
    words = [(TEXTS[0][s:e], ENTITY_TAGS[t]) for (s, e), t in zip(offsets, tags)]
    assert words[0] == ("send", "O")
    assert [w for w in words if w[1] != "O"][0][1] == "B-amount"
    assert ("mark", "B-payee") in [(w.lower(), t) for w, t in words] and ("thompson", "I-payee") in [(w.lower(), t) for w, t in words]
    assert decode_spans(tags, offsets) == [(5, 8, "amount"), (12, 25, "payee")]


def test_decode_joins_glued_pieces_but_not_separate_words() -> None:
    offsets = [(0, 4), (5, 6), (6, 8), (9, 11), (12, 16), (17, 25)]  # "send £ 25 to Mark Thompson"
    b, i = TAG_ID["B-amount"], TAG_ID["I-payee"]
    assert decode_spans([0, b, b, 0, TAG_ID["B-payee"], i], offsets) == [(5, 8, "amount"), (12, 25, "payee")]
    # two B-payee words with a space between are two spans (a glued piece is one)
    assert decode_spans([0, 0, 0, 0, TAG_ID["B-payee"], TAG_ID["B-payee"]], offsets) == [(12, 16, "payee"), (17, 25, "payee")]
    # with the text, the pieces of one written word stay together whatever their own tags
    text, pieces = "send £150 to Mrak", [(0, 4), (5, 7), (7, 9), (10, 12), (13, 14), (14, 17)]  # "£1" "50", "m" "rak"
    tags = [0, b, 0, 0, 0, TAG_ID["B-payee"]]
    assert decode_spans(tags, pieces) == [(5, 7, "amount"), (14, 17, "payee")]
    assert decode_spans(tags, pieces, text=text) == [(5, 9, "amount"), (13, 17, "payee")]
    # punctuation glued to a span but tagged O stays out ("£25" ".")
    assert decode_spans([b, b, 0], [(0, 1), (1, 3), (3, 4)], text="£25.") == [(0, 3, "amount")]


def test_rows_without_spans_give_no_span_loss(tok) -> None:
    targets = tag_targets(tok, TEXTS, [[{"start": 5, "end": 8, "label": "amount"}], None, []], 64, 16)
    assert (targets[1] == IGNORE).all()                       # no annotation: no loss at all
    assert (targets[2][targets[2] != IGNORE] == TAG_ID["O"]).all() and (targets[2] != IGNORE).any()  # all-O row
    assert span_loss(torch.zeros(1, 16, len(ENTITY_TAGS)), targets[1:2]) is None
    logits = torch.zeros(3, 16, len(ENTITY_TAGS), requires_grad=True)
    span_loss(logits, targets).backward()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[0].abs().sum() > 0


def test_model_without_head_refuses_span_output() -> None:
    m = IntentTransformer(TransformerConfig(vocab_size=50, n_labels=3, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    assert m.span_head is None
    with pytest.raises(ValueError, match="no entity-span head"):
        m(torch.ones(1, 4, dtype=torch.long), with_spans=True)


def test_span_values_use_the_rule_parsers() -> None:
    now = datetime(2025, 6, 18, 12, 0)
    assert span_value("amount", "£25", now) == {"amount": "25.00", "currency": "GBP"}
    assert span_value("card", "4821", now) == {"last4": "4821"}
    assert span_value("account", "euro", now) == {"currency": "EUR"}
    assert span_value("date", "yesterday", now) == {"from": "2025-06-17", "to": "2025-06-17"}
    assert span_value("payee", "Mark Thompson", now) == "Mark Thompson"
    assert span_value("amount", "tickets", now) is None
    merged = merge_entities([{"start": 0, "end": 4, "label": "payee"}],
                            [{"start": 2, "end": 6, "label": "merchant"}, {"start": 8, "end": 12, "label": "iban"}])
    assert [(d["start"], d["label"]) for d in merged] == [(0, "payee"), (8, "iban")]
    # an IBAN found by the rules replaces the learned spans inside it
    merged = merge_entities([{"start": 0, "end": 4, "label": "payee"}, {"start": 9, "end": 13, "label": "amount"}],
                            [{"start": 8, "end": 30, "label": "iban"}])
    assert [(d["start"], d["label"]) for d in merged] == [(0, "payee"), (8, "iban")]


def test_head_trains_and_tags_amount_and_payee(trained_custom_model_dir: Path) -> None:
    lm = load_version(trained_custom_model_dir)
    assert lm.model.cfg.n_entity_labels == len(ENTITY_TAGS) and lm.entity_tags == ENTITY_TAGS
    assert lm.metrics["span_validation"]["f1"] > 0.5  # generated validation rows, exact spans
    model = CustomIntentModel(model_dir=trained_custom_model_dir, entity_source="learned")
    (pred,) = model.classify_batch(["send £25 to Mark Thompson"])
    got = {(e["label"], e["text"]) for e in pred.extra["entities"]}
    assert got == {("amount", "£25"), ("payee", "Mark Thompson")}


def test_entities_reach_response_metadata(trained_custom_model_dir: Path) -> None:
    msg = CustomIntentModel(model_dir=trained_custom_model_dir).invoke("send £25 to Mark Thompson")
    ents = {e["label"]: e for e in msg.response_metadata["entities"]}
    assert ents["amount"]["value"] == {"amount": "25.00", "currency": "GBP"}
    assert (ents["amount"]["start"], ents["amount"]["end"]) == (5, 8)
    assert ents["payee"]["text"] == "Mark Thompson" and ents["payee"]["value"] == "Mark Thompson"


def test_version_without_a_head_still_loads(trained_custom_model_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(trained_custom_model_dir, old)
    cfg = json.loads((old / "config.json").read_text())
    del cfg["model"]["n_entity_labels"], cfg["entity_tags"]  # config.json as saved before issue 16
    (old / "config.json").write_text(json.dumps(cfg))
    weights = {k: v for k, v in load_file(str(old / "model.safetensors")).items() if not k.startswith("span_head.")}
    save_file(weights, str(old / "model.safetensors"))
    lm = load_version(old)
    assert lm.model.span_head is None and lm.entity_tags == []
    msg = CustomIntentModel(model_dir=old).invoke("send £25 to Mark Thompson")
    assert msg.content == CustomIntentModel(model_dir=trained_custom_model_dir).invoke("send £25 to Mark Thompson").content
    assert "entities" not in msg.response_metadata  # the conversation falls back to the rules
    cfg["entity_tags"] = ["O"]  # tags that disagree with the (absent) head
    (old / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="entity tags"):
        load_version(old)


def test_only_generated_request_rows_carry_spans(banking77, tmp_path: Path) -> None:
    from config.settings import get_settings
    from models.labels import REQUEST_LABELS
    from training.custom import TrainConfig, build_rows, label_space
    from training.data import load_extras
    from training.spans import row_spans

    extras = load_extras()
    classes = label_space(banking77.intents, extras)
    cfg = TrainConfig(aug_copies=0, outlier_rows=10, outlier_aug_copies=0, request_repeat=2)
    rows, _ = build_rows(banking77, extras, classes, cfg, False, tmp_path, False, train_limit=50)
    spans = row_spans(rows.texts, rows.source, get_settings().seed)
    n_requests = sum(y in REQUEST_LABELS for y in extras.train.labels)
    annotated = [i for i, sp in enumerate(spans) if sp is not None]
    assert len(annotated) == 2 * n_requests  # each generated row twice (request_repeat=2), all with spans
    assert all(classes[rows.gold[i]] in REQUEST_LABELS and rows.source[i] == "extra" for i in annotated)
    assert any(spans[i] for i in annotated)  # real spans, not only all-O rows
    assert all(spans[i] is None for i, s in enumerate(rows.source) if s in ("banking77", "outlier"))
    o = row_spans(rows.texts, rows.source, get_settings().seed, o_sources=("banking77",))
    assert all(o[i] == [] for i, s in enumerate(rows.source) if s == "banking77")
