"""The intent chain: chat messages -> the selected backend -> contract ``AIMessage``.

The backend is picked per call with ``config={"configurable": {"backend": "peft"}}`` through
LangChain's ``configurable_alternatives``; the default is ``BANKING_BACKEND`` (``custom``).
"""

from __future__ import annotations

from langchain_core.runnables import ConfigurableField, Runnable

from assistant.settings import get_settings
from chains.backends import BACKENDS, get_backend

BACKEND_FIELD = ConfigurableField(
    id="backend", name="Intent backend", description="Which intent backend answers: " + " | ".join(BACKENDS)
)


def build_intent_chain(default: str | None = None) -> Runnable:
    """A runnable mapping chat messages (or a string) to the contract ``AIMessage``.

    ``default``: the backend used when the config names none (default ``BANKING_BACKEND``).
    Raises ``KeyError`` for an unknown default.
    """
    default = default or get_settings().backend
    others = {name: get_backend(name) for name in BACKENDS if name != default}
    return get_backend(default).configurable_alternatives(BACKEND_FIELD, default_key=default, **others)
