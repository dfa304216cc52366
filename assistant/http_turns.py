"""The HTTP face of the conversation: one LangChain ``Runnable`` over the conversation holder
(assistant/conversations.py), served by LangServe, plus the server-sent-event stream.

:class:`AssistantTurn` is what ``/assistant/{invoke,batch,stream,stream_events}`` run:

- ``backend`` is a real configurable field of it (``config_specs``, the values of
  chains/arms.py ``CHOICES``), so LangServe validates a request's backend and its config schema
  lists it; nothing else in ``configurable`` comes from the client (the customer is set by the
  server's per-request config modifier from authentication);
- ``ainvoke`` runs one turn on the thread of the customer's conversation
  (``api-<customer>-<conversation_id | "default">``; a batch item without a conversation gets a
  thread of its own), one turn at a time per thread; a batch answers item by item (a failed
  item is ``status: "error"`` with ``error: {status, detail}``);
- ``astream`` yields ``{"answer_chunk": str}`` while the answer streams, then the whole
  :class:`AssistantOutput`: LangServe's ``data`` events, which ``RemoteRunnable.stream``
  yields as they come. The graph's synchronous stream is driven, and closed, in one worker
  thread (:func:`_pump`): when the client goes away the worker stops at the next item, closes
  LangGraph's stream there (releasing the checkpointer) and the thread's turn lock is released
  only after that, so an aborted stream leaves nothing running. A proposal whose stream was
  cut off before the whole output reached the client is closed (``superseded``): the customer
  never saw exactly what a "yes" would confirm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import Any, Literal

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.utils import ConfigurableFieldSpec
from starlette.concurrency import run_in_threadpool

from assistant.conversations import Conversations, run_config, thread_id
from assistant.errors import DOMAIN_ERRORS, view_of
from bank.store import get_engine
from bank.tools import close_action
from chains.answers import answer_chunks
from chains.arms import CHOICES
from chains.assistant import AssistantInput, AssistantOutput, AssistantRequest, InvalidMessage
from chains.graph import graph_input, turn_output
from models.base import BackendUnavailable

log = logging.getLogger(__name__)

BackendChoice = Literal[tuple(CHOICES)]  # type: ignore[valid-type]


class AnswerChunk(dict):
    """One streamed piece of the answer, ``{"answer_chunk": str}``. Adding a chunk to another
    gives the later one, so a traced stream's output is its last item, the whole output."""

    def __add__(self, other: Any) -> Any:
        return other


def _pump(stream: Any, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, stop: threading.Event) -> None:
    """Drive ``stream`` (a generator of LangGraph ``(mode, data)`` items) in this worker thread,
    handing items to ``queue`` on ``loop``; stop early when ``stop`` is set; always close the
    generator here, in the thread that ran it. Puts ``("end", None)`` or ``("error", exc)`` last."""

    def put(item: tuple[str, Any]) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed (server shutdown): nobody is listening
            stop.set()

    try:
        for item in stream:
            if stop.is_set():
                break
            put(("item", item))
        put(("end", None))
    except BaseException as e:  # noqa: BLE001 - handed to the request, which maps it
        put(("error", e))
    finally:
        stream.close()


class AssistantTurn(Runnable[AssistantInput, AssistantOutput]):
    """One conversational turn for LangServe (see the module docstring). ``holder``: the
    conversation holder; ``default_backend``: the config schema's default for ``backend``."""

    name = "banking_assistant"

    def __init__(self, holder: Conversations, default_backend: str) -> None:
        self.holder = holder
        self.default_backend = default_backend
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def InputType(self) -> type[AssistantRequest]:  # noqa: N802 - LangChain's name
        """The wire shape (JSON types only); each item is checked as :class:`AssistantInput`
        by the turn, so a bad batch item answers as that item's error."""
        return AssistantRequest

    @property
    def OutputType(self) -> type[AssistantOutput]:  # noqa: N802 - LangChain's name
        return AssistantOutput

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        """The one field a request may configure: ``backend``."""
        return [ConfigurableFieldSpec(id="backend", annotation=BackendChoice, name="Intent backend",
                                      description="Which intent backend or routing policy answers: " + " | ".join(CHOICES),
                                      default=self.default_backend)]

    # ------------------------------------------------------------------ config and locks
    @staticmethod
    def turn_config(req: AssistantInput, config: RunnableConfig) -> dict[str, Any]:
        """The graph config of a request: the thread of the authenticated customer's conversation
        and the backend the request chose. Raises ``PermissionError`` without a customer."""
        conf = (config or {}).get("configurable") or {}
        if conf.get("customer_id") is None:
            raise PermissionError("Not authenticated.")
        cid = int(conf["customer_id"])
        conversation = req.conversation_id or ("batch-" + uuid.uuid4().hex if conf.get("request_kind") == "batch"
                                                else "default")
        return run_config(thread_id("api", cid, conversation), cid, conf.get("backend"),
                          callbacks=(config or {}).get("callbacks"))

    def _lock(self, thread: str) -> asyncio.Lock:
        lock = self._locks.get(thread)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[thread] = lock
        return lock

    @staticmethod
    def _request(inp: AssistantInput | AssistantRequest | dict, config: RunnableConfig) -> AssistantInput:
        """``inp`` checked as :class:`AssistantInput` (raises pydantic's ``ValidationError`` or
        ``InvalidMessage``)."""
        if isinstance(inp, AssistantInput):
            req = inp
        else:
            req = AssistantInput.model_validate(inp.model_dump() if isinstance(inp, AssistantRequest) else inp)
        if req.conversation_id and ((config or {}).get("configurable") or {}).get("request_kind") == "batch":
            raise InvalidMessage("conversation_id is not allowed in a batch; each item is a conversation of its own")
        return req

    # ------------------------------------------------------------------ invoke / batch
    def invoke(self, input: AssistantInput | dict, config: RunnableConfig | None = None, **kwargs: Any) -> AssistantOutput:
        """One turn, synchronously (the caller's thread runs the graph)."""
        req = self._request(input, config or {})
        return self.holder.say(req, self.turn_config(req, config or {}))

    async def ainvoke(self, input: AssistantInput | dict, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AssistantOutput:
        """One turn (traced as one run: LangSmith, ``astream_events``). A batch item's domain
        error becomes that item's ``status: "error"`` output; otherwise errors propagate (mapped
        by the app's handlers)."""
        return await self._acall_with_config(self._aturn, input, config, **kwargs)

    async def _aturn(self, input: AssistantInput | dict, config: RunnableConfig) -> AssistantOutput:
        batch = ((config or {}).get("configurable") or {}).get("request_kind") == "batch"
        try:
            req = self._request(input, config or {})
            graph_config = self.turn_config(req, config or {})
            async with self._lock(graph_config["configurable"]["thread_id"]):
                return await run_in_threadpool(self.holder.say, req, graph_config)
        except DOMAIN_ERRORS as e:
            if not batch:
                raise
            view = view_of(e)
            return AssistantOutput(answer=view.customer_text, status="error",
                                   error={"status": view.http_status, "detail": view.detail})

    # ------------------------------------------------------------------ stream
    async def astream(self, input: AssistantInput | dict, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[AnswerChunk | AssistantOutput]:
        """``{"answer_chunk": str}`` chunks as the answer streams, then the whole output (traced
        as one run whose output is that last one). Raises the domain errors as :meth:`ainvoke`
        does (before the first chunk for a bad request)."""

        async def one() -> AsyncIterator[AssistantInput | dict]:
            yield input

        async for chunk in self._atransform_stream_with_config(one(), self._astream_turn, config, **kwargs):
            yield chunk

    async def _astream_turn(self, inputs: AsyncIterator[AssistantInput | dict],
                            config: RunnableConfig) -> AsyncIterator[AnswerChunk | AssistantOutput]:
        input = [i async for i in inputs][-1]
        req = self._request(input, config or {})
        graph_config = self.turn_config(req, config or {})
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        async with self._lock(graph_config["configurable"]["thread_id"]):
            stream = self.holder.stream(graph_input(req), graph_config, ["custom", "values"])
            worker = asyncio.ensure_future(run_in_threadpool(_pump, stream, loop, queue, stop))
            state: dict[str, Any] = {}
            delivered = False
            try:
                streamed = False
                while True:
                    kind, payload = await queue.get()
                    if kind == "end":
                        break
                    if kind == "error":
                        raise payload
                    mode, data = payload
                    if mode == "custom" and "answer_chunk" in data:
                        streamed = True
                        yield AnswerChunk(answer_chunk=data["answer_chunk"])
                    elif mode == "values":
                        state = data
                out = turn_output(state)
                if not streamed:  # a turn that stopped for confirmation: its question, in the same chunks
                    for chunk in answer_chunks(out.answer):
                        yield AnswerChunk(answer_chunk=chunk)
                yield out
                delivered = True
            finally:
                stop.set()  # the client went away, or the turn is over: the worker closes the stream
                # _pump never raises (its error came through the queue); a second cancellation while
                # waiting only stops this wait, the worker still closes the stream itself.
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(worker)
                pending = ((state.get("output") or {}) if not delivered else {}).get("pending_confirmation")
                if pending:  # the customer never saw the whole question: nothing may confirm it
                    await asyncio.shield(run_in_threadpool(
                        close_action, get_engine(), graph_config["configurable"]["customer_id"],
                        pending["action_id"], "superseded"))

    async def sse_events(self, req: AssistantInput, config: RunnableConfig) -> AsyncIterator[dict[str, str]]:
        """The turn as server-sent events in LangServe's stream format (what ``RemoteRunnable``
        reads): ``metadata``, ``data`` per chunk (``{"answer_chunk"}``, then the whole output),
        ``end``; on an error one ``error`` event ``{status_code, message}`` with the status /invoke
        would answer, then ``end``."""
        yield {"event": "metadata", "data": json.dumps({"run_id": str(uuid.uuid4())})}
        try:
            async for chunk in self.astream(req, config):
                data = chunk.model_dump_json() if isinstance(chunk, AssistantOutput) else json.dumps(chunk)
                yield {"event": "data", "data": data}
        except Exception as e:  # noqa: BLE001 - every error becomes an error event; unknown ones are logged
            view = view_of(e)
            if view.http_status >= 500 and not isinstance(e, BackendUnavailable):
                log.exception("stream failed")
            yield {"event": "error", "data": json.dumps({"status_code": view.http_status, "message": view.detail})}
        yield {"event": "end"}
