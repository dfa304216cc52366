"""Deciding a proposed state change: what counts as an answer, and what happens to it.

A pending action is decided only

a) by an explicit decision (``confirm_action_id`` with ``approve``, or a UI button), or
b) by a short, bare yes/no (:func:`yes_or_no`) sent as the very next message of the conversation
   in which the proposal was shown.

Any other next message means the customer moved on: the proposal is closed as ``superseded``
(:func:`supersede`) and the message is handled as a new request. The bank store enforces the
rest (customer scope, 15-minute expiry, exactly-once; bank/tools/actions.py).
"""

from __future__ import annotations

import re

from bank.store import get_engine
from bank.tools import ActionExpiredError, close_action, confirm_action
from chains.assistant import AssistantOutput
from config.i18n import gettext as _

_YES = frozenset({
    "yes", "y", "yeah", "yep", "yup", "yes please", "sure", "ok", "okay", "confirm", "confirmed", "i confirm",
    "please do", "do it", "go ahead", "yes do it", "yes go ahead", "ok do it", "okay do it", "yes please do",
    "yes confirm", "absolutely", "correct", "that's right", "yes that's right",
    # Spanish, French, German (issue 18)
    "sí", "si", "sí por favor", "si por favor", "vale", "claro", "de acuerdo", "adelante", "confirmo", "sí confirmo",
    "oui", "oui merci", "oui s'il vous plaît", "oui s'il te plaît", "d'accord", "je confirme", "vas-y", "allez-y",
    "ja", "ja bitte", "jawohl", "genau", "bitte", "einverstanden", "bestätigen", "ich bestätige", "mach das",
})
_NO = frozenset({
    "no", "n", "nope", "nah", "no thanks", "no thank you", "don't", "dont", "do not", "cancel", "stop",
    "leave it", "no leave it", "no don't", "no dont", "no do not", "not now", "no not now", "never mind",
    "nevermind", "decline", "no cancel", "no stop",
    "no gracias", "no por favor", "mejor no", "déjalo", "non", "non merci", "pas maintenant", "laisse tomber",
    "nein", "nein danke", "lieber nicht", "jetzt nicht", "lass es",
})
ACTION_VERBS: dict[str, tuple[str, ...]] = {
    "freeze_card": ("freeze", "block"),
    "unfreeze_card": ("unfreeze", "unblock"),
    "cancel_transfer": ("cancel", "stop"),
    "activate_card": ("activate",),
    "order_replacement_card": ("order", "replace", "send"),
    "order_card": ("order", "send", "create"),
    "terminate_account": ("close",),
    "send_payment": ("send", "pay"),
    "add_payee": ("add", "save"),
    "top_up_account": ("top",),
    "open_dispute": ("open", "dispute"),
}
"""The verbs a customer may use to confirm or refuse each proposed action ("yes, freeze it")."""
_ALL_VERBS = tuple(sorted({v for verbs in ACTION_VERBS.values() for v in verbs}))
_YES_VERB = re.compile(r"^(yes|yeah|yep|ok|okay|sure)( please)? (\w+) (it|them|that)( please)?$")
_NO_VERB = re.compile(r"^no( please)? (don't|dont|do not) (\w+) (it|them|that)$")
_YES_DO_THAT = re.compile(r"^(yes|yeah|yep|ok|okay|sure)( please)? (do that|go on)( please)?$")
_ASCII_REPLY = re.compile(r"^[a-zà-ÿ\s',.!¡¿-]*$")
_WORDS = re.compile(r"[a-zà-ÿ'-]+")
_OPENER = re.compile(r"^(actually|oh|um|umm|hmm|wait|sorry|on second thought|on second thoughts|erm|well) ")
"""Fillers a customer may put before a bare reply ("actually no, leave it"); stripped once."""
MAX_REPLY_CHARS = 30


def yes_or_no(text: str, action: str | None = None) -> bool | None:
    """True for a bare affirmative reply ("yes", "OK, do it!", "yes, freeze it", "sí", "oui",
    "ja bitte"), False for a bare negative one ("no", "No, leave it", "actually no, leave it",
    "no, don't cancel it", "non merci", "nein"), None for anything else: a reply with any other
    word ("OK, and what is the exchange rate?", "yes 不要"), digits or characters beyond Latin
    letters (accents included), spaces and ``,.!'¡¿-``, or longer than :data:`MAX_REPLY_CHARS`
    characters.

    ``action``: the proposed action (e.g. "freeze_card"); a reply naming a verb ("yes, cancel it")
    counts only when the verb is one of that action's :data:`ACTION_VERBS` (any known verb when
    ``action`` is None)."""
    if not isinstance(text, str) or len(text.strip()) > MAX_REPLY_CHARS:
        return None
    lowered = text.strip().lower().replace("\u2019", "'")
    if not _ASCII_REPLY.match(lowered):
        return None
    phrase = _OPENER.sub("", " ".join(w.strip("-") for w in _WORDS.findall(lowered)), count=1)
    verbs = ACTION_VERBS.get(action or "", _ALL_VERBS) if action else _ALL_VERBS
    if phrase in _YES or _YES_DO_THAT.match(phrase):
        return True
    if phrase in _NO:
        # "cancel" answering "Shall I cancel the transfer?" could mean either: not an answer
        return None if action and phrase.split()[-1] in ACTION_VERBS.get(action, ()) else False
    m = _YES_VERB.match(phrase)
    if m and m.group(3) in verbs:
        return True
    m = _NO_VERB.match(phrase)
    if m and m.group(3) in verbs:
        return False
    return None


def decide(customer_id: int, action_id: str, approve: bool) -> AssistantOutput:
    """Confirm (``approve=True``) or decline a pending action of ``customer_id``, exactly once.

    Returns the outcome as the turn's output: ``status`` is the stored outcome (confirmed,
    declined, failed, or on a replay whatever was stored first, with ``replayed`` true and an
    answer that says so). Raises ``ActionNotFoundError`` (a ``LookupError``) when the action is
    not this customer's, ``ActionExpiredError`` when it is older than 15 minutes.
    """
    result = confirm_action(get_engine(), customer_id, action_id, approve)
    status = result.data.get("status") or ("confirmed" if approve else "declined")
    return AssistantOutput(answer=result.answer, status=status, tool=result.tool, data=result.data,
                           replayed=bool(result.data.get("replayed")))


def answer_pending(customer_id: int, pending: dict, approve: bool) -> AssistantOutput:
    """:func:`decide` for the proposal a conversation is waiting on, answered by a yes/no or a
    button: an expired proposal gives ``status="expired"`` (nothing changed) instead of raising."""
    try:
        return decide(customer_id, pending["action_id"], approve)
    except ActionExpiredError as e:
        return AssistantOutput(answer=str(e), status="expired", tool="confirm_action",
                               data={"action_id": pending["action_id"], "status": "expired"})


def superseded_sentence(description: str) -> str:
    """The sentence telling the customer a proposal (its ``description``) was closed undone."""
    return _("I haven't done the earlier request ({description}); ask again whenever you want it.").format(
        description=description.rstrip("."))


def supersede(customer_id: int, pending: dict) -> str:
    """Close the proposal ``pending`` because the customer sent something else; returns the
    sentence that tells them nothing was done (:func:`superseded_sentence`; empty when it had
    already been decided). A correction of the proposal's own request rewords it
    (chains/forms.py ``correction_notice``)."""
    if close_action(get_engine(), customer_id, pending["action_id"], "superseded"):
        return superseded_sentence(pending.get("description", ""))
    return ""
