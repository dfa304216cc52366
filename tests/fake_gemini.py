"""A local fake of the Gemini REST API (``POST .../models/{model}:generateContent``) for tests.

It is a real HTTP server on 127.0.0.1 (stdlib ``ThreadingHTTPServer`` in a daemon thread) that
records every request and answers like a retrieval-voting classifier: it reads the labelled
examples (``"text" -> label`` lines) in the prompt, votes, and returns the winner as the
structured JSON answer, so the backend's accuracy against it is the kNN vote's accuracy.
``script`` lets a test queue scripted replies (HTTP errors, refusals, malformed bodies) that are
served first, one per request.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EXAMPLE_LINE = re.compile(r'^".*" -> (\S+)$', re.M)


def ok_body(answer: dict | str, *, finish: str = "STOP", tokens: tuple[int, int] = (900, 30)) -> dict:
    """A generateContent 200 response whose text part is ``answer`` (JSON-dumped if a dict)."""
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish}],
        "usageMetadata": {"promptTokenCount": tokens[0], "candidatesTokenCount": tokens[1],
                          "totalTokenCount": tokens[0] + tokens[1]},
        "modelVersion": "gemini-fake-001",
    }


def refusal_body() -> dict:
    """A 200 response whose candidate was blocked (finishReason SAFETY, no content)."""
    return {"candidates": [{"finishReason": "SAFETY"}],
            "usageMetadata": {"promptTokenCount": 900, "totalTokenCount": 900},
            "modelVersion": "gemini-fake-001"}


def error_body(code: int, status: str, message: str) -> dict:
    """A Google API error body."""
    return {"error": {"code": code, "status": status, "message": message}}


class FakeGemini:
    """Start with ``with FakeGemini() as fake:``; ``fake.base_url`` is the server root.

    ``fake.requests``: list of (path, headers, json body) received; ``fake.script``: list of
    (status, body) served before falling back to the voting answer.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.script: list[tuple[int, dict | str]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                with fake._lock:
                    fake.requests.append((self.path, dict(self.headers), body))
                    scripted = fake.script.pop(0) if fake.script else None
                status, payload = scripted if scripted else (200, fake.vote(body))
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
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
