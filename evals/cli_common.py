"""What the ``eval`` commands share (evals/cli.py, evals/conversation_cli.py): the backend names,
parsing ``--backends``, building the models, and the terminal output helpers."""

from __future__ import annotations

import sys
from typing import Any, Callable

from chains.arms import POLICIES
from models.registry import BACKENDS

KNOWN_BACKENDS: tuple[str, ...] = tuple(BACKENDS)
"""The backends of the model registry (``models.registry.BACKENDS``): the default ``--backends``."""
# POLICIES (chains/arms.py): routing policies accepted by ``--backends`` besides the backends
# and pinned arms (``custom@<version folder>``); not in the default list.

BackendFactory = Callable[[str, Any], Any]
"""``factory(name, settings) -> IntentChatModel``."""


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _note(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr)


def _is_known(name: str) -> bool:
    """A backend, a routing policy or a valid pinned arm (``custom@<version>``)."""
    if name in KNOWN_BACKENDS or name in POLICIES:
        return True
    from chains.arms import parse_arm

    try:
        parse_arm(name)
    except ValueError:
        return False
    return True


def parse_backends(spec: str) -> tuple[list[str], list[str]]:
    """Split ``"custom,peft,cascade"`` into (known names in order, unknown names)."""
    names = [s.strip() for s in (spec or "").split(",") if s.strip()]
    known = [n for n in dict.fromkeys(names) if _is_known(n)]
    unknown = [n for n in names if not _is_known(n)]
    return known, unknown


def default_backend_factory(name: str, settings: Any) -> Any:
    """``chains.policies.get_arm(name)``: the process-wide backend, a pinned version or a routing
    policy (imported lazily; the registry reads the process settings itself, so ``settings`` is
    not passed on)."""
    from chains.policies import get_arm

    return get_arm(name)


def obtain_models(names: list[str], settings: Any, factory: BackendFactory) -> dict[str, Any]:
    """Instantiate the named backends, skipping (with a note) those that fail or are unavailable."""
    from models.base import BackendUnavailable

    models: dict[str, Any] = {}
    for name in names:
        try:
            model = factory(name, settings)
            ok, reason = model.availability()
        except (BackendUnavailable, KeyError, ValueError, ImportError, OSError) as e:
            _note(f"backend {name!r} skipped: {e}")
            continue
        if not ok:
            _note(f"backend {name!r} unavailable, skipped: {reason}")
            continue
        models[name] = model
    return models


def _console():
    """A rich console; when stdout is not a terminal (pipes, files, tests) it is 160 columns
    wide so the tables are not squeezed to 80."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return console
