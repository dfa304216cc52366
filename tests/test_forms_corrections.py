"""What a correction of a waiting proposal says (chains/forms.py): the changed details in the
customer's words and that the earlier proposal was closed, never "ask again"; the settle node's
closing sentence is said once, in the form's words."""

from __future__ import annotations

from chains.confirmation import superseded_sentence
from chains.forms import Form, changes, correction_notice, stopped_notice, without_proposal

PROPOSED = "Send £40.00 to Northside Energy (GB33 **** 5555) from your GBP account, fee £0.00, balance after £1,480.40."
FORM = Form(intent="send_money", slots={"payee": "Northside Energy", "amount": "40.00", "currency": "GBP"},
            proposed=PROPOSED)


def test_changes_name_each_changed_detail_with_its_currency() -> None:
    assert changes(FORM.slots, {"amount": "45"}) == ["the amount from £40.00 to £45.00"]
    assert changes(FORM.slots, {"amount": "40"}) == []  # reads the same: no change
    assert changes(FORM.slots, {"amount": "40", "currency": "EUR"}) == ["the amount from £40.00 to €40.00"]
    assert changes(FORM.slots, {"currency": "EUR"}) == ["the currency from GBP to EUR"]
    assert changes(FORM.slots, {"payee": "Lena", "reference": "rent"}) == [
        "the payee from Northside Energy to Lena", "the reference to rent"]
    assert changes(FORM.slots, {"amount": "lots"}) == ["the amount from £40.00 to lots"]  # unreadable: as written
    assert changes(FORM.slots, {"transcript": "x", "payee": ""}) == []


def test_correction_notice_says_what_changed_and_that_the_proposal_was_closed() -> None:
    assert correction_notice(FORM, {"amount": "45"}) == (
        "I've changed the amount from £40.00 to £45.00 and closed the earlier proposal without doing it.")
    assert correction_notice(FORM, {"amount": "30", "payee": "Mark Ellis", "reference": "rent"}) == (
        "I've changed the amount from £40.00 to £30.00, the payee from Northside Energy to Mark Ellis and the "
        "reference to rent. I've closed the earlier proposal without doing it.")
    assert correction_notice(FORM, {"amount": "40.00"}) == "I've closed the earlier proposal without doing it."
    assert "ask again" not in correction_notice(FORM, {"amount": "45"})


def test_the_settle_sentence_is_taken_out_only_for_the_forms_own_proposal() -> None:
    closed = superseded_sentence(PROPOSED)
    assert "ask again" in closed  # the wording for a proposal left for something else
    dropped = 'I also haven\'t done "tell me my balance": ask again if you still want it.'
    assert without_proposal(f"{closed} {dropped}", FORM) == (dropped, True)
    assert without_proposal(closed, FORM.model_copy(update={"proposed": None})) == (closed, False)
    assert without_proposal("", FORM) == ("", False)  # already decided elsewhere: nothing was closed here
    other = superseded_sentence("Freeze your card ending 4821.")
    assert without_proposal(other, FORM) == (other, False)
    assert stopped_notice(FORM, True) == (
        "I've stopped the earlier request (sending money to a payee) and closed its proposal; nothing was done.")
    assert stopped_notice(FORM, False) == "I've stopped the earlier request (sending money to a payee); nothing was done."
