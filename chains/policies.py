"""Routing policies: choose the intent backend by data, as alternatives of the ``backend`` field.

Both policies follow the backend contract (models/base.py), so the conversation graph, the guard
and the eval runner cannot tell them from a backend; their arms are named as in chains/arms.py
and resolved by :func:`get_arm`:

- :class:`CascadeIntentModel` (``backend="cascade"``, order ``BANKING_CASCADE``, default
  ``custom,peft,gemini``): the cheapest arm answers first; a query whose confidence is below
  that arm's own clarify threshold is asked again of the next *available* arm, and so on; the
  last arm asked answers. ``response_metadata`` adds ``cascade`` (the arms asked, in order),
  ``answered_by`` (the arm that answered) and ``backend``/``model_version``/``thresholds`` of
  that arm. This is the classic confidence-thresholded cascade (Viola & Jones 2001; for language
  models: Chen, Zaharia & Zou 2023, "FrugalGPT", arXiv 2305.05176).
- :class:`RolloutIntentModel` (``backend="rollout"``, ``BANKING_ROLLOUT="custom@v1:90,custom@v2:10"``):
  each customer is assigned one arm by weight (:func:`chains.arms.assign_arm`, a stable hash of
  the authenticated customer id), so the same customer always gets the same arm and a change of
  the setting needs no code; ``response_metadata["arm"]`` says which. Without a customer
  (offline eval) the text is hashed instead.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list, run_in_executor
from pydantic import Field, PrivateAttr

from config.settings import get_settings
from chains.arms import assign_arm, customer_key, parse_arm, parse_rollout
from models.base import (
    BackendUnavailable, IntentChatModel, IntentPrediction, PerQueryError, query_text, resolve_thresholds,
)
from models.registry import BACKENDS, get_backend

log = logging.getLogger(__name__)


def with_metadata(msg: AIMessage, **meta: Any) -> AIMessage:
    """A copy of ``msg`` whose ``response_metadata`` also holds ``meta`` (``meta`` wins)."""
    return msg.model_copy(update={"response_metadata": {**msg.response_metadata, **meta}})


class _Policy(IntentChatModel):
    """Shared part of the policies: arms resolved through ``models`` (arm -> model overrides,
    e.g. fake backends in tests) or else :func:`get_arm`."""

    models: dict[str, Any] = Field(default_factory=dict)

    def arm_model(self, arm: str) -> IntentChatModel:
        """The model of ``arm``. Raises ``ValueError`` for an invalid arm."""
        return self.models[arm] if arm in self.models else get_arm(arm)

    @staticmethod
    def _prediction(model: IntentChatModel, p: IntentPrediction, **more: Any) -> IntentPrediction:
        """``p`` as answered by ``model``: its backend, version and resolved thresholds in
        ``extra``, plus ``more``."""
        extra = {**p.extra, "backend": model.backend_name, "model_version": model.model_version,
                 "thresholds": resolve_thresholds(p.extra.get("thresholds") or model.thresholds), **more}
        return IntentPrediction(p.intent, p.confidence, list(p.ranking), p.latency_ms, extra)


class CascadeIntentModel(_Policy):
    """The confidence cascade (module docstring). ``order``: comma-separated arms, cheapest
    first (default ``BANKING_CASCADE``). Unavailable arms are passed over; a query no arm could
    answer raises ``PerQueryError`` (some queries) or ``BackendUnavailable`` (all).

    ``latency_ms`` of an answer is the sum of the latencies of the arms asked; cost and device
    are those of the arms (``device``: the distinct devices joined with ``+``)."""

    backend_name: ClassVar[str] = "cascade"
    order: str | None = None
    availability_ttl_s: float = 10.0
    """How long an arm's ``availability()`` answer is reused (seconds; 0 = ask every call), so a
    query does not pay for each arm's check (a settings read, a folder scan)."""

    _checked: dict[str, tuple[float, bool, str]] = PrivateAttr(default_factory=dict)

    def arms(self) -> list[str]:
        """The cascade's arms in order. Raises ``ValueError`` for an invalid or nested arm."""
        arms = [a.strip() for a in (self.order or get_settings().cascade).split(",") if a.strip()]
        if not arms:
            raise ValueError("the cascade order is empty (BANKING_CASCADE)")
        for a in arms:
            if parse_arm(a)[0] == "cascade":
                raise ValueError("a cascade cannot contain a cascade")
        return arms

    def _members(self) -> list[tuple[str, IntentChatModel]]:
        return [(a, self.arm_model(a)) for a in self.arms()]

    def _arm_up(self, arm: str, model: IntentChatModel) -> tuple[bool, str]:
        """``model.availability()``, reused for ``availability_ttl_s`` seconds."""
        now = time.monotonic()
        seen = self._checked.get(arm)
        if seen is None or now - seen[0] >= self.availability_ttl_s:
            seen = (now, *model.availability())
            self._checked[arm] = seen
        return seen[1], seen[2]

    def _available(self) -> list[tuple[str, IntentChatModel]]:
        return [(a, m) for a, m in self._members() if self._arm_up(a, m)[0]]

    @property
    def model_version(self) -> str:
        return "+".join(f"{a}:{m.model_version}" for a, m in self._available()) or "unavailable"

    @property
    def thresholds(self) -> dict[str, float]:
        """The first available arm's thresholds (each answer carries its own arm's)."""
        avail = self._available()
        return avail[0][1].thresholds if avail else {}

    @property
    def device(self) -> str:
        return "+".join(dict.fromkeys(m.device for _, m in self._available())) or "cpu"

    def availability(self) -> tuple[bool, str]:
        states = [(a, *m.availability()) for a, m in self._members()]
        ok = [a for a, up, _ in states if up]
        why = "; ".join(f"{a}: {'available' if up else reason}" for a, up, reason in states)
        return (bool(ok), f"cascade {' -> '.join(ok)} ({why})" if ok else f"no cascade arm is available ({why})")

    def self_check(self) -> tuple[bool, str]:
        avail = self._available()
        return avail[0][1].self_check() if avail else self.availability()

    def warm_up(self) -> None:
        for _, m in self._available():
            m.warm_up()

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        """Classify with the first available arm; re-ask the next one for the queries below the
        answering arm's clarify threshold, until none is left or the arms run out."""
        n = len(texts)
        answers: list[IntentPrediction | None] = [None] * n
        paths: list[list[str]] = [[] for _ in range(n)]
        latency = [0.0] * n
        errors: list[BaseException | None] = [None] * n
        reasons: list[str] = []
        pending = list(range(n))
        for arm, model in self._members():
            if not pending:
                break
            ok, reason = self._arm_up(arm, model)
            if not ok:
                reasons.append(f"{arm}: {reason}")
                continue
            t0 = time.perf_counter()
            try:
                preds: list[Any] = model.classify_batch([texts[i] for i in pending])
            except PerQueryError as e:
                preds = list(e.partial) if e.partial and len(e.partial) == len(pending) else [e] * len(pending)
            except BackendUnavailable as e:
                reasons.append(f"{arm}: {e}")
                continue
            per_query = (time.perf_counter() - t0) * 1000.0 / len(pending)
            still = []
            for i, p in zip(pending, preds):
                paths[i].append(arm)
                if not isinstance(p, IntentPrediction):  # this query failed on this arm: ask the next
                    errors[i] = p if isinstance(p, BaseException) else None
                    still.append(i)
                    continue
                latency[i] += p.latency_ms or per_query
                answers[i] = self._prediction(model, p, answered_by=arm)
                if p.confidence < answers[i].extra["thresholds"]["clarify_threshold"]:
                    still.append(i)
            pending = still
        if all(a is None for a in answers):
            raise BackendUnavailable("No cascade arm could answer: " + ("; ".join(reasons) or "every query failed"))
        out: list[Any] = []
        for i, a in enumerate(answers):
            if a is None:
                out.append(errors[i] or BackendUnavailable("no cascade arm answered this query"))
                continue
            a.latency_ms = latency[i]
            a.extra.update(cascade=paths[i], arm="cascade")
            out.append(a)
        if any(not isinstance(a, IntentPrediction) for a in out):
            raise PerQueryError("some queries were answered by no cascade arm", partial=out)
        return out


class RolloutIntentModel(_Policy):
    """A/B rollout over arms by weight (module docstring). ``spec``: ``"arm:weight,..."``
    (default ``BANKING_ROLLOUT``). ``invoke``/``batch`` assign by the authenticated customer of
    each config (sticky); ``classify_batch`` (no config) by the text. Raises
    ``BackendUnavailable`` when no rollout is configured, and ``ValueError`` for an invalid one."""

    backend_name: ClassVar[str] = "rollout"
    spec: str | None = None

    def arms(self) -> list[tuple[str, float]]:
        """``[(arm, weight)]``, weights summing to 1 (see :func:`parse_rollout`)."""
        spec = self.spec or get_settings().rollout
        if not spec:
            raise BackendUnavailable("No rollout configured: set BANKING_ROLLOUT, e.g. custom@v1:90,custom@v2:10.")
        arms = parse_rollout(spec)
        if any(a == "rollout" for a, _ in arms):
            raise ValueError("a rollout cannot contain a rollout")
        return arms

    def assign(self, key: str) -> str:
        """The arm of ``key`` (a customer key or a text), sticky: see :func:`assign_arm`."""
        return assign_arm(key, self.arms())

    def _key(self, config: RunnableConfig | None, input: Any) -> str:
        key = customer_key(config)
        if key:
            return key
        try:
            return f"text:{query_text(self._convert_input(input).to_messages())}"
        except ValueError:  # no human message: the input's text form
            return f"text:{input!r}"

    @property
    def model_version(self) -> str:
        try:
            return ",".join(f"{a}:{round(w * 100, 2):g}%" for a, w in self.arms())
        except (BackendUnavailable, ValueError):
            return "unconfigured"

    @property
    def thresholds(self) -> dict[str, float]:
        return {}  # every answer carries its arm's thresholds

    def availability(self) -> tuple[bool, str]:
        try:
            arms = self.arms()
        except (BackendUnavailable, ValueError) as e:
            return False, str(e)
        down = [(a, self.arm_model(a).availability()) for a, _ in arms]
        bad = [f"{a}: {r}" for a, (ok, r) in down if not ok]
        return (False, "rollout arm unavailable: " + "; ".join(bad)) if bad else (True, f"rollout {self.model_version}")

    def warm_up(self) -> None:
        for a, _ in self.arms():
            self.arm_model(a).warm_up()

    def invoke(self, input: Any, config: RunnableConfig | None = None, *, stop: list[str] | None = None,
               **kwargs: Any) -> AIMessage:
        """Answer with the customer's arm; ``response_metadata["arm"]`` names it."""
        arm = self.assign(self._key(config, input))
        msg = self.arm_model(arm).invoke(input, config, stop=stop, **kwargs)
        return with_metadata(msg, arm=arm, policy="rollout")

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, *, stop: list[str] | None = None,
                      **kwargs: Any) -> AIMessage:
        return await run_in_executor(config, self.invoke, input, config, stop=stop, **kwargs)

    def batch(self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        """One batched call per arm; each input assigned by its own config's customer."""
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))
        arms = [self.assign(self._key(c, i)) for c, i in zip(configs, inputs)]
        out: list[Any] = [None] * len(inputs)
        for arm in dict.fromkeys(arms):
            idx = [k for k, a in enumerate(arms) if a == arm]
            res = self.arm_model(arm).batch([inputs[k] for k in idx], [configs[k] for k in idx],
                                            return_exceptions=return_exceptions, **kwargs)
            for k, m in zip(idx, res):
                out[k] = with_metadata(m, arm=arm, policy="rollout") if isinstance(m, AIMessage) else m
        return out

    def classify_batch(self, texts: list[str]) -> list[IntentPrediction]:
        """Each text answered by the arm its own hash picks (no customer here)."""
        arms = [self.assign(f"text:{t}") for t in texts]
        out: list[Any] = [None] * len(texts)
        for arm in dict.fromkeys(arms):
            idx = [k for k, a in enumerate(arms) if a == arm]
            model = self.arm_model(arm)
            for k, p in zip(idx, model.classify_batch([texts[k] for k in idx])):
                out[k] = self._prediction(model, p, arm=arm, policy="rollout")
        return out


def get_arm(spec: str) -> IntentChatModel:
    """The model answering for arm ``spec``: a registry backend or pinned version
    (:func:`models.registry.get_backend`), or a policy (``"cascade"``, ``"rollout"``). Raises
    ``ValueError`` for an invalid arm (see :func:`chains.arms.parse_arm`)."""
    if spec == "rollout":
        return RolloutIntentModel()
    name, version = parse_arm(spec)
    if name == "cascade":
        return CascadeIntentModel()
    return get_backend(name, version)


def arm_models() -> dict[str, IntentChatModel]:
    """arm -> model of every arm the rollout and shadow settings name that is not a plain
    backend (pinned versions, the cascade), for the benchmark rounds' probe-set accuracy.
    Invalid settings are logged and skipped."""
    s = get_settings()
    arms: list[str] = []
    try:
        arms += [a for a, _ in parse_rollout(s.rollout)] if s.rollout else []
        if s.shadow:
            parse_arm(s.shadow)
            arms.append(s.shadow.strip())
    except ValueError as e:
        log.warning("routing settings ignored for the benchmark: %s", e)
    return {a: get_arm(a) for a in dict.fromkeys(arms) if a not in BACKENDS}
