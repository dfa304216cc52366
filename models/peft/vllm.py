"""The peft backend's ``vllm`` runtime: export a version for vLLM, query it, check it at start-up.

vLLM's LoRA serves low-rank deltas of linear layers only; the label tokens of a version (new
vocabulary rows of an untied output head, ``models.peft.prompt``) are not LoRA. So
``export_for_vllm`` writes two folders: ``base/`` (the base model resized to the version's
tokenizer, head untied, the 77 trained label rows written in; float32 safetensors + tokenizer)
and ``adapter/`` (the LoRA weights alone, a plain peft LoRA adapter). Serve them with::

    var/vllm-venv/bin/python -m vllm.entrypoints.openai.api_server --model <export>/base \\
        --enable-lora --max-lora-rank 16 --lora-modules banking=<export>/adapter \\
        --logprobs-mode processed_logprobs

``VllmClient`` sends the same short prompt as the local runtime to ``/v1/completions`` with
``max_tokens=1``, ``allowed_token_ids`` = the label tokens (the answer is always a label) and
``logprobs=20``. With ``--logprobs-mode processed_logprobs`` the server returns log-probabilities
after the ``allowed_token_ids`` mask, i.e. of the softmax over the 77 label tokens (the adapter is
trained on exactly that distribution; its full-vocabulary softmax is not calibrated for labels);
the confidence is renormalised over the 20 returned (the mass beyond the top 20 is ignored, tiny
for a trained adapter). Raw logprobs (vLLM's default mode) are refused with that reason. ``self_check`` sends one known query and verifies that the server lists the
module and answers a label token, so a misconfigured server (wrong model, no LoRA module, free
text, unknown token ids) is reported with the reason instead of failing every request.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from models.base import TOP_K, BackendUnavailable, IntentPrediction
from models.peft.local import ADAPTER_DIR, TOKENIZER_DIR, is_version
from models.peft.prompt import PROMPT_TEMPLATE, label_token, label_token_ids, prompt_text
from models.peft.settings import PeftSettings

CHECK_QUERY = "I am still waiting for my card, when will it arrive?"
LOGPROBS = 20


def export_for_vllm(version: Path, dest: Path) -> Path:
    """Write ``dest/base`` and ``dest/adapter`` for vLLM from a peft version folder (see the
    module docstring); returns ``dest``. Written to a temporary sibling and renamed into place.
    Raises ``BackendUnavailable`` when ``version`` is not a complete version."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from models.peft.prompt import resize_for_labels

    version, dest = Path(version), Path(dest)
    if not is_version(version):
        raise BackendUnavailable(f"{version} is not a complete peft model version.")
    base_ref = json.loads((version / "base.json").read_text())["base_model"]
    tokenizer = AutoTokenizer.from_pretrained(version / TOKENIZER_DIR)
    state = load_file(str(version / ADAPTER_DIR / "adapter_model.safetensors"))
    config = json.loads((version / ADAPTER_DIR / "adapter_config.json").read_text())
    rows = config["trainable_token_indices"]["lm_head"]
    (delta_key,) = [k for k in state if k.endswith("lm_head.token_adapter.trainable_tokens_delta")]
    base = AutoModelForCausalLM.from_pretrained(base_ref, dtype=torch.float32)
    resize_for_labels(base, len(tokenizer))
    with torch.no_grad():  # TrainableTokens stores the trained rows' values
        base.get_output_embeddings().weight[torch.tensor(rows)] = state[delta_key].to(torch.float32)
    tmp = dest.parent / f".{dest.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    base.save_pretrained(tmp / "base")
    tokenizer.save_pretrained(tmp / "base")
    (tmp / "adapter").mkdir(parents=True)
    config["trainable_token_indices"] = None
    (tmp / "adapter" / "adapter_config.json").write_text(json.dumps(config, indent=2))
    save_file({k: v.contiguous() for k, v in state.items() if ".lora_" in k}, str(tmp / "adapter" / "adapter_model.safetensors"))
    (tmp / "source.json").write_text(json.dumps({"version": version.name, "base_model": base_ref}, indent=2))
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


class VllmClient:
    """Client of a vLLM OpenAI-compatible server serving a version exported by ``export_for_vllm``.

    ``labels``: the version's labels; ``tokenizer``: the version's tokenizer (label token ids and
    the prompt's query truncation). Uses ``httpx`` with ``ps.vllm_timeout_s``."""

    def __init__(self, ps: PeftSettings, labels: list[str], tokenizer: Any, max_query_tokens: int = 64,
                 template: str = PROMPT_TEMPLATE):
        import httpx

        self.ps, self.labels, self.tokenizer = ps, list(labels), tokenizer
        self.max_query_tokens, self.template = max_query_tokens, template
        self.ids = label_token_ids(tokenizer, self.labels)
        self.by_token = {label_token(lab): lab for lab in self.labels}
        self.http = httpx.Client(base_url=ps.vllm_base_url.rstrip("/"), timeout=ps.vllm_timeout_s,
                                 headers={"Authorization": f"Bearer {ps.vllm_api_key.get_secret_value()}"})

    def _request(self, text: str, timeout_s: float | None = None) -> dict[str, Any]:
        body = {"model": self.ps.vllm_model, "prompt": prompt_text(self.tokenizer, text, self.max_query_tokens, self.template),
                "max_tokens": 1, "temperature": 0.0, "logprobs": LOGPROBS, "allowed_token_ids": self.ids}
        r = self.http.post("/completions", json=body, **({"timeout": timeout_s} if timeout_s else {}))
        if r.status_code != 200:
            raise BackendUnavailable(f"vLLM server {self.ps.vllm_base_url} answered HTTP {r.status_code}: {r.text[:200]}")
        return r.json()

    def prediction(self, answer: dict[str, Any], latency_ms: float) -> IntentPrediction:
        """An ``IntentPrediction`` from one completion JSON. Raises ``BackendUnavailable`` when the
        answer is not a label token (a server that ignores ``allowed_token_ids``)."""
        choice = answer["choices"][0]
        text = choice.get("text", "")
        if text not in self.by_token:
            raise BackendUnavailable(f"vLLM answered {text[:80]!r}, not a label token: is it serving the exported "
                                     "base of this version (with its tokenizer) and honouring allowed_token_ids?")
        tops = ((choice.get("logprobs") or {}).get("top_logprobs") or [{}])[0] or {}
        stray = [t for t in tops if t not in self.by_token]
        if stray:
            raise BackendUnavailable(f"vLLM returned logprobs of non-label tokens ({stray[:3]}): they are the raw, "
                                     "unmasked distribution; start the server with --logprobs-mode processed_logprobs.")
        probs = {self.by_token[t]: math.exp(lp) for t, lp in tops.items()}
        probs.setdefault(self.by_token[text], math.exp(((choice.get("logprobs") or {}).get("token_logprobs") or [0.0])[0]))
        z = sum(probs.values())
        ranked = sorted(((lab, p / z) for lab, p in probs.items()), key=lambda x: -x[1])
        usage = answer.get("usage") or {}
        return IntentPrediction(ranked[0][0], ranked[0][1], ranked[:TOP_K], latency_ms,
                                extra={"runtime": "vllm", "token_usage": dict(usage)})

    def classify(self, texts: list[str]) -> list[IntentPrediction]:
        """One request per text, up to 8 in flight. Raises ``BackendUnavailable`` with the URL on
        connection errors, timeouts, HTTP errors and answers that are not labels."""
        import httpx

        def one(text: str) -> IntentPrediction:
            t0 = time.perf_counter()
            try:
                answer = self._request(text)
            except httpx.HTTPError as e:
                raise BackendUnavailable(f"vLLM server {self.ps.vllm_base_url} (model {self.ps.vllm_model!r}) "
                                         f"failed: {type(e).__name__}: {e}") from e
            return self.prediction(answer, (time.perf_counter() - t0) * 1000.0)

        if len(texts) == 1:
            return [one(texts[0])]
        with ThreadPoolExecutor(max_workers=min(8, len(texts))) as pool:
            return list(pool.map(one, texts))

    def self_check(self) -> tuple[bool, str]:
        """(ok, reason): the server lists ``vllm_model`` and answers a known query with a label
        token within ``vllm_check_s`` seconds."""
        import httpx

        try:
            listed = self.http.get("/models", timeout=self.ps.vllm_check_s)
            names = [m.get("id") for m in listed.json().get("data", [])] if listed.status_code == 200 else []
            if self.ps.vllm_model not in names:
                return False, (f"vLLM server {self.ps.vllm_base_url} does not serve {self.ps.vllm_model!r} "
                               f"(it lists {names}): start it with --enable-lora --lora-modules {self.ps.vllm_model}=<export>/adapter.")
            self.prediction(self._request(CHECK_QUERY, self.ps.vllm_check_s), 0.0)
        except httpx.HTTPError as e:
            return False, f"vLLM server {self.ps.vllm_base_url} unreachable or too slow ({type(e).__name__}: {e})."
        except (BackendUnavailable, KeyError, IndexError, ValueError) as e:
            return False, f"vLLM self-check failed: {e}"
        return True, "ok"


_CHECKS: dict[tuple[str, str, str], tuple[float, bool, str]] = {}
_CHECK_LOCK = threading.Lock()
RECHECK_S = 30.0


def cached_self_check(key: tuple[str, str, str], run: Any) -> tuple[bool, str]:
    """``run()`` -> (ok, reason), run once per ``key`` (url, model, version) and process; a failed
    check is re-run when asked again after ``RECHECK_S`` seconds."""
    with _CHECK_LOCK:
        hit = _CHECKS.get(key)
        if hit and (hit[1] or time.monotonic() - hit[0] < RECHECK_S):
            return hit[1], hit[2]
    ok, reason = run()
    with _CHECK_LOCK:
        _CHECKS[key] = (time.monotonic(), ok, reason)
    return ok, reason
