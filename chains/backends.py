"""The intent backends as the chain layer sees them: the names of the one model registry
(models/registry.py), re-exported so that assistant/ reaches them through chains/
(assistant -> chains -> models).

:func:`get_backend` (one shared instance per backend, or per pinned version), the
:data:`BACKENDS` table, :func:`available_backends`, :func:`reset_backends`, and the
:class:`MissingBackend` / :class:`UnknownBackend` of a backend that is unavailable or unknown.
"""

from __future__ import annotations

from models.registry import (
    BACKENDS, VERSIONED_BACKENDS, MissingBackend, UnknownBackend, available_backends, get_backend, reset_backends,
)

__all__ = ["BACKENDS", "VERSIONED_BACKENDS", "MissingBackend", "UnknownBackend", "available_backends",
           "get_backend", "reset_backends"]
