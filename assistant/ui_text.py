"""The chat UI's pure text helpers (no Chainlit import): safe Markdown for answers that carry
third-party text, the plain "Understood: ..." line and thread title, clarify choices and
confirmation button labels, the operator's technical view and backend options. Used by
assistant/ui_app.py; re-exported by assistant/ui.py."""

from __future__ import annotations

import json
import re
from typing import Any

from config.i18n import N_, format_money, gettext as _, use_language


# ----------------------------------------------------------------------------- safe text
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]()<>#|~!@&])")
_LINE_START = re.compile(r"^(\s*)([-+=>]|\d+(?=[.)]))")
_BULLET = re.compile(r"^\s*[-*•]\s+(.*)$")


WORD_JOINER = "\u2060"
"""An invisible character that breaks GFM's autolink patterns without changing what is shown."""


def escape_markdown(text: str) -> str:
    """``text`` with every character that Markdown (CommonMark + GFM, as Chainlit renders it)
    could turn into a link, image, emphasis, code, heading, list, table, HTML or entity
    backslash-escaped, so it shows exactly as written. Used for all answer text, which carries
    third-party strings (merchant names, payees, references): ``[x](https://e.invalid)`` shows
    as those characters, not as a link, and ``![](...)`` loads no image.

    GFM also turns bare ``https://...``, ``www.`` names and e-mail addresses into links after
    parsing (escapes do not stop that), so an invisible :data:`WORD_JOINER` goes after ``:``
    in ``://``, after ``www`` and after ``@``. Ordinary punctuation ('.', ',', ':', quotes,
    currency signs) is left alone."""
    out = _INLINE_SPECIAL.sub(r"\\\1", text)
    out = out.replace("://", ":" + WORD_JOINER + "//").replace("@", "@" + WORD_JOINER)
    out = re.sub(r"(?i)\b(www)\.", lambda m: m.group(1) + WORD_JOINER + ".", out)
    return _LINE_START.sub(lambda m: m.group(1) + ("\\" + m.group(2) if not m.group(2).isdigit() else m.group(2) + "\\"),
                           out, count=1)


def answer_markdown(text: str) -> str:
    """The assistant's plain-text answer as safe Markdown: each ``- item`` line stays a bullet
    (its text escaped), other lines become their own paragraphs (escaped), and a list is
    closed by a blank line before the next paragraph (otherwise Markdown would merge that
    paragraph into the last bullet). Input: the ``answer`` of an ``AssistantOutput``."""
    blocks: list[str] = []
    prev_bullet = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            prev_bullet = False
            continue
        m = _BULLET.match(line)
        if m:
            item = "- " + escape_markdown(m.group(1))
            if prev_bullet:
                blocks[-1] += "\n" + item
            else:
                blocks.append(item)
            prev_bullet = True
        else:
            blocks.append(escape_markdown(line))
            prev_bullet = False
    return "\n\n".join(blocks)


# ----------------------------------------------------------------------------- turn rendering
def _title(label: str) -> str:
    from chains.intent_titles import intent_title

    return intent_title(label)


UNDERSTOOD_STATUSES = ("answered", "confirmation_required", "slot_required", "handoff")
"""Statuses of a turn whose message reached a banking tool (led by the "Understood: ..." line)."""


def understood_line(output: dict[str, Any]) -> str | None:
    """The customer's plain account of a turn, e.g. ``"Understood: a card that hasn't arrived"``:
    only when the message reached a banking tool (status answered / confirmation_required /
    slot_required, a question for a missing detail / handoff, passed to a person); None for
    out-of-scope, clarifying questions, small talk and yes/no replies."""
    if output.get("status") not in UNDERSTOOD_STATUSES or not output.get("intent"):
        return None
    with use_language(output.get("language")):  # the turn's language (config/i18n.py)
        return _("Understood: {title}").format(title=_(_title(output["intent"])))


def message_markdown(output: dict[str, Any], answer: str) -> str:
    """The chat message's Markdown for one turn: the plain ``"Understood: ..."`` line in italics
    (:func:`understood_line`, when there is one), a blank line, then ``answer`` escaped
    (:func:`answer_markdown`). Nothing else is added: a hand-over's ticket, queue position and
    expected wait are in the answer itself (bank/tools/handoff.py), so they appear once."""
    line = understood_line(output)
    body = answer_markdown(answer)
    return f"*{escape_markdown(line)}*\n\n{body}" if line else body


def clarify_choices(output: dict[str, Any]) -> list[dict[str, str]]:
    """The choices of a clarifying question as ``[{"intent": label, "title": words}]``:
    ``output["choices"]`` when the graph sent them, else the top-3 of the ranking."""
    if output.get("status") != "clarify":
        return []
    choices = output.get("choices") or [{"intent": r["intent"]} for r in (output.get("ranking") or [])[:3]]
    return [{"intent": c["intent"], "title": c.get("title") or _title(c["intent"])} for c in choices]


def slot_options(output: dict[str, Any]) -> list[str]:
    """The options of a question for a missing detail (status slot_required), e.g.
    ``["Mark Thompson", "Mark Ellis"]``; [] for a free-text question or any other turn. Each is
    third-party text (payee and merchant names): show it as plain text only."""
    if output.get("status") != "slot_required":
        return []
    options = (output.get("slot_request") or {}).get("options") or []
    return [str(o) for o in options if str(o).strip()]


def option_reply(line: str, options: list[str]) -> str:
    """The text to send for a typed reply: option number ``line`` ("1", "2.", "2)") of the last
    question's ``options`` (:func:`slot_options`) becomes that option's text; any other line is
    returned as typed (the terminal chat numbers the options)."""
    text = line.strip().rstrip(".)")
    if text.isdigit() and 1 <= int(text) <= len(options):
        return options[int(text) - 1]
    return line


def button_label(title: str) -> str:
    """A choice title as a button label: first letter upper-case ("a lost card" -> "A lost card")."""
    return title[:1].upper() + title[1:]


_CONFIRM_LABELS: dict[str, tuple[str, str, str, str]] = {
    # action: (yes for one, no for one, yes for several ({n}), no for several)
    "freeze_card": (N_("Yes, freeze my card"), N_("No, keep it as it is"),
                    N_("Yes, freeze all {n} cards"), N_("No, keep them as they are")),
    "unfreeze_card": (N_("Yes, unfreeze it"), N_("No, keep it frozen"), N_("Yes, unfreeze them"), N_("No, keep them frozen")),
    "activate_card": (N_("Yes, activate it"), N_("No, not now"), N_("Yes, activate them"), N_("No, not now")),
    "order_replacement_card": (N_("Yes, order a replacement"), N_("No, not now"),
                               N_("Yes, order replacements"), N_("No, not now")),
    "order_card": (N_("Yes, order it"), N_("No, not now"), N_("Yes, order them"), N_("No, not now")),
    "cancel_transfer": (N_("Yes, cancel the transfer"), N_("No, let it go ahead"),
                        N_("Yes, cancel the transfers"), N_("No, let them go ahead")),
    "terminate_account": (N_("Yes, close my account"), N_("No, keep my account"),
                          N_("Yes, close my accounts"), N_("No, keep my accounts")),
    "send_payment": (N_("Yes, send it"), N_("No, don't send it"), N_("Yes, send it"), N_("No, don't send it")),
    "add_payee": (N_("Yes, add the payee"), N_("No, don't add it"), N_("Yes, add the payee"), N_("No, don't add it")),
    "top_up_account": (N_("Yes, top up"), N_("No, don't top up"), N_("Yes, top up"), N_("No, don't top up")),
    "open_dispute": (N_("Yes, open the dispute"), N_("No, don't open it"), N_("Yes, open the dispute"), N_("No, don't open it")),
}


def _amount_text(slots: dict[str, Any]) -> str | None:
    """``slots``' amount and currency as the customer reads it ("£40.00", "€1,250.50", with
    Babel's en_GB currency format), or None when either is missing or not a number."""
    from decimal import Decimal, InvalidOperation

    from babel.numbers import UnknownCurrencyFormatError, format_currency

    amount, currency = slots.get("amount"), slots.get("currency")
    if not amount or not currency:
        return None
    try:
        local = format_money(Decimal(str(amount)), str(currency))  # None in English
        return local or format_currency(Decimal(str(amount)), str(currency), locale="en_GB")
    except (InvalidOperation, ValueError, UnknownCurrencyFormatError):
        return None


def confirmation_labels(pending: dict[str, Any], data: dict[str, Any] | None = None) -> tuple[str, str]:
    """(yes, no) button labels for a proposed action, worded for the number of cards involved:
    ``pending`` is ``{action_id, action, description}``; ``data`` the tool's data (its
    ``cards`` list, or ``card``, gives the count). A payment names its amount from
    ``data["slots"]`` ("Yes, send £40.00" / "No, don't send it"). Unknown actions get
    "Yes, go ahead" / "No, leave it". In the language of the turn that proposed it
    (``pending["language"]``, chains/nodes.py; English without one)."""
    with use_language(pending.get("language")):
        return _confirmation_labels(pending, data or {})


def _confirmation_labels(pending: dict[str, Any], data: dict[str, Any]) -> tuple[str, str]:
    if pending.get("action") == "send_payment":
        amount = _amount_text(data.get("slots") or {})
        return (_("Yes, send {amount}").format(amount=amount) if amount else _("Yes, send it")), _("No, don't send it")
    n = len(data["cards"]) if isinstance(data.get("cards"), list) and pending.get("action") == "freeze_card" else 1
    yes1, no1, yes_n, no_n = _CONFIRM_LABELS.get(pending.get("action", ""), (N_("Yes, go ahead"), N_("No, leave it")) * 2)
    if n == 2 and pending.get("action") == "freeze_card":
        return _("Yes, freeze both cards"), _(no_n)
    return (_(yes1), _(no1)) if n <= 1 else (_(yes_n).format(n=n), _(no_n))


def technical_markdown(output: dict[str, Any], *, contextual: bool = False) -> str:
    """The operator view of one turn (Markdown): intent label, confidence, top-3 ranking,
    backend, model version, classification latency (ms), guard status and the tool's result
    (its ``data`` as JSON, the detail asked for with its options, and a proposed action). ``output`` is an ``AssistantOutput`` dict."""
    lines = [f"**Status:** {output.get('status')}"]
    if output.get("intent") is None:
        lines.append("No classification: this message answered a pending confirmation.")
    else:
        lines += [
            f"**Intent:** `{output['intent']}`" + (" (classified with the previous request as context)" if contextual else ""),
            f"**Confidence:** {output['confidence']:.3f}",
            f"**Backend:** `{output.get('backend')}` (model `{output.get('model_version')}`)",
            f"**Latency:** {output['latency_ms']:.1f} ms" if output.get("latency_ms") is not None else "**Latency:** n/a",
            "**Top 3:**",
        ]
        lines += [f"{i}. `{r['intent']}` {r['confidence']:.3f}" for i, r in enumerate((output.get("ranking") or [])[:3], 1)]
    if output.get("tool"):
        lines.append(f"**Tool:** `{output['tool']}`")
    if output.get("slot_request"):
        r = output["slot_request"]
        options = ", ".join(escape_markdown(str(o)) for o in r.get("options") or []) or "free text"
        lines.append(f"**Asked for:** `{r.get('slot')}` ({options})")
    if output.get("pending_confirmation"):
        p = output["pending_confirmation"]
        lines.append(f"**Proposed (not done yet):** `{p['action']}` {escape_markdown(p['description'])}")
    if output.get("data"):
        lines.append("```json\n" + json.dumps(output["data"], indent=2, ensure_ascii=False, default=str)[:4000] + "\n```")
    return "\n\n".join(lines)


# ----------------------------------------------------------------------------- backends
BACKEND_TITLES: dict[str, str] = {
    "custom": "Standard (our own intent model)",
    "peft": "Fine-tuned language model",
    "gemini": "Google Gemini",
}
"""How the settings panel names each intent backend."""


def customer_reason(reason: str) -> str:
    """A backend's technical unavailability reason (``available_backends()[name]["reason"]``,
    the same text /health reports) in words a customer understands."""
    r = reason.lower()
    if "not installed" in r or "dependencies missing" in r or "pip install" in r:
        return "Not installed on this server."
    if "api_key" in r or "api key" in r or "not set" in r:
        return "Not connected: this bank has not set up access to it."
    if "no trained" in r or "train" in r:
        return "Not ready: it has not been trained on this server yet."
    if "incomplete" in r or "not a complete" in r or "missing" in r:
        return "Not ready: it has not been fully set up on this server."
    if "reach" in r or "connect" in r or "refused" in r:
        return "Its server cannot be reached right now."
    return "Not available right now."


def backend_options(available: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every backend for the settings panel, in registry order:
    ``[{"name", "title", "available": bool, "reason": customer words or ""}]``.
    ``available`` is ``chains.backends.available_backends()``."""
    return [{"name": name, "title": BACKEND_TITLES.get(name, name), "available": bool(info["available"]),
             "reason": "" if info["available"] else customer_reason(str(info.get("reason") or ""))}
            for name, info in available.items()]


def settings_choice(settings: dict[str, Any], offered: list[str], *, operator: bool) -> tuple[str | None, bool]:
    """(backend, technical details on) a settings update may set: for an operator, the chosen
    backend when it is one of ``offered`` (else None: keep the current one) and the details
    switch; for a customer (no settings panel; a crafted update is ignored) ``(None, False)``."""
    if not operator:
        return None, False
    backend = settings.get("backend")
    return (backend if backend in offered else None), bool(settings.get("details"))


def thread_title(output: dict[str, Any]) -> str | None:
    """The conversation's title once a turn was understood (reached a banking tool, see
    :func:`understood_line`): the request in the customer's words, capitalised, e.g.
    ``"A card that hasn't arrived"``; None for any other turn."""
    if understood_line(output) is None:
        return None
    return button_label(_title(output["intent"]))


UNAVAILABLE_THREAD = "That conversation is not available. A new one has been opened for you."
"""What the chat says (public/bank.js) when a thread URL is not the customer's own or is gone."""
