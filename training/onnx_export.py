"""Export the custom transformer to ONNX (issue 17): ``model.onnx`` beside the weights of a version
folder, so that inference runs in ONNX Runtime without torch (``models.onnx_runtime``).

Called when a version is saved (``training/custom.py``) and, for versions saved before, by
``banking-assistant export-onnx [VERSION]`` (``export_version``). The graph takes ``ids`` (B, T)
int64 and, with the n-gram branch, ``ngram_ids`` (B, F) int64, batch and lengths dynamic, and gives
``logits`` (B, n_labels) float32 and, with a span head, ``span_logits`` (B, T, n_entity_labels).
It is traced from the model's own ``forward`` by the torch.export-based exporter
(``torch.onnx.export(dynamo=True)``); only the n-gram ``nn.EmbeddingBag`` (mean, padding 0), which
ONNX has no operator for, is swapped for the same arithmetic written as a masked mean of an
embedding lookup over the same weight. The graph's metadata records the config and weights it
came from (``models.onnx_runtime.provenance``); a later change to them makes it stale.

``int8=True`` also writes ``model.int8.onnx``: ONNX Runtime's dynamic quantisation (int8 weights
of the MatMul/Gemm layers, activations quantised per batch at run time; embeddings stay fp32).
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import onnx
import torch
from torch import nn

from models.onnx_runtime import INT8_FILE, ONNX_FILE, PROVENANCE_KEY, folder_provenance
from models.transformer import IntentTransformer
from models.versions import is_complete, seal


class MaskedMeanBag(nn.Module):
    """``nn.EmbeddingBag(mode="mean", padding_idx=0)`` as exportable arithmetic over the same weight:
    ids (B, F) int64 -> mean of the non-zero ids' rows (B, dim) float32 (zeros for an all-padding row)."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)

    def forward(self, ngram_ids: torch.Tensor) -> torch.Tensor:
        mask = (ngram_ids != 0).unsqueeze(-1).to(self.weight.dtype)
        return (nn.functional.embedding(ngram_ids, self.weight) * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class _WithNgrams(nn.Module):
    def __init__(self, model: IntentTransformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, ngram_ids: torch.Tensor):  # noqa: ANN201
        return self.model(ids, ngram_ids, with_spans=self.model.span_head is not None)


class _IdsOnly(_WithNgrams):
    def forward(self, ids: torch.Tensor):  # noqa: ANN201
        return self.model(ids, None, with_spans=self.model.span_head is not None)


def _exportable(model: IntentTransformer) -> nn.Module:
    """A copy of ``model`` in eval mode with the n-gram bag swapped for ``MaskedMeanBag``, wrapped
    so that its forward takes exactly the graph's inputs."""
    m = copy.deepcopy(model).eval()
    if m.ngrams is not None:
        m.ngrams = MaskedMeanBag(model.ngrams.bag.weight)
        return _WithNgrams(m)
    return _IdsOnly(m)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and quantiser's warnings (missing torchvision operators, "consider
    pre-processing"): they are about other models, not this one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def _replace(src: Path, dst: Path) -> Path:
    os.replace(src, dst)
    return dst


def export_onnx(model: IntentTransformer, folder: Path, int8: bool = False) -> list[Path]:
    """Write ``folder/model.onnx`` (and with ``int8`` ``folder/model.int8.onnx``) for ``model``,
    whose config.json and model.safetensors are already in ``folder`` (the provenance is read from
    them). Each file is written under a temporary name and renamed into place. Returns the paths
    written. Raises ``torch.onnx`` / ``onnx`` errors when the model cannot be exported."""
    folder = Path(folder)
    record = folder_provenance(folder)
    net = _exportable(model)
    cfg = model.cfg
    B, T, F = 2, min(5, cfg.max_len), 7  # example sizes: >1 so that no axis is specialised
    ids = torch.randint(1, cfg.vocab_size, (B, T))
    args: tuple[torch.Tensor, ...] = (ids,)
    names, shapes = ["ids"], [{0: "batch", 1: "seq"}]
    if model.ngrams is not None:
        args += (torch.randint(1, cfg.ngram_buckets, (B, F)),)
        names.append("ngram_ids")
        shapes.append({0: "batch", 1: "ngrams"})
    outputs = ["logits"] + (["span_logits"] if model.span_head is not None else [])
    tmp = folder / f".{ONNX_FILE}.tmp"
    with _quiet():
        prog = torch.onnx.export(net, args, input_names=names, output_names=outputs, dynamic_shapes=tuple(shapes),
                                 dynamo=True, verbose=False)
    proto = prog.model_proto
    onnx.helper.set_model_props(proto, {PROVENANCE_KEY: record})
    onnx.save_model(proto, str(tmp))
    written = [_replace(tmp, folder / ONNX_FILE)]
    if int8:
        written.append(quantize_int8(folder / ONNX_FILE, folder / INT8_FILE))
    return written


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation of the graph ``src`` into ``dst`` (MatMul/Gemm weights int8,
    per-channel off; the provenance record kept). Returns ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = dst.with_name(f".{dst.name}.tmp")
    with _quiet():
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    proto = onnx.load(str(tmp))
    record = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    onnx.helper.set_model_props(proto, record)
    onnx.save_model(proto, str(tmp))
    return _replace(tmp, dst)


def export_version(path: Path, int8: bool = False) -> list[Path]:
    """Export an existing version folder (one saved without a graph, or whose graph is stale) and
    re-seal its ``COMPLETE`` marker so the new files are listed. Raises
    ``models.custom.ArtifactError`` when the folder is not a complete, loadable version."""
    from models.custom import REQUIRED_FILES, ArtifactError, load_version

    path = Path(path)
    if not is_complete(path, REQUIRED_FILES):
        raise ArtifactError(f"{path} is not a complete custom model version.")
    written = export_onnx(load_version(path, runtime="torch").model, path, int8=int8)
    seal(path, REQUIRED_FILES)
    return written
