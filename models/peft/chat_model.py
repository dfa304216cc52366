"""``PeftIntentModel``: the peft backend as a LangChain chat model (contract: ``models/base.py``)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from config.settings import Settings, get_settings
from models.base import BackendUnavailable, IntentChatModel, IntentPrediction
from models.peft.local import TOKENIZER_DIR, LocalRuntime, is_version, load_local_runtime
from models.peft.settings import PeftSettings
from models.peft.vllm import VllmClient, cached_self_check
from models.versions import latest

_RUNTIMES: dict[str, LocalRuntime] = {}
_CLIENTS: dict[tuple[str, str, str], VllmClient] = {}
_LOAD_LOCK = threading.Lock()


def versions_root(settings: Settings | None = None) -> Path:
    """``<BANKING_HOME>/models/peft``: one sub-folder per trained version."""
    return (settings or get_settings()).models_dir / "peft"


def latest_version(root: Path) -> Path | None:
    """Newest complete peft version under ``root`` (``models.versions`` protocol), or None."""
    from models.peft.local import VERSION_FILES

    return latest(root, VERSION_FILES)


class PeftIntentModel(IntentChatModel):
    """The peft backend: one forward pass of a LoRA-adapted causal LM, softmax over the 77 label
    tokens (in-process ``local`` runtime), or the same through a vLLM server (``vllm``).

    Fields override the settings: ``model_dir`` (version folder), ``runtime`` (local | vllm).
    Construction loads nothing; weights load on first classification or ``warm_up``, once per
    process and version (thread-safe). ``thresholds`` come from the version's metrics.json (tuned
    on validation + CLINC150 OOS by ``train peft``) and travel in every answer's
    ``response_metadata["thresholds"]``."""

    backend_name: ClassVar[str] = "peft"
    model_dir: Path | None = None
    runtime: Literal["local", "vllm"] | None = None
    peft_settings: PeftSettings | None = None
    app_settings: Settings | None = None

    # -- configuration ------------------------------------------------------------------
    def _ps(self) -> PeftSettings:
        return self.peft_settings or PeftSettings()

    def _runtime_name(self) -> str:
        return self.runtime or self._ps().runtime

    def version_dir(self) -> Path | None:
        """The version folder that answers (None when none is trained)."""
        explicit = self.model_dir or self._ps().model_dir
        if explicit:
            return Path(explicit).expanduser().resolve()
        return latest_version(versions_root(self.app_settings or get_settings()))

    @property
    def model_version(self) -> str:
        path = self.version_dir()
        name = path.name if path else "untrained"
        return f"vllm:{self._ps().vllm_model}:{name}" if self._runtime_name() == "vllm" else name

    @property
    def thresholds(self) -> dict[str, float]:
        """``{"oos_threshold", "clarify_threshold"}`` saved with the version (metrics.json), {}
        when no version or none saved. Reads one small JSON file; loads no weights."""
        path = self.version_dir()
        if path is None or not (path / "metrics.json").is_file():
            return {}
        saved = json.loads((path / "metrics.json").read_text()).get("thresholds") or {}
        return {k: float(saved[k]) for k in ("oos_threshold", "clarify_threshold") if k in saved}

    def availability(self) -> tuple[bool, str]:
        """Local: a complete version folder exists (no weights loaded). vLLM: also the server's
        self-check (one tiny request, cached per process; a failure is re-checked after 30 s)."""
        path = self.version_dir()
        if path is None:
            return False, "No trained peft model. Run `banking-assistant train peft`."
        if not is_version(path):
            return False, f"{path} is not a complete peft model version."
        if self._runtime_name() == "vllm":
            ps = self._ps()
            return cached_self_check((ps.vllm_base_url, ps.vllm_model, str(path)), lambda: self._client().self_check())
        return True, "ok"

    def self_check(self) -> tuple[bool, str]:
        """Like ``availability`` but runs the vLLM check now (not cached)."""
        ok, reason = self.availability()
        if ok and self._runtime_name() == "vllm":
            return self._client().self_check()
        return ok, reason

    def warm_up(self) -> None:
        """Load the local runtime (weights, merge) off the request path. Raises ``BackendUnavailable``."""
        if self._runtime_name() == "local":
            self.load()

    # -- inference ------------------------------------------------------------------------
    def _path(self) -> Path:
        path = self.version_dir()
        if path is None:
            raise BackendUnavailable("No trained peft model. Run `banking-assistant train peft`.")
        return path

    def load(self) -> LocalRuntime:
        """The local runtime of ``version_dir()``, loaded once per process."""
        key = str(self._path())
        with _LOAD_LOCK:
            rt = _RUNTIMES.get(key)
            if rt is None:
                rt = _RUNTIMES[key] = load_local_runtime(Path(key), self._ps())
        return rt

    def _client(self) -> VllmClient:
        path, ps = self._path(), self._ps()
        key = (ps.vllm_base_url, ps.vllm_model, str(path))
        with _LOAD_LOCK:
            client = _CLIENTS.get(key)
            if client is None:
                from transformers import AutoTokenizer

                if not is_version(path):
                    raise BackendUnavailable(f"{path} is not a complete peft model version.")
                prompt = json.loads((path / "prompt.json").read_text())
                client = _CLIENTS[key] = VllmClient(
                    ps, json.loads((path / "labels.json").read_text()), AutoTokenizer.from_pretrained(path / TOKENIZER_DIR),
                    prompt.get("max_query_tokens", ps.max_query_tokens), prompt.get("template", "{text}\nIntent:"))
        return client

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        """Classify ``texts``: rankings are the top-5 of the softmax over the label tokens.
        Raises ``BackendUnavailable``."""
        if not texts:
            return []
        thresholds = self.thresholds
        if self._runtime_name() == "vllm":
            preds = self._client().classify(texts)
            for p in preds:
                p.extra["thresholds"] = thresholds
            return preds
        rt = self.load()
        out: list[IntentPrediction] = []
        step = self._ps().inference_batch_size
        for i in range(0, len(texts), step):
            chunk = texts[i:i + step]
            t0 = time.perf_counter()
            ranked = rt.scorer.rank(chunk)
            per_query = (time.perf_counter() - t0) * 1000.0 / len(chunk)
            out.extend(IntentPrediction(r[0][0], r[0][1], r, per_query, extra={"runtime": "local", "thresholds": thresholds})
                       for r in ranked)
        return out


__all__: list[Any] = ["PeftIntentModel", "latest_version", "versions_root"]
