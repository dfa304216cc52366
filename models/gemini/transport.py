"""The httpx transport under the Gemini client: tolerant of enum values newer than the SDK."""

from __future__ import annotations

import json
import os
import ssl
import urllib.parse
import urllib.request

import certifi
import httpx


class NormalisingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport that rewrites integer enum values in generateContent answers to names.

    Why: the API may send an enum the SDK does not know as its number (proto-JSON does this for
    values newer than the client), and google-genai 3.x then fails the whole response with
    ``'int' object has no attribute 'upper'`` / a pydantic ``ValidationError`` before anyone can
    read the label. An integer ``finishReason`` becomes ``"UNKNOWN_<n>"`` and an integer
    ``promptFeedback.blockReason`` becomes ``"BLOCK_REASON_<n>"`` (the SDK keeps unknown *names*
    as they are; numbers are not mapped to names, the proto's numbering is not the SDK's order);
    everything else passes through unchanged.

    The client runs with ``trust_env=False`` (else httpx would route proxied hosts around this
    transport), so the environment's proxy and CA settings are applied here, as the SDK does:
    HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY, SSL_CERT_FILE / SSL_CERT_DIR (else certifi).
    """

    def __init__(self, base_url: str) -> None:
        ctx = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE", certifi.where()),
                                         capath=os.environ.get("SSL_CERT_DIR"))
        proxy = _env_proxy(base_url)
        self._sync = httpx.HTTPTransport(verify=ctx, proxy=proxy)
        self._async = httpx.AsyncHTTPTransport(verify=ctx, proxy=proxy)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._sync.handle_request(request)
        if not _is_answer(request, response):
            return response
        response.read()
        return _rewritten(request, response)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._async.handle_async_request(request)
        if not _is_answer(request, response):
            return response
        await response.aread()
        return _rewritten(request, response)

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.aclose()


def _env_proxy(url: str) -> str | None:
    """The proxy URL the environment sets for ``url`` (None when unset or bypassed by NO_PROXY)."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


def _is_answer(request: httpx.Request, response: httpx.Response) -> bool:
    return (request.url.path.endswith(":generateContent") and response.status_code == 200
            and "json" in response.headers.get("content-type", ""))


def _rewritten(request: httpx.Request, response: httpx.Response) -> httpx.Response:
    try:
        body = json.loads(response.content)
    except ValueError:
        return response  # not JSON: the SDK reports it
    if not isinstance(body, dict):
        return response
    changed = False
    for cand in body.get("candidates") or []:
        if isinstance(cand, dict) and isinstance(cand.get("finishReason"), int):
            cand["finishReason"] = f"UNKNOWN_{cand['finishReason']}"
            changed = True
    feedback = body.get("promptFeedback")
    if isinstance(feedback, dict) and isinstance(feedback.get("blockReason"), int):
        feedback["blockReason"] = f"BLOCK_REASON_{feedback['blockReason']}"
        changed = True
    if not changed:
        return response
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")]
    return httpx.Response(response.status_code, headers=headers, content=json.dumps(body).encode(),
                          request=request, extensions=response.extensions)
