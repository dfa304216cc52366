"""Misspelt training copies (training/augment.py, issue 18): deterministic per seed, one or two
edits per misspelt word, amounts / digits / currency symbols never touched, the fraction and
copies honoured, a QWERTY neighbour map that is symmetric."""

from __future__ import annotations

import random
import re

import pytest

from training.augment import (
    NEIGHBOURS, edit_distance, misspell, misspell_word, misspellable, perturb, typo_augment,
)
from training.data import load_banking77

SAMPLES = [
    "send £20 to Mark please", "top up my account with €150.50 from card ending 4821",
    "add Lena Fischer, IBAN GB33BUKB20201555555555, as a payee", "where is my refund? it's been 5 days",
    "I lost my card", "Why was I charged $3.99 twice?", "cheers, that's all I needed",
    "can you transfer 1,000 euros to my sister-in-law tomorrow", "email me at jo.bloggs@example.com",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return list(load_banking77().train.texts[:400]) + SAMPLES


def test_deterministic_per_seed(texts):
    a = typo_augment(texts, fraction=0.5, copies=2, seed=7)
    assert a == typo_augment(texts, fraction=0.5, copies=2, seed=7)
    assert a != typo_augment(texts, fraction=0.5, copies=2, seed=8)
    assert misspell("my card has not arrived", random.Random(3)) == misspell("my card has not arrived", random.Random(3))


def test_one_or_two_edits_per_misspelt_word_and_nothing_else_moves(texts):
    new, src = typo_augment(texts, fraction=1.0, copies=3, seed=1, word_rate=0.5, two_edit_rate=0.5)
    assert len(new) == len(src) > 2.5 * len(texts)
    two = 0
    for t, i in zip(new, src):
        a, b = texts[i].split(" "), t.split(" ")
        assert len(a) == len(b), (texts[i], t)
        changed = [(x, y) for x, y in zip(a, b) if x != y]
        assert changed, t
        for x, y in changed:
            assert misspellable(x) and 1 <= edit_distance(x, y) <= 2, (x, y)
            two += edit_distance(x, y) == 2
        # digits, amounts and currency signs, in order, are exactly those of the source
        assert re.findall(r"[\d£€$@]", texts[i]) == re.findall(r"[\d£€$@]", t)
        assert all(x == y for x, y in zip(a, b) if not misspellable(x))
    assert two > 0  # two-edit words do occur


def test_amount_words_are_never_misspelt():
    for w in ("£20", "€150.50", "4821", "GB33BUKB20201555555555", "$3.99", "jo.bloggs@example.com", "1,000", "5th", "ta"):
        assert not misspellable(w)
    for w in ("card", "refund?", "that's", "sister-in-law", "Mark,"):
        assert misspellable(w)
    rng = random.Random(0)
    for _ in range(50):
        assert misspell("£20 on 12/05, 99 ok", rng) == "£20 on 12/05, 99 ok"  # nothing misspellable
    with pytest.raises(ValueError, match="not a misspellable word"):
        misspell_word("£20", rng)
    with pytest.raises(ValueError, match="edits must be 1 or 2"):
        misspell_word("card", rng, edits=3)


def test_misspell_word_distances():
    rng = random.Random(5)
    for w in ("card", "arrived", "transfer", "Refund", "exchange"):
        for _ in range(40):
            one, two = misspell_word(w, rng, 1), misspell_word(w, rng, 2)
            assert edit_distance(w, one) == 1 and 1 <= edit_distance(w, two) <= 2
    assert edit_distance("crad", "card") == 1 and edit_distance("arived", "arrived") == 1
    assert edit_distance("refnud", "refund") == 1 and edit_distance("kitten", "sitting") == 3


def test_fraction_and_copies(texts):
    n = len(texts)
    new, src = typo_augment(texts, fraction=0.25, copies=2, seed=3)
    assert len(set(src)) == round(0.25 * n) and all(src.count(i) == 2 for i in set(src))
    assert typo_augment(texts, fraction=0.0, copies=3, seed=3) == ([], [])
    assert typo_augment(texts, fraction=0.5, copies=0, seed=3) == ([], [])
    for kw in ({"fraction": 1.5}, {"copies": -1}, {"word_rate": -0.1}):
        with pytest.raises(ValueError):
            typo_augment(texts, seed=1, **kw)


def test_neighbour_keys_are_symmetric_and_perturb_knows_misspell():
    assert set(NEIGHBOURS["s"]) == set("adwezx") and set(NEIGHBOURS["p"]) == set("ol")
    assert len(NEIGHBOURS) == 26
    assert all(a in NEIGHBOURS[b] for a, ks in NEIGHBOURS.items() for b in ks)
    out = perturb("where is my refund", "misspell", random.Random(2))
    assert out != "where is my refund" and len(out.split()) == 4
    with pytest.raises(ValueError, match="misspell"):
        perturb("x", "nope", random.Random(0))
