"""A throttle on failed UI logins per user name (the Chainlit password form), with the `limits`
library as the HTTP API's throttle (rate_limit.py): after ``per_minute`` failed logins for one
user name within a minute's moving window, that user name is refused, right password or not,
until the window has moved on. The UI answers a throttled login like a wrong password, so a
guesser learns nothing."""

from __future__ import annotations

import hashlib

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


def _user_id(username: str) -> str:
    return hashlib.sha256((username or "").strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:16]


class LoginThrottle:
    """Failed logins per user name: :meth:`allowed` before checking the password, :meth:`failed`
    after a wrong one. ``per_minute``: failures allowed per user name per minute (0 = off);
    ``storage``: a `limits` storage URI (``memory://``: per process)."""

    def __init__(self, per_minute: int, storage: str = "memory://") -> None:
        self._item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage))

    def allowed(self, username: str) -> bool:
        """False while ``username`` is over its failure limit."""
        return self._item is None or self._limiter.test(self._item, "ui-login", _user_id(username))

    def failed(self, username: str) -> None:
        """Count one failed login of ``username``."""
        if self._item is not None:
            self._limiter.hit(self._item, "ui-login", _user_id(username))
