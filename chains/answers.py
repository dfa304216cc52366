"""How a turn's answer is told: the chat message appended to the conversation, the notice put
before it, the classification a decision's answer carries, the streamed chunks, and the
transcript row (bank/transcript.py), appended once per turn."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig

from bank.store import get_engine
from bank.transcript import record_turn
from chains.assistant import AssistantOutput
from chains.classification import Classification
from chains.context import TurnContext
from chains.state import AssistantState

STREAM_CHUNK_WORDS = 3
"""Words per streamed answer chunk (``stream_mode="custom"`` events ``{"answer_chunk": str}``)."""
def assistant_message(out: AssistantOutput) -> AIMessage:
    """The assistant's turn as a chat message; its status and intent ride in ``additional_kwargs``
    (the whole output is the turn's ``output``; the state stays small)."""
    return AIMessage(content=out.answer, additional_kwargs={"assistant_output": {"status": out.status, "intent": out.intent}})


def record(state: AssistantState, config: RunnableConfig, out: AssistantOutput) -> None:
    """Append this turn to the conversation's transcript (bank/transcript.py), once per turn:
    by ``respond``, or by ``tool`` when the turn stops for confirmation."""
    request, ctx = state.get("request"), TurnContext.from_config(config)
    if request is None or ctx.thread_id is None:
        return
    said = request.said or request.text
    if request.decision is not None and request.decision.resumed:
        said = "[button] " + ("yes" if request.decision.approve else "no")
    record_turn(get_engine(), thread_id=ctx.thread_id, customer_id=ctx.customer_id, customer_text=said,
                answer=out.answer, status=out.status, intent=out.intent)


def with_notice(out: AssistantOutput, notice: str | None) -> AssistantOutput:
    """``out`` with ``notice`` (e.g. "I haven't done the earlier request ...") before its answer."""
    if not notice or out.answer.startswith(notice):
        return out
    return out.model_copy(update={"answer": f"{notice} {out.answer}"})


def about(decided: AssistantOutput, proposal: Classification | None) -> AssistantOutput:
    """A decision's output carrying the classification of the proposal it decides, so the answer
    says what it was about."""
    if proposal is None:
        return decided
    return decided.model_copy(update={k: v for k, v in proposal.output_fields().items() if v is not None})


def answer_chunks(answer: str) -> list[str]:
    """``answer`` cut into chunks of :data:`STREAM_CHUNK_WORDS` words (joined back, they give
    ``answer``)."""
    words = answer.split(" ")
    return [" ".join(words[i:i + STREAM_CHUNK_WORDS]) + (" " if i + STREAM_CHUNK_WORDS < len(words) else "")
            for i in range(0, len(words), STREAM_CHUNK_WORDS)]


def as_json(out: AssistantOutput) -> dict[str, Any]:
    """``out`` as JSON (what the state's ``output`` holds)."""
    return out.model_dump(mode="json")
