"""The chat UI's pure helpers and its conversation-history store (no browser): the plain
"Understood" line and thread title, button wording, safe Markdown, backend reasons, the
operator-only settings, the local front end without third-party links, and Chainlit's data
layer on SQLite and PostgreSQL (including a title that survives Chainlit's rename)."""

from __future__ import annotations

import os

from db_backends import db_url  # noqa: F401 - the SQLite + PostgreSQL fixture
from ui_support import MARKDOWN_MERCHANT

from assistant.ui import WORD_JOINER


def test_plain_line_only_when_a_banking_tool_answered() -> None:
    from assistant.ui import understood_line

    assert understood_line({"status": "answered", "intent": "card_arrival"}) == "Understood: a card that hasn't arrived"
    assert understood_line({"status": "confirmation_required", "intent": "lost_or_stolen_card"}) == \
        "Understood: a lost or stolen card"
    for status in ("out_of_scope", "clarify", "small_talk", "confirmed", "declined", "expired", "superseded"):
        assert understood_line({"status": status, "intent": "card_arrival"}) is None, status


def test_confirmation_buttons_are_worded_for_the_number_of_cards() -> None:
    from assistant.ui import confirmation_labels

    freeze = {"action": "freeze_card"}
    assert confirmation_labels(freeze, {"cards": [{"last4": "4821"}]}) == ("Yes, freeze my card", "No, keep it as it is")
    assert confirmation_labels(freeze, {"cards": [{}, {}]}) == ("Yes, freeze both cards", "No, keep them as they are")
    assert confirmation_labels(freeze, {"cards": [{}, {}, {}]}) == ("Yes, freeze all 3 cards", "No, keep them as they are")
    assert confirmation_labels({"action": "cancel_transfer"}, {}) == ("Yes, cancel the transfer", "No, let it go ahead")
    assert confirmation_labels({"action": "something_new"}, {}) == ("Yes, go ahead", "No, leave it")


def test_answer_markdown_keeps_bullets_and_escapes_third_party_text() -> None:
    from assistant.ui import answer_markdown

    md = answer_markdown(f"Recent payments:\n- {MARKDOWN_MERCHANT}, £12.34\n- *Cafe* <b>x</b>, £1.00\nOnce it arrives, fine.")
    blocks = md.split("\n\n")
    assert blocks[0] == "Recent payments:"
    assert blocks[1].startswith("- \\[refund here\\]\\(https:" + WORD_JOINER + "//example.invalid/x\\)")
    assert "\n- \\*Cafe\\* \\<b\\>x\\</b\\>, £1.00" in blocks[1]
    assert blocks[2] == "Once it arrives, fine."  # its own paragraph, not part of the last bullet
    assert "](" not in md and "![" not in md


def test_backend_reasons_in_customer_words() -> None:
    from assistant.ui import backend_options

    opts = backend_options({
        "custom": {"available": True, "reason": "model v1"},
        "peft": {"available": False, "reason": "No trained peft model. Run `banking-assistant train peft`."},
        "gemini": {"available": False, "reason": "GOOGLE_API_KEY is not set"},
    })
    assert [(o["name"], o["available"]) for o in opts] == [("custom", True), ("peft", False), ("gemini", False)]
    assert opts[0]["reason"] == ""
    assert opts[1]["reason"] == "Not ready: it has not been trained on this server yet."
    assert opts[2]["reason"] == "Not connected: this bank has not set up access to it."


def test_history_store_keeps_each_customers_threads_on_sqlite_and_postgresql(db_url, tmp_path) -> None:  # noqa: F811
    """The UI's conversation history (Chainlit's SQLAlchemy data layer on the project database,
    tables from assistant/ui.py) on both databases: a thread and its messages read back with
    decoded metadata, its author is the customer, and the other customer's list is empty."""
    import asyncio
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine

    os.environ.setdefault("CHAINLIT_APP_ROOT", str(tmp_path))  # chainlit reads its root on import
    from chainlit.types import Pagination, ThreadFilter
    from chainlit.user import User

    from assistant.ui import create_chainlit_tables
    from assistant.ui_app import HistoryDataLayer, data_layer_for

    engine = create_engine(db_url)
    try:
        create_chainlit_tables(engine)
        create_chainlit_tables(engine)  # idempotent
    finally:
        engine.dispose()

    async def scenario() -> tuple:
        layer = data_layer_for(db_url)
        assert isinstance(layer, HistoryDataLayer)
        try:
            alice = await layer.create_user(User(identifier="alice", metadata={"customer_id": 1}))
            bob = await layer.create_user(User(identifier="bob", metadata={"customer_id": 2}))
            tid = str(uuid.uuid4())
            await layer.update_thread(tid, name="Where is my new card?", user_id=alice.id, metadata={"k": 1})
            create_step = getattr(HistoryDataLayer.create_step, "__wrapped__")  # outside a Chainlit session
            for i, (kind, text) in enumerate([("user_message", "Where is my new card?"),
                                              ("assistant_message", "Your card is on its way.")]):
                await create_step(layer, {"id": str(uuid.uuid4()), "threadId": tid, "name": kind, "type": kind,
                                          "streaming": False, "output": text, "metadata": {"n": i},
                                          "createdAt": f"2026-11-30T10:00:0{i}Z"})
            thread = await layer.get_thread(tid)
            author = await layer.get_thread_author(tid)
            mine = await layer.list_threads(Pagination(first=10), ThreadFilter(userId=alice.id))
            theirs = await layer.list_threads(Pagination(first=10), ThreadFilter(userId=bob.id))
            # The understood request names the thread, and Chainlit's later rename after the
            # first message ("hi") keeps it (Chainlit renames on the first interaction).
            tid2 = str(uuid.uuid4())
            await layer.set_title(tid2, "A card that hasn't arrived")
            first = (await layer.get_thread(tid2))["name"]
            await layer.update_thread(tid2, name="hi", user_id=alice.id)
            after = await layer.get_thread(tid2)
            assert after["userIdentifier"] == "alice"
            return tid, thread, author, mine.data, theirs.data, (first, after["name"])
        finally:
            await layer.close()

    # Its own thread: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        tid, thread, author, mine, theirs, titled = pool.submit(asyncio.run, scenario()).result()
    assert thread["name"] == "Where is my new card?" and thread["metadata"] == {"k": 1}
    assert [s["output"] for s in thread["steps"]] == ["Where is my new card?", "Your card is on its way."]
    assert [s["metadata"] for s in thread["steps"]] == [{"n": 0}, {"n": 1}]
    assert author == "alice"
    assert [t["id"] for t in mine] == [tid] and theirs == []
    assert titled == ("A card that hasn't arrived", "A card that hasn't arrived")


def test_thread_title_is_the_first_understood_request_in_customer_words() -> None:
    from assistant.ui import thread_title

    assert thread_title({"status": "answered", "intent": "card_arrival"}) == "A card that hasn't arrived"
    assert thread_title({"status": "confirmation_required", "intent": "lost_or_stolen_card"}) == "A lost or stolen card"
    for status in ("out_of_scope", "clarify", "small_talk", "confirmed", "declined"):
        assert thread_title({"status": status, "intent": "card_arrival"}) is None, status


def test_settings_update_is_ignored_for_customers_and_applied_for_operators() -> None:
    from assistant.ui import settings_choice

    crafted = {"backend": "peft", "details": True}
    assert settings_choice(crafted, ["custom", "peft"], operator=False) == (None, False)
    assert settings_choice(crafted, ["custom", "peft"], operator=True) == ("peft", True)
    assert settings_choice({"backend": "peft", "details": False}, ["custom"], operator=True) == (None, False)


def test_operator_tools_are_off_unless_the_bank_turns_them_on(monkeypatch) -> None:
    from config.settings import Settings

    monkeypatch.delenv("BANKING_UI_OPERATOR_TOOLS", raising=False)
    assert Settings(_env_file=None).ui_operator_tools is False
    monkeypatch.setenv("BANKING_UI_OPERATOR_TOOLS", "true")
    assert Settings(_env_file=None).ui_operator_tools is True


def test_local_front_end_has_no_third_party_links(tmp_path) -> None:
    from assistant.ui import chainlit_config_toml
    from assistant.ui_frontend import BUILD_DIR_NAME, chainlit_frontend_dir, local_index_html, prepare_frontend

    shipped = (chainlit_frontend_dir() / "index.html").read_text()
    assert "fonts.googleapis.com" in shipped and "cdn.jsdelivr.net" in shipped  # what Chainlit ships
    html = (prepare_frontend(tmp_path) / "index.html").read_text()
    assert html == local_index_html(shipped)
    assert "https://" not in html and "http://" not in html
    assert '<script type="module"' in html and "/assets/" in html  # the app itself is still there
    assert list((tmp_path / BUILD_DIR_NAME / "assets").glob("index-*.js"))
    assert f'custom_build = "./{BUILD_DIR_NAME}"' in chainlit_config_toml("test")
