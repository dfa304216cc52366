"""Training side of the custom model's entity-span head (issue 16): gold character spans -> BIO
tag targets over the tokenizer's tokens (HF ``tokenizers`` offsets), and span scores of a trained
model on annotated rows. Tags and decoding: ``models/span_tags.py``.

Which rows carry spans: the generated request rows (``training.requests.generate_requests``, the
same seeded draw ``training.data.load_extras`` adds to the training split), matched by text. All
other rows (BANKING77, CLINC150, augmented copies whose words moved) get target -100 on every
token, so they add no span loss, unless ``o_sources`` names their source: then they count as
"no entity anywhere" (all "O").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tokenizers import Tokenizer

from models.span_tags import ENTITY_LABELS, ENTITY_TAGS, Span, decode_spans, encode_with_offsets

IGNORE = -100
TAG_ID = {t: i for i, t in enumerate(ENTITY_TAGS)}


def request_spans(seed: int) -> dict[str, list[dict]]:
    """text -> gold spans ``[{"start", "end", "label", ...}]`` of the generated request rows of the
    training split (seed = the settings' seed, as ``training.data.load_extras`` draws them)."""
    from training.data import REQUEST_ROWS_TRAIN
    from training.requests import generate_requests

    return {r["text"]: r["spans"] for r in generate_requests(seed, REQUEST_ROWS_TRAIN)}


def validation_requests(seed: int) -> list[dict]:
    """The validation split's generated request rows (``training.data.load_extras``'s second draw)."""
    from training.data import REQUEST_ROWS_TRAIN, REQUEST_ROWS_VALIDATION
    from training.requests import generate_requests

    train = {r["text"] for r in generate_requests(seed, REQUEST_ROWS_TRAIN)}
    return [r for r in generate_requests(seed + 7919, REQUEST_ROWS_VALIDATION) if r["text"] not in train]


def align_tags(offsets: Sequence[tuple[int, int]], spans: Sequence[dict]) -> list[int]:
    """BIO tag ids, one per token: a token inside (or overlapping) a gold span of a scored label is
    ``B-label`` when it is the span's first token, else ``I-label``; other tokens ``O``;
    zero-width tokens ``IGNORE``. ``offsets``: the tokens' (start, end) characters."""
    out = []
    seen: set[int] = set()
    for s, e in offsets:
        if e <= s:
            out.append(IGNORE)
            continue
        hit = next((k for k, sp in enumerate(spans) if sp["label"] in ENTITY_LABELS and s < sp["end"] and e > sp["start"]), None)
        if hit is None:
            out.append(TAG_ID["O"])
            continue
        out.append(TAG_ID[("I-" if hit in seen else "B-") + spans[hit]["label"]])
        seen.add(hit)
    return out


def tag_targets(tok: Tokenizer, texts: list[str], spans: Sequence[list[dict] | None], max_len: int, width: int) -> torch.Tensor:
    """Targets (N, width) int64 for the span loss: ``align_tags`` for rows whose ``spans`` is a list
    ([] = all "O"), ``IGNORE`` for rows with None and for padding. ``width``: the token tensor's T."""
    out = torch.full((len(texts), width), IGNORE, dtype=torch.long)
    rows = [i for i, sp in enumerate(spans) if sp is not None]
    for start in range(0, len(rows), 2048):
        chunk = rows[start : start + 2048]
        _, offsets = encode_with_offsets(tok, [texts[i] for i in chunk], max_len)
        for i, off in zip(chunk, offsets):
            tags = align_tags(off[:width], spans[i])
            out[i, : len(tags)] = torch.tensor(tags, dtype=torch.long)
    return out


def row_spans(texts: list[str], source: list[str], seed: int, o_sources: Sequence[str] = ()) -> list[list[dict] | None]:
    """Per training row: the gold spans of an un-augmented generated request row, [] for a row whose
    source is in ``o_sources`` (taught as all "O"), else None (no span loss)."""
    index = request_spans(seed)
    out: list[list[dict] | None] = []
    for t, src in zip(texts, source):
        if src == "extra" and t in index:
            out.append(index[t])
        elif src in o_sources:
            out.append([])
        else:
            out.append(None)
    return out


@torch.no_grad()
def predict_spans(model, tok: Tokenizer, texts: list[str], batch_size: int = 256) -> list[list[Span]]:
    """Learned spans (start, end, label) per text from a model with a span head (eval mode)."""
    from models.tokenizer import encode_ngrams

    model.eval()
    out: list[list[Span]] = []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i : i + batch_size]
        ids, offsets = encode_with_offsets(tok, chunk, model.cfg.max_len)
        grams = encode_ngrams(chunk, model.cfg.ngram_buckets) if model.cfg.ngram_buckets else None
        _, span_logits = model(ids, grams, with_spans=True)
        tags = span_logits.argmax(-1).numpy()
        out += [decode_spans(tags[r], offsets[r], text=chunk[r]) for r, _ in enumerate(chunk)]
    return out


def span_f1(gold: Sequence[Sequence[dict]], pred: Sequence[Sequence[Span]]) -> dict:
    """Exact-match micro precision / recall / F1 of predicted spans against gold span dicts."""
    tp = fp = fn = 0
    for g, p in zip(gold, pred):
        gs = {(s["start"], s["end"], s["label"]) for s in g if s["label"] in ENTITY_LABELS}
        ps = set(p)
        tp, fp, fn = tp + len(gs & ps), fp + len(ps - gs), fn + len(gs - ps)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(prec, 4), "recall": round(rec, 4),
            "f1": round(2 * prec * rec / (prec + rec), 4) if prec + rec else 0.0, "n": len(gold)}


def span_loss(span_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
    """Token cross-entropy over the annotated tokens of a batch (``IGNORE`` skipped); None when the
    batch has none. span_logits (B, T, E) float, targets (B, T) int64."""
    if not bool((targets != IGNORE).any()):
        return None
    return torch.nn.functional.cross_entropy(span_logits.reshape(-1, span_logits.size(-1)), targets.reshape(-1),
                                             ignore_index=IGNORE)

