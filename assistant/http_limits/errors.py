"""422 answers that never echo the request back.

FastAPI's default ``RequestValidationError`` handler returns every error with its ``input``,
so a 10 MB string came back whole in the 422. This handler keeps ``type``, ``loc`` and ``msg``
and replaces ``input`` with at most ``ECHO_CHARS`` characters (strings) or a short summary
(objects, arrays); ``ctx`` values are cut to 120 characters.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

ECHO_CHARS = 40


def short(value: Any, limit: int = ECHO_CHARS) -> Any:
    """``value`` made safe to echo: a string cut to ``limit`` characters plus "..." (and its
    length), an object/array summarised as ``"<object with N keys>"``/``"<array of N items>"``,
    numbers/booleans/None unchanged, anything else its ``repr`` cut to ``limit``."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}... ({len(value)} characters)"
    if isinstance(value, dict):
        return f"<object with {len(value)} key{'s' * (len(value) != 1)}>"
    if isinstance(value, (list, tuple)):
        return f"<array of {len(value)} item{'s' * (len(value) != 1)}>"
    return short(repr(value), limit)


def short_errors(errors: Any) -> list[Any]:
    """The validation ``errors`` (pydantic error dicts, or LangServe's plain strings) with every
    ``input`` shortened by :func:`short`, ``ctx`` values to 120 and messages to 300 characters."""
    out: list[Any] = []
    for err in errors if isinstance(errors, (list, tuple)) else [errors]:
        if not isinstance(err, dict):
            out.append(short(str(err), 300))
            continue
        e = {k: err[k] for k in ("type", "loc", "msg") if k in err}
        if "msg" in e:
            e["msg"] = short(str(e["msg"]), 300)
        if "input" in err:
            e["input"] = short(err["input"])
        if isinstance(err.get("ctx"), dict):
            e["ctx"] = {k: short(v if isinstance(v, (str, int, float, bool, type(None))) else str(v), 120)
                        for k, v in err["ctx"].items()}
        out.append(e)
    return out


async def validation_error_handler(_: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI exception handler: 422 with ``{"detail": short_errors(exc.errors())}``."""
    return JSONResponse(status_code=422, content={"detail": short_errors(exc.errors())})


def install_validation_handler(app: FastAPI) -> None:
    """Register :func:`validation_error_handler` for ``RequestValidationError`` on ``app``."""
    app.add_exception_handler(RequestValidationError, validation_error_handler)
