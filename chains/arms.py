"""Arms: the names a routing policy chooses between, and the sticky assignment of a customer to one.

An **arm** is a backend (``"custom"``), a backend pinned to one model-version folder
(``"custom@20261130-101500-1a2b3c4d"``, a folder under ``<BANKING_HOME>/models/custom/``; peft
likewise), or the policy ``"cascade"``. A rollout spec (``BANKING_ROLLOUT``) weighs arms:
``"custom@v1:90,custom@v2:10"``; :func:`assign_arm` gives each key (a customer, or a text) one
arm by weight from a stable hash (SHA-256), the same in every process, so the same customer
always gets the same arm.

:data:`CHOICES` is the one list of values of the ``backend`` field (the backends, then the
routing policies); the CLI's ``--backend`` and the chain's alternatives both come from it. The
models behind arms come from chains/policies.py (:func:`chains.policies.get_arm`).
"""

from __future__ import annotations

import hashlib

from langchain_core.runnables import RunnableConfig

from chains.identity import authenticated_customer_id
from models.registry import BACKENDS, UnknownBackend, check_version

POLICIES = ("cascade", "rollout")
"""Names of the routing policies; alternatives of the ``backend`` field beside the backends."""

CHOICES = (*BACKENDS, *POLICIES)
"""Every value of the ``backend`` field: the backends, then the routing policies."""

_HASH_SALT = "banking-rollout-v1"


def parse_arm(spec: str) -> tuple[str, str | None]:
    """``"custom@v2"`` -> ``("custom", "v2")``; ``"custom"`` -> ``("custom", None)``;
    ``"cascade"`` -> ``("cascade", None)``.

    Raises :class:`models.registry.UnknownBackend` (a ``ValueError``) for an unknown backend, and
    ``ValueError`` (with the reason) for a version on a backend that has no version folders
    (gemini) or on a policy, or a version name that is not a plain folder name (letters, digits,
    ``_.-``)."""
    spec = (spec or "").strip()
    name, at, version = spec.partition("@")
    if name not in BACKENDS and name != "cascade":
        raise UnknownBackend(spec, [*BACKENDS, "cascade"])
    if not at:
        return name, None
    check_version(name, version)
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


def customer_key(config: RunnableConfig | None) -> str | None:
    """``"customer:<id>"`` of the run's authenticated customer (chains/identity.py), or None
    when the run has none (offline eval, operator tools)."""
    try:
        return f"customer:{authenticated_customer_id(config or {})}"
    except (PermissionError, TypeError, ValueError):
        return None
