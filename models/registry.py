"""The model registry: one shared intent-model instance per backend, or per pinned model version
of a backend, per process.

A backend is named ``"custom"``, ``"peft"`` or ``"gemini"`` (:data:`BACKENDS`); a pinned version
is a backend plus a model-version folder under ``<BANKING_HOME>/models/<backend>/`` (custom and
peft only, :data:`VERSIONED_BACKENDS`). Backends load their weights lazily, so asking the registry
is cheap. A backend whose optional extra is not installed (``pip install -e .[peft]`` /
``.[gemini]``) is still served, as a :class:`MissingBackend` reporting itself unavailable with the
reason, so the app runs on the others. An unknown name raises :class:`UnknownBackend`.

One lock guards the one cache; :func:`reset_backends` empties it (tests, or after training a new
model version). The chain layer re-exports these names from chains/backends.py.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Iterable
from typing import Any, ClassVar

from config.settings import get_settings
from models.base import BackendUnavailable, IntentChatModel, IntentPrediction

# name -> (module, class). The chain never asks which backend it is talking to; this table is
# the single place that knows them.
BACKENDS: dict[str, tuple[str, str]] = {
    "custom": ("models.custom", "CustomIntentModel"),
    "peft": ("models.peft", "PeftIntentModel"),
    "gemini": ("models.gemini", "GeminiIntentModel"),
}

VERSIONED_BACKENDS = ("custom", "peft")
"""Backends whose trained versions are folders under ``<BANKING_HOME>/models/<backend>/``."""

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

_instances: dict[str, IntentChatModel] = {}
"""``"name"`` or ``"name@version"`` -> the shared instance (tests may put fakes here)."""
_lock = threading.Lock()


class UnknownBackend(KeyError, ValueError):
    """An unknown backend (or arm) name. A ``KeyError`` (for lookups by name) and a
    ``ValueError`` (for parsed settings) alike; ``str()`` is the plain message.

    ``name``: the name asked for; ``choices``: the names that would have been accepted."""

    def __init__(self, name: str, choices: Iterable[str]) -> None:
        self.name, self.choices = name, tuple(choices)
        super().__init__(f"Unknown backend {name!r}; choose one of {', '.join(self.choices)}.")

    def __str__(self) -> str:
        return str(self.args[0])


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


def check_version(name: str, version: str) -> None:
    """Raise ``ValueError`` unless ``version`` can be pinned on backend ``name``: only
    :data:`VERSIONED_BACKENDS` have version folders, and the version must be a plain folder name
    (letters, digits, ``_.-``; no ``..``)."""
    spec = f"{name}@{version}"
    if name not in VERSIONED_BACKENDS:
        raise ValueError(f"arm {spec!r}: only {' and '.join(VERSIONED_BACKENDS)} have model-version folders to pin")
    if not _VERSION_RE.match(version) or ".." in version:
        raise ValueError(f"arm {spec!r}: the version must be a model-version folder name, e.g. custom@20261130-101500-1a2b3c4d")


def _build(name: str, spec: str, kwargs: dict[str, Any]) -> IntentChatModel:
    """A new instance of backend ``name``, or a :class:`MissingBackend` named ``spec`` when its
    code or optional dependencies cannot be imported."""
    module, cls = BACKENDS[name]
    try:
        return getattr(importlib.import_module(module), cls)(**kwargs)
    except (ImportError, AttributeError) as e:
        reason = f"optional dependencies missing ({e}); install with `pip install -e .[{name}]`"
        return MissingBackend(name_=spec, reason=reason)


def get_backend(name: str, version: str | None = None, **kwargs: Any) -> IntentChatModel:
    """The process-wide instance of backend ``name`` ("custom", "peft" or "gemini"), or with
    ``version`` of that backend loading folder ``<BANKING_HOME>/models/<name>/<version>``
    (constructor argument ``model_dir``; weights load lazily).

    Raises :class:`UnknownBackend` for an unknown name and ``ValueError`` for a version that
    cannot be pinned (:func:`check_version`). ``kwargs`` go to the constructor the first time
    only."""
    if name not in BACKENDS:
        raise UnknownBackend(name, BACKENDS)
    spec = name
    if version is not None:
        check_version(name, version)
        spec = f"{name}@{version}"
        kwargs = {**kwargs, "model_dir": get_settings().models_dir / name / version}
    with _lock:
        if spec not in _instances:
            _instances[spec] = _build(name, spec, kwargs)
        return _instances[spec]


def available_backends() -> dict[str, dict[str, Any]]:
    """{name: {"available": bool, "reason": str, "model_version": str}} for every backend (cheap)."""
    out = {}
    for name in BACKENDS:
        b = get_backend(name)
        ok, reason = b.availability()
        out[name] = {"available": ok, "reason": reason, "model_version": b.model_version if ok else None}
    return out


def reset_backends() -> None:
    """Forget every cached instance, pinned versions included (tests, or after training a new
    model version)."""
    with _lock:
        _instances.clear()
