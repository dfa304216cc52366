"""Request rate limits with the `limits` library (https://limits.readthedocs.io): a moving
window per API key, and a throttle on failed authentications per client address.

- Every request that carries ``Authorization: Bearer <key>`` counts against
  ``per_minute`` for that key; beyond it: 429 with ``Retry-After`` (seconds). Keys are
  identified by a SHA-256 prefix, never stored or logged raw.
- Every 401 answered to a client address counts as a failed authentication; after
  ``auth_failures_per_minute`` of them, that address gets 429 with ``Retry-After`` on every
  authenticated route, right or wrong key, until the window has moved on (so guessing keys
  gains nothing).
- Public paths (``/health``, ``/docs``, ...) are never limited.

Counters live in a `limits` storage (``memory://`` by default: per process; use a shared one
such as ``redis://`` for several workers to share a limit).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from assistant.http_limits._asgi import ASGIApp, Message, Receive, Scope, Send, header, send_error

log = logging.getLogger(__name__)
PUBLIC_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


def key_id(api_key: str) -> str:
    """A stable, non-reversible id for an API key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def bearer_key(scope: Scope) -> str | None:
    """The bearer token of the request's Authorization header, or None."""
    value = header(scope, b"authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


class RateLimitMiddleware:
    """Pure ASGI middleware enforcing the two limits in the module docstring.

    ``per_minute``: requests per API key per minute (0 = off). ``auth_failures_per_minute``:
    401 answers per client address per minute before that address is throttled (0 = off).
    ``storage_uri``: a `limits` storage URI (``memory://``, ``redis://host:port``, ...).
    Raises ``limits.errors.ConfigurationError`` for an unknown storage scheme.
    """

    def __init__(self, app: ASGIApp, *, per_minute: int, auth_failures_per_minute: int,
                 storage_uri: str = "memory://", public_paths: frozenset[str] = PUBLIC_PATHS) -> None:
        self.app = app
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.per_key = RateLimitItemPerMinute(per_minute, namespace="api-key") if per_minute > 0 else None
        self.failures = (RateLimitItemPerMinute(auth_failures_per_minute, namespace="auth-fail")
                         if auth_failures_per_minute > 0 else None)
        self.public_paths = public_paths

    def _retry_after(self, item: RateLimitItemPerMinute, key: str) -> str:
        reset = self.limiter.get_window_stats(item, key).reset_time
        return str(max(1, math.ceil(reset - time.time())))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0]
        if self.failures is not None and not self.limiter.test(self.failures, address):
            retry = self._retry_after(self.failures, address)
            await send_error(send, 429, f"Too many failed authentications from this address; retry after {retry} s.",
                             {"Retry-After": retry})
            return
        token = bearer_key(scope)
        if self.per_key is not None and token is not None:
            kid = key_id(token)
            if not self.limiter.hit(self.per_key, kid):
                retry = self._retry_after(self.per_key, kid)
                log.info("rate limit: API key sha256:%s over %d requests/minute", kid, self.per_key.amount)
                await send_error(send, 429, f"Rate limit of {self.per_key.amount} requests per minute for this "
                                 f"API key exceeded; retry after {retry} s.", {"Retry-After": retry})
                return
        if self.failures is None:
            await self.app(scope, receive, send)
            return

        async def send_and_count(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.limiter.hit(self.failures, address)
                if not self.limiter.test(self.failures, address):
                    log.warning("throttling %s: %d failed authentications within a minute", address, self.failures.amount)
            await send(message)

        await self.app(scope, receive, send_and_count)
