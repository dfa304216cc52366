"""Authentication and thread ownership for the graph under ``langgraph dev`` / LangGraph server
(wired in langgraph.json as ``"auth": {"path": "./assistant/graph_auth.py:auth"}``).

- Authentication: ``Authorization: Bearer <API key>`` (the same customer keys as the HTTP API,
  checked by ``bank.auth.authenticate_key``). A missing or unknown key is HTTP 401;
  an operator key is HTTP 403 (operators do not chat as a customer). The user's
  ``customer_id`` reaches the graph as ``config["configurable"]["langgraph_auth_user"]
  ["customer_id"]``, the only source of identity there (see chains/graph.authenticated_customer_id).
- Authorization: every thread (and run) a customer creates is stamped with
  ``metadata.owner = <identity>`` and every read/search is filtered on it, so one customer can
  neither see nor resume another's thread (404 from the server). The graph's assistant is
  readable by every customer and changeable by none.
"""

from __future__ import annotations

import asyncio

from langgraph_sdk import Auth

from bank.auth import authenticate_key
from bank.store import get_engine

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    """Bearer API key -> ``{"identity": "customer:<id>", "customer_id": <id>, "display_name"}``.

    Raises ``Auth.exceptions.HTTPException`` 401 (missing/unknown key) or 403 (operator key).
    """
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Auth.exceptions.HTTPException(status_code=401, detail="Send 'Authorization: Bearer <API key>'.")
    principal = await asyncio.to_thread(lambda: authenticate_key(get_engine(), key.strip()))
    if principal is None:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Unknown API key.")
    if principal.customer_id is None:
        raise Auth.exceptions.HTTPException(status_code=403, detail="Operator keys cannot chat as a customer.")
    return {
        "identity": f"customer:{principal.customer_id}",
        "customer_id": principal.customer_id,
        "display_name": principal.name,
        "is_authenticated": True,
    }


def _stamp_owner(ctx: Auth.types.AuthContext, value: dict) -> dict[str, str]:
    if isinstance(value, dict):
        metadata = value.get("metadata")
        if metadata is None:
            metadata = value["metadata"] = {}
        metadata["owner"] = ctx.user.identity  # in place: the server keeps its own reference
    return {"owner": ctx.user.identity}


@auth.on.threads
async def own_threads(ctx: Auth.types.AuthContext, value: dict) -> dict[str, str]:
    """Threads and their runs: stamp the owner on create, filter every access by it."""
    return _stamp_owner(ctx, value)


@auth.on.assistants
async def read_only_assistants(ctx: Auth.types.AuthContext, value: dict) -> bool:
    """Customers may read/search the deployed graph's assistant, not create or change one."""
    if ctx.action in ("create", "update", "delete"):
        raise Auth.exceptions.HTTPException(status_code=403, detail="Customers cannot change assistants.")
    return True


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: dict) -> dict[str, str]:
    """Everything else (crons, store): owner-stamped and owner-filtered."""
    return _stamp_owner(ctx, value)
