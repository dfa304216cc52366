"""Extraction: the message's entities, and what they mean for the open form. Run at the end of
the ``classify`` node and of ``next`` (a queued request), not as a super-step of its own.

Entities come with the classification when the backend found them (the custom model's learned
span head, ``response_metadata["entities"]``), else from the backend-independent rules
(models/entities.py) with this customer's payee and merchant names as the gazetteer
(bank/gazetteer.py), so every backend is compared on equal terms.

With a form open (chains/forms.py), a message that answers or corrects it ("40 pounds", "no,
make it 45", "actually send it to Lena") routes to the form's intent with the merged slots; a
new request closes the form, says so, and goes on with its own details.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig

from bank.gazetteer import customer_names
from bank.store import get_engine, utcnow
from chains.context import TurnContext
from chains.forms import (
    FORM_INTENTS, Form, continues, correction_notice, merge, reply_slots, slots_from_entities, stopped_notice,
    without_proposal,
)
from chains.guard import GuardDecision
from chains.multi import carry_over, resolve_pronouns
from chains.state import AssistantState
from models.entities import extract_entities


def message_entities(state: AssistantState, config: RunnableConfig) -> list[dict[str, Any]]:
    """The entities of this turn's message as dicts (see the module docstring for the source)."""
    found = state["decision"].classification.extra.get("entities")
    if found is not None:
        return list(found)
    names = customer_names(get_engine(), TurnContext.from_config(config).customer_id)
    return [e.model_dump() for e in extract_entities(state["request"].text, now=utcnow(), names=names)]


def own_entities(joined: GuardDecision, alone: GuardDecision) -> GuardDecision:
    """``joined`` (the message classified with its context) carrying the entities of the message
    alone: the details a message gives are its own ("no, make it 15" read with "send 10 to Mark"
    must not see both amounts); None when the backend gave none, so they are extracted from it."""
    extra = {**joined.classification.extra, "entities": alone.classification.extra.get("entities")}
    return joined.model_copy(update={"classification": joined.classification.model_copy(update={"extra": extra})})


def form_decision(form: Form, decision: GuardDecision) -> GuardDecision:
    """A route to the form's intent, keeping the message's classification figures."""
    c = decision.classification.model_copy(update={"intent": form.intent,
                                                   "extra": {**decision.classification.extra, "form": True}})
    return GuardDecision(action="route", classification=c)


def extract(state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
    """Entities and slots of the message (``state`` holds this turn's ``decision`` and
    ``request``); an open form continued or closed. Returns the state update. Only a form intent,
    an open form or a multi-request message reads details; any other turn skips extraction."""
    decision, request, form = state["decision"], state["request"], state.get("form")
    routed = decision.classification.intent if decision.action == "route" else None
    if form is None and routed not in FORM_INTENTS and not state.get("queue") and not state.get("done"):
        return {"entities": [], "slots": {}}  # nothing reads details: no extraction, no gazetteer query
    entities = message_entities(state, config)
    update: dict[str, Any] = {"entities": entities}
    if form is not None:
        new = reply_slots(form, request.text, entities)
        # settle closed the form's waiting proposal, if any: say so once, in the form's words
        earlier, closed = without_proposal(state.get("notice") or "", form)
        if continues(form, new, routed, request.text):
            if closed:  # a correction: what changed, and that the earlier proposal was closed
                update["notice"] = f"{earlier} {correction_notice(form, new)}".strip()
            return {**update, "decision": form_decision(form, decision), "slots": merge(form.slots, new),
                    "contextual": False, "fallback": None}
        update.update(form=None, notice=f"{earlier} {stopped_notice(form, closed)}".strip())
    slots = slots_from_entities(entities, routed, request.text)
    if state.get("done"):  # a later request of the same message: "send him £20" after "... to Mark"
        slots = carry_over(slots, request.text, state.get("slots") or {})
    elif state.get("queue") and slots.get("payee"):  # just split: later parts may say "him"
        update["queue"] = resolve_pronouns(state["queue"], slots["payee"])
    return {**update, "slots": slots}
