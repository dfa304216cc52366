"""The errors of the gemini backend, each a ``BackendUnavailable`` so an unprepared caller still
answers 503 with the message; prepared callers catch the narrower classes."""

from __future__ import annotations

from models.base import BackendUnavailable, PerQueryError, QueryBlocked


class GeminiAnswerError(PerQueryError, BackendUnavailable):
    """Gemini answered this query, but not with a usable label (malformed, off-schema, or cut off
    without one). Concerns this query only (``per_query = True``), so an eval goes on with the
    others. Raised by ``classify_batch`` with ``partial``: one ``IntentPrediction`` or per-query
    ``GeminiAnswerError`` per input text, in order."""


class PromptBlocked(GeminiAnswerError, QueryBlocked):
    """Google's safety filters blocked this query: the prompt itself (``promptFeedback.blockReason``)
    or the answer (finish reason SAFETY, PROHIBITED_CONTENT, BLOCKLIST, SPII...). Not an outage:
    the caller should answer the customer politely (for example "I can't help with that message;
    please rephrase it or ask about your account") with a status such as ``blocked``, and not
    retry. ``reason``: Google's block or finish reason (e.g. "SAFETY"); ``source``: "prompt" or
    "answer"."""

    def __init__(self, message: str, reason: str, source: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.source = source


class GeminiRejected(BackendUnavailable):
    """Google rejected the backend's configuration (HTTP 400/401/403/404: a bad key, an unknown
    model, a thinking budget the model does not accept). Every request would fail the same way
    until the setting is fixed, so the backend reports itself unavailable with this reason."""
