"""Small-talk closers (issue 18): the reply chains/small_talk.py picks for British thanks and
conversation closers, and the hand-written training phrases of training/phrases/en_small_talk.jsonl."""

from __future__ import annotations

import json
import re

import pytest

from chains.small_talk import DEFAULT_REPLY, small_talk_reply
from config.settings import REPO_ROOT

PHRASES = REPO_ROOT / "training" / "phrases" / "en_small_talk.jsonl"


@pytest.mark.parametrize("text, starts", [
    ("cheers, that's all I needed", "Glad I could help. Goodbye"),
    ("that's everything", "Glad I could help. Goodbye"),
    ("nothing else, thanks", "Glad I could help. Goodbye"),
    ("ta", "You're welcome!"),
    ("brill, thanks", "You're welcome!"),
    ("lovely, thank you", "You're welcome!"),
    ("bye for now", "Goodbye, and thanks"),
    ("hiya", "Hello!"),
])
def test_closers_and_thanks_get_their_reply(text, starts):
    assert small_talk_reply(text).startswith(starts)


def test_words_inside_other_words_do_not_match():
    # "ta" in "data", "all" without "that's": the generic reply, not thanks / goodbye
    assert small_talk_reply("tell me about your data") == DEFAULT_REPLY


def test_training_phrases_are_small_talk_kinds_and_not_dev_set_texts():
    rows = [json.loads(line) for line in PHRASES.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 100 and {r["label"] for r in rows} == {"small_talk:thank_you", "small_talk:goodbye", "small_talk:greeting"}
    norm = lambda t: re.sub(r"[^a-z]", "", t.lower())  # noqa: E731
    dev = set()
    for name in ("chatty", "typos"):
        for line in (REPO_ROOT / "evals" / "data" / "devsets" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            dev |= {norm(r["text"]), norm(r.get("clean", ""))}
    assert not [r["text"] for r in rows if norm(r["text"]) in dev]
    assert len({norm(r["text"]) for r in rows}) == len(rows)
