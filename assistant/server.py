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

import asyncio
import contextlib
import json
import logging
import threading
import uuid
import weakref
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langserve import add_routes
from pydantic import BaseModel, Field, ValidationError, field_validator
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from assistant.errors import view_of
from assistant.http_limits import bounded, health_router, install as install_http_limits
from assistant.metrics import install_metrics
from assistant.settings import get_settings
from bank.auth import Principal, authenticate_key
from bank.store import create_schema, get_engine
from bank.tools import ActionExpiredError, ActionNotFoundError
from chains.assistant import AssistantInput, AssistantOutput, InvalidMessage, RankedIntent, validate_message
from chains.backends import available_backends, get_backend
from chains.graph import answer_chunks, build_graph, graph_input, open_checkpointer, turn_output
from chains.guard import UnknownChoice
from chains.intent import BACKEND_FIELD, CHOICES, build_intent_chain
from chains.live import add_listener, remove_listener
from chains.policies import arm_models
from evals.benchmark import BenchmarkScheduler, LiveLog, summarise_log
from models.base import BackendUnavailable

DOMAIN_ERRORS = (ActionExpiredError, ActionNotFoundError, InvalidMessage, UnknownChoice, PermissionError,
                 BackendUnavailable, ValidationError)
"""Errors shown to API clients with the status and detail of assistant/errors.py."""

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
    """LangServe ``per_req_config_modifier``: refuse foreign configurable fields, then set the
    authenticated customer id (the only way it reaches the chain) and, for ``/batch``, that the
    items answer one by one (``request_kind``)."""
    await _refuse_foreign_configurable(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None or principal.customer_id is None:
        raise HTTPException(401, "Not authenticated.")
    configurable = dict(config.get("configurable") or {})
    configurable["customer_id"] = principal.customer_id
    configurable["request_kind"] = "batch" if request.url.path.endswith("/batch") else "single"
    return {**config, "configurable": configurable}


class Conversations:
    """The conversation graph for HTTP: compiled once with a checkpointer opened on first use
    (closed by :meth:`close`), one lock per thread so two requests of one conversation run one
    after the other. Runs the synchronous graph in the thread pool (inference is CPU-bound)."""

    def __init__(self, intent_chain: Runnable) -> None:
        self._intent_chain = intent_chain
        self._stack = contextlib.ExitStack()
        self._graph: Any = None
        self._init_lock = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def graph(self) -> Any:
        """The compiled graph (opens the checkpointer the first time)."""
        with self._init_lock:
            if self._graph is None:
                saver = self._stack.enter_context(open_checkpointer())
                self._graph = build_graph(checkpointer=saver, intent_chain=self._intent_chain)
            return self._graph

    def close(self) -> None:
        """Close the checkpointer."""
        self._stack.close()
        self._graph = None

    @staticmethod
    def thread_config(req: AssistantInput, config: RunnableConfig) -> dict[str, Any]:
        """The graph config of a request: thread of the authenticated customer's conversation,
        the backend the request chose."""
        conf = config.get("configurable") or {}
        cid = int(conf["customer_id"])
        conversation = req.conversation_id or ("batch-" + uuid.uuid4().hex if conf.get("request_kind") == "batch"
                                                else "default")
        graph_conf: dict[str, Any] = {"thread_id": f"api-{cid}-{conversation}", "customer_id": cid}
        if conf.get("backend"):
            graph_conf["backend"] = conf["backend"]
        return {"configurable": graph_conf, "callbacks": config.get("callbacks")}

    def _lock(self, thread_id: str) -> asyncio.Lock:
        lock = self._locks.get(thread_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[thread_id] = lock
        return lock

    async def turn(self, inp: AssistantInput | dict, config: RunnableConfig) -> AssistantOutput:
        """One turn. A batch item's domain error becomes that item's ``status: "error"``
        output; otherwise errors propagate (mapped by the app's handlers)."""
        batch = (config.get("configurable") or {}).get("request_kind") == "batch"
        try:
            req = inp if isinstance(inp, AssistantInput) else AssistantInput.model_validate(inp)
            if batch and req.conversation_id:  # a batch is not a conversation: no item answers another's proposal
                raise InvalidMessage("conversation_id is not allowed in a batch; each item is a conversation of its own")
            graph_config = self.thread_config(req, config)
            async with self._lock(graph_config["configurable"]["thread_id"]):
                state = await run_in_threadpool(self.graph().invoke, graph_input(req), graph_config)
            return turn_output(state)
        except DOMAIN_ERRORS as e:
            if not batch:
                raise
            view = view_of(e)
            return AssistantOutput(answer=view.customer_text, status="error",
                                   error={"status": view.http_status, "detail": view.detail})

    async def stream_events(self, req: AssistantInput, config: RunnableConfig):
        """Server-sent events of one turn in LangServe's format: ``metadata``, then
        ``answer_chunk`` events ``{"text"}`` as the answer streams, one ``data`` event with the
        whole output, ``end``; on an error one ``error`` event ``{status_code, message}`` with the
        status /invoke would answer, then ``end``."""
        yield {"event": "metadata", "data": json.dumps({"run_id": str(uuid.uuid4())})}
        try:
            graph_config = self.thread_config(req, config)
            async with self._lock(graph_config["configurable"]["thread_id"]):
                state: dict[str, Any] = {}
                streamed = False
                stream = self.graph().stream(graph_input(req), graph_config, stream_mode=["custom", "values"])
                while True:
                    item = await run_in_threadpool(next, stream, None)
                    if item is None:
                        break
                    mode, payload = item
                    if mode == "custom" and "answer_chunk" in payload:
                        streamed = True
                        yield {"event": "answer_chunk", "data": json.dumps({"text": payload["answer_chunk"]})}
                    elif mode == "values":
                        state = payload
            out = turn_output(state)
            if not streamed:  # a turn that stopped for confirmation: its question, in the same chunks
                for chunk in answer_chunks(out.answer):
                    yield {"event": "answer_chunk", "data": json.dumps({"text": chunk})}
            yield {"event": "data", "data": out.model_dump_json()}
        except Exception as e:  # noqa: BLE001 - every error becomes an error event; unknown ones are logged
            view = view_of(e)
            if view.http_status >= 500 and not isinstance(e, BackendUnavailable):
                log.exception("stream failed")
            yield {"event": "error", "data": json.dumps({"status_code": view.http_status, "message": view.detail})}
        yield {"event": "end"}


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
    scheduler = BenchmarkScheduler(settings, get_models=lambda: {**available_models(), **arm_models()})
    threading.Thread(target=_warm_up_gemini, name="gemini-warm-up", daemon=True).start()

    def count_request(request: Request) -> None:
        """Every N-th assistant/classify call starts a background benchmark round."""
        if request.method == "POST":
            scheduler.record_request()

    app = FastAPI(title="Banking assistant", version="0.1.0",
                  description="BANKING77 intent recognition with three backends and banking tools.")

    async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
        view = view_of(exc)
        headers = {"Retry-After": str(max(1, round(view.retry_after_s)))} if view.retry_after_s else None
        return JSONResponse(status_code=view.http_status, content={"detail": view.detail}, headers=headers)

    for kind in DOMAIN_ERRORS:
        app.add_exception_handler(kind, _domain_error)

    install_http_limits(app, settings)
    install_metrics(app)  # outermost: counts the limits' answers too; GET /metrics
    if scheduler.every or settings.rollout or settings.shadow:  # live and shadow rows in the benchmark log
        live_log = LiveLog(scheduler)
        add_listener(live_log)
        app.router.add_event_handler("shutdown", lambda: remove_listener(live_log))
    app.include_router(health_router(settings.backend, require_operator))

    app.state.benchmarks = scheduler

    @app.get("/benchmarks")
    def benchmarks(_: Principal = Depends(require_operator)) -> dict[str, Any]:
        """Summary of the benchmark log: one row per backend (operator key only)."""
        return {"every": scheduler.every, "log": str(scheduler.log_path), "backends": summarise_log(scheduler.log_path)}

    intent_chain = bounded(build_intent_chain(), settings.max_concurrent_inference)
    classify_chain = (
        RunnableLambda(lambda inp: [HumanMessage((inp if isinstance(inp, ClassifyInput) else ClassifyInput.model_validate(inp)).text)])
        | intent_chain
        | RunnableLambda(_to_classify_output)
    ).with_types(input_type=ClassifyInput, output_type=ClassifyOutput).with_config(
        max_concurrency=settings.max_batch_concurrency)  # one batch cannot fill the worker threads

    conversations = Conversations(intent_chain)
    app.state.conversations = conversations
    app.router.add_event_handler("shutdown", conversations.close)
    # The turn reads the backend from its config; declaring the same `backend` field (every value
    # runs the same turn) lets LangServe accept and validate it instead of dropping it.
    turn = RunnableLambda(conversations.turn, name="banking_assistant").with_types(
        input_type=AssistantInput, output_type=AssistantOutput)
    assistant_chain = turn.configurable_alternatives(
        BACKEND_FIELD, default_key=settings.backend, **{name: turn for name in CHOICES if name != settings.backend}
    ).with_config(max_concurrency=settings.max_batch_concurrency)

    @app.post("/assistant/stream", dependencies=[Depends(require_customer), Depends(count_request)])
    async def assistant_stream(request: Request) -> EventSourceResponse:
        """One turn as server-sent events (see :meth:`Conversations.stream_events`); body as
        /assistant/invoke: ``{"input": {...}, "config": {"configurable": {"backend": ...}}}``."""
        try:
            body = await request.json()
        except ValueError as e:
            raise HTTPException(400, "The body is not valid JSON.") from e
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            raise HTTPException(422, "The body needs an 'input' object.")
        cfg = body.get("config") or {}
        if not isinstance(cfg, dict) or not isinstance(cfg.get("configurable") or {}, dict):
            raise HTTPException(422, "'config' and 'config.configurable' must be objects.")
        backend = (cfg.get("configurable") or {}).get("backend")
        if backend is not None and backend not in CHOICES:
            raise HTTPException(422, f"config.configurable.backend must be one of: {', '.join(CHOICES)}.")
        try:
            req = AssistantInput.model_validate(body["input"])
        except ValidationError as e:
            return await _domain_error(request, e)
        config = await customer_config({"configurable": dict(cfg.get("configurable") or {})}, request)
        return EventSourceResponse(conversations.stream_events(req, config))

    add_routes(
        app, assistant_chain, path="/assistant",
        input_type=AssistantInput, output_type=AssistantOutput,
        per_req_config_modifier=customer_config, dependencies=[Depends(require_customer), Depends(count_request)],
        enabled_endpoints=["invoke", "batch", "input_schema", "output_schema", "config_schema"],
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

    uvicorn.run(create_app(), host=host, port=port, **uvicorn_options(get_settings()))
