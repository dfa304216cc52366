"""The HTTP interface: a FastAPI app with LangServe routes.

Routes:
- ``/assistant/{invoke,batch}`` (LangServe) and ``/assistant/stream`` (the same turn as
  server-sent events): one conversational turn, run by the conversation graph (chains/graph.py)
  with its checkpointer, on a thread per conversation of the authenticated customer
  (``api-<customer id>-<conversation_id or "default">``; each batch item without a
  conversation_id gets a thread of its own). A batch answers per item, in order: a failed item
  has ``status: "error"`` and ``error: {status, detail}``, the others their outcome.
- ``/classify/{invoke,batch}``: the intent classification alone (chains/intent.py).
- ``/health``: liveness plus which backends are available (no authentication, no details);
  ``/health/details``: model versions and reasons (operator key only).
- ``/operator/tickets`` and ``/operator/tickets/{id}/close``: the hand-over queue (operator key
  only; assistant/operator_tickets.py).
- ``/benchmarks``: the automatic comparative benchmark log summarised per arm (operator key only).
- ``/metrics``: Prometheus metrics (assistant/metrics.py; operator key or loopback only).
Request limits, JSON hygiene, rate limits and short 422 bodies: assistant/http_limits/.

Authentication: ``Authorization: Bearer <api key>``; keys are stored hashed and map to one
customer (bank/auth.py). The customer id reaches the chain only from here, through
``config["configurable"]["customer_id"]``; a request that sets any ``configurable`` field other
than ``backend`` is refused with 400. Missing/invalid key: 401. Every other error status comes
from the one table in assistant/errors.py (shared with the CLI and the UI).
"""

from __future__ import annotations

import logging
import threading

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langserve import add_routes
from pydantic import BaseModel, Field, ValidationError, field_validator
from sse_starlette import EventSourceResponse

from assistant.conversations import Conversations
from assistant.errors import view_of
from assistant.http_turns import DOMAIN_ERRORS, AssistantTurn
from assistant.http_limits import bounded, health_router, install as install_http_limits
from assistant.metrics import install_metrics
from assistant.operator_tickets import tickets_router
from config.settings import get_settings
from bank.auth import Principal, authenticate_key
from bank.store import create_schema, get_engine
from chains.arms import CHOICES
from chains.assistant import AssistantInput, AssistantOutput, AssistantRequest, RankedIntent, validate_message
from chains.backends import get_backend
from chains.intent import build_intent_chain

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False)


class ClassifyInput(BaseModel):
    """Request body of /classify: the text to classify (1-2,000 characters)."""

    text: str = Field(..., description="Text to classify.")

    @field_validator("text")
    @classmethod
    def _check(cls, v: str) -> str:
        return validate_message(v)


class ClassifyOutput(BaseModel):
    """Response of /classify: the contract's classification fields (latency in ms)."""

    intent: str
    confidence: float
    ranking: list[RankedIntent]
    backend: str
    model_version: str
    latency_ms: float
    arm: str | None = Field(None, description="The routing arm that answered (chains/routing.py).")


def require_principal(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """FastAPI dependency: the authenticated principal, stored on ``request.state.principal``.
    Raises HTTP 401 when the bearer key is missing or unknown."""
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise HTTPException(401, "Missing bearer API key (Authorization: Bearer <key>).",
                            headers={"WWW-Authenticate": "Bearer"})
    principal = authenticate_key(get_engine(), creds.credentials)
    if principal is None:
        raise HTTPException(401, "Invalid API key.", headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    return principal


def require_customer(principal: Principal = Depends(require_principal)) -> Principal:
    """Like ``require_principal`` but the key must belong to a customer (403 otherwise)."""
    if principal.customer_id is None:
        raise HTTPException(403, "This key does not belong to a customer.")
    return principal


def require_operator(principal: Principal = Depends(require_principal)) -> Principal:
    """The key must be an operator's (403 otherwise)."""
    if principal.role != "operator":
        raise HTTPException(403, "Operator key required.")
    return principal


def _warm_up_gemini() -> None:
    gemini = get_backend("gemini")
    if gemini.availability()[0]:
        try:
            ok, reason = gemini.self_check()  # a rejected model setting shows in /health, not as 503s
            if not ok:
                log.warning("gemini self-check failed: %s", reason)
                return
            gemini.warm_up()  # builds the retrieval index off the request path
        except Exception as e:  # noqa: BLE001 - a failed warm-up only means the first request pays for it
            log.warning("gemini warm-up failed (%s); the first gemini request will build the index", e)


async def customer_config(config: dict, request: Request) -> dict:
    """LangServe ``per_req_config_modifier``: set the authenticated customer id (the only way it
    reaches the chain) and, for ``/batch``, that the items answer one by one (``request_kind``).
    A request naming another configurable field than ``backend`` never gets here: the JSON
    hygiene middleware refuses it with 400 (assistant/http_limits/json_body.py)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None or principal.customer_id is None:
        raise HTTPException(401, "Not authenticated.")
    configurable = dict(config.get("configurable") or {})
    configurable["customer_id"] = principal.customer_id
    configurable["request_kind"] = "batch" if request.url.path.endswith("/batch") else "single"
    return {**config, "configurable": configurable}


def _to_classify_output(msg: AIMessage) -> ClassifyOutput:
    m = msg.response_metadata
    return ClassifyOutput(
        intent=m["intent"], confidence=m["confidence"], ranking=m["ranking"], backend=m["backend"],
        model_version=m["model_version"], latency_ms=m["latency_ms"], arm=m.get("arm"),
    )


def create_app() -> FastAPI:
    """Build the FastAPI app (creates the database schema if missing)."""
    settings = get_settings()
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)  # e.g. 1 on a shared host: see README
    create_schema(get_engine())
    threading.Thread(target=_warm_up_gemini, name="gemini-warm-up", daemon=True).start()

    app = FastAPI(title="Banking assistant", version="0.1.0",
                  description="BANKING77 intent recognition with three backends and banking tools.")
    app.state.request_hooks = []  # called on every assistant/classify POST (the entry point adds the benchmark's)

    def count_request(request: Request) -> None:
        """Run the request hooks (e.g. every N-th call starts a benchmark round: evals/attach.py)."""
        if request.method == "POST":
            for hook in app.state.request_hooks:
                hook()

    async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
        view = view_of(exc)
        headers = {"Retry-After": str(max(1, round(view.retry_after_s)))} if view.retry_after_s else None
        return JSONResponse(status_code=view.http_status, content={"detail": view.detail}, headers=headers)

    for kind in DOMAIN_ERRORS:
        app.add_exception_handler(kind, _domain_error)

    install_http_limits(app, settings)
    install_metrics(app)  # outermost: counts the limits' answers too; GET /metrics
    app.include_router(health_router(settings.backend, require_operator))
    app.include_router(tickets_router(require_operator))  # GET /operator/tickets, POST .../{id}/close

    intent_chain = bounded(build_intent_chain(), settings.max_concurrent_inference)
    classify_chain = (
        RunnableLambda(lambda inp: [HumanMessage((inp if isinstance(inp, ClassifyInput) else ClassifyInput.model_validate(inp)).text)])
        | intent_chain
        | RunnableLambda(_to_classify_output)
    ).with_types(input_type=ClassifyInput, output_type=ClassifyOutput).with_config(
        max_concurrency=settings.max_batch_concurrency)  # one batch cannot fill the worker threads

    holder = Conversations(intent_chain)
    turn = AssistantTurn(holder, settings.backend).with_config(max_concurrency=settings.max_batch_concurrency)
    app.state.conversations = holder
    app.router.add_event_handler("shutdown", holder.close)

    @app.post("/assistant/stream", dependencies=[Depends(require_customer), Depends(count_request)])
    async def assistant_stream(request: Request) -> EventSourceResponse:
        """One turn as server-sent events in LangServe's stream format (``RemoteRunnable.stream``
        reads it; see assistant/http_turns.py ``AssistantTurn.sse_events``); body as
        /assistant/invoke: ``{"input": {...}, "config": {"configurable": {"backend": ...}}}``."""
        body = await request.json()  # the JSON hygiene middleware has checked it
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            raise HTTPException(422, "The body needs an 'input' object.")
        cfg = body.get("config") or {}
        if not isinstance(cfg.get("configurable") or {}, dict):
            raise HTTPException(422, "'config.configurable' must be an object.")
        backend = (cfg.get("configurable") or {}).get("backend")
        if backend is not None and backend not in CHOICES:
            raise HTTPException(422, f"config.configurable.backend must be one of: {', '.join(CHOICES)}.")
        try:
            req = AssistantInput.model_validate(body["input"])
        except ValidationError as e:
            return await _domain_error(request, e)
        config = await customer_config({"configurable": dict(cfg.get("configurable") or {})}, request)
        return EventSourceResponse(turn.bound.sse_events(req, config))

    add_routes(
        app, turn, path="/assistant",
        input_type=AssistantRequest, output_type=AssistantOutput,
        per_req_config_modifier=customer_config, dependencies=[Depends(require_customer), Depends(count_request)],
        enabled_endpoints=["invoke", "batch", "stream_events", "input_schema", "output_schema", "config_schema"],
    )
    add_routes(
        app, classify_chain, path="/classify",
        input_type=ClassifyInput, output_type=ClassifyOutput,
        per_req_config_modifier=customer_config, dependencies=[Depends(require_customer), Depends(count_request)],
        enabled_endpoints=["invoke", "batch", "input_schema", "output_schema", "config_schema"],
    )
    return app


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app with uvicorn (blocking), with the connection limits and trusted proxies of
    ``assistant.http_limits.uvicorn_options`` (header/keep-alive timeouts, connection cap)."""
    import uvicorn

    from assistant.http_limits import uvicorn_options

    uvicorn.run("assistant.app:create_app", factory=True, host=host, port=port, **uvicorn_options(get_settings()))
