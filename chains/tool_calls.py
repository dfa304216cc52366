"""Calling the banking tools for the graph's ``tool`` node: the slots a tool gets (a hand-over
also gets the conversation so far), a tool's result as the turn's output, and the read-only
answers of the later requests of a multi-request message while a proposal waits."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig

from bank.store import get_engine
from bank.tools import ProposalRefused, run_tool
from bank.transcript import transcript
from chains.answers import as_json
from chains.assistant import AssistantOutput
from chains.context import TurnContext
from chains.extract import extract
from chains.multi import QueuedRequest
from chains.state import AssistantState

HANDOFF_INTENT = "talk_to_human"


def tool_slots(state: AssistantState, config: RunnableConfig, intent: str) -> dict[str, Any]:
    """The slots the tool gets: the turn's, plus for a hand-over the conversation so far."""
    slots: dict[str, Any] = dict(state.get("slots") or {})
    if intent == HANDOFF_INTENT:
        ctx = TurnContext.from_config(config)
        slots.update(thread_id=ctx.thread_id or "", transcript=transcript(get_engine(), ctx.thread_id or "", ctx.customer_id))
    return slots


def tool_output(result: Any, decision: Any) -> AssistantOutput:
    """A tool's result as the turn's output: a proposal, a question for a missing detail, a
    hand-over, or an answer."""
    status = ("confirmation_required" if result.pending_confirmation else "slot_required" if result.slot_request
              else "handoff" if result.data.get("handoff") else "answered")
    return AssistantOutput(answer=result.answer, status=status, tool=result.tool, data=result.data,
                           pending_confirmation=result.pending_confirmation, slot_request=result.slot_request,
                           **decision.classification.output_fields())


def answer_read_only(state: AssistantState, config: RunnableConfig) -> tuple[list[dict[str, Any]], list[QueuedRequest]]:
    """With a proposal waiting: the outputs already given this turn plus the answers of the
    queued requests that change nothing (each tool run with ``may_propose=False``), and the
    queued requests still waiting (those that would propose, or need a detail), in order."""
    done, waiting = list(state.get("done") or []), []
    cid = TurnContext.from_config(config).customer_id
    for queued in state.get("queue") or []:
        part = {**state, "request": state["request"].model_copy(update={"text": queued.text}), "decision": queued.decision}
        slots = extract(part, config)["slots"]
        try:
            result = run_tool(get_engine(), cid, queued.decision.classification.intent, queued.text,
                              slots=slots, may_propose=False)
        except ProposalRefused:
            waiting.append(queued)
            continue
        if result.slot_request:
            waiting.append(queued)
        else:
            done.append(as_json(tool_output(result, queued.decision)))
    return done, waiting
