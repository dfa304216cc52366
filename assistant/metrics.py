"""Prometheus metrics of the HTTP app (``prometheus-client``): ``GET /metrics``.

Series (one registry per app; label values: ``route`` the matched route template such as
``/assistant/invoke`` or ``unmatched``, ``backend`` and ``arm`` the intent backend and routing arm
that classified the request (chains/routing.py; ``none`` when nothing was classified, e.g. a
401), ``status`` the HTTP status code)::

    banking_http_requests_total{route, backend, arm, status}                 counter
    banking_http_request_duration_seconds{route, backend, arm, status}       histogram (s)

Access: an operator's bearer key, or no key from a loopback address (a Prometheus scraper on the
same host). A customer's key gets 403, an unknown key 401, a keyless request from elsewhere 401.
Behind a reverse proxy on the same host every caller looks local: require the key there (set the
proxy to forward only with ``Authorization``) or do not expose ``/metrics`` through it.
"""

from __future__ import annotations

import ipaddress
import time
from contextvars import ContextVar
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from bank.auth import authenticate_key
from bank.store import get_engine
from chains.live import add_listener

LABELS = ("route", "backend", "arm", "status")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Histogram bucket upper bounds, seconds (a local classification is ~1-10 ms, a remote LLM ~1 s)."""
METRICS_PATH = "/metrics"

_request: ContextVar[dict[str, str] | None] = ContextVar("banking_metrics_request", default=None)
_bearer = HTTPBearer(auto_error=False)


def _on_classification(event: dict[str, Any]) -> None:
    """Routing listener: the backend and arm of a live classification go to the labels of the
    request being served (the context variable set by :class:`MetricsMiddleware`)."""
    labels = _request.get()
    if labels is not None and event.get("kind") == "live":
        labels["backend"] = str(event.get("backend") or "unknown")
        labels["arm"] = str(event.get("arm") or "unknown")


class HttpMetrics:
    """The app's registry with the request counter and the latency histogram (module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("banking_http_requests", "HTTP requests by route, backend, arm and status.",
                                LABELS, registry=self.registry)
        self.latency = Histogram("banking_http_request_duration_seconds",
                                 "HTTP request duration (s) by route, backend, arm and status.",
                                 LABELS, buckets=LATENCY_BUCKETS, registry=self.registry)

    def observe(self, route: str, backend: str, arm: str, status: int, seconds: float) -> None:
        """Count one request and its duration (seconds)."""
        labels = (route, backend, arm, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware timing every HTTP request but ``/metrics`` itself; the labels come from
    the matched route (``scope["route"]``), the routing listener and the response status (500
    when the app raised before answering)."""

    def __init__(self, app: Any, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") == METRICS_PATH:
            await self.app(scope, receive, send)
            return
        labels = {"backend": "none", "arm": "none"}
        status = {"code": 500}

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        token = _request.set(labels)
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            _request.reset(token)
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(route, labels["backend"], labels["arm"], status["code"], time.perf_counter() - t0)


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install_metrics(app: FastAPI) -> HttpMetrics:
    """Add the middleware (outermost at the time of the call, so it sees the limits' 413/429
    answers when installed after them) and ``GET /metrics`` to ``app``; returns the metrics
    (also ``app.state.metrics``)."""
    metrics = HttpMetrics()
    add_listener(_on_classification)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.metrics = metrics

    @app.get(METRICS_PATH, include_in_schema=False)
    def prometheus_metrics(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Response:
        """Prometheus text exposition (operator key, or no key from loopback)."""
        if creds is not None:
            principal = authenticate_key(get_engine(), creds.credentials)
            if principal is None:
                raise HTTPException(401, "Invalid API key.", headers={"WWW-Authenticate": "Bearer"})
            if principal.role != "operator":
                raise HTTPException(403, "Operator key required.")
        elif not _is_loopback(request.client.host if request.client else None):
            raise HTTPException(401, "Operator key required (or scrape from the loopback address).",
                                headers={"WWW-Authenticate": "Bearer"})
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics
