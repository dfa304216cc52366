"""``/health`` for everyone (availability only) and ``/health/details`` for operators.

The public answer says whether the service and each backend are up, nothing an attacker could
use (no model versions, no reason such as which API key is missing). The details (model
version and reason per backend, default backend) need an operator key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends

from chains.backends import available_backends


def public_health() -> dict[str, Any]:
    """``{"status": "ok", "backends": {name: {"available": bool}}}``."""
    return {"status": "ok", "backends": {n: {"available": v["available"]} for n, v in available_backends().items()}}


def health_router(default_backend: str, operator: Callable[..., Any]) -> APIRouter:
    """A router with ``GET /health`` (public) and ``GET /health/details`` (guarded by the
    FastAPI dependency ``operator``, which raises 401/403 for other callers)."""
    router = APIRouter()

    @router.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and backend availability (no authentication, no details)."""
        return public_health()

    @router.get("/health/details")
    def health_details(_: Any = Depends(operator)) -> dict[str, Any]:
        """Backend availability with model versions and reasons (operator key only)."""
        return {"status": "ok", "default_backend": default_backend, "backends": available_backends()}

    return router
