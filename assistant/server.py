"""The HTTP interface: a FastAPI app with LangServe routes.

Routes:
- ``/assistant/{invoke,batch,stream}``: one conversational turn (chains/assistant.py).
- ``/classify/{invoke,batch}``: the intent classification alone (chains/intent.py).
- ``/health``: liveness plus which backends are available (no authentication).
- ``/benchmarks``: the automatic comparative benchmark log summarised (operator key only).
- ``/assistant/playground``: the LangServe playground (its calls need the bearer key too).

Authentication: ``Authorization: Bearer <api key>``; keys are stored hashed and map to one
customer (bank/auth.py). The customer id reaches the chain only from here, through
``config["configurable"]["customer_id"]``; a request that sets any ``configurable`` field other
than ``backend`` is refused with 400. Missing/invalid key: 401. Invalid message: 422.
Unavailable backend: 503. Unknown pending action: 404.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langserve import add_routes
from pydantic import BaseModel, Field, field_validator

from bank.auth import Principal, authenticate_key
from bank.tools import ActionExpiredError
from bank.store import create_schema, get_engine
from assistant.settings import get_settings
from chains.assistant import AssistantInput, AssistantOutput, RankedIntent, build_assistant_chain, validate_message
from chains.backends import available_backends, get_backend
from evals.benchmark import BenchmarkScheduler, summarise_log
from chains.intent import build_intent_chain
from models.base import BackendUnavailable

log = logging.getLogger(__name__)
ALLOWED_CONFIGURABLE = {"backend"}
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


async def _refuse_foreign_configurable(request: Request) -> None:
    try:
        body = await request.json()
    except ValueError:
        return  # LangServe answers malformed JSON itself
    configs: list[Any] = []
    if isinstance(body, dict):
        cfg = body.get("config")
        configs.extend(cfg if isinstance(cfg, list) else [cfg])
    for cfg in configs:
        if isinstance(cfg, dict) and isinstance(cfg.get("configurable"), dict):
            foreign = sorted(set(cfg["configurable"]) - ALLOWED_CONFIGURABLE)
            if foreign:
                raise HTTPException(
                    400, f"configurable field(s) {foreign} may not be set by a request; only 'backend' may."
                )


def require_operator(principal: Principal = Depends(require_principal)) -> Principal:
    """The key must be an operator's (403 otherwise)."""
    if principal.role != "operator":
        raise HTTPException(403, "Operator key required.")
    return principal


def available_models() -> dict[str, Any]:
    """name -> backend instance for every backend that reports itself available."""
    return {name: get_backend(name) for name, v in available_backends().items() if v["available"]}


def _warm_up_gemini() -> None:
    gemini = get_backend("gemini")
    if gemini.availability()[0] and hasattr(gemini, "warm_up"):
        try:
            gemini.warm_up()  # builds the retrieval index off the request path
        except Exception as e:  # noqa: BLE001 - a failed warm-up only means the first request pays for it
            log.warning("gemini warm-up failed (%s); the first gemini request will build the index", e)


async def customer_config(config: dict, request: Request) -> dict:
    """LangServe ``per_req_config_modifier``: refuse foreign configurable fields, then set the
    authenticated customer id (the only way it reaches the chain)."""
    await _refuse_foreign_configurable(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None or principal.customer_id is None:
        raise HTTPException(401, "Not authenticated.")
    configurable = dict(config.get("configurable") or {})
    configurable["customer_id"] = principal.customer_id
    return {**config, "configurable": configurable}


def _to_classify_output(msg: AIMessage) -> ClassifyOutput:
    m = msg.response_metadata
    return ClassifyOutput(
        intent=m["intent"], confidence=m["confidence"], ranking=m["ranking"], backend=m["backend"],
        model_version=m["model_version"], latency_ms=m["latency_ms"],
    )


def create_app() -> FastAPI:
    """Build the FastAPI app (creates the database schema if missing)."""
    settings = get_settings()
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)  # e.g. 1 on a shared host: see README
    create_schema(get_engine())
    scheduler = BenchmarkScheduler(settings, get_models=available_models)
    threading.Thread(target=_warm_up_gemini, name="gemini-warm-up", daemon=True).start()

    def count_request(request: Request) -> None:
        """Every N-th assistant/classify call starts a background benchmark round."""
        if request.method == "POST":
            scheduler.record_request()

    app = FastAPI(title="Banking assistant", version="0.1.0",
                  description="BANKING77 intent recognition with three backends and banking tools.")

    @app.exception_handler(BackendUnavailable)
    async def _unavailable(_: Request, exc: BackendUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(ActionExpiredError)
    async def _expired(_: Request, exc: ActionExpiredError) -> JSONResponse:
        return JSONResponse(status_code=410, content={"detail": str(exc)})

    @app.exception_handler(LookupError)
    async def _not_found(_: Request, exc: LookupError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc).strip("'\"")})

    @app.exception_handler(ValueError)
    async def _bad_value(_: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and backend availability (no authentication)."""
        return {"status": "ok", "default_backend": settings.backend, "backends": available_backends()}

    app.state.benchmarks = scheduler

    @app.get("/benchmarks")
    def benchmarks(_: Principal = Depends(require_operator)) -> dict[str, Any]:
        """Summary of the benchmark log: one row per backend (operator key only)."""
        return {"every": scheduler.every, "log": str(scheduler.log_path), "backends": summarise_log(scheduler.log_path)}

    intent_chain = build_intent_chain()
    classify_chain = (
        RunnableLambda(lambda inp: [HumanMessage((inp if isinstance(inp, ClassifyInput) else ClassifyInput.model_validate(inp)).text)])
        | intent_chain
        | RunnableLambda(_to_classify_output)
    ).with_types(input_type=ClassifyInput, output_type=ClassifyOutput)

    add_routes(
        app, build_assistant_chain(intent_chain), path="/assistant",
        input_type=AssistantInput, output_type=AssistantOutput,
        per_req_config_modifier=customer_config, dependencies=[Depends(require_customer), Depends(count_request)],
        enabled_endpoints=["invoke", "batch", "stream", "input_schema", "output_schema", "config_schema", "playground"],
    )
    add_routes(
        app, classify_chain, path="/classify",
        input_type=ClassifyInput, output_type=ClassifyOutput,
        per_req_config_modifier=customer_config, dependencies=[Depends(require_customer), Depends(count_request)],
        enabled_endpoints=["invoke", "batch", "input_schema", "output_schema", "config_schema"],
    )
    return app


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app with uvicorn (blocking)."""
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port)
