"""Label-preserving perturbations of customer messages, for training and for the robustness eval.

In the spirit of TinyBERT's data augmentation (Jiao et al., "TinyBERT: Distilling BERT for
Natural Language Understanding", Findings of EMNLP 2020): the teacher labels perturbed copies of
the training rows so the student sees how real customers write. Kinds (``KINDS``):

- ``typo``: one or two character edits (drop, swap, double, neighbouring key) in words of >= 4 letters;
- ``casing``: all lower case or all upper case, with punctuation and apostrophes removed;
- ``abbrev``: chat abbreviations (please -> pls, you -> u, thanks -> thx, ...);
- ``opener_closer``: a friendly opener ("hey,") and/or closer ("thanks!");
- ``context``: an unrelated context sentence before the request;
- ``long``: a multi-sentence message: greeting, context, the request, a closer.

Misspellings for training (issue 18, so the model's hashed character n-grams see them):
:func:`typo_augment` makes seeded misspelt copies of a fraction of the rows with
:func:`misspell` (some words get one or two edits each: deletion, transposition, doubling,
neighbouring-key substitution; words with digits or symbols, such as amounts, currencies,
IBANs, are never touched). Also available as the perturbation kind ``"misspell"`` (not in
``KINDS``, so ``augment``'s cycle is unchanged).

Every function takes a ``random.Random`` so results are reproducible per seed.
"""

from __future__ import annotations

import random
import re

KINDS: tuple[str, ...] = ("typo", "casing", "abbrev", "opener_closer", "context", "long")

OPENERS = ["hi,", "hello,", "hey,", "hey so", "hi there,", "good morning,", "hello team,", "dear team,",
           "quick question:", "sorry to bother you but", "hi, hope you're well.", "um,", "ok so"]
CLOSERS = ["thanks", "thanks!", "thank you.", "thx", "cheers", "pls help", "any idea?", "asap please",
           "thanks in advance.", "can you help?", "kind regards", "ty"]
CONTEXTS = ["I'm travelling abroad next week.", "I just moved to a new flat.", "My phone died yesterday.",
            "I've been a customer for years.", "I'm at the shop right now.", "It's my first time using the app.",
            "I was on holiday in Spain last month.", "My partner usually handles this.",
            "I'm writing from work so I'm in a hurry.", "I tried calling but nobody answered.",
            "I just got paid today.", "I'm on the train at the moment.", "My sister recommended you.",
            "I've had a really long day.", "I'm using my laptop instead of the phone."]
ABBREVIATIONS = {
    "please": "pls", "you": "u", "your": "ur", "thanks": "thx", "thank you": "ty", "are": "r",
    "because": "cuz", "to": "2", "for": "4", "what's": "whats", "what is": "whats", "i'm": "im",
    "don't": "dont", "can't": "cant", "haven't": "havent", "didn't": "didnt", "doesn't": "doesnt",
    "isn't": "isnt", "why": "y", "okay": "ok", "tomorrow": "tmrw", "message": "msg", "account": "acct",
    "going to": "gonna", "want to": "wanna", "received": "recieved", "really": "rly",
}
_ABBR_RE = re.compile(r"\b(" + "|".join(sorted((re.escape(k) for k in ABBREVIATIONS), key=len, reverse=True)) + r")\b",
                      re.IGNORECASE)
KEYBOARD = {c: n for c, n in zip("qwertyuiopasdfghjklzxcvbnm", "wqrtyuiopoasdfghjklkxcvbnmn")}


def typo(text: str, rng: random.Random) -> str:
    """One or two character edits (drop, swap, double, neighbouring key) in words of >= 4 letters."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 4]
    if not candidates:
        return text
    for i in rng.sample(candidates, min(len(candidates), rng.choice((1, 1, 2)))):
        w = words[i]
        pos = [j for j, c in enumerate(w) if c.isalpha()]
        j = rng.choice(pos[1:-1] or pos)
        op = rng.choice(("drop", "swap", "double", "key"))
        if op == "drop":
            w = w[:j] + w[j + 1:]
        elif op == "swap" and j + 1 < len(w):
            w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
        elif op == "double":
            w = w[:j] + w[j] + w[j:]
        else:
            w = w[:j] + KEYBOARD.get(w[j].lower(), w[j]) + w[j + 1:]
        words[i] = w
    return " ".join(words)


def casing(text: str, rng: random.Random) -> str:
    """All lower case (3 in 4) or all upper case, punctuation and apostrophes removed."""
    bare = re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text)).strip()
    return bare.upper() if rng.random() < 0.25 else bare.lower()


def abbrev(text: str, rng: random.Random) -> str:
    """Chat abbreviations: each known phrase replaced with probability 0.8; lower-cased."""
    out = _ABBR_RE.sub(lambda m: ABBREVIATIONS[m.group(0).lower()] if rng.random() < 0.8 else m.group(0), text.lower())
    return out if out != text.lower() else out.rstrip("?.!") + " pls"


def opener_closer(text: str, rng: random.Random) -> str:
    """A friendly opener, a closer, or both."""
    r = rng.random()
    if r < 0.4:
        return f"{rng.choice(OPENERS)} {text}"
    if r < 0.7:
        return f"{text} {rng.choice(CLOSERS)}"
    return f"{rng.choice(OPENERS)} {text} {rng.choice(CLOSERS)}"


def context(text: str, rng: random.Random) -> str:
    """An unrelated context sentence before the request."""
    return f"{rng.choice(CONTEXTS)} {text}"


def long(text: str, rng: random.Random) -> str:
    """A multi-sentence message: opener, one or two context sentences, the request, a closer."""
    ctx = " ".join(rng.sample(CONTEXTS, rng.choice((1, 2))))
    return f"{rng.choice(OPENERS)} {ctx} {text} {rng.choice(CLOSERS)}"


# --- misspellings (issue 18) ---------------------------------------------------------------

TYPO_FRACTION = 1.0
"""Default share of the rows that get misspelt copies (``typo_augment``). Proxy measured on the
BANKING77 rows of evals/data/devsets/typos.jsonl with a char 2-5-gram TF-IDF + LinearSVC fitted on
BANKING77 train (misspelt / clean / validation): no copies 79.9 / 89.3 / 89.41 %; 0.5 x 1 copy
79.9 / 88.7 / 88.81 %; 1.0 x 1 83.6 / 88.7 / 89.31 %; 1.0 x 2 85.5 / 86.8 / 89.81 %."""
TYPO_COPIES = 1
"""Default misspelt copies of each chosen row."""
TYPO_WORD_RATE = 0.3
"""Default probability that an eligible word of a chosen row is misspelt (at least one always is)."""
TYPO_TWO_EDIT_RATE = 0.3
"""Default probability that a misspelt word of >= 5 letters gets two edits instead of one."""
EDITS: tuple[str, ...] = ("delete", "transpose", "double", "neighbour")
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours(r: int, c: int) -> str:
    """Keys touching row ``r``, column ``c`` of a staggered QWERTY keyboard: left and right, the
    row above at columns c and c+1, the row below at c-1 and c."""
    cells = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
    return "".join(_ROWS[rr][cc] for rr, cc in cells if 0 <= rr < len(_ROWS) and 0 <= cc < len(_ROWS[rr]))


NEIGHBOURS: dict[str, str] = {k: _neighbours(r, c) for r, keys in enumerate(_ROWS) for c, k in enumerate(keys)}
"""QWERTY keys next to each letter ("s" -> "adwezx")."""
_EDGE_PUNCT = "\"'.,!?;:()"
MIN_LETTERS = 3


def edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment: insertions, deletions,
    substitutions, adjacent transpositions, each 1)."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if prev2 is not None and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def misspellable(word: str) -> bool:
    """Whether ``misspell`` may edit ``word``: letters (and inner apostrophes / hyphens) only,
    punctuation allowed at its ends, at least ``MIN_LETTERS`` letters. A word with a digit or any
    other symbol (amounts "£20", "20.50", currency signs, IBANs, card endings, e-mail
    addresses) is never edited."""
    core = word.strip(_EDGE_PUNCT)
    return (sum(c.isalpha() for c in core) >= MIN_LETTERS and all(c.isalpha() or c in "'-" for c in core))


def _one_edit(word: str, rng: random.Random) -> str:
    """One edit at a letter of ``word`` (letters only move or change; the result has >= 2 letters)."""
    pos = [j for j, c in enumerate(word) if c.isalpha()]
    for _ in range(8):
        op = rng.choice(EDITS)
        j = rng.choice(pos)
        if op == "delete" and len(pos) > 2:
            return word[:j] + word[j + 1:]
        if op == "transpose" and j + 1 < len(word) and word[j + 1].isalpha() and word[j + 1].lower() != word[j].lower():
            return word[:j] + word[j + 1] + word[j] + word[j + 2:]
        if op == "double":
            return word[:j] + word[j] + word[j:]
        if op == "neighbour" and word[j].lower() in NEIGHBOURS:
            k = rng.choice(NEIGHBOURS[word[j].lower()])
            return word[:j] + (k.upper() if word[j].isupper() else k) + word[j + 1:]
    return word[:pos[-1]] + word[pos[-1]] + word[pos[-1]:]  # doubling always applies


def misspell_word(word: str, rng: random.Random, edits: int = 1) -> str:
    """``word`` with ``edits`` (1 or 2) character edits (``EDITS``) at its letters; the result is
    at ``edit_distance`` 1..``edits`` from ``word`` and never equal to it. Raises ``ValueError``
    for ``edits`` outside 1..2 or a word ``misspellable`` rejects."""
    if edits not in (1, 2):
        raise ValueError(f"edits must be 1 or 2, got {edits!r}")
    if not misspellable(word):
        raise ValueError(f"{word!r} is not a misspellable word (digits, symbols or < {MIN_LETTERS} letters)")
    for _ in range(8):
        out = word
        for _ in range(edits):
            out = _one_edit(out, rng)
        if 1 <= edit_distance(word, out) <= edits:
            return out
    return _one_edit(word, rng)


def misspell(text: str, rng: random.Random, word_rate: float = TYPO_WORD_RATE,
             two_edit_rate: float = TYPO_TWO_EDIT_RATE) -> str:
    """``text`` with some words misspelt: each ``misspellable`` word with probability
    ``word_rate`` (at least one when any is misspellable; else ``text`` unchanged), with two
    edits (probability ``two_edit_rate``, words of >= 5 letters) or one. Spacing, digits, amounts
    and currency symbols are kept exactly."""
    words = text.split(" ")
    cand = [i for i, w in enumerate(words) if misspellable(w)]
    if not cand:
        return text
    chosen = [i for i in cand if rng.random() < word_rate] or [rng.choice(cand)]
    for i in chosen:
        two = sum(c.isalpha() for c in words[i]) >= 5 and rng.random() < two_edit_rate
        words[i] = misspell_word(words[i], rng, 2 if two else 1)
    return " ".join(words)


def typo_augment(texts: list[str], fraction: float = TYPO_FRACTION, copies: int = TYPO_COPIES, seed: int = 0,
                 word_rate: float = TYPO_WORD_RATE, two_edit_rate: float = TYPO_TWO_EDIT_RATE) -> tuple[list[str], list[int]]:
    """Misspelt copies (``misspell``) of a seeded ``fraction`` of ``texts``, ``copies`` each.
    Returns (new texts, index of the source text), equal lengths, at most
    ``copies * round(fraction * len(texts))`` (texts with no misspellable word are skipped).
    Deterministic for a given ``seed``. Raises ``ValueError`` for a fraction outside [0, 1], a
    negative ``copies`` or rates outside [0, 1]."""
    if not 0.0 <= fraction <= 1.0 or not 0.0 <= word_rate <= 1.0 or not 0.0 <= two_edit_rate <= 1.0:
        raise ValueError("fraction, word_rate and two_edit_rate must be between 0 and 1")
    if copies < 0:
        raise ValueError(f"copies must be >= 0, got {copies}")
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(texts)), int(round(fraction * len(texts)))))
    out, src = [], []
    for _ in range(copies):
        for i in chosen:
            new = misspell(texts[i], rng, word_rate, two_edit_rate)
            if new != texts[i]:
                out.append(new)
                src.append(i)
    return out, src


PERTURB = {"typo": typo, "casing": casing, "abbrev": abbrev, "opener_closer": opener_closer,
           "context": context, "long": long, "misspell": misspell}


def perturb(text: str, kind: str, rng: random.Random) -> str:
    """Apply the perturbation ``kind`` (one of ``KINDS``). Raises ``ValueError`` for an unknown kind."""
    try:
        return PERTURB[kind](text, rng)
    except KeyError:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(PERTURB)}") from None


def augment(texts: list[str], copies: int, seed: int, kinds: tuple[str, ...] = KINDS) -> tuple[list[str], list[int], list[str]]:
    """``copies`` perturbed copies of every text. Returns (new texts, index of the source text,
    kind of each copy), lengths ``copies * len(texts)``. Copy c of text i uses kind
    ``kinds[(i + c) % len(kinds)]`` plus, half of the time, a second random kind on top, so every
    kind is covered evenly. Deterministic for a given ``seed``."""
    rng = random.Random(seed)
    out, src, used = [], [], []
    for c in range(copies):
        for i, t in enumerate(texts):
            k = kinds[(i + c) % len(kinds)]
            new = perturb(t, k, rng)
            if rng.random() < 0.5:
                new = perturb(new, rng.choice(kinds), rng)
            out.append(new)
            src.append(i)
            used.append(k)
    return out, src, used


def perturbed_copy(texts: list[str], seed: int, kinds: tuple[str, ...] = KINDS) -> tuple[list[str], list[str]]:
    """One perturbed copy of ``texts`` for the robustness eval: text i gets the single kind
    ``kinds[i % len(kinds)]`` (seeded). Returns (perturbed texts, kind per text)."""
    rng = random.Random(seed)
    kind_of = [kinds[i % len(kinds)] for i in range(len(texts))]
    return [perturb(t, k, rng) for t, k in zip(texts, kind_of)], kind_of
