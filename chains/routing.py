"""Routing policies: choose the intent backend by data, as alternatives of the ``backend`` field.

An **arm** is a backend (``"custom"``) or a backend pinned to one model-version folder
(``"custom@20261130-101500-1a2b3c4d"``, a folder under ``<BANKING_HOME>/models/custom/``; peft
likewise), or the policy ``"cascade"``. Both policies below follow the backend contract
(models/base.py), so the conversation graph, the guard and the eval runner cannot tell them from
a backend:

- :class:`CascadeIntentModel` (``backend="cascade"``, order ``BANKING_CASCADE``, default
  ``custom,peft,gemini``): the cheapest arm answers first; a query whose confidence is below
  that arm's own clarify threshold is asked again of the next *available* arm, and so on; the
  last arm asked answers. ``response_metadata`` adds ``cascade`` (the arms asked, in order),
  ``answered_by`` (the arm that answered) and ``backend``/``model_version``/``thresholds`` of
  that arm. This is the classic confidence-thresholded cascade (Viola & Jones 2001; for language
  models: Chen, Zaharia & Zou 2023, "FrugalGPT", arXiv 2305.05176).
- :class:`RolloutIntentModel` (``backend="rollout"``, ``BANKING_ROLLOUT="custom@v1:90,custom@v2:10"``):
  each customer is assigned one arm by weight, from a stable hash (SHA-256) of the authenticated
  customer id, so the same customer always gets the same arm and a change of the setting needs no
  code; ``response_metadata["arm"]`` says which. Without a customer (offline eval) the text is
  hashed instead.

:func:`build_routed_chain` wraps the configurable intent chain so every answer carries ``arm``,
tells the listeners (:func:`add_listener`: the server attaches the benchmark log and the
Prometheus metrics) about each live classification and, when ``BANKING_SHADOW`` names an arm,
runs that arm on the same input in a background thread (never answering with it) and reports its
agreement with the answering arm.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.base import RunnableBindingBase
from langchain_core.runnables.config import get_config_list, run_in_executor
from pydantic import Field, PrivateAttr

from assistant.settings import get_settings
from chains.backends import BACKENDS, MissingBackend, get_backend
from chains.guard import guard
from chains.identity import authenticated_customer_id
from models.base import (
    BackendUnavailable, IntentChatModel, IntentPrediction, PerQueryError, query_text, resolve_thresholds,
)

log = logging.getLogger(__name__)

POLICIES = ("cascade", "rollout")
"""Names of the routing policies; alternatives of the ``backend`` field beside the backends."""

VERSIONED_BACKENDS = ("custom", "peft")
"""Backends whose trained versions are folders under ``<BANKING_HOME>/models/<backend>/``."""

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_HASH_SALT = "banking-rollout-v1"


# ----------------------------------------------------------------------------- arms
def parse_arm(spec: str) -> tuple[str, str | None]:
    """``"custom@v2"`` -> ``("custom", "v2")``; ``"custom"`` -> ``("custom", None)``;
    ``"cascade"`` -> ``("cascade", None)``.

    Raises ``ValueError`` (with the reason) for an unknown backend, a version on a backend that
    has no version folders (gemini) or on a policy, or a version name that is not a plain folder
    name (letters, digits, ``_.-``)."""
    spec = (spec or "").strip()
    name, _, version = spec.partition("@")
    if name not in BACKENDS and name != "cascade":
        raise ValueError(f"unknown arm {spec!r}: the backend must be one of {', '.join([*BACKENDS, 'cascade'])}")
    if not _:
        return name, None
    if name not in VERSIONED_BACKENDS:
        raise ValueError(f"arm {spec!r}: only {' and '.join(VERSIONED_BACKENDS)} have model-version folders to pin")
    if not _VERSION_RE.match(version) or ".." in version:
        raise ValueError(f"arm {spec!r}: the version must be a model-version folder name, e.g. custom@20261130-101500-1a2b3c4d")
    return name, version


def parse_rollout(spec: str) -> list[tuple[str, float]]:
    """``"custom@v1:90,custom@v2:10"`` -> ``[("custom@v1", 0.9), ("custom@v2", 0.1)]`` (weights
    normalised to sum 1, order kept). Raises ``ValueError`` for an empty spec, a part without
    ``:weight``, a weight that is not a positive finite number, a repeated arm or an invalid arm
    (see :func:`parse_arm`)."""
    parts = [p.strip() for p in (spec or "").split(",") if p.strip()]
    if not parts:
        raise ValueError("the rollout is empty; write arm:weight pairs, e.g. custom@v1:90,custom@v2:10")
    arms: list[tuple[str, float]] = []
    for part in parts:
        arm, sep, weight = part.rpartition(":")
        if not sep or not arm:
            raise ValueError(f"rollout part {part!r} needs a weight: arm:weight, e.g. custom:90")
        try:
            w = float(weight)
        except ValueError:
            raise ValueError(f"rollout part {part!r}: weight {weight!r} is not a number") from None
        if not (w > 0 and w != float("inf")):
            raise ValueError(f"rollout part {part!r}: the weight must be a positive number")
        parse_arm(arm)
        if arm in (a for a, _ in arms):
            raise ValueError(f"rollout arm {arm!r} is listed twice")
        arms.append((arm.strip(), w))
    total = sum(w for _, w in arms)
    return [(a, w / total) for a, w in arms]


def stable_bucket(key: str) -> float:
    """A number in [0, 1) from the SHA-256 of ``key`` (the same in every process and Python
    version, unlike ``hash()``), uniform over keys."""
    digest = hashlib.sha256(f"{_HASH_SALT}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_arm(key: str, arms: list[tuple[str, float]]) -> str:
    """The arm of ``key`` among ``arms`` (``[(arm, weight)]``, weights summing to 1): the first
    whose cumulative weight exceeds :func:`stable_bucket` of the key."""
    b, acc = stable_bucket(key), 0.0
    for arm, w in arms:
        acc += w
        if b < acc:
            return arm
    return arms[-1][0]


_pinned: dict[str, IntentChatModel] = {}
_pinned_lock = threading.Lock()


def pinned_backend(name: str, version: str) -> IntentChatModel:
    """The process-wide instance of backend ``name`` loading version folder
    ``<BANKING_HOME>/models/<name>/<version>`` (constructor argument ``model_dir``; weights load
    lazily). A backend whose optional extra is missing is a :class:`MissingBackend`."""
    spec = f"{name}@{version}"
    with _pinned_lock:
        if spec not in _pinned:
            module, cls = BACKENDS[name]
            path = get_settings().models_dir / name / version
            try:
                _pinned[spec] = getattr(importlib.import_module(module), cls)(model_dir=Path(path))
            except (ImportError, AttributeError) as e:
                _pinned[spec] = MissingBackend(name_=spec, reason=f"optional dependencies missing ({e})")
        return _pinned[spec]


def get_arm(spec: str) -> IntentChatModel:
    """The model answering for arm ``spec``: a registry backend, a pinned version
    (:func:`pinned_backend`), or a policy (``"cascade"``, ``"rollout"``). Raises ``ValueError``
    for an invalid arm (see :func:`parse_arm`)."""
    if spec == "rollout":
        return RolloutIntentModel()
    name, version = parse_arm(spec)
    if name == "cascade":
        return CascadeIntentModel()
    return pinned_backend(name, version) if version else get_backend(name)


def reset_arms() -> None:
    """Forget the pinned-version instances (tests, or after training a new version)."""
    with _pinned_lock:
        _pinned.clear()


def customer_key(config: RunnableConfig | None) -> str | None:
    """``"customer:<id>"`` of the run's authenticated customer (chains/identity.py), or None
    when the run has none (offline eval, operator tools)."""
    try:
        return f"customer:{authenticated_customer_id(config or {})}"
    except (PermissionError, TypeError, ValueError):
        return None


def _with_meta(msg: AIMessage, **meta: Any) -> AIMessage:
    return msg.model_copy(update={"response_metadata": {**msg.response_metadata, **meta}})


# ----------------------------------------------------------------------------- policies
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
        return _with_meta(msg, arm=arm, policy="rollout")

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
                out[k] = _with_meta(m, arm=arm, policy="rollout") if isinstance(m, AIMessage) else m
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


# ----------------------------------------------------------------------------- live traffic
_listeners: list[Callable[[dict[str, Any]], None]] = []


def add_listener(fn: Callable[[dict[str, Any]], None]) -> None:
    """Call ``fn(event)`` for every live classification and shadow comparison (once per ``fn``).

    Events: ``{"kind": "live", "arm", "backend", "model_version", "intent", "confidence",
    "action" (the guard's: route | clarify | out_of_scope | small_talk), "latency_ms"}`` and
    ``{"kind": "shadow", "arm" (the shadow arm), "backend", "model_version", "intent",
    "confidence", "latency_ms", "against" (the answering arm), "answered_intent", "agree": bool}``
    (``"error"`` instead of the prediction when the shadow arm failed). Runs on the request's
    thread (live) or the shadow thread; exceptions are logged, never raised."""
    if fn not in _listeners:
        _listeners.append(fn)


def remove_listener(fn: Callable[[dict[str, Any]], None]) -> None:
    """Stop calling ``fn`` (no error when it was not registered)."""
    if fn in _listeners:
        _listeners.remove(fn)


def _notify(event: dict[str, Any]) -> None:
    for fn in list(_listeners):
        try:
            fn(event)
        except Exception:  # noqa: BLE001 - observers must never break an answer
            log.exception("routing listener %r failed", fn)


def _event(kind: str, arm: str, meta: dict[str, Any]) -> dict[str, Any]:
    try:
        action = guard(meta).action
    except (KeyError, TypeError, ValueError):
        action = None
    return {"kind": kind, "arm": arm, "backend": meta.get("backend"), "model_version": meta.get("model_version"),
            "intent": meta.get("intent"), "confidence": meta.get("confidence"), "action": action,
            "latency_ms": meta.get("latency_ms")}


class ShadowRunner:
    """Runs shadow classifications on one background thread. At most ``max_pending`` wait;
    further ones are dropped (``dropped`` counts them) so shadow work never piles up."""

    def __init__(self, max_pending: int = 16) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._futures: set[Future] = set()
        self._lock = threading.Lock()
        self.dropped = 0

    def submit(self, fn: Callable[[], None]) -> bool:
        """Queue ``fn``; False (and ``dropped`` + 1) when ``max_pending`` are waiting already."""
        if not self._slots.acquire(blocking=False):
            self.dropped += 1
            return False

        def job() -> None:
            try:
                fn()
            finally:
                self._slots.release()

        fut = self._pool.submit(job)
        with self._lock:
            self._futures.add(fut)
        fut.add_done_callback(lambda f: self._discard(f))
        return True

    def _discard(self, fut: Future) -> None:
        with self._lock:
            self._futures.discard(fut)

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait for the queued shadow work; True when all finished within ``timeout_s`` seconds."""
        with self._lock:
            futs = list(self._futures)
        return not wait(futs, timeout=timeout_s).not_done


SHADOW = ShadowRunner()
"""The process's shadow runner."""


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
        msg = _with_meta(msg, arm=arm)
        _notify(_event("live", arm, msg.response_metadata))
        shadow = self.shadow
        if shadow and shadow != arm:
            (self.runner or SHADOW).submit(lambda: self._run_shadow(shadow, input, msg.response_metadata))
        return msg

    def _run_shadow(self, arm: str, input: Any, answered: dict[str, Any]) -> None:
        base = {"against": answered.get("arm"), "answered_intent": answered.get("intent")}
        try:
            meta = (self.resolve or get_arm)(arm).invoke(input).response_metadata
        except Exception as e:  # noqa: BLE001 - a failing candidate is logged as such, not raised
            _notify({"kind": "shadow", "arm": arm, "error": f"{type(e).__name__}: {e}", "agree": None, **base})
            return
        _notify({**_event("shadow", arm, meta), **base, "agree": meta.get("intent") == answered.get("intent")})

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
