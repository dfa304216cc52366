"""Generated request phrasings with entity spans for the six request intents (issue 16).

``generate_requests(seed, per_intent)`` -> ``[{"text", "intent", "spans": [{"start", "end", "label",
"text"}]}]``: templates below filled with sampled payees, merchants, amounts (symbols, ISO codes,
currency words, spelled numbers, bare numbers), dates and ranges, cards and accounts, with some
lower-casing and dropped politeness. The span conventions are those of ``models.entities`` (and of the
hand-written dev set, which was written first; no template copies a dev sentence,
``tests/test_entities.py`` checks that no generated text equals a dev text).

``training.data.load_extras`` adds these rows (seeded by the run seed) to the training split and a
differently seeded draw to the validation split, so the default training run learns the intents;
the custom model's span head (helper "model") trains on the spans.
"""

from __future__ import annotations

import random
import re

from models.labels import ADD_PAYEE, DISPUTE_CHARGE, SEARCH_TRANSACTIONS, SEND_MONEY, TALK_TO_HUMAN, TOP_UP_ACCOUNT

PAYEES = ["Mark", "Mark Thompson", "Lena", "Lena Fischer", "Northside Energy", "Oakwood Lettings", "Sam", "Priya Shah",
          "Tom", "Julia Novak", "Ahmed", "Chloe Martin", "Greenway Water", "J Smith", "Kasia", "Daniel Okafor",
          "Muller Consulting", "Rosa", "Ben Carter", "Eastside Gym Ltd"]
RELATIONS = ["landlord", "mum", "dad", "sister", "brother", "flatmate", "cleaner", "builder", "partner", "friend"]
MERCHANTS = ["Pret", "Pret A Manger", "Amazon", "Tesco", "Uber", "Netflix", "Spotify", "Lidl", "Waitrose", "Starbucks",
             "Costa", "ASOS", "eBay", "Ryanair", "Trainline", "Deliveroo", "Apple", "Boots", "Argos", "Just Eat",
             "Sainsbury's", "Greggs", "Airbnb", "Zara", "Shell"]
DATES = ["yesterday", "today", "last week", "this week", "last month", "this month", "this year", "last year",
         "since Monday", "since Friday", "since 1 March", "since the 3rd", "last 7 days", "past 14 days", "last 3 months",
         "March", "April", "November", "January 2025", "2 June", "June 2nd", "15 April", "last Friday", "Tuesday",
         "from 1 May to 31 May", "between 2 and 9 June", "before 1 April", "after 10 May", "3 days ago", "2025-05-04"]
CURR = {"GBP": ["£{n}", "{n} GBP", "GBP {n}", "{n} pounds", "{n} quid"], "EUR": ["€{n}", "{n} EUR", "EUR {n}", "{n} euros"],
        "USD": ["${n}", "{n} USD", "USD {n}", "{n} dollars"]}
WORDS = ["ten pounds", "twenty quid", "fifty euros", "a hundred pounds", "thirty dollars", "forty five pounds",
         "three hundred euros", "a fiver", "a tenner", "sixty pounds", "twelve euros"]
ACCOUNTS = ["euro", "EUR", "GBP", "pound", "dollar", "USD", "savings", "main", "sterling"]
REFS = ["rent", "June rent", "INV-4471", "dinner", "bills", "ref 2231", "holiday money", "deposit", "PO-88120"]

T = {
    SEND_MONEY: [
        "send {amount} to {payee}", "please pay {payee} {amount}", "pay {amount} to {payee}", "I want to send {payee} {amount}",
        "transfer {amount} to {payee} from my {account} account", "can you pay {payee} {amount} with reference {reference}",
        "make a payment of {amount} to {payee}", "send {payee} some money", "I'd like to transfer money to {payee}",
        "pay {payee}", "send {amount} over to {payee} please", "give {payee} {amount}", "pay my {relation} {amount}",
        "send my {relation} {amount} with the reference {reference}", "wire {amount} to {payee} on {date}", "move {amount} to {payee}",
        "need to send {amount} to {payee} asap", "pay {payee} {amount} from my {account} account", "transfer {payee} {amount}",
        "send a payment to {payee}", "could I send {amount} to my {relation}", "pay {payee} back {amount} ref {reference}",
        "send {amount}", "i have to pay {payee} {amount} {date}", "quickly send {payee} {amount}",
    ],
    ADD_PAYEE: [
        "add {payee} as a new payee", "save {payee} as a payee", "new beneficiary {payee}", "add a new recipient called {payee}",
        "I want to add {payee} to my payees", "set {payee} up as a payee, IBAN {iban}", "add payee {payee} {iban}",
        "create a new beneficiary for {payee}", "save my {relation} as a payee", "can I add a payee?", "add someone as a payee",
        "register {payee} as a beneficiary with IBAN {iban}", "add {payee}, iban {iban}", "make {payee} a saved payee",
        "add a new payee named {payee}", "save a new recipient", "I'd like to add {payee} as a beneficiary",
        "new payee please", "add {payee} to my beneficiaries", "store {payee}'s bank details as a payee",
    ],
    TOP_UP_ACCOUNT: [
        "top up {amount}", "top up my account by {amount}", "please top up {amount} from my card", "add {amount} to my account",
        "top up {amount} with the card ending {last4}", "top my {account} account up with {amount}", "I'd like to top up",
        "add {amount} from my linked card", "load {amount} onto my {account} account", "top up {amount} from card {last4}",
        "can I top up {amount} using my {kind} card", "put {amount} on my account", "top up my balance with {amount}",
        "add funds to my account", "top up using the card ending in {last4}", "i want to add {amount} to my balance",
        "topup {amount}", "top up my {account} account", "add money from my card", "top up {amount} now",
    ],
    SEARCH_TRANSACTIONS: [
        "how much have I spent at {merchant} {date}", "show my {merchant} payments {date}", "what did I spend {date}",
        "list my transactions with {merchant}", "how much did I pay {payee} {date}", "total I sent to {payee} {date}",
        "show transactions over {amount} {date}", "find payments under {amount}", "what have I spent on {merchant}",
        "how much went on {merchant} {date}", "search my transactions for {merchant}", "show me what I paid {merchant} in {month}",
        "list payments to {payee}", "how much did I spend on my {kind} card {date}", "payments from my card ending {last4} {date}",
        "show everything over {amount} at {merchant}", "my spending {date}", "what came into my account {date}",
        "total spent at {merchant} in {month}", "how much money did I spend {date}", "any transactions at {merchant} {date}?",
        "find {merchant} transactions on {day}", "show my biggest payments {date}",
    ],
    DISPUTE_CHARGE: [
        "dispute the {merchant} payment", "I want to dispute a {amount} charge from {merchant}", "open a dispute about {merchant}",
        "please dispute the {amount} {merchant} transaction", "raise a chargeback on {merchant} {date}", "I need to dispute a charge",
        "dispute the charge of {amount} on {day}", "contest the {merchant} charge", "the {merchant} payment of {amount} is wrong, dispute it",
        "I want to challenge the {merchant} transaction {date}", "start a chargeback", "dispute {amount} from {merchant}",
        "{merchant} overcharged me {amount}, please open a dispute", "I never got my {merchant} order, dispute it",
        "open a dispute on the card ending {last4}", "dispute my {merchant} charge from {day}", "file a chargeback for {amount}",
        "I'd like to dispute a payment", "please raise a dispute for {merchant}", "dispute the transaction on {day}",
    ],
    TALK_TO_HUMAN: [
        "I want to talk to a real person", "speak to a human please", "get me a human", "can I speak with an agent",
        "put me through to a person", "I need to talk to someone", "connect me with an advisor", "let me talk to support",
        "you are not helping, I want a person", "real human please", "I'd like to speak to a member of the team",
        "can a person help me", "talk to someone from the bank", "agent please", "hand me over to a human",
        "I want a customer service agent", "this is not working, get me someone", "can I chat with a real agent",
        "please connect me to a person", "speak to customer support", "a human, please", "escalate this to a person",
    ],
}
PREFIXES = [""] * 8 + ["hi, ", "hey ", "ok so ", "um ", "hello, ", "quick question, ", "sorry, ", "right, "]
SUFFIXES = [""] * 8 + [" please", " pls", " thanks", "?", " now", " asap", " thank you", "!"]
IBANS = ["GB29NWBK60161331926819", "DE89 3704 0044 0532 0130 00", "FR1420041010050500013M02606", "NL91ABNA0417164300"]


def _amount(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.15:
        return rng.choice(WORDS)
    n = rng.choice([str(rng.randint(1, 99)), str(rng.randint(100, 999)), f"{rng.randint(1, 300)}.{rng.randint(0, 99):02d}",
                    f"{rng.randint(1, 9)},{rng.randint(0, 999):03d}", f"{rng.randint(1000, 4000)}"])
    if r < 0.27:
        return n
    return rng.choice(CURR[rng.choice(["GBP", "GBP", "EUR", "USD"])]).format(n=n)


def _fill(key: str, rng: random.Random) -> tuple[str, str | None]:
    """(surface text, span label or None) for one placeholder."""
    if key == "amount":
        return _amount(rng), "amount"
    if key == "payee":
        return rng.choice(PAYEES), "payee"
    if key == "relation":
        return rng.choice(RELATIONS), "payee"
    if key == "merchant":
        return rng.choice(MERCHANTS), "merchant"
    if key in ("date", "month", "day"):
        pool = {"date": DATES, "month": ["March", "May", "October", "December", "February"],
                "day": ["Monday", "Saturday", "12 May", "the 4th", "1 June", "yesterday"]}[key]
        return rng.choice(pool), "date"
    if key == "last4":
        return f"{rng.randint(0, 9999):04d}", "card"
    if key == "kind":
        return rng.choice(["virtual", "physical"]), "card"
    if key == "account":
        return rng.choice(ACCOUNTS), "account"
    if key == "reference":
        return rng.choice(REFS), "reference"
    if key == "iban":
        return rng.choice(IBANS), None
    raise KeyError(key)


def render(template: str, rng: random.Random) -> tuple[str, list[dict]]:
    """Fill one template; returns (text, spans) with spans' text == text[start:end]."""
    text, spans, last = "", [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        text += template[last:m.start()]
        value, label = _fill(m.group(1), rng)
        if label:
            spans.append({"start": len(text), "end": len(text) + len(value), "label": label, "text": value})
        text += value
        last = m.end()
    return text + template[last:], spans


def generate_requests(seed: int, per_intent: int) -> list[dict]:
    """``per_intent`` distinct rows for each of the six request intents (fewer if the templates
    cannot make that many distinct texts), deterministic for a seed. Row: ``{"text", "intent",
    "spans"}``; some rows are lower-cased or lose "please" (the spans are adjusted)."""
    rng = random.Random(seed)
    out: list[dict] = []
    for intent, templates in T.items():
        seen: set[str] = set()
        for _ in range(per_intent * 20):
            if len(seen) >= per_intent:
                break
            template = rng.choice(PREFIXES) + rng.choice(templates) + rng.choice(SUFFIXES)
            text, spans = render(template, rng)
            if rng.random() < 0.25:
                text = text.lower()
                spans = [{**s, "text": s["text"].lower()} for s in spans]
            if text in seen:
                continue
            seen.add(text)
            out.append({"text": text, "intent": intent, "spans": spans})
    return out
