"""Failed UI logins are throttled per user name (issue 20: throttle per key/user as well as per
address): after the limit, even the right password is refused for that user name, while
another customer's login still works. Calls the Chainlit password callback itself."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture()
def login(session_home, monkeypatch):
    from config.settings import get_settings
    from bank.seed import seed_demo
    from bank.store import create_schema, get_engine

    monkeypatch.setenv("BANKING_AUTH_FAILURES_PER_KEY_PER_MINUTE", "3")
    get_settings.cache_clear()
    create_schema(get_engine())
    seed_demo(get_engine())
    import assistant.ui_app as ui_app
    from assistant.http_limits.login import LoginThrottle

    monkeypatch.setattr(ui_app, "_login_throttle", LoginThrottle(3))
    yield lambda user, password: asyncio.run(ui_app.login(user, password))
    get_settings.cache_clear()


def test_failed_logins_lock_that_user_name_only(login) -> None:
    assert login("alice", "alice-demo").identifier == "alice"
    assert [login("alice", f"wrong-{i}") for i in range(3)] == [None, None, None]
    assert login("alice", "alice-demo") is None  # throttled: the right password is refused too
    assert login("ALICE ", "alice-demo") is None  # the same user name, however written
    assert login("bob", "bob-demo").identifier == "bob"


def test_login_throttle_counts_per_user_name() -> None:
    from assistant.http_limits.login import LoginThrottle

    t = LoginThrottle(2)
    t.failed("carol")
    assert t.allowed("carol")
    t.failed("carol")
    assert not t.allowed("carol") and t.allowed("dave")
    assert LoginThrottle(0).allowed("carol")  # 0 = off
