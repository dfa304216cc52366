"""The peft backend: a causal LM adapted with LoRA (QLoRA on CUDA) that answers with its label.

Modules, by job: ``settings`` (``PeftSettings``), ``prompt`` (short prompt, one added token per
label), ``scorer`` (one forward pass -> softmax over the 77 label tokens), ``local`` (load a
version folder in-process), ``vllm`` (client + start-up self-check of a vLLM server serving the
adapter), ``chat_model`` (``PeftIntentModel``, the LangChain chat model of the contract in
``models/base.py``).

LoRA: Hu et al. 2021 (arXiv 2106.09685); QLoRA: Dettmers et al. 2023 (arXiv 2305.14314).
"""

from models.peft.chat_model import PeftIntentModel, latest_version, versions_root
from models.peft.local import ADAPTER_DIR, TOKENIZER_DIR, LocalRuntime, is_version, load_local_runtime, nf4_config
from models.peft.prompt import PROMPT_TEMPLATE, add_label_tokens, label_token, label_token_ids, prompt_ids, prompt_text
from models.peft.scorer import LabelScorer
from models.peft.settings import PeftSettings, use_4bit
from models.peft.vllm import VllmClient, export_for_vllm

__all__ = [
    "ADAPTER_DIR", "TOKENIZER_DIR", "PROMPT_TEMPLATE", "LabelScorer", "LocalRuntime", "PeftIntentModel",
    "PeftSettings", "VllmClient", "export_for_vllm", "latest_version", "versions_root",
    "add_label_tokens", "is_version", "label_token", "label_token_ids", "load_local_runtime", "nf4_config",
    "prompt_ids", "prompt_text", "use_4bit",
]
