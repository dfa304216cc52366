"""The terminal chat's rendering: one turn's answer printed as plain text. Answers carry
third-party text (merchant names, payees, references): never markup, never terminal escape
sequences."""

from __future__ import annotations

import re

from rich.console import Console
from rich.text import Text

console = Console()  # wraps at word boundaries

_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` without C0/C1 control characters other than tab and newline (no escape
    sequences can reach the terminal)."""
    return _TERMINAL_CONTROL.sub("", text)


def print_turn(out: dict) -> None:
    """Print one turn's answer, its numbered choices or options and a dim line of what was
    understood, as plain text (never markup, never escape sequences). A hand-over's ticket, queue
    position and expected wait are in the answer itself (bank/tools/handoff.py): no line repeats
    them."""
    # Answers carry third-party text (merchant names, payees, references): never markup, never
    # terminal escape sequences.
    from assistant.ui_text import slot_options

    console.print(Text.assemble(("assistant> ", "bold green"), terminal_safe(out["answer"])), highlight=False)
    for i, choice in enumerate(out.get("choices") or [], start=1):
        console.print(Text(f"  {i}) {terminal_safe(choice['title'])}", style="cyan"), highlight=False)
    for i, option in enumerate(slot_options(out), start=1):  # a question for a missing detail
        console.print(Text(f"  {i}) {terminal_safe(option)}", style="cyan"), highlight=False)
    if out.get("intent"):
        label = "intent" if out["status"] not in ("out_of_scope", "clarify") else "top guess"
        console.print(
            Text(f"  {label}={out['intent']} confidence={out['confidence']:.2f} backend={out['backend']} "
                 f"latency={out['latency_ms']:.1f} ms status={out['status']}", style="dim"), highlight=False)
