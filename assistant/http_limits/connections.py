"""Slow and numerous clients at the connection level (issue 20): how the server runs uvicorn.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``), the size of a request
head (``h11_max_incomplete_event_size``) and the number of connections (``limit_concurrency``:
beyond it a new request gets 503), but not the time a client may take to send its request head
or its body: a head or body sent at 1 byte/s held a connection (and, for a body, a request)
for as long as the client liked. Two additions close that:

- :class:`HeaderTimeoutH11Protocol`: uvicorn's h11 protocol, plus a deadline on the request
  head: a connection whose head is not complete ``BANKING_HEADER_TIMEOUT_S`` seconds after it
  opened (or after its previous response) gets ``408 Request Timeout`` and is closed.
- :class:`BodyTimeoutMiddleware`: an ASGI middleware; a body not fully received
  ``BANKING_BODY_TIMEOUT_S`` seconds after its head gets 408 with a short reason and
  ``Connection: close``.

:func:`uvicorn_options` gives the keyword arguments for ``uvicorn.run`` (one process or
``--workers N``): those limits, and the client address taken from ``X-Forwarded-For`` only when
the peer is one of ``BANKING_TRUSTED_PROXIES`` (uvicorn's own ProxyHeadersMiddleware, which uses
the right-most address not itself a trusted proxy); with none configured, forwarded headers are
ignored. Running ``uvicorn assistant.app:create_app --factory`` by hand bypasses this, and
uvicorn's default then trusts X-Forwarded-For from 127.0.0.1: use ``banking-assistant serve``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from assistant.http_limits._asgi import ASGIApp, Message, Receive, Scope, Send, send_error
from config.settings import Settings, get_settings

log = logging.getLogger(__name__)
PROTOCOL_PATH = "assistant.http_limits.connections:HeaderTimeoutH11Protocol"
LINGER_S = 2.0
"""After answering and before closing, the server half-closes and drops what the client still
sends for at most this long (seconds), so that a byte arriving after the answer does not make
the kernel reset the connection and destroy the answer before the client reads it."""


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` from ``settings``: the h11
    protocol with the header timeout (as an import string, so ``workers > 1`` can pickle it),
    keep-alive timeout (s), connection cap, largest request head (bytes), and proxy headers
    (on, with ``forwarded_allow_ips``, only when ``trusted_proxies`` is set)."""
    trusted = settings.trusted_proxies
    return {
        "http": PROTOCOL_PATH,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or "",
    }


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's ``H11Protocol`` with a request-head deadline (``header_timeout_s`` seconds, from
    ``BANKING_HEADER_TIMEOUT_S`` unless given): armed when the connection opens and after each
    response; cancelled once a request head has been parsed. On expiry, a connection still
    waiting for its head gets a bare ``408`` (``Connection: close``) and is closed. Idle
    keep-alive connections are still closed earlier, silently, by uvicorn's keep-alive timeout.
    Every close after an answer (this 408, or a response with ``Connection: close`` such as the
    body timeout's) is a lingering close of at most :data:`LINGER_S` seconds."""

    def __init__(self, *args: Any, header_timeout_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s if header_timeout_s is not None else get_settings().header_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None
        self._lingering = False

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        log.info("closing connection from %s: request head not complete within %.1f s",
                 self.client[0] if self.client else "?", self.header_timeout_s)
        detail = f"Request head not received within {self.header_timeout_s:g} s.".encode()
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                             b"connection: close\r\ncontent-length: " + str(len(detail)).encode() + b"\r\n\r\n" + detail)
        self._linger_close()

    def _linger_close(self) -> None:
        """Half-close, read and drop the client's bytes until it closes or LINGER_S passes, close."""
        if self._lingering or self.transport.is_closing():
            return
        self._lingering = True
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(LINGER_S, self.transport.close)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, except while lingering before a close: then the bytes are dropped."""
        if not self._lingering:
            super().data_received(data)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """uvicorn's, then arm the head deadline."""
        super().connection_made(transport)
        self._arm_head_timer()

    def handle_events(self) -> None:
        """uvicorn's; the deadline ends once a head has been parsed (h11 left IDLE)."""
        super().handle_events()
        if self._head_timer is not None and self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()
        if self.cycle is not None and not isinstance(self.cycle.transport, _LingerOnClose):
            self.cycle.transport = _LingerOnClose(self.transport, self._linger_close)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        """uvicorn's; a connection kept alive waits for its next head under a new deadline."""
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Cancel the deadline, then uvicorn's."""
        self._cancel_head_timer()
        super().connection_lost(exc)


class _LingerOnClose:
    """The transport as a request cycle sees it: ``close()`` is the protocol's lingering close."""

    def __init__(self, transport: asyncio.Transport, close: Any) -> None:
        self._transport = transport
        self.close = close

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BodyTimedOut(Exception):
    """The request body did not arrive within the middleware's time bound."""


class BodyTimeoutMiddleware:
    """Pure ASGI middleware: the whole request body must arrive within ``timeout_s`` seconds of
    the request reaching the app (its head complete); otherwise 408 ``{"detail": ...}`` with
    ``Connection: close`` (nothing more is read). Once the body is complete, later ``receive``
    calls (waiting for a disconnect while a response streams) are not bounded. A response
    already started when the bound passes is left alone and the error re-raised to the server,
    which closes the connection. Raises ValueError for ``timeout_s <= 0``."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise BodyTimedOut from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyTimedOut:
            log.info("request body from %s not received within %.1f s: 408",
                     (scope.get("client") or ("?",))[0], self.timeout_s)
            if started:
                raise
            await send_error(send, 408, f"Request body not received within {self.timeout_s:g} s "
                             "(BANKING_BODY_TIMEOUT_S).", {"Connection": "close"})
