"""The run configuration of one turn, read once through one typed view.

Interfaces put three things in ``config["configurable"]``: ``thread_id`` (the conversation),
``customer_id`` (from authentication only; or LangGraph server's ``langgraph_auth_user``) and,
optionally, ``backend`` (per request). Graph nodes read them through
:meth:`TurnContext.from_config`, never from the raw dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from config.settings import get_settings
from chains.identity import authenticated_customer_id


@dataclass(frozen=True)
class TurnContext:
    """``customer_id``: the authenticated customer; ``backend``: the backend or routing policy
    this request chose, else the ``BANKING_BACKEND`` default (never remembered per thread);
    ``thread_id``: the conversation, or None."""

    customer_id: int
    backend: str
    thread_id: str | None = None

    @classmethod
    def from_config(cls, config: RunnableConfig) -> TurnContext:
        """Read ``config``. Raises ``PermissionError`` without an authenticated customer."""
        conf: dict[str, Any] = (config or {}).get("configurable") or {}
        return cls(customer_id=authenticated_customer_id(config),
                   backend=conf.get("backend") or get_settings().backend,
                   thread_id=conf.get("thread_id"))

    def intent_config(self, config: RunnableConfig) -> RunnableConfig:
        """``config`` for the intent chain: the same run, with this turn's ``backend``."""
        return {**config, "configurable": {**(config.get("configurable") or {}), "backend": self.backend}}
