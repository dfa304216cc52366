"""Request guards for the HTTP interface (issue 10), one module per idea:

- ``body_size``: bodies over ``BANKING_MAX_BODY_BYTES`` get 413 before parsing.
- ``json_body``: content type (415), UTF-8/JSON/depth (400), lone surrogates and a non-object
  ``config`` (422), batches over ``BANKING_MAX_BATCH_ITEMS`` (413).
- ``rate_limit``: ``BANKING_RATE_LIMIT_PER_MINUTE`` per API key and a failed-authentication
  throttle per presented key and per client address (429 + ``Retry-After``; a key already used
  from a throttled address still works there), with the `limits` library.
- ``connections`` (issue 20): 408 for a request head or body that does not arrive in time, and
  the uvicorn options of ``serve()`` (connection cap, head size, keep-alive, trusted proxies).
- ``errors``: 422 bodies echo at most a short prefix of the input.
- ``inference``: ``bounded(runnable, n)``, a FIFO queue in front of the intent model.
- ``health``: public ``/health`` (availability only) and operator ``/health/details``.

``install(app, settings)`` wires the middlewares and the 422 handler onto a FastAPI app;
``uvicorn_options(settings)`` gives the keyword arguments for ``uvicorn.run``.
"""

from __future__ import annotations

from fastapi import FastAPI

from assistant.http_limits.body_size import BodySizeLimitMiddleware
from assistant.http_limits.connections import BodyTimeoutMiddleware, uvicorn_options
from assistant.http_limits.errors import install_validation_handler
from assistant.http_limits.health import health_router
from assistant.http_limits.inference import BoundedRunnable, bounded
from assistant.http_limits.json_body import JsonBodyMiddleware
from assistant.http_limits.rate_limit import RateLimitMiddleware
from config.settings import Settings

__all__ = ["BoundedRunnable", "bounded", "health_router", "install", "uvicorn_options"]


def install(app: FastAPI, settings: Settings) -> None:
    """Add, outermost first: body timeout, rate limits, body-size limit, JSON hygiene; and the
    short 422 handler. Call once, before the app starts serving."""
    install_validation_handler(app)
    # add_middleware puts each new middleware outside the ones added before it.
    app.add_middleware(JsonBodyMiddleware, max_depth=settings.max_json_depth, max_batch_items=settings.max_batch_items)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        RateLimitMiddleware, per_minute=settings.rate_limit_per_minute,
        auth_failures_per_minute=settings.auth_failures_per_minute,
        auth_failures_per_key_per_minute=settings.auth_failures_per_key_per_minute,
        known_good_hours=settings.auth_known_good_hours, storage_uri=settings.rate_limit_storage,
    )
    app.add_middleware(BodyTimeoutMiddleware, timeout_s=settings.body_timeout_s)
