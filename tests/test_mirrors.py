"""Tables that mirror a list owned elsewhere cover exactly that list (issue 19).

Owners: ``bank.tools.base.STATE_CHANGING_ACTIONS`` (every proposable action),
``assistant.errors.DOMAIN_ERRORS`` / ``view_of`` (which errors are the request's fault and how
each is shown), ``models.registry.BACKENDS`` and ``chains.arms.POLICIES`` (backend names).
No model, no database.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from assistant.errors import DOMAIN_ERRORS, view_of
from bank.tools import STATE_CHANGING_ACTIONS
from bank.tools.actions import EXECUTORS
from bank.tools.money_exec import MONEY_EXECUTORS


def test_state_changing_actions_are_listed_once():
    assert len(STATE_CHANGING_ACTIONS) == len(set(STATE_CHANGING_ACTIONS)) == 11


def test_executor_table_is_keyed_by_the_actions_in_their_order():
    assert tuple(EXECUTORS) == STATE_CHANGING_ACTIONS
    assert set(MONEY_EXECUTORS) == {"send_payment", "add_payee", "top_up_account", "open_dispute"}
    assert all(EXECUTORS[a] is f for a, f in MONEY_EXECUTORS.items())


def test_ui_confirmation_wording_covers_exactly_the_actions():
    from assistant import ui_text

    assert set(ui_text._CONFIRM_LABELS) == set(STATE_CHANGING_ACTIONS)
    generic = ("Yes, go ahead", "No, leave it")
    for action in STATE_CHANGING_ACTIONS:
        yes, no = ui_text.confirmation_labels({"action_id": "x", "action": action, "description": "d"}, {})
        assert (yes, no) != generic and yes.startswith("Yes") and no.startswith("No"), action
    assert ui_text.confirmation_labels({"action": "no_such_action"}) == generic


def test_confirmation_verbs_cover_every_action():
    from chains.confirmation import ACTION_VERBS, yes_or_no

    assert set(ACTION_VERBS) == set(STATE_CHANGING_ACTIONS)
    assert yes_or_no("yes, send it", "send_payment") is True and yes_or_no("yes, freeze it", "send_payment") is None
    assert yes_or_no("yes, freeze it", "freeze_card") is True
    assert yes_or_no("yes, close it", "freeze_card") is None


def _instance(kind: type[BaseException]) -> BaseException:
    if issubclass(kind, ValidationError):
        class _M(BaseModel):
            x: int

        with pytest.raises(ValidationError) as info:
            _M(x="not a number")
        return info.value
    return kind("the reason")


@pytest.mark.parametrize("kind", DOMAIN_ERRORS, ids=lambda k: k.__name__)
def test_every_domain_error_has_a_client_view(kind):
    view = view_of(_instance(kind))
    assert view.http_status != 500 and 400 <= view.http_status < 600
    assert view.cli_exit in (1, 2) and view.detail and view.customer_text
    assert "Internal error" not in view.detail


def test_domain_errors_statuses_and_the_internal_fallback():
    from bank.tools import ActionExpiredError, ActionNotFoundError
    from chains.assistant import InvalidMessage
    from chains.guard import UnknownChoice
    from models.base import BackendUnavailable

    statuses = {k: view_of(_instance(k)).http_status for k in DOMAIN_ERRORS}
    assert statuses == {ActionExpiredError: 410, ActionNotFoundError: 404, InvalidMessage: 422, UnknownChoice: 422,
                        ValidationError: 422, PermissionError: 403, BackendUnavailable: 503}
    for bug in (KeyError("k"), RuntimeError("r"), TypeError("t")):
        assert not isinstance(bug, DOMAIN_ERRORS)
        assert view_of(bug).http_status == 500 and view_of(bug).detail == "Internal error; it has been logged."


def test_http_layer_catches_the_same_domain_errors():
    from assistant import http_turns

    assert set(http_turns.DOMAIN_ERRORS) == set(DOMAIN_ERRORS)


def test_eval_cli_backend_names_come_from_the_registry_and_the_arms():
    from chains.arms import CHOICES, POLICIES
    from evals import cli
    from models.registry import BACKENDS

    assert cli.KNOWN_BACKENDS == tuple(BACKENDS)
    assert cli.POLICIES is POLICIES
    assert (*cli.KNOWN_BACKENDS, *cli.POLICIES) == CHOICES
    assert cli.parse_backends("custom,cascade,nonsense") == (["custom", "cascade"], ["nonsense"])
