"""The registry of intent backends: one shared instance per backend name per process.

Backends load their weights lazily, so building the registry is cheap. A backend whose optional
extra is not installed (``pip install -e .[peft]`` / ``.[gemini]``) is still listed, reporting
itself unavailable with the reason, so the app runs on the others.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, ClassVar

from models.base import BackendUnavailable, IntentChatModel, IntentPrediction

# name -> (module, class). The chain never asks which backend it is talking to; this table is
# the single place that knows them.
BACKENDS: dict[str, tuple[str, str]] = {
    "custom": ("models.custom", "CustomIntentModel"),
    "peft": ("models.peft", "PeftIntentModel"),
    "gemini": ("models.gemini", "GeminiIntentModel"),
}

_instances: dict[str, IntentChatModel] = {}
_lock = threading.Lock()


class MissingBackend(IntentChatModel):
    """Stands in for a backend whose code or optional dependencies cannot be imported; every
    call raises ``BackendUnavailable`` with ``reason``."""

    backend_name: ClassVar[str] = "missing"
    name_: str = "missing"
    reason: str = ""

    @property
    def model_version(self) -> str:
        return "unavailable"

    def availability(self) -> tuple[bool, str]:
        return False, self.reason

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        raise BackendUnavailable(f"Backend {self.name_!r} is unavailable: {self.reason}")


def get_backend(name: str, **kwargs: Any) -> IntentChatModel:
    """The process-wide instance of backend ``name`` ("custom", "peft" or "gemini").

    Raises ``KeyError`` for an unknown name. ``kwargs`` are passed to the constructor the first
    time only.
    """
    if name not in BACKENDS:
        raise KeyError(f"Unknown backend {name!r}; choose one of {', '.join(BACKENDS)}.")
    with _lock:
        if name not in _instances:
            module, cls = BACKENDS[name]
            try:
                factory = getattr(importlib.import_module(module), cls)
            except (ImportError, AttributeError) as e:
                _instances[name] = MissingBackend(
                    name_=name, reason=f"optional dependencies missing ({e}); install with `pip install -e .[{name}]`"
                )
                return _instances[name]
            try:
                _instances[name] = factory(**kwargs)
            except ImportError as e:
                _instances[name] = MissingBackend(
                    name_=name, reason=f"optional dependencies missing ({e}); install with `pip install -e .[{name}]`"
                )
        return _instances[name]


def available_backends() -> dict[str, dict[str, Any]]:
    """{name: {"available": bool, "reason": str, "model_version": str}} for every backend (cheap)."""
    out = {}
    for name in BACKENDS:
        b = get_backend(name)
        ok, reason = b.availability()
        out[name] = {"available": ok, "reason": reason, "model_version": b.model_version if ok else None}
    return out


def reset_backends() -> None:
    """Forget the cached instances (tests, or after training a new model version)."""
    with _lock:
        _instances.clear()
