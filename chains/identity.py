"""Who is asking: the authenticated customer of a run, from its config only.

Shared by the conversation graph (chains/graph.py) and the routing policies (chains/routing.py),
which needs the customer for sticky rollout assignment without importing the graph.
"""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig


def authenticated_customer_id(config: RunnableConfig) -> int:
    """The authenticated customer of a run.

    Under LangGraph server the auth handler's user (``configurable["langgraph_auth_user"]``,
    whose ``customer_id`` it set) wins; a different ``configurable["customer_id"]`` sent by the
    client raises ``PermissionError``. In-process, ``configurable["customer_id"]`` (set by the
    interface from its login) is used. No customer (or an operator key): ``PermissionError``.
    """
    conf = (config or {}).get("configurable") or {}
    user = conf.get("langgraph_auth_user")
    claimed = conf.get("customer_id")
    if user is not None:
        try:
            cid = user["customer_id"]
        except (KeyError, TypeError):
            cid = None
        if cid is None:
            raise PermissionError("This identity is not a customer; only customers can chat.")
        if claimed is not None and int(claimed) != int(cid):
            raise PermissionError("customer_id cannot be set by the caller; it comes from authentication.")
        return int(cid)
    if claimed is None:
        raise PermissionError("No authenticated customer for this conversation.")
    return int(claimed)
