"""Loading a peft version folder as the in-process runtime (transformers + peft, no server)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.base import BackendUnavailable
from models.peft.prompt import label_token_ids, resize_for_labels
from models.peft.scorer import LabelScorer
from models.peft.settings import PeftSettings
from models.versions import is_complete

ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
VERSION_FILES = (f"{ADAPTER_DIR}/adapter_config.json", f"{TOKENIZER_DIR}/tokenizer.json",
                 "labels.json", "prompt.json", "base.json", "metrics.json")


def is_version(path: Path) -> bool:
    """True when ``path`` is a sealed, complete peft version (see ``models.versions``)."""
    return is_complete(Path(path), VERSION_FILES)


@dataclass
class LocalRuntime:
    """A loaded version: ``scorer`` (merged model + tokenizer), ``version`` (folder name),
    ``metrics`` (its metrics.json, holding ``thresholds``)."""

    scorer: LabelScorer
    version: str
    metrics: dict[str, Any]


def nf4_config() -> Any:
    """bitsandbytes 4-bit NF4 with double quantisation (QLoRA, Dettmers et al. 2023, arXiv
    2305.14314); compute dtype bfloat16 on CUDA, float32 on CPU (bitsandbytes' torch fallback)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32,
    )


def shrink_head(model: Any, ids: list[int]) -> None:
    """Replace the output head of a merged model by its ``ids`` rows only: logits (B, L, len(ids))
    in ``ids`` order. The answer is only ever one of those tokens, and a single query's forward
    pass on CPU is bound by reading weights (the full head is 49k x 576 floats, 113 MB)."""
    import torch

    head = model.get_output_embeddings()
    small = torch.nn.Linear(head.in_features, len(ids), bias=head.bias is not None,
                            dtype=head.weight.dtype, device=head.weight.device)
    with torch.no_grad():
        small.weight.copy_(head.weight[torch.tensor(ids, device=head.weight.device)])
        if head.bias is not None:
            small.bias.copy_(head.bias[torch.tensor(ids, device=head.weight.device)])
    model.set_output_embeddings(small)


def load_local_runtime(path: Path, peft_settings: PeftSettings | None = None) -> LocalRuntime:
    """Load base + adapter from a version folder and build the one-step label scorer.

    The base is resized to the version tokenizer (label tokens), the adapter (LoRA + trained
    label-token rows) loaded and, unless ``inference_4bit``, merged into the float32 base (plain
    Llama forward; bfloat16 on CUDA or with ``inference_dtype="bfloat16"``) and its output head
    cut to the 77 label rows (``shrink_head``). Raises ``BackendUnavailable`` when the
    folder is incomplete, the base is missing or the libraries are not installed."""
    ps = peft_settings or PeftSettings()
    path = Path(path)
    if not is_version(path):
        raise BackendUnavailable(f"{path} is not a complete peft model version. Run `banking-assistant train peft`.")
    try:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise BackendUnavailable(f"{e}. Install the peft extra: pip install -e '.[peft]'") from e
    if ps.threads:
        torch.set_num_threads(ps.threads)
    base_ref = json.loads((path / "base.json").read_text())["base_model"]
    prompt = json.loads((path / "prompt.json").read_text())
    labels = json.loads((path / "labels.json").read_text())
    metrics = json.loads((path / "metrics.json").read_text())
    if base_ref.startswith("/") and not Path(base_ref).exists():
        raise BackendUnavailable(f"Base model folder {base_ref} named in {path / 'base.json'} is missing: "
                                 "run `banking-assistant train peft` once to convert it.")
    tokenizer = AutoTokenizer.from_pretrained(path / TOKENIZER_DIR)
    cuda = torch.cuda.is_available()
    kwargs: dict[str, Any] = {"device_map": "auto"} if cuda else {}
    if ps.inference_4bit:
        kwargs["quantization_config"] = nf4_config()
    else:
        kwargs["dtype"] = torch.bfloat16 if cuda else torch.float32
    base = AutoModelForCausalLM.from_pretrained(base_ref, **kwargs)
    resize_for_labels(base, len(tokenizer))
    model = PeftModel.from_pretrained(base, str(path / ADAPTER_DIR))
    if not ps.inference_4bit:
        model = model.merge_and_unload()
        shrink_head(model, label_token_ids(tokenizer, labels))
        if ps.inference_dtype == "bfloat16":
            model = model.to(torch.bfloat16)
    model.eval()
    scorer = LabelScorer(model, tokenizer, labels, prompt.get("max_query_tokens", ps.max_query_tokens),
                         prompt.get("template", "{text}\nIntent:"))
    return LocalRuntime(scorer, path.name, metrics)
