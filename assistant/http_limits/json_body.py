"""JSON hygiene for request bodies, checked before FastAPI/LangServe parse them.

Each check answers with a short reason instead of letting the body reach code that would fail
with a 500:

=====================================================  ======
non-JSON ``Content-Type`` (or a charset other than UTF-8)  415
body not valid UTF-8, malformed JSON                   400
nesting deeper than ``max_depth`` (objects + arrays)   400 (scanned without recursion, so a
                                                       1,000-deep body cannot hit Python's
                                                       recursion limit)
a lone UTF-16 surrogate (``"\\ud83d"``) in any string   422 (names the JSON path)
``"config"`` that is not an object (a list of objects  422
also allowed on ``/batch``)
``/batch`` with more than ``max_batch_items`` inputs   413
a number that is not finite (``1e999``, anywhere)     400 (JSON has no infinity; Python would
                                                       read it as ``inf`` and fail later)
``config.configurable`` naming a field a request may  400 (only ``allowed_configurable``, e.g.
not set (``customer_id``, ...)                         ``backend``: identity comes from auth)
=====================================================  ======

Well-formed surrogate pairs (``"\\ud83d\\ude00"``) decode to one character and pass, as do emoji
sequences joined by U+200D (zero-width joiner).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from assistant.http_limits._asgi import BODY_METHODS, ASGIApp, Receive, Scope, Send, header, read_body, replay, send_error

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_RUN_ENDPOINTS = ("/invoke", "/batch", "/stream", "/stream_log", "/stream_events")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:24]} is out of range (not a finite number)")
    return value


def is_json_content_type(value: str | None) -> bool:
    """True for ``application/json`` or ``application/<x>+json``, optionally with
    ``charset=utf-8`` (any case); False for anything else, including a missing header."""
    if not value:
        return False
    media, *params = [p.strip().lower() for p in value.split(";")]
    if not (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))):
        return False
    for p in params:
        if p.startswith("charset=") and p.split("=", 1)[1].strip('"') not in {"utf-8", "utf8"}:
            return False
    return True


def json_depth(body: bytes) -> int:
    """Deepest nesting of objects and arrays in the JSON text ``body`` (0 for a scalar), counted
    without recursion: string literals are cut out first, then brackets are counted."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRINGS.sub(b'""', body)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def find_lone_surrogate(value: Any) -> str | None:
    """The JSON path (e.g. ``input.message`` or ``inputs[2].text``) of the first key or string
    holding an unpaired UTF-16 surrogate, or None. Walks iteratively (no recursion)."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return path or "(body)"
        elif isinstance(v, dict):
            for k, item in v.items():
                sub = f"{path}.{k}" if path else str(k)
                if _SURROGATE.search(k):
                    return f"{path}.(key)" if path else "(key)"
                stack.append((sub, item))
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(v))))
    return None


class JsonBodyMiddleware:
    """Pure ASGI middleware applying the checks in the module docstring to POST/PUT/PATCH.

    ``max_depth``: deepest allowed nesting (> 0). ``max_batch_items``: most inputs one
    ``.../batch`` request may carry (> 0). Place it inside :class:`BodySizeLimitMiddleware`
    so the body it reads is already bounded.
    """

    def __init__(self, app: ASGIApp, *, max_depth: int, max_batch_items: int,
                 allowed_configurable: frozenset[str] = frozenset({"backend"})) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_batch_items = max_batch_items
        self.allowed_configurable = allowed_configurable

    def problem(self, path: str, body: bytes) -> tuple[int, str] | None:
        """(status, reason) for the first check ``body`` (sent to ``path``) fails, or None."""
        if not body.strip():
            return None  # no body: the route answers (LangServe: 422 for a missing input)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            return 400, f"Request body is not valid UTF-8 (byte {e.start})."
        depth = json_depth(body)
        if depth > self.max_depth:
            return 400, f"JSON nested {depth} levels deep; at most {self.max_depth} allowed."
        try:
            data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except json.JSONDecodeError as e:
            return 400, f"Malformed JSON: {e.msg} at line {e.lineno} column {e.colno}."
        except ValueError as e:
            return 400, f"Malformed JSON: {e}."
        where = find_lone_surrogate(data)
        if where is not None:
            return 422, f"{where}: contains an unpaired UTF-16 surrogate (not valid Unicode text)."
        if isinstance(data, dict) and path.endswith(_RUN_ENDPOINTS):
            batch = path.endswith("/batch")
            if "config" in data:
                cfg = data["config"]
                ok = isinstance(cfg, dict) or (batch and isinstance(cfg, list) and all(isinstance(c, dict) for c in cfg))
                if not ok:
                    allowed = "an object or a list of objects" if batch else "an object"
                    return 422, f"config: must be {allowed} when given (got {type(cfg).__name__ if cfg is not None else 'null'})."
                foreign = self.foreign_configurable(cfg if isinstance(cfg, list) else [cfg])
                if foreign:
                    return 400, (f"configurable field(s) {foreign} may not be set by a request; only "
                                 f"{', '.join(repr(k) for k in sorted(self.allowed_configurable))} may.")
            inputs = data.get("inputs")
            if batch and isinstance(inputs, list) and len(inputs) > self.max_batch_items:
                return 413, (f"Batch of {len(inputs)} inputs is too large: at most {self.max_batch_items} "
                             "(BANKING_MAX_BATCH_ITEMS).")
        return None

    def foreign_configurable(self, configs: list[Any]) -> list[str]:
        """The ``configurable`` keys of ``configs`` a request may not set, sorted."""
        keys = {k for c in configs if isinstance(c, dict) and isinstance(c.get("configurable"), dict)
                for k in c["configurable"]}
        return sorted(keys - self.allowed_configurable)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        if not is_json_content_type(header(scope, b"content-type")):
            await send_error(send, 415, "Content-Type must be application/json (UTF-8).")
            return
        body = await read_body(receive)
        if body is None:
            return  # the client went away
        found = self.problem(scope["path"], body)
        if found is not None:
            await send_error(send, *found)
            return
        await self.app(scope, replay(body, receive), send)
