"""The routed intent chain: the configurable backend/policy alternatives as served.

:class:`RoutedChain` wraps the configurable intent chain (built by
:func:`chains.intent.build_intent_chain`) so every answer carries ``response_metadata["arm"]``,
tells the listeners (chains/live.py) about each live classification and, when ``BANKING_SHADOW``
names an arm, runs that arm on the same input in a background thread (never answering with it)
and reports its agreement with the answering arm. Arms are named as in chains/arms.py and
resolved by :func:`chains.policies.get_arm`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.base import RunnableBindingBase
from langchain_core.runnables.config import get_config_list, run_in_executor

from config.settings import get_settings
from chains.live import SHADOW, event_of, notify
from chains.policies import get_arm, with_metadata


class RoutedChain(RunnableBindingBase):
    """The intent chain as served: ``bound`` (the configurable alternatives) plus, per answer,
    ``response_metadata["arm"]`` (the policy's arm, else the chosen ``backend``, else
    ``default``), the live event for the listeners, and the shadow run.

    ``shadow_arm``: the shadow arm (None: ``BANKING_SHADOW``; "" = none); ``resolve``: arm ->
    model (default :func:`get_arm`); ``runner``: default :data:`SHADOW`. Types, schemas and
    configurable fields are ``bound``'s (LangChain's ``RunnableBindingBase``); every call,
    streaming included, answers with one whole message."""

    default: str
    shadow_arm: str | None = None
    resolve: Any = None
    runner: Any = None

    @property
    def shadow(self) -> str | None:
        """The shadow arm, or None."""
        s = get_settings().shadow if self.shadow_arm is None else self.shadow_arm
        return s.strip() if s and s.strip() else None

    def _observe(self, input: Any, msg: Any, config: RunnableConfig | None) -> Any:
        if not isinstance(msg, AIMessage):
            return msg
        conf = (config or {}).get("configurable") or {}
        arm = msg.response_metadata.get("arm") or conf.get("backend") or self.default
        msg = with_metadata(msg, arm=arm)
        notify(event_of("live", arm, msg.response_metadata))
        shadow = self.shadow
        if shadow and shadow != arm:
            (self.runner or SHADOW).submit(lambda: self._run_shadow(shadow, input, msg.response_metadata))
        return msg

    def _run_shadow(self, arm: str, input: Any, answered: dict[str, Any]) -> None:
        base = {"against": answered.get("arm"), "answered_intent": answered.get("intent")}
        try:
            meta = (self.resolve or get_arm)(arm).invoke(input).response_metadata
        except Exception as e:  # noqa: BLE001 - a failing candidate is logged as such, not raised
            notify({"kind": "shadow", "arm": arm, "error": f"{type(e).__name__}: {e}", "agree": None, **base})
            return
        notify({**event_of("shadow", arm, meta), **base, "agree": meta.get("intent") == answered.get("intent")})

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:
        return self._observe(input, self.bound.invoke(input, config, **kwargs), config)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:
        return await run_in_executor(config, self.invoke, input, config, **kwargs)

    def batch(self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        if not inputs:
            return []
        out = self.bound.batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        return [self._observe(i, m, c) for i, m, c in zip(inputs, out, get_config_list(config, len(inputs)))]

    async def abatch(self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, *,
                     return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        first = config[0] if isinstance(config, list) and config else config
        return await run_in_executor(first, lambda: self.batch(inputs, config, return_exceptions=return_exceptions,
                                                                **kwargs))

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[AIMessage]:
        yield self.invoke(input, config, **kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[AIMessage]:
        yield await self.ainvoke(input, config, **kwargs)
