"""One table from domain errors to what each interface shows: the HTTP status, the CLI exit
code, and the sentence a customer reads in the chat UI (``customer_text``: in the current
language, config/i18n.py; ``detail`` for API clients stays English).

Only the errors named here are the customer's or the request's fault; anything else (a
``KeyError`` bug included) is an internal error: HTTP 500 with a generic body, CLI exit 1, a
generic apology in the UI, and a logged traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bank.tools import ActionExpiredError, ActionNotFoundError
from chains.assistant import InvalidMessage
from chains.guard import UnknownChoice
from config.i18n import gettext as _
from models.base import BackendUnavailable


@dataclass(frozen=True)
class ErrorView:
    """How one error is shown: ``http_status`` (int), ``cli_exit`` (process exit code),
    ``detail`` (short reason for API clients and the terminal), ``customer_text`` (chat UI
    wording), ``retry_after_s`` (seconds, or None; sent as ``Retry-After``)."""

    http_status: int
    cli_exit: int
    detail: str
    customer_text: str
    retry_after_s: float | None = None


_SERVER_PATH = re.compile(r"(?<![\w.])(/[\w.@+-]+){2,}/?")


def _short(exc: BaseException, limit: int = 200) -> str:
    """The error's message for a client: server file paths replaced by "<server path>", at most
    ``limit`` characters."""
    text = str(exc.args[0]) if isinstance(exc, LookupError) and exc.args else str(exc)
    text = _SERVER_PATH.sub("<server path>", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validation_detail(exc: ValidationError) -> str:
    """A pydantic ``ValidationError`` as one line: ``field: reason; ...`` (no input echoed)."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()))
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _unreadable(detail: str) -> ErrorView:
    return ErrorView(422, 2, detail, _("Sorry, I can't read that message: {detail}").format(detail=detail))


_DOMAIN_VIEWS: tuple[tuple[type[BaseException], Callable[[Any], ErrorView]], ...] = (
    (ActionExpiredError, lambda e: ErrorView(410, 2, _short(e), _short(e))),
    (ActionNotFoundError,
     lambda e: ErrorView(404, 2, _short(e), _("I can't find that request any more; nothing was changed."))),
    (InvalidMessage, lambda e: _unreadable(_short(e))),
    (UnknownChoice, lambda e: _unreadable(_short(e))),
    (ValidationError, lambda e: _unreadable(validation_detail(e))),
    (PermissionError,
     lambda e: ErrorView(403, 2, _short(e), _("This conversation belongs to someone else; please start a new one."))),
    (BackendUnavailable,
     lambda e: ErrorView(503, 1, _short(e), _("Sorry, I can't answer right now. Please try again in a moment, or "
                                             "pick another assistant model in the settings."), e.retry_after_s)),
)
"""Each domain error type and its view, checked in this order (first ``isinstance`` wins)."""

DOMAIN_ERRORS: tuple[type[BaseException], ...] = tuple(kind for kind, _view in _DOMAIN_VIEWS)
"""The errors that are the customer's or the request's fault (an ``except`` clause's tuple):
every other exception is an internal error (HTTP 500)."""


def view_of(exc: BaseException) -> ErrorView:
    """The :class:`ErrorView` of ``exc`` (see the module docstring for the unnamed case)."""
    for kind, view in _DOMAIN_VIEWS:
        if isinstance(exc, kind):
            return view(exc)
    return ErrorView(500, 1, "Internal error; it has been logged.",
                     _("Sorry, something went wrong on our side. Please try again."))
