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


PERTURB = {"typo": typo, "casing": casing, "abbrev": abbrev, "opener_closer": opener_closer,
           "context": context, "long": long}


def perturb(text: str, kind: str, rng: random.Random) -> str:
    """Apply the perturbation ``kind`` (one of ``KINDS``). Raises ``ValueError`` for an unknown kind."""
    try:
        return PERTURB[kind](text, rng)
    except KeyError:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(KINDS)}") from None


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
