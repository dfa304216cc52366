"""The custom backend: our from-scratch transformer (models/transformer.py) as a chat model.

Loads one model-version folder written by ``training/custom.py`` (the newest under
``<BANKING_HOME>/models/custom/`` unless a folder is given), once per process, lazily and
thread-safely; inference runs under ``torch.inference_mode`` and is safe to share between
concurrent requests (the module is read-only in eval mode).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import PrivateAttr
from safetensors.torch import load_file
from tokenizers import Tokenizer

from assistant.settings import get_settings
from models.base import TOP_K, BackendUnavailable, IntentChatModel, IntentPrediction
from models.transformer import IntentTransformer, TransformerConfig
from training.tokenizer import encode_inputs, load_tokenizer

ARTIFACT_FILES = ("model.safetensors", "tokenizer.json", "config.json", "labels.json", "metrics.json")


class ArtifactError(BackendUnavailable):
    """A model-version folder is missing files or is inconsistent (message says which)."""


@dataclass
class LoadedModel:
    """A validated model version: network (eval mode), tokenizer, labels (index = logit), metrics."""

    path: Path
    model: IntentTransformer
    tokenizer: Tokenizer
    labels: list[str]
    metrics: dict[str, Any]

    @property
    def version(self) -> str:
        return self.path.name


def versions_root() -> Path:
    """``<BANKING_HOME>/models/custom``."""
    return get_settings().models_dir / "custom"


def latest_version(root: Path | None = None) -> Path | None:
    """The newest complete model-version folder under ``root`` (names sort by UTC time), or None."""
    root = root or versions_root()
    if not root.is_dir():
        return None
    done = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "metrics.json").is_file()]
    return max(done, key=lambda p: p.name) if done else None


def load_version(path: Path) -> LoadedModel:
    """Load and validate a model-version folder.

    Raises ``ArtifactError`` when a file is missing, labels and config disagree, or the weights
    do not match the config's shapes.
    """
    missing = [f for f in ARTIFACT_FILES if not (path / f).is_file()]
    if missing:
        raise ArtifactError(f"Model folder {path} is incomplete: missing {', '.join(missing)}.")
    try:
        cfg_dict = json.loads((path / "config.json").read_text())
        labels = json.loads((path / "labels.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
        mcfg = TransformerConfig(**cfg_dict["model"])
        tok = load_tokenizer(path / "tokenizer.json")
    except (ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"Model folder {path} has an unreadable file: {e}") from e
    if not isinstance(labels, list) or len(labels) != mcfg.n_labels:
        raise ArtifactError(f"{path}: labels.json has {len(labels)} labels, config expects {mcfg.n_labels}.")
    if tok.get_vocab_size() != mcfg.vocab_size:
        raise ArtifactError(f"{path}: tokenizer has {tok.get_vocab_size()} tokens, config expects {mcfg.vocab_size}.")
    model = IntentTransformer(mcfg)
    try:
        model.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    except (RuntimeError, OSError) as e:
        raise ArtifactError(f"{path}: weights do not match the config: {e}") from e
    model.eval()
    return LoadedModel(path, model, tok, labels, metrics)


class CustomIntentModel(IntentChatModel):
    """Chat model over the from-scratch transformer (contract: models/base.py).

    ``model_dir``: a version folder; unset = newest under ``<BANKING_HOME>/models/custom``.
    Raises ``BackendUnavailable`` (from ``classify_batch``) when no trained model exists.
    """

    backend_name: ClassVar[str] = "custom"
    model_dir: Path | None = None
    batch_size: int = 64  # rows per forward pass: bigger batches pad more (measured best on 2 cores)

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
                    self._loaded = load_version(path)
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
        if not (path / "metrics.json").is_file():
            return False, f"model folder {path} is missing or incomplete"
        return True, f"model {path.name}"

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        """Batched forward pass; confidences are softmax probabilities (calibrated=True)."""
        lm = self.load()
        preds: list[IntentPrediction] = []
        for i in range(0, len(texts), self.batch_size):
            chunk = texts[i : i + self.batch_size]
            t0 = time.perf_counter()
            with torch.inference_mode():
                cfg = lm.model.cfg
                ids, ngrams = encode_inputs(lm.tokenizer, chunk, cfg.max_len, cfg.ngram_buckets)
                probs = torch.softmax(lm.model(ids, ngrams), dim=-1)
                top_p, top_i = probs.topk(min(TOP_K, probs.shape[1]), dim=-1)
            per_query_ms = (time.perf_counter() - t0) * 1000.0 / len(chunk)
            for p_row, i_row in zip(top_p.tolist(), top_i.tolist()):
                ranking = [(lm.labels[j], float(p)) for j, p in zip(i_row, p_row)]
                preds.append(IntentPrediction(ranking[0][0], ranking[0][1], ranking, per_query_ms))
        return preds
