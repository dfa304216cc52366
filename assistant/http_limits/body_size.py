"""Refuse request bodies over a byte limit with 413 before anything parses them.

A declared ``Content-Length`` over the limit is refused without reading a byte; a chunked (or
under-declared) body is counted while it streams in and refused as soon as it passes the limit.
The accepted body is held in memory (it is at most the limit) and handed on unchanged.
"""

from __future__ import annotations

from assistant.http_limits._asgi import (
    BODY_METHODS, ASGIApp, BodyTooLarge, Receive, Scope, Send, header, read_body, replay, send_error,
)


class BodySizeLimitMiddleware:
    """Pure ASGI middleware: 413 for a POST/PUT/PATCH body longer than ``max_bytes`` bytes.

    ``max_bytes``: the largest accepted body in bytes (> 0). A malformed ``Content-Length`` gets
    400. Other methods and non-HTTP scopes pass through untouched.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        return f"Request body too large: the limit is {self.max_bytes} bytes (BANKING_MAX_BODY_BYTES)."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_error(send, 400, "Malformed Content-Length header.")
                return
            if int(declared) > self.max_bytes:
                await send_error(send, 413, self._too_large())
                return
        try:
            body = await read_body(receive, self.max_bytes)
        except BodyTooLarge:
            await send_error(send, 413, self._too_large())
            return
        if body is not None:  # None: the client went away before finishing its body
            await self.app(scope, replay(body, receive), send)
