"""The intent chain: chat messages -> the selected backend or routing policy -> contract ``AIMessage``.

The backend is picked per call with ``config={"configurable": {"backend": "peft"}}`` through
LangChain's ``configurable_alternatives``; the default is ``BANKING_BACKEND`` (``custom``). Besides
the backends, the routing policies of chains/routing.py are alternatives of the same field:
``"cascade"`` (cheapest confident backend) and ``"rollout"`` (sticky A/B split by customer).
Every answer carries ``response_metadata["arm"]``; live answers are reported to the routing
listeners and, with ``BANKING_SHADOW`` set, compared with a shadow arm in the background.
"""

from __future__ import annotations

from langchain_core.runnables import ConfigurableField, Runnable

from assistant.settings import get_settings
from chains.backends import BACKENDS
from chains.routing import POLICIES, RoutedChain, get_arm

CHOICES = (*BACKENDS, *POLICIES)
"""Every value of the ``backend`` field: the backends, then the routing policies."""

BACKEND_FIELD = ConfigurableField(
    id="backend", name="Intent backend", description="Which intent backend or routing policy answers: " + " | ".join(CHOICES)
)


def build_intent_chain(default: str | None = None) -> Runnable:
    """A runnable mapping chat messages (or a string) to the contract ``AIMessage``
    (:class:`chains.routing.RoutedChain` over the configurable alternatives).

    ``default``: the backend or policy used when the config names none (default
    ``BANKING_BACKEND``). Raises ``KeyError`` for an unknown default.
    """
    default = default or get_settings().backend
    if default not in CHOICES:
        raise KeyError(f"Unknown backend {default!r}; choose one of {', '.join(CHOICES)}.")
    alternatives = {name: get_arm(name) for name in CHOICES}
    chain = alternatives.pop(default).configurable_alternatives(BACKEND_FIELD, default_key=default, **alternatives)
    return RoutedChain(bound=chain, default=default)
