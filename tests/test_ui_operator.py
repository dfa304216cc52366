"""The operator tools of the Chainlit UI (``BANKING_UI_OPERATOR_TOOLS=true``, a staff
deployment) in a real browser: the settings panel lists every backend (the unavailable ones
disabled with a plain reason), the technical-details switch adds the operator step under each
answer, and the backend chosen there answers the next turn (gemini, through the local fake of its
REST API). Set-up in tests/ui_support.py; the customer UI, which has none of this, is tested in
tests/test_ui_browser.py.
"""

from __future__ import annotations

import re

import pytest
from ui_support import browser, fake_gemini, login, open_settings, pinned_thresholds, send, shots, ui_server  # noqa: F401


@pytest.fixture(scope="module")
def operator_ui_url(trained_custom_model_dir, session_home, fake_gemini, pinned_thresholds, tmp_path_factory):
    with ui_server(session_home, fake_gemini, tmp_path_factory.mktemp("ui_operator"), operator_tools=True) as url:
        yield url


def test_operator_settings_details_and_per_request_backend(browser, operator_ui_url, shots, fake_gemini) -> None:
    from assistant.ui import customer_reason
    from chains.backends import available_backends

    ctx, page = login(browser, operator_ui_url, "alice", "alice-demo")
    try:
        send(page, "Where is my new card?")
        page.get_by_text("Understood: a card that hasn't arrived").wait_for()
        assert "Technical details" not in page.locator("body").inner_text()  # off until switched on
        # Settings: every backend; the unavailable one disabled with its reason in plain words.
        open_settings(page)
        peft = page.locator("#unavailable_peft")
        assert peft.is_disabled()
        dialog = page.get_by_role("dialog").inner_text()
        assert "Fine-tuned language model: not available" in dialog
        reason = available_backends()["peft"]["reason"]  # what /health reports, e.g. "... not installed ..."
        assert customer_reason(reason) in dialog.split("Fine-tuned language model: not available")[1]
        assert reason not in dialog and "pip" not in dialog and "`" not in dialog
        page.wait_for_timeout(800)  # the dialog's fade-in
        page.screenshot(path=str(shots / "settings.png"))
        # The operator view and gemini for the next message.
        page.locator("#details").click()
        page.locator("#backend").click()
        options = [o.inner_text().strip() for o in page.get_by_role("option").all()]
        assert options == ["Standard (our own intent model)", "Google Gemini"], options
        page.get_by_role("option", name="Google Gemini").click()
        page.get_by_role("button", name="Confirm").click()

        before = len(fake_gemini.requests)
        send(page, "Where is my new card?")
        step = page.get_by_text("Technical details", exact=True).last
        step.wait_for()
        step.click()
        page.get_by_text("Backend:").last.wait_for()
        text = page.locator("body").inner_text()
        assert re.search(r"Intent: [a-z_]+", text) and "Confidence:" in text and "Latency:" in text, text
        assert re.search(r"Backend: gemini", text), text
        assert len(fake_gemini.requests) > before  # the gemini backend really answered
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "operator_view.png"))
        assert not [e for e in page.errors if "/avatars/" in e], page.errors  # no broken avatars
    finally:
        ctx.close()
