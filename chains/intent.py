"""The intent chain: chat messages -> the selected backend or routing policy -> contract ``AIMessage``.

The backend is picked per call with ``config={"configurable": {"backend": "peft"}}`` through
LangChain's ``configurable_alternatives``; the default is ``BANKING_BACKEND`` (``custom``). Besides
the backends, the routing policies of chains/policies.py are alternatives of the same field:
``"cascade"`` (cheapest confident backend) and ``"rollout"`` (sticky A/B split by customer);
the values are :data:`chains.arms.CHOICES`. Every answer carries ``response_metadata["arm"]``;
live answers are reported to the listeners of chains/live.py and, with ``BANKING_SHADOW`` set,
compared with a shadow arm in the background (chains/routing.py).
"""

from __future__ import annotations

from langchain_core.runnables import ConfigurableField, Runnable

from config.settings import get_settings
from chains.arms import CHOICES
from chains.policies import get_arm
from chains.routing import RoutedChain
from models.registry import UnknownBackend

__all__ = ["BACKEND_FIELD", "CHOICES", "build_intent_chain"]

BACKEND_FIELD = ConfigurableField(
    id="backend", name="Intent backend", description="Which intent backend or routing policy answers: " + " | ".join(CHOICES)
)


def build_intent_chain(default: str | None = None) -> Runnable:
    """A runnable mapping chat messages (or a string) to the contract ``AIMessage``
    (:class:`chains.routing.RoutedChain` over the configurable alternatives).

    ``default``: the backend or policy used when the config names none (default
    ``BANKING_BACKEND``). Raises :class:`models.registry.UnknownBackend` (a ``KeyError``) for an
    unknown default.
    """
    default = default or get_settings().backend
    if default not in CHOICES:
        raise UnknownBackend(default, CHOICES)
    alternatives = {name: get_arm(name) for name in CHOICES}
    chain = alternatives.pop(default).configurable_alternatives(BACKEND_FIELD, default_key=default, **alternatives)
    return RoutedChain(bound=chain, default=default)
