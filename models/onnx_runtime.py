"""Inference runtimes of the custom model (issue 17): ONNX Runtime over the exported graph
(``model.onnx``, written by ``training/onnx_export.py`` when a version is saved), torch over
``model.safetensors`` as the fallback for versions saved without it.

Both give the same numpy interface, ``IntentNet.run(ids, ngram_ids) -> (logits, span_logits)``:
ids (B, T) int64 right-padded with 0, ngram_ids (B, F) int64 (0 = padding) or None for a model
without the n-gram branch -> intent logits (B, n_labels) float32 and, with a span head, BIO tag
logits (B, T, n_entity_labels) float32 (else None). ONNX Runtime is imported on first use,
torch only by the fallback, so inference over an exported version never imports torch.

Provenance: the exporter stores in the graph's metadata (key ``PROVENANCE_KEY``) the JSON of the
version's ``config.json`` model section, its entity tags and the byte size of
``model.safetensors``; a graph whose record disagrees with the folder (the weights or config
were changed after the export) is stale, and ``stale_reason`` says why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

ONNX_FILE = "model.onnx"
"""The fp32 graph in a version folder."""
INT8_FILE = "model.int8.onnx"
"""The int8 dynamic-quantised copy (weights of MatMul/Gemm in int8; optional)."""
PROVENANCE_KEY = "banking_assistant.provenance"
RUNTIMES = ("auto", "onnx", "onnx-int8", "torch")
"""``auto``: the fp32 ONNX graph when the folder has a current one, else torch; ``onnx`` /
``onnx-int8``: that graph (an error without it); ``torch``: the safetensors weights."""


def provenance(model_config: dict[str, Any], entity_tags: list[str], weights_bytes: int) -> str:
    """The provenance record (canonical JSON) of a graph exported from these files."""
    return json.dumps({"model": model_config, "entity_tags": list(entity_tags), "weights_bytes": int(weights_bytes)},
                      sort_keys=True)


def folder_provenance(folder: Path) -> str:
    """The provenance record a graph exported from ``folder`` now would carry (reads config.json
    and the size of model.safetensors). Raises ``OSError``/``ValueError``/``KeyError`` on unreadable files."""
    cfg = json.loads((folder / "config.json").read_text())
    tags = cfg.get("entity_tags") or []
    return provenance(cfg["model"], tags, (folder / "model.safetensors").stat().st_size)


class IntentNet(Protocol):
    """A loaded network: ``run(ids (B, T) int64, ngram_ids (B, F) int64 | None) -> (logits (B, C)
    float32, span logits (B, T, K) float32 | None)``; ``runtime`` names it ("onnx", "onnx-int8", "torch")."""

    runtime: str

    def run(self, ids: np.ndarray, ngram_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]: ...


class OnnxNet:
    """An ONNX Runtime session over an exported graph (inputs ``ids`` [, ``ngram_ids``]; outputs
    ``logits`` [, ``span_logits``]). ``threads``: intra-op threads (1 = no thread pool, the
    right choice on a shared 2-core host; more threads do not spin while idle). Sessions are
    safe to run from several threads at once. Raises ``onnxruntime`` errors on an unreadable graph."""

    def __init__(self, path: Path, threads: int = 1, runtime: str = "onnx") -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # errors only: no warnings on stderr of the CLI
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.runtime = runtime

    def run(self, ids: np.ndarray, ngram_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        feed = {"ids": ids}
        if "ngram_ids" in self.inputs:
            if ngram_ids is None:
                raise ValueError("this model has an n-gram branch: pass ngram_ids")
            feed["ngram_ids"] = ngram_ids
        out = self.session.run(None, feed)
        return out[0], (out[1] if len(out) > 1 else None)


class TorchNet:
    """The torch module (``models.transformer.IntentTransformer`` in eval mode) behind the same
    numpy interface; runs under ``torch.inference_mode``."""

    runtime = "torch"

    def __init__(self, model: Any) -> None:
        self.model = model

    def run(self, ids: np.ndarray, ngram_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        with torch.inference_mode():
            grams = None if ngram_ids is None else torch.from_numpy(ngram_ids)
            if self.model.span_head is not None:
                logits, spans = self.model(torch.from_numpy(ids), grams, with_spans=True)
                return logits.numpy(), spans.numpy()
            return self.model(torch.from_numpy(ids), grams).numpy(), None


def onnx_file(runtime: str) -> str:
    """The graph file of an ONNX runtime name ("onnx" -> model.onnx, "onnx-int8" -> model.int8.onnx)."""
    return INT8_FILE if runtime == "onnx-int8" else ONNX_FILE


def stale_reason(net: OnnxNet, folder: Path) -> str | None:
    """Why the graph of ``net`` does not belong to ``folder``'s current config and weights, or None."""
    try:
        expected = folder_provenance(folder)
    except (OSError, ValueError, KeyError) as e:
        return f"cannot read the folder's config/weights: {e}"
    got = net.metadata.get(PROVENANCE_KEY)
    if got is None:
        return "the graph has no provenance record"
    return None if got == expected else "the graph was exported from another config or weights file"
