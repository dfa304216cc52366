"""The Chainlit UI's conversation-history store: Chainlit's SQLAlchemy data layer on the
project's database (SQLite or PostgreSQL), with JSON columns decoded on read and a thread title
set from the first understood request kept over Chainlit's own rename. Used by
assistant/ui_app.py (which re-exports these names)."""

from __future__ import annotations

import json
from typing import Any

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

from assistant.ui import async_database_url


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value


class HistoryDataLayer(SQLAlchemyDataLayer):
    """Chainlit's SQLAlchemy data layer on the project's database (SQLite or PostgreSQL). The
    tables keep JSON as text (portable schema, assistant/ui.py ``chainlit_tables``), so threads
    read back have their ``metadata``/``generation`` decoded into dicts here."""

    async def get_all_user_threads(self, user_id: str | None = None, thread_id: str | None = None):
        threads = await super().get_all_user_threads(user_id=user_id, thread_id=thread_id)
        for t in threads or []:
            t["metadata"] = _json(t.get("metadata")) or {}
            t["tags"] = _json(t.get("tags")) or []
            for st in t.get("steps") or []:
                st["metadata"] = _json(st.get("metadata")) or {}
                st["generation"] = _json(st.get("generation")) or None
        return threads

    async def update_thread(self, thread_id: str, name: str | None = None, user_id: str | None = None,
                            metadata: dict | None = None, tags: list[str] | None = None) -> None:
        """Chainlit's upsert, except that a thread already titled by its understood request
        (metadata ``title``, see :meth:`set_title`) keeps that title: Chainlit names a thread
        after its first message, possibly after the title was set."""
        if name is not None and not (metadata or {}).get(TITLE_KEY):
            rows = await self.execute_sql(query='SELECT "metadata" FROM threads WHERE "id" = :id',
                                          parameters={"id": thread_id})
            kept = (_json(rows[0].get("metadata")) or {}).get(TITLE_KEY) if isinstance(rows, list) and rows else None
            name = kept or name
        await super().update_thread(thread_id, name=name, user_id=user_id, metadata=metadata, tags=tags)

    async def set_title(self, thread_id: str, title: str) -> None:
        """Name thread ``thread_id`` ``title`` (kept from then on, see :meth:`update_thread`)."""
        await self.update_thread(thread_id, name=title, metadata={TITLE_KEY: title})


TITLE_KEY = "understood_title"
"""Thread metadata key holding the title set from the first understood request."""


def data_layer_for(database_url: str) -> HistoryDataLayer:
    """The history store on the database of the (synchronous) SQLAlchemy ``database_url``; its
    tables must exist (assistant/ui.py ``create_chainlit_tables``)."""
    url = async_database_url(database_url)
    connect_args = {"timeout": 30} if url.startswith("sqlite") else {}  # seconds to wait for a write lock
    return HistoryDataLayer(conninfo=url, connect_args=connect_args)
