"""The HTTP side of the gemini backend: building the LangChain client, reading Google's errors,
retrying with the server's own retry delay.

The client is ``langchain_google_genai.ChatGoogleGenerativeAI`` (over the ``google-genai`` SDK)
with the base URL always passed explicitly (default ``https://generativelanguage.googleapis.com/``)
so no environment variable can silently redirect requests (``LANGSMITH_GATEWAY``,
``GOOGLE_GENAI_USE_VERTEXAI``); tests point it at a local fake server.

Retries (:func:`call_with_retries`): 408, 429, 5xx, timeouts and connection errors are retried
up to ``max_retries`` times with exponential back-off and jitter; a wait is never shorter than the
delay the server asks for (``google.rpc.RetryInfo.retryDelay`` in the error body, or the
``Retry-After`` header), and a server delay longer than ``backoff_max_s`` is not waited for at
all. When the retries run out, the ``BackendUnavailable`` carries ``retry_after_s`` (the server's
delay, else the next back-off delay) for the HTTP layer's ``Retry-After``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from typing import Any, Callable

from models.base import BackendUnavailable
from models.gemini.errors import GeminiAnswerError, GeminiRejected
from models.gemini.settings import GeminiSettings
from models.gemini.transport import NormalisingTransport

log = logging.getLogger(__name__)

_sleep: Callable[[float], None] = time.sleep  # tests replace it to record the waits

# A protobuf Duration in JSON: decimal seconds with an "s" suffix ("38s", "0.500s").
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)s\s*$")


def build_llm(settings: GeminiSettings, *, timeout_s: float | None = None) -> Any:
    """A ``ChatGoogleGenerativeAI`` for ``settings``: explicit base URL, no Vertex AI, one HTTP
    attempt per call (back-off is :func:`call_with_retries`'), thinking per
    ``settings.thinking_kwargs()``, responses through :class:`NormalisingTransport`.
    ``timeout_s``: per-request timeout, s (default ``settings.timeout_s``).
    Raises ``ImportError`` without langchain-google-genai."""
    from langchain_google_genai import ChatGoogleGenerativeAI

    return ChatGoogleGenerativeAI(
        model=settings.model,
        google_api_key=settings.api_key,
        base_url=settings.base_url,  # explicit: env vars cannot redirect it
        vertexai=False,
        temperature=settings.temperature,
        timeout=timeout_s or settings.timeout_s,
        max_retries=1,
        client_args={"transport": NormalisingTransport(settings.base_url), "trust_env": False},
        **settings.thinking_kwargs(),
    )


# --- reading Google's errors -------------------------------------------------------------------

def _api_error(exc: BaseException) -> BaseException | None:
    """The google-genai ``APIError`` behind a LangChain error (it has ``code`` and ``details``)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(getattr(e, "code", None), int):
            return e
        e = e.__cause__ or e.__context__
    return None


def status_of(exc: BaseException) -> int | None:
    """HTTP status behind a langchain-google-genai / google-genai error, if any."""
    api = _api_error(exc)
    return getattr(api, "code", None) if api is not None else None


def server_retry_delay(exc: BaseException) -> float | None:
    """The delay, s, the server asked for before a retry: ``google.rpc.RetryInfo.retryDelay``
    (a protobuf Duration such as ``"38s"`` or ``"0.5s"``) in the error details, else the
    ``Retry-After`` header (seconds or an HTTP date). None when it gave neither."""
    api = _api_error(exc)
    if api is None:
        return None
    details = getattr(api, "details", None)
    err = details.get("error", details) if isinstance(details, dict) else {}
    for d in (err.get("details") or []) if isinstance(err, dict) else []:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            m = _DURATION.match(str(d.get("retryDelay", "")))
            if m:
                return float(m.group(1))
    headers = getattr(getattr(api, "response", None), "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def is_transient(exc: BaseException) -> bool:
    """408, 429, 5xx, or a timeout / connection error: a retry may succeed."""
    status = status_of(exc)
    if status is not None:
        return status in (408, 429) or status >= 500
    name = type(exc).__name__.lower()
    return "timeout" in name or "connect" in name


def classify_failure(exc: BaseException, settings: GeminiSettings, probe: bool = False) -> BackendUnavailable | None:
    """The error to raise at once for a non-transient failure, or None when ``exc`` is transient.

    A configuration Google rejected is a :class:`GeminiRejected` naming the setting to check:
    401/403 or a 400 about the API key, 404 (unknown model), a 400 about thinking. Another 4xx
    is a :class:`GeminiRejected` too when ``probe`` (the self-check's request carries no customer
    text, so only the configuration can be wrong), else a per-query ``GeminiAnswerError`` (the
    customer's message may be what Google refused, e.g. too long), so one message cannot mark
    the backend unavailable for everyone."""
    if is_transient(exc):
        return None
    status = status_of(exc)
    api = _api_error(exc)
    message = str(getattr(api, "message", None) or exc)[:300]
    lowered = message.lower()
    if status in (401, 403) or (status == 400 and ("api key" in lowered or "api_key" in lowered)):
        return GeminiRejected(f"Gemini rejected the API key (HTTP {status}). Check GOOGLE_API_KEY.")
    if status == 404:
        return GeminiRejected(f"Gemini model {settings.model!r} not found (HTTP 404). Check BANKING_GEMINI_MODEL.")
    if status is not None and 400 <= status < 500:
        if "think" in lowered or "budget" in lowered:
            hint = "BANKING_GEMINI_THINKING_BUDGET / BANKING_GEMINI_THINKING_LEVEL"
        elif probe:
            hint = "BANKING_GEMINI_MODEL and the BANKING_GEMINI_* settings"
        else:
            return GeminiAnswerError(f"Gemini refused this request (HTTP {status}: {message}).")
        return GeminiRejected(f"Gemini rejected the request for model {settings.model!r} "
                              f"(HTTP {status}: {message}). Check {hint}.")
    return BackendUnavailable(f"Gemini request failed: {type(exc).__name__}: {message}")


def backoff_delay(settings: GeminiSettings, attempt: int) -> float:
    """Exponential back-off before retry ``attempt`` (1-based), s: ``backoff_s * 2**(attempt-1)``
    capped at ``backoff_max_s``, plus up to 25 % jitter."""
    delay = min(settings.backoff_max_s, settings.backoff_s * 2 ** (attempt - 1))
    return delay * (1.0 + 0.25 * random.random())


def call_with_retries(call: Callable[[], Any], settings: GeminiSettings,
                      max_retries: int | None = None, probe: bool = False) -> tuple[Any, int]:
    """Run ``call()`` with the retry policy of the module docstring. Returns (result, attempts).
    ``max_retries``: default ``settings.max_retries``; ``probe``: the call is the self-check.

    Raises what :func:`classify_failure` returns for a non-transient error (``GeminiRejected``,
    ``GeminiAnswerError``, ``BackendUnavailable``), and ``BackendUnavailable`` with
    ``retry_after_s`` (s) when the retries run out or the server asks for a delay longer than
    ``backoff_max_s``.
    """
    retries = settings.max_retries if max_retries is None else max_retries
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(), attempt
        except Exception as e:  # noqa: BLE001 - classified below
            fatal = classify_failure(e, settings, probe)
            if fatal is not None:
                raise fatal from e
            status = status_of(e)
            asked = server_retry_delay(e)
            what = f"HTTP {status}" if status else type(e).__name__
            if asked is not None and asked > settings.backoff_max_s:
                raise _exhausted(f"Gemini asked to wait {asked:g} s before retrying ({what}), longer than "
                                 f"BANKING_GEMINI_BACKOFF_MAX_S={settings.backoff_max_s:g}. Try later.",
                                 asked) from e
            delay = max(backoff_delay(settings, attempt), asked or 0.0)
            if attempt > retries:
                raise _exhausted(f"Gemini request failed after {attempt} attempts (last: {what}). "
                                 "Rate-limited or down; try later.", asked if asked is not None else delay) from e
            log.info("gemini: %s, retry %d in %.2fs (server asked %s)", what, attempt, delay, asked)
            _sleep(delay)


def _exhausted(message: str, retry_after_s: float) -> BackendUnavailable:
    err = BackendUnavailable(message)
    err.retry_after_s = round(float(retry_after_s), 3)
    return err
