"""The custom backend: our from-scratch transformer (models/transformer.py) as a chat model.

Loads one model-version folder written by ``training/custom.py`` (the newest complete one under
``<BANKING_HOME>/models/custom/``, ``models.versions`` protocol, unless a folder is given), once
per process, lazily and thread-safely. Inference runs in ONNX Runtime over the version's
``model.onnx`` (exported when the version was saved, or later with ``banking-assistant
export-onnx``; ``models.onnx_runtime``), with the inputs encoded in numpy, so that a turn does not
import torch; a version without a current graph (saved before issue 17) runs in torch over
``model.safetensors`` (``runtime="torch"`` forces that, ``"onnx-int8"`` the quantised copy). Both
are safe to share between concurrent requests.

Labels: the 77 BANKING77 intents plus ``models.labels.EXTRA_LABELS``. Internally small talk is
split into its kinds ("small_talk:greeting", ...); their probabilities are summed into
``small_talk`` and the most likely kind is returned as ``response_metadata["small_talk_kind"]``.
Logits are divided by the temperature fitted on validation (Guo et al. 2017) and the
out-of-scope logit shifted by the bias chosen on validation before the softmax;
``response_metadata["thresholds"]`` carries the guard thresholds saved with the version.

Entities (issue 16): a version trained with the entity-span head (``config.json`` ``entity_tags``,
``TransformerConfig.n_entity_labels`` > 0) tags each message's tokens in the same forward pass;
``response_metadata["entities"]`` then combines the learned spans (``models.span_tags``; values from
the rule parsers, spans whose value does not parse dropped) with the rule extractor's entities:
``entity_source="rules_first"`` (default: rule entities, plus the learned spans where no rule entity
is), ``"merged"`` (learned spans, plus the rule entities overlapping none; a rule IBAN always wins)
or ``"learned"`` (learned spans only). A version
without a head (saved before issue 16) puts no ``entities``, so the conversation falls back to the
rules with the customer's gazetteer (chains/extract.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import PrivateAttr
from tokenizers import Tokenizer

from config.settings import get_settings
from models.base import TOP_K, BackendUnavailable, IntentChatModel, IntentPrediction
from models.entities import extract_entities
from models.labels import OUT_OF_SCOPE, SMALL_TALK, public_label
from models.onnx_runtime import RUNTIMES, IntentNet, OnnxNet, TorchNet, onnx_file, stale_reason
from models.span_tags import ENTITY_TAGS, decode_spans, entities_from_spans, merge_entities
from models.tokenizer import encode_ids_offsets, load_tokenizer, ngram_array
from models.versions import is_complete, latest

ARTIFACT_FILES = ("model.safetensors", "tokenizer.json", "config.json", "labels.json", "metrics.json")
REQUIRED_FILES = ARTIFACT_FILES
log = logging.getLogger(__name__)


def calibrated_probs(logits: np.ndarray, temperature: float, oos_bias: float, oos_index: int | None) -> np.ndarray:
    """softmax(logits / temperature + bias on the out-of-scope column): logits (N, C) float ->
    probabilities (N, C) float64. ``oos_index`` None = no out-of-scope class (bias ignored)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if oos_index is not None and oos_bias:
        z[:, oos_index] += oos_bias
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def public_probs(probs: np.ndarray, classes: list[str]) -> tuple[list[str], np.ndarray]:
    """Sum the probabilities of internal classes that share a contract label (the small-talk
    kinds). probs (N, C) float over ``classes`` -> (public labels in first-seen order,
    (N, P) float64 probabilities over them)."""
    pub = [public_label(c)[0] for c in classes]
    labels = list(dict.fromkeys(pub))
    pos = {lab: i for i, lab in enumerate(labels)}
    agg = np.zeros((len(classes), len(labels)))
    agg[np.arange(len(classes)), [pos[p] for p in pub]] = 1.0
    return labels, np.asarray(probs, dtype=np.float64) @ agg


class ArtifactError(BackendUnavailable):
    """A model-version folder is missing files or is inconsistent (message says which)."""


@dataclass
class LoadedModel:
    """A validated model version: the network behind its runtime (``net``: ONNX Runtime or torch),
    tokenizer, labels (index = logit), metrics, the span head's BIO tags (index = span logit;
    [] = no span head), and the config's ``max_len`` (tokens) and ``ngram_buckets`` (0 = none)."""

    path: Path
    net: IntentNet
    tokenizer: Tokenizer
    labels: list[str]
    metrics: dict[str, Any]
    entity_tags: list[str] = field(default_factory=list)
    max_len: int = 64
    ngram_buckets: int = 0
    _torch: Any = field(default=None, repr=False)

    @property
    def model(self) -> Any:
        """The torch ``IntentTransformer`` (eval mode) of this version, for offline callers
        (calibration, evals): the runtime's own module under torch, else loaded from
        model.safetensors on first use (imports torch). Raises ``ArtifactError`` on bad weights."""
        if isinstance(self.net, TorchNet):
            return self.net.model
        if self._torch is None:
            self._torch = _torch_model(self.path)
        return self._torch

    @property
    def runtime(self) -> str:
        """The runtime that classifies: "onnx", "onnx-int8" or "torch"."""
        return self.net.runtime

    @property
    def temperature(self) -> float:
        """Softmax temperature fitted on validation (1.0 for versions without one)."""
        return float(self.metrics.get("temperature", 1.0))

    @property
    def oos_bias(self) -> float:
        """Bias added to the out_of_scope logit after the temperature (chosen on validation; 0 if none)."""
        return float(self.metrics.get("oos_logit_bias", 0.0))

    @property
    def oos_index(self) -> int | None:
        """Logit position of out_of_scope, or None for a model without that class."""
        return self.labels.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in self.labels else None

    @property
    def version(self) -> str:
        return self.path.name


def versions_root() -> Path:
    """``<BANKING_HOME>/models/custom``."""
    return get_settings().models_dir / "custom"


def latest_version(root: Path | None = None) -> Path | None:
    """The newest complete model-version folder under ``root`` (``models.versions.latest``), or None."""
    return latest(root or versions_root(), REQUIRED_FILES)


def _torch_model(path: Path) -> Any:
    """The torch ``IntentTransformer`` of a version folder in eval mode (imports torch). Raises
    ``ArtifactError`` when the config is unreadable or the weights do not match its shapes."""
    from safetensors.torch import load_file

    from models.transformer import IntentTransformer, TransformerConfig

    try:
        mcfg = TransformerConfig(**json.loads((path / "config.json").read_text())["model"])
    except (ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"Model folder {path} has an unreadable file: {e}") from e
    model = IntentTransformer(mcfg)
    try:
        model.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    except (RuntimeError, OSError) as e:
        raise ArtifactError(f"{path}: weights do not match the config: {e}") from e
    return model.eval()


def _open_net(path: Path, runtime: str, threads: int) -> IntentNet:
    """The network of ``path`` behind ``runtime`` (``models.onnx_runtime.RUNTIMES``). ``auto`` takes
    a current model.onnx, else (none, stale, unreadable, or onnxruntime missing: logged) torch.
    Raises ``ArtifactError`` when a named ONNX graph is missing, unreadable or stale, or the weights are bad."""
    if runtime not in RUNTIMES:
        raise ArtifactError(f"Unknown custom runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}.")
    if runtime != "torch":
        name = "onnx" if runtime == "auto" else runtime
        graph = path / onnx_file(name)
        why = None
        if graph.is_file():
            try:
                net = OnnxNet(graph, threads, name)
                why = stale_reason(net, path)
            except Exception as e:  # no onnxruntime, or an unreadable graph (its errors subclass Exception only)
                why = f"cannot be loaded ({type(e).__name__}: {e})"
            if why is None:
                return net
        else:
            why = "is missing"
        if runtime != "auto":
            raise ArtifactError(f"{graph} {why}: run `banking-assistant export-onnx` or choose runtime 'torch'.")
        if graph.is_file():
            log.warning("%s %s: using torch", graph, why)
    return TorchNet(_torch_model(path))


def load_version(path: Path, runtime: str = "auto", threads: int | None = None) -> LoadedModel:
    """Load and validate a model-version folder; ``runtime`` as ``models.onnx_runtime.RUNTIMES``
    (default ``auto``: the exported graph when current, else torch); ``threads``: ONNX Runtime
    intra-op threads (default ``torch_threads`` from the settings, unset = 1).

    Raises ``ArtifactError`` when a file is missing, labels and config disagree, the weights
    do not match the config's shapes (checked when torch runs them), or a named runtime's graph
    is missing or stale.
    """
    missing = [f for f in ARTIFACT_FILES if not (path / f).is_file()]
    if missing:
        raise ArtifactError(f"Model folder {path} is incomplete: missing {', '.join(missing)}.")
    try:
        cfg_dict = json.loads((path / "config.json").read_text())
        labels = json.loads((path / "labels.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
        mcfg = cfg_dict["model"]
        n_labels, vocab_size, max_len = int(mcfg["n_labels"]), int(mcfg["vocab_size"]), int(mcfg["max_len"])
        n_entity_labels, ngram_buckets = int(mcfg.get("n_entity_labels", 0)), int(mcfg.get("ngram_buckets", 0))
        entity_tags = list(cfg_dict.get("entity_tags") or (ENTITY_TAGS if n_entity_labels else []))
        tok = load_tokenizer(path / "tokenizer.json")
    except (ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"Model folder {path} has an unreadable file: {e}") from e
    if not isinstance(labels, list) or len(labels) != n_labels:
        raise ArtifactError(f"{path}: labels.json has {len(labels)} labels, config expects {n_labels}.")
    if tok.get_vocab_size() != vocab_size:
        raise ArtifactError(f"{path}: tokenizer has {tok.get_vocab_size()} tokens, config expects {vocab_size}.")
    if len(entity_tags) != n_entity_labels:
        raise ArtifactError(f"{path}: config.json has {len(entity_tags)} entity tags, the span head {n_entity_labels}.")
    net = _open_net(path, runtime, threads or get_settings().torch_threads or 1)
    return LoadedModel(path, net, tok, labels, metrics, entity_tags, max_len, ngram_buckets)


class CustomIntentModel(IntentChatModel):
    """Chat model over the from-scratch transformer (contract: models/base.py).

    ``model_dir``: a version folder; unset = newest under ``<BANKING_HOME>/models/custom``.
    Raises ``BackendUnavailable`` (from ``classify_batch``) when no trained model exists.
    """

    backend_name: ClassVar[str] = "custom"
    model_dir: Path | None = None
    batch_size: int = 64  # rows per forward pass: bigger batches pad more (measured best on 2 cores)
    runtime: str = "auto"
    """Inference runtime (``models.onnx_runtime.RUNTIMES``): "auto" (the version's model.onnx,
    torch for a version without one), "onnx", "onnx-int8" or "torch"."""
    entity_source: str = "rules_first"
    """"rules_first" (default; best on the dev set, ``python -m evals.span_head``): rule entities +
    the learned spans overlapping none; "merged": learned spans + the rule entities overlapping
    none; "learned": learned spans only."""

    _loaded: LoadedModel | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _resolve_dir(self) -> Path | None:
        return self.model_dir or latest_version()

    def load(self) -> LoadedModel:
        """Load the model once (thread-safe) and return it."""
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    path = self._resolve_dir()
                    if path is None:
                        raise BackendUnavailable(
                            f"No trained custom model under {versions_root()}. "
                            "Run `banking-assistant train custom` first."
                        )
                    self._loaded = load_version(path, self.runtime)
        return self._loaded

    @property
    def model_version(self) -> str:
        if self._loaded is not None:
            return self._loaded.version
        path = self._resolve_dir()
        return path.name if path else "untrained"

    @property
    def thresholds(self) -> dict[str, float]:
        """The out-of-scope and clarify thresholds saved with the model version."""
        return dict(self.load().metrics.get("thresholds", {}))

    def availability(self) -> tuple[bool, str]:
        path = self._resolve_dir()
        if path is None:
            return False, "no trained custom model (run `banking-assistant train custom`)"
        if not is_complete(path, REQUIRED_FILES):
            return False, f"model folder {path} is missing or incomplete"
        return True, f"model {path.name}"

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        """Batched forward pass; confidences are temperature-scaled softmax probabilities summed
        per contract label (calibrated=True). ``extra``: ``thresholds`` ({"oos_threshold",
        "clarify_threshold"} floats), when the label is small_talk ``small_talk_kind``, and with a
        span head ``entities`` (Entity dicts, see the module docstring)."""
        lm = self.load()
        saved = lm.metrics.get("thresholds", {})
        thresholds = {k: float(saved[k]) for k in ("oos_threshold", "clarify_threshold") if k in saved}
        preds: list[IntentPrediction] = []
        for i in range(0, len(texts), self.batch_size):
            chunk = texts[i : i + self.batch_size]
            t0 = time.perf_counter()
            ids, offsets = encode_ids_offsets(lm.tokenizer, chunk, lm.max_len)
            ngrams = ngram_array(chunk, lm.ngram_buckets) if lm.ngram_buckets else None
            logits, span_logits = lm.net.run(ids, ngrams)
            tags = span_logits.argmax(-1) if lm.entity_tags and span_logits is not None else None
            probs = calibrated_probs(logits, lm.temperature, lm.oos_bias, lm.oos_index)
            labels, pub = public_probs(probs, lm.labels)
            top = np.argsort(-pub, axis=1)[:, :TOP_K]
            per_query_ms = (time.perf_counter() - t0) * 1000.0 / len(chunk)
            for r, row in enumerate(top):
                ranking = [(labels[j], float(pub[r, j])) for j in row]
                extra: dict[str, Any] = {"thresholds": dict(thresholds)}
                if ranking[0][0] == SMALL_TALK:
                    kinds = [(public_label(c)[1], probs[r, j]) for j, c in enumerate(lm.labels) if c.startswith(SMALL_TALK)]
                    extra["small_talk_kind"] = max(kinds, key=lambda kv: kv[1])[0]
                if tags is not None:
                    extra["entities"] = self.entities(chunk[r], decode_spans(tags[r], offsets[r], lm.entity_tags, chunk[r]))
                preds.append(IntentPrediction(ranking[0][0], ranking[0][1], ranking, per_query_ms, extra))
        return preds

    def entities(self, text: str, spans: list[tuple[int, int, str]], now: datetime | None = None) -> list[dict]:
        """Entity dicts for ``text`` from its learned ``spans`` (start, end, label), valued by the rule
        parsers, merged with the rule entities per ``entity_source``. ``now``: reference time of
        relative dates (default: the current UTC time)."""
        now = now or datetime.now(UTC)
        rules = [e.model_dump() for e in extract_entities(text, now=now)]
        learned = entities_from_spans(text, spans, rules, now)
        if self.entity_source == "learned":
            return learned
        return merge_entities(rules, learned) if self.entity_source == "rules_first" else merge_entities(learned, rules)
