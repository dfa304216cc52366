"""A local fake of the Gemini REST API (``POST .../models/{model}:generateContent``) for tests.

It is a real HTTP server on 127.0.0.1 (stdlib ``ThreadingHTTPServer`` in a daemon thread) that
records every request and answers like a retrieval-voting classifier: it reads the labelled
examples (``"text" -> label`` lines) in the prompt, votes, and returns the winner as the
structured JSON answer, so the backend's accuracy against it is the kNN vote's accuracy.

Behaviours of the real API it simulates (see https://ai.google.dev/gemini-api/docs):

- ``script``: scripted replies served first, one per request: ``(status, body)`` or
  ``(status, body, headers)`` (HTTP errors, a 429 with ``RetryInfo`` and ``Retry-After``,
  refusals, blocked prompts, unknown finish reasons, malformed bodies).
- Model rules, checked on every unscripted request like Google does: a model not in
  ``models`` answers 404 ``NOT_FOUND``; a thinking budget outside the model's range answers 400
  ``INVALID_ARGUMENT`` with Google's wording (Gemini 2.5 Pro cannot turn thinking off: budget 0
  is rejected, the range is 128-32768 or -1 for dynamic; 2.5 Flash takes 0-24576; 2.5
  Flash-Lite 0 or 512-24576; 2.0 models take no thinking configuration).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EXAMPLE_LINE = re.compile(r'^".*" -> (\S+)$', re.M)
MODEL_IN_PATH = re.compile(r"/models/([^/:]+):")

# model -> (min, max) thinking budget (-1, dynamic, is accepted by every thinking model);
# None: the model takes no thinkingConfig. Values from Google's thinking guide.
THINKING_RANGES: dict[str, tuple[int, int] | None] = {
    "gemini-2.5-flash": (0, 24576),
    "gemini-2.5-flash-lite": (512, 24576),  # plus 0 (off)
    "gemini-2.5-pro": (128, 32768),
    "gemini-2.0-flash": None,
}


def ok_body(answer: dict | str, *, finish: str | int | None = "STOP",
            tokens: tuple[int, int] = (900, 30)) -> dict:
    """A generateContent 200 response whose text part is ``answer`` (JSON-dumped if a dict).
    ``finish``: the candidate's ``finishReason`` as sent (an unknown string or an int too)."""
    text = answer if isinstance(answer, str) else json.dumps(answer)
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": tokens[0], "candidatesTokenCount": tokens[1],
                          "totalTokenCount": tokens[0] + tokens[1]},
        "modelVersion": "gemini-fake-001",
    }


def refusal_body(finish: str = "SAFETY") -> dict:
    """A 200 response whose candidate was blocked (``finishReason`` SAFETY by default, no content)."""
    return {"candidates": [{"finishReason": finish}],
            "usageMetadata": {"promptTokenCount": 900, "totalTokenCount": 900},
            "modelVersion": "gemini-fake-001"}


def blocked_prompt_body(reason: str = "SAFETY") -> dict:
    """A 200 response for a prompt Google blocked before generating: no candidates, only
    ``promptFeedback.blockReason``."""
    return {"promptFeedback": {"blockReason": reason,
                               "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT",
                                                  "probability": "HIGH"}]},
            "usageMetadata": {"promptTokenCount": 900, "totalTokenCount": 900},
            "modelVersion": "gemini-fake-001"}


def error_body(code: int, status: str, message: str, details: list | None = None) -> dict:
    """A Google API error body (``details``: google.rpc detail objects, e.g. RetryInfo)."""
    err: dict[str, Any] = {"code": code, "status": status, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


def rate_limit_body(retry_delay: str | None = "2s") -> dict:
    """The 429 RESOURCE_EXHAUSTED body Google sends for an exceeded quota, with a
    ``google.rpc.RetryInfo`` detail whose ``retryDelay`` is a protobuf Duration ("2s", "0.3s")."""
    details: list[dict] = [{
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}],
    }]
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    return error_body(429, "RESOURCE_EXHAUSTED",
                      "You exceeded your current quota, please check your plan and billing details.", details)


def thinking_error(model: str, budget: int) -> str | None:
    """Google's 400 message for ``budget`` on ``model``, or None when the budget is accepted."""
    rng = next((r for name, r in sorted(THINKING_RANGES.items(), key=lambda kv: -len(kv[0]))
                if model.startswith(name)), (0, 24576))
    if rng is None:
        return "Thinking is not supported for this model."
    lo, hi = rng
    if budget == -1 or lo <= budget <= hi or (budget == 0 and model.startswith("gemini-2.5-flash")):
        return None
    if budget == 0:
        return "Budget 0 is invalid. This model only works in thinking mode."
    return f"The thinking budget {budget} is invalid. Please choose a value between {lo} and {hi}."


class FakeGemini:
    """Start with ``with FakeGemini() as fake:``; ``fake.base_url`` is the server root.

    ``fake.requests``: list of (path, headers, json body) received; ``fake.times``: the
    ``time.monotonic()`` of each request's arrival, s; ``fake.script``: list of ``(status, body)``
    or ``(status, body, headers)`` served before falling back to the voting answer;
    ``fake.models``: the model names the server knows (others answer 404).
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.times: list[float] = []
        self.script: list[tuple] = []
        self.models: set[str] = set(THINKING_RANGES) | {"gemini-3-flash-preview", "gemini-3-pro-preview"}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                with fake._lock:
                    fake.requests.append((self.path, dict(self.headers), body))
                    fake.times.append(time.monotonic())
                    scripted = fake.script.pop(0) if fake.script else None
                status, payload, headers = (tuple(scripted) + ({},))[:3] if scripted else fake.answer(self.path, body)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                """Keep the test output quiet (no access log)."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @staticmethod
    def prompt_text(body: dict) -> str:
        """The text of the user turn of a generateContent request."""
        return "\n".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))

    @staticmethod
    def thinking_config(body: dict) -> dict | None:
        """The request's ``generationConfig.thinkingConfig`` (None when absent; google-genai
        spells its fields in snake_case, ``thinking_budget`` / ``thinking_level``)."""
        gen = body.get("generationConfig") or {}
        return gen.get("thinkingConfig", gen.get("thinking_config"))

    def answer(self, path: str, body: dict) -> tuple[int, dict, dict]:
        """The unscripted reply: the model rules (404 / 400), then the voting answer."""
        m = MODEL_IN_PATH.search(path)
        model = m.group(1) if m else ""
        if model not in self.models:
            return 404, error_body(404, "NOT_FOUND", f"models/{model} is not found for API version "
                                   "v1beta, or is not supported for generateContent."), {}
        cfg = self.thinking_config(body) or {}
        budget = cfg.get("thinkingBudget", cfg.get("thinking_budget"))  # proto JSON takes either spelling
        if budget is not None and (msg := thinking_error(model, int(budget))):
            return 400, error_body(400, "INVALID_ARGUMENT", msg), {}
        return 200, self.vote(body), {}

    def vote(self, body: dict) -> dict:
        """Answer with the majority label among the prompt's retrieved examples."""
        labels = EXAMPLE_LINE.findall(self.prompt_text(body))
        enum = body["generationConfig"]["responseJsonSchema"]["properties"]["intent"]["enum"]
        counts = Counter(lab for lab in labels if lab in enum) or Counter({enum[0]: 1})
        total = sum(counts.values())
        ranked = counts.most_common(5)
        return ok_body({
            "intent": ranked[0][0],
            "confidence": round(ranked[0][1] / total, 4),
            "alternatives": [{"intent": lab, "confidence": round(c / total, 4)} for lab, c in ranked[1:]],
        })

    def __enter__(self) -> "FakeGemini":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
