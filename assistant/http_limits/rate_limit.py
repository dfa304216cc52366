"""Request rate limits with the `limits` library (https://limits.readthedocs.io): a moving
window per API key, and a throttle on failed authentications per presented key and per client
address.

- Every request that carries ``Authorization: Bearer <key>`` counts against ``per_minute`` for
  that key; beyond it: 429 with ``Retry-After`` (seconds). Keys are identified by a SHA-256
  prefix (:func:`key_id`), never stored or logged raw.
- A failed authentication is a 401 answered to a request that presented a bearer key (a
  request with no key at all guesses nothing and is not counted). It counts against the
  presented key (``auth_failures_per_key_per_minute``) and against the client address
  (``auth_failures_per_minute``).

Policy while throttled (429 with ``Retry-After``, decided before the key is looked up):

1. A presented key over its own failure limit gets 429 from any address. Only a wrong (unknown
   or revoked) key ever fails, so this never touches a valid key; it stops a client that keeps
   retrying one stale key: after a few 401s it gets 429s, which do not count against its
   address, so one broken client cannot lock out the other customers behind its NAT.
2. An address over its failure limit (many *different* wrong keys: guessing) gets 429 for every
   key, right or wrong, without a lookup, so a guess there cannot be confirmed. One exception:
   a key that authenticated successfully *from that same address* within the last
   ``known_good_hours`` (before or during the throttle; remembered for one to two times that,
   in time buckets) still authenticates. A guesser gains
   nothing from this: it only learns something when it guesses exactly one of the few keys
   already in use from its address, which is as hard as guessing any key (43 random URL-safe
   characters, bank/auth.py); a key that is valid but new to the address gets the same 429 as a
   wrong one. The cost, accepted: a customer using a key for the first time (or for the first
   time in ``known_good_hours``) from an address that is being used for guessing waits until the
   address's window has moved on (at most a minute after the guessing stops).

"The client address" is the direct TCP peer (``scope["client"]``). Forwarded headers are the
server's business, not this middleware's: ``serve()`` has uvicorn rewrite the client from
``X-Forwarded-For`` only when the peer is in ``BANKING_TRUSTED_PROXIES`` (empty: nothing
trusted), see assistant/http_limits/connections.py. The ``Forwarded`` header is never used.

Public paths (``/health``, ``/docs``, ...) are never limited. Counters live in a `limits`
storage (``memory://`` by default: per process; use a shared one such as ``redis://`` for
several workers to share a limit).
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
    """Pure ASGI middleware enforcing the limits and the policy of the module docstring.

    ``per_minute``: requests per API key per minute (0 = off). ``auth_failures_per_minute``:
    failed authentications per client address per minute before that address is throttled
    (0 = off: no failure throttle at all). ``auth_failures_per_key_per_minute``: failures with one
    presented key per minute before that key is throttled (0 = off). ``known_good_hours``: how
    long a successful (address, key) pair exempts the key from its address's throttle (0 = no
    exemption). ``storage_uri``: a `limits` storage URI (``memory://``, ``redis://host:port``).
    Raises ``limits.errors.ConfigurationError`` for an unknown storage scheme.

    A request counts as authenticated when the app set ``request.state.principal`` (what
    ``require_principal`` in assistant/server.py does) and did not answer 401.
    """

    def __init__(self, app: ASGIApp, *, per_minute: int, auth_failures_per_minute: int,
                 auth_failures_per_key_per_minute: int = 0, known_good_hours: float = 0.0,
                 storage_uri: str = "memory://", public_paths: frozenset[str] = PUBLIC_PATHS) -> None:
        self.app = app
        self.storage = storage_from_string(storage_uri)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.per_key = RateLimitItemPerMinute(per_minute, namespace="api-key") if per_minute > 0 else None
        self.failures = (RateLimitItemPerMinute(auth_failures_per_minute, namespace="auth-fail")
                         if auth_failures_per_minute > 0 else None)
        self.key_failures = (RateLimitItemPerMinute(auth_failures_per_key_per_minute, namespace="auth-fail-key")
                             if self.failures is not None and auth_failures_per_key_per_minute > 0 else None)
        # A success is remembered in the current time bucket of known_good_s seconds; the current
        # and the previous bucket are read, so a success counts for between 1x and 2x that time.
        self.known_good_s = int(known_good_hours * 3600) if self.failures is not None else 0
        self.public_paths = public_paths

    def _retry_after(self, item: RateLimitItemPerMinute, key: str) -> str:
        reset = self.limiter.get_window_stats(item, key).reset_time
        return str(max(1, math.ceil(reset - time.time())))

    def _known_good_key(self, address: str, kid: str, bucket: int) -> str:
        return f"auth-ok/{address}|{kid}/{bucket}"

    def _is_known_good(self, address: str, kid: str) -> bool:
        if self.known_good_s <= 0:
            return False
        bucket = int(time.time()) // self.known_good_s
        return any(self.storage.get(self._known_good_key(address, kid, b)) > 0 for b in (bucket, bucket - 1))

    def _remember(self, address: str, kid: str) -> None:
        if self.known_good_s > 0:
            bucket = int(time.time()) // self.known_good_s
            self.storage.incr(self._known_good_key(address, kid, bucket), 2 * self.known_good_s)

    def _throttled(self, address: str, kid: str | None) -> tuple[str, str] | None:
        """(reason, Retry-After) when this request is refused by the failure throttle, else None."""
        if self.failures is None:
            return None
        if kid is not None and self.key_failures is not None and not self.limiter.test(self.key_failures, kid):
            return ("Too many failed authentications with this API key; retry after {} s.",
                    self._retry_after(self.key_failures, kid))
        if not self.limiter.test(self.failures, address) and not (kid is not None and self._is_known_good(address, kid)):
            return ("Too many failed authentications from this address; retry after {} s.",
                    self._retry_after(self.failures, address))
        return None

    def _record(self, status: int, scope: Scope, address: str, kid: str | None) -> None:
        """Count a 401 for a presented key as a failure; remember an authenticated (address, key)."""
        if kid is None:
            return
        if status == 401:
            self.limiter.hit(self.failures, address)
            if self.key_failures is not None:
                self.limiter.hit(self.key_failures, kid)
            if not self.limiter.test(self.failures, address):
                log.warning("throttling %s: %d failed authentications within a minute", address, self.failures.amount)
        elif (scope.get("state") or {}).get("principal") is not None:
            self._remember(address, kid)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0]
        token = bearer_key(scope)
        kid = key_id(token) if token is not None else None
        refused = self._throttled(address, kid)
        if refused is not None:
            reason, retry = refused
            await send_error(send, 429, reason.format(retry), {"Retry-After": retry})
            return
        if self.per_key is not None and kid is not None and not self.limiter.hit(self.per_key, kid):
            retry = self._retry_after(self.per_key, kid)
            log.info("rate limit: API key sha256:%s over %d requests/minute", kid, self.per_key.amount)
            await send_error(send, 429, f"Rate limit of {self.per_key.amount} requests per minute for this "
                             f"API key exceeded; retry after {retry} s.", {"Retry-After": retry})
            return
        if self.failures is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with the app's request.state, read back in _record

        async def send_and_count(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._record(message["status"], scope, address, kid)
            await send(message)

        await self.app(scope, receive, send_and_count)
