"""The server's entry point: the HTTP app (assistant/server.py) with the automatic benchmark
attached (evals/attach.py). ``banking-assistant serve`` and the uvicorn factory
(``assistant.app:create_app``) use it; the app itself never imports the offline harness."""

from __future__ import annotations

from fastapi import FastAPI

from assistant.server import create_app as create_server_app, require_operator
from config.settings import get_settings
from evals.attach import attach_benchmarks


def create_app() -> FastAPI:
    """The served app: :func:`assistant.server.create_app` plus the benchmark."""
    app = create_server_app()
    attach_benchmarks(app, get_settings(), require_operator)
    return app
