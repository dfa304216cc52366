"""Authentication: API keys (stored as SHA-256 hex digests) and UI passwords (scrypt).

The customer id the tools act on comes only from here, never from a message's text.

Password hashes use the standard library's ``hashlib.scrypt`` (RFC 7914) with a random 16-byte
salt and parameters n=2**14, r=8, p=1 (about 16 MiB of memory per check), stored as
``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from bank.store import ApiKey, Customer, session_scope

__all__ = [
    "Principal", "hash_api_key", "hash_password", "verify_password",
    "authenticate_key", "authenticate_password", "create_api_key",
]

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32
ROLES = ("customer", "operator")


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``customer_id`` (None for an operator), ``role`` ('customer' |
    'operator') and a display ``name``."""

    customer_id: int | None
    role: str
    name: str

    @property
    def is_operator(self) -> bool:
        """True for the operator role."""
        return self.role == "operator"


def hash_api_key(api_key: str) -> str:
    """SHA-256 hex digest (64 chars) of the UTF-8 key: the only form in which keys are stored."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """scrypt hash of ``password`` with a random (or given) salt, in the string format above."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R,
                            p=_SCRYPT_P, dklen=_SCRYPT_LEN)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored scrypt hash (constant-time compare).

    A malformed stored value gives False, never an exception.
    """
    try:
        scheme, n, r, p, salt_hex, hash_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(hash_hex)
        digest = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=int(n),
                                r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


# A fixed hash checked against when the user does not exist, so that unknown and known
# usernames take the same time.
_DUMMY_HASH = hash_password("not-a-password", salt=b"\x00" * 16)


def authenticate_key(engine: Engine, api_key: str | None) -> Principal | None:
    """The principal of ``api_key``, or None for a missing, empty or unknown key.

    The key is hashed (SHA-256) and looked up by digest; the stored digest is compared again
    with ``hmac.compare_digest``. Keys longer than 512 characters are rejected (None).
    """
    if not api_key or len(api_key) > 512:
        return None
    digest = hash_api_key(api_key)
    with session_scope(engine) as s:
        row = s.execute(select(ApiKey).where(ApiKey.key_hash == digest)).scalar_one_or_none()
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        if row.role == "operator":
            return Principal(customer_id=None, role="operator", name=row.label or "operator")
        if row.customer_id is None:
            return None
        customer = s.get(Customer, row.customer_id)
        if customer is None:
            return None
        return Principal(customer_id=customer.id, role="customer", name=customer.name)


def authenticate_password(engine: Engine, username: str | None, password: str | None) -> Principal | None:
    """The customer principal for ``username`` (case-insensitive) and ``password``, or None.

    Unknown users still cost one scrypt evaluation (no timing oracle on usernames).
    """
    if not username or not password or len(username) > 64 or len(password) > 1024:
        return None
    with session_scope(engine) as s:
        customer = s.execute(
            select(Customer).where(func.lower(Customer.username) == username.strip().lower())
        ).scalar_one_or_none()
        stored = customer.password_hash if customer is not None and customer.password_hash else None
        ok = verify_password(password, stored or _DUMMY_HASH)
        if customer is None or stored is None or not ok:
            return None
        return Principal(customer_id=customer.id, role="customer", name=customer.name)


def create_api_key(engine: Engine, customer_id: int | None, role: str = "customer", label: str = "") -> str:
    """Mint a new random API key (43 URL-safe chars), store its hash, and return the key once.

    Raises ValueError for an unknown role, a customer key without ``customer_id``, or an
    unknown customer id.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if role == "customer" and customer_id is None:
        raise ValueError("a customer key needs a customer_id")
    key = secrets.token_urlsafe(32)
    with session_scope(engine) as s:
        if customer_id is not None and s.get(Customer, customer_id) is None:
            raise ValueError(f"no customer with id {customer_id}")
        s.add(ApiKey(key_hash=hash_api_key(key), customer_id=customer_id if role == "customer" else None,
                     role=role, label=label))
    return key
