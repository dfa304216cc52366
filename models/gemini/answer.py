"""Reading Gemini's structured answer into an ``IntentPrediction`` (or the error that says why not).

Order of checks: a blocked prompt (``promptFeedback.blockReason``) or a safety finish reason
raises :class:`PromptBlocked`; otherwise a schema-valid answer whose ``intent`` is one of the
labels is returned whatever the finish reason (STOP, MAX_TOKENS, or a reason newer than this
code, e.g. ``UNKNOWN_42``); without one, :class:`GeminiAnswerError` says what came back.
``confidence`` and the ``ranking`` alternatives are the model's self-reported numbers, so every
answer carries ``calibrated=False``.
"""

from __future__ import annotations

from typing import Any

from models.base import TOP_K, IntentPrediction
from models.gemini.errors import GeminiAnswerError, PromptBlocked

# Finish reasons by which Google's filters withheld the answer (google.genai.types.FinishReason).
BLOCK_FINISH_REASONS = frozenset({
    "SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
    "MODEL_ARMOR",
})


def _name(value: Any) -> str | None:
    """An enum member, its name as a string, or None (``BlockedReason.SAFETY`` -> ``"SAFETY"``)."""
    if value is None or value == "" or value == 0:
        return None
    name = getattr(value, "name", None) or str(value)
    return name.split(".")[-1]


def block_of(raw: Any) -> tuple[str, str] | None:
    """(reason, source) when Google blocked the request, else None. ``source``: "prompt" for
    ``promptFeedback.blockReason``, "answer" for a safety finish reason."""
    meta = getattr(raw, "response_metadata", None) or {}
    feedback = meta.get("prompt_feedback") or {}
    reason = _name(feedback.get("block_reason")) if isinstance(feedback, dict) else None
    if reason and reason != "BLOCKED_REASON_UNSPECIFIED":
        return reason, "prompt"
    finish = _name(meta.get("finish_reason"))
    if finish in BLOCK_FINISH_REASONS:
        return finish, "answer"
    return None


def _clip(x: Any) -> float:
    """``x`` as a float in [0, 1]; not a number (or NaN) -> 0."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if v != v else max(0.0, min(1.0, v))


def parse_answer(out: dict[str, Any], intents: list[str]) -> tuple[str, float, list[tuple[str, float]]]:
    """(intent, confidence, ranking) from ``with_structured_output(..., include_raw=True)``'s
    ``out`` ({"raw": AIMessage, "parsed": dict | None, "parsing_error": ...}). ``ranking``: at
    most ``TOP_K`` (label, confidence) pairs, the answer first, alternatives capped at its
    confidence, duplicates and unknown labels dropped.

    Raises :class:`PromptBlocked` when Google blocked the prompt or the answer, and
    :class:`GeminiAnswerError` when no schema-valid label came back.
    """
    raw, parsed = out.get("raw"), out.get("parsed")
    block = block_of(raw)
    if block is not None:
        reason, source = block
        what = "the customer's message" if source == "prompt" else "its answer"
        raise PromptBlocked(f"Gemini refused to answer: its safety filters blocked {what} ({reason}).",
                            reason=reason, source=source)
    finish = _name((getattr(raw, "response_metadata", None) or {}).get("finish_reason"))
    if not isinstance(parsed, dict):
        detail = out.get("parsing_error") or str(getattr(raw, "content", ""))[:200]
        raise GeminiAnswerError(f"Gemini returned a malformed answer (not the JSON schema; finish reason "
                                f"{finish}): {detail!r}")
    intent = parsed.get("intent")
    if intent not in intents:
        raise GeminiAnswerError(f"Gemini answered {intent!r}, which is not one of the {len(intents)} intents "
                                f"(finish reason {finish}).")
    conf = _clip(parsed.get("confidence"))
    ranking: list[tuple[str, float]] = [(intent, conf)]
    for alt in parsed.get("alternatives") or []:
        lab = alt.get("intent") if isinstance(alt, dict) else None
        if lab in intents and lab not in {r[0] for r in ranking}:
            ranking.append((lab, min(_clip(alt.get("confidence")), conf)))
    ranking = [ranking[0]] + sorted(ranking[1:], key=lambda r: -r[1])
    return intent, conf, ranking[:TOP_K]


def usage_and_cost(raw: Any, price_in: float, price_out: float) -> tuple[dict[str, int], float]:
    """({input_tokens, output_tokens, total_tokens}, cost in USD) from the raw message's usage;
    prices are USD per million tokens (output tokens include thinking tokens)."""
    usage = dict(getattr(raw, "usage_metadata", None) or {})
    tokens_in = int(usage.get("input_tokens", 0) or 0)
    tokens_out = int(usage.get("output_tokens", 0) or 0)
    total = int(usage.get("total_tokens", tokens_in + tokens_out) or 0)
    cost = (tokens_in * price_in + tokens_out * price_out) / 1e6
    return {"input_tokens": tokens_in, "output_tokens": tokens_out, "total_tokens": total}, cost


def prediction(out: dict[str, Any], intents: list[str], latency_ms: float,
               extra: dict[str, Any]) -> IntentPrediction:
    """The ``IntentPrediction`` of one answer (see :func:`parse_answer` for the errors);
    ``extra`` gains ``finish_reason`` and ``gemini_model_version``."""
    intent, conf, ranking = parse_answer(out, intents)
    meta = getattr(out.get("raw"), "response_metadata", None) or {}
    extra = {**extra, "finish_reason": _name(meta.get("finish_reason")),
             "gemini_model_version": meta.get("model_name")}
    return IntentPrediction(intent=intent, confidence=conf, ranking=ranking, latency_ms=latency_ms, extra=extra)
