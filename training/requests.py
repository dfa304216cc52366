"""Generated request phrasings with entity spans for the six request intents (issue 16).

``generate_requests(seed, per_intent)`` -> ``[{"text", "intent", "spans": [{"start", "end", "label",
"text"}]}]``: templates below filled with sampled payees, merchants, amounts (symbols, ISO codes,
currency words, spelled numbers, bare numbers), dates and ranges, cards and accounts, IBANs (random,
with valid check digits, with and without spaces), ways of naming a person to talk to, with some
lower-casing and dropped politeness. The span conventions are those of ``models.entities`` (and of the
hand-written dev set, which was written first; no template copies a dev sentence,
``tests/test_entities.py`` checks that no generated text equals a dev text). IBANs carry no span
(the dev set labels none; ``models.entities`` finds them by rule).

``training.data.load_extras`` adds these rows (seeded by the run seed) to the training split and a
differently seeded draw to the validation split, so the default training run learns the intents;
the custom model's span head (helper "model") trains on the spans.
"""

from __future__ import annotations

import random
import re
import string

from models.labels import ADD_PAYEE, DISPUTE_CHARGE, SEARCH_TRANSACTIONS, SEND_MONEY, TALK_TO_HUMAN, TOP_UP_ACCOUNT

PAYEES = ["Mark", "Mark Thompson", "Lena", "Lena Fischer", "Northside Energy", "Oakwood Lettings", "Sam", "Priya Shah",
          "Tom", "Julia Novak", "Ahmed", "Chloe Martin", "Greenway Water", "J Smith", "Kasia", "Daniel Okafor",
          "Muller Consulting", "Rosa", "Ben Carter", "Eastside Gym Ltd"]
NEW_PAYEES = ["Marco Bianchi", "Lucía Fernández", "Jürgen Schmidt", "Aisha Bello", "Dr Khan", "Mrs Hughes", "Nina",
              "Paul", "Omar", "Harbour City Council", "Brightside Plumbing Ltd", "O'Connor Builders", "Fatima Zahra",
              "Chen Wei", "Sophie Laurent", "Riverside Dental", "Kwame Mensah", "Elena Popescu", "Lukas", "Hannah Lee",
              "Bluebell Nursery", "Pieter de Vries", "Mr Evans", "Zoe", "Northgate Housing"]
FIRST = ["Olivia", "James", "Amelia", "Noah", "Isla", "Leo", "Freya", "Oscar", "Maya", "Ethan", "Grace", "Lucas", "Ines",
         "Mateo", "Yara", "Arjun", "Mei", "Tariq", "Ewa", "Nikos", "Bianca", "Rahul", "Siobhan", "Dmitri", "Layla", "Finn",
         "Carmen", "Kofi", "Hugo", "Ingrid"]
LAST = ["Brown", "Wilson", "Taylor", "Roberts", "Walsh", "Kowalski", "Nguyen", "Silva", "Haddad", "Jansen", "Moreau",
        "Costa", "Singh", "Murphy", "Novak", "Andersson", "Kaya", "Ito", "Dubois", "Hughes", "Clarke", "Ferreira",
        "Okoye", "Berg", "Lindqvist", "Romano", "Kerr", "Mahmood", "Price", "Young"]
COMPANIES = ["Hillside Water", "Metro Broadband", "Castle Lettings", "Blue Door Cleaning", "City Parking Ltd", "Apex Roofing",
             "Willow Vets", "Summit Insurance", "Harper & Co", "Redline Motors"]
"""Random unsaved names (first, first + last, companies) so the request intents do not hang on PAYEES' names."""
RELATIONS = ["landlord", "mum", "dad", "sister", "brother", "flatmate", "cleaner", "builder", "partner", "friend"]
NEW_RELATIONS = ["electrician", "gardener", "tutor", "accountant", "babysitter", "son", "daughter", "cousin", "nan",
                 "childminder", "dog walker", "letting agent"]
MERCHANTS = ["Pret", "Pret A Manger", "Amazon", "Tesco", "Uber", "Netflix", "Spotify", "Lidl", "Waitrose", "Starbucks",
             "Costa", "ASOS", "eBay", "Ryanair", "Trainline", "Deliveroo", "Apple", "Boots", "Argos", "Just Eat",
             "Sainsbury's", "Greggs", "Airbnb", "Zara", "Shell", "Bolt", "Lyft", "easyJet", "Uber Eats", "Ocado"]
THINGS = ["rides", "trips", "orders", "purchases", "charges", "payments", "transactions", "bills", "subscriptions",
          "deliveries", "taxis", "flights", "shopping"]
DATES = ["yesterday", "today", "last week", "this week", "last month", "this month", "this year", "last year",
         "since Monday", "since Friday", "since 1 March", "since the 3rd", "last 7 days", "past 14 days", "last 3 months",
         "March", "April", "November", "January 2025", "2 June", "June 2nd", "15 April", "last Friday", "Tuesday",
         "from 1 May to 31 May", "between 2 and 9 June", "before 1 April", "after 10 May", "3 days ago", "2025-05-04",
         "since last Tuesday", "over the past 2 weeks", "in the last 60 days", "this past weekend", "since 12 February",
         "between 4 April and 20 April", "so far this month", "since January", "in the past 90 days"]
CURR = {"GBP": ["£{n}", "{n} GBP", "GBP {n}", "{n} pounds", "{n} quid"], "EUR": ["€{n}", "{n} EUR", "EUR {n}", "{n} euros"],
        "USD": ["${n}", "{n} USD", "USD {n}", "{n} dollars"]}
WORDS = ["ten pounds", "twenty quid", "fifty euros", "a hundred pounds", "thirty dollars", "forty five pounds",
         "three hundred euros", "a fiver", "a tenner", "sixty pounds", "twelve euros"]
ACCOUNTS = ["euro", "EUR", "GBP", "pound", "dollar", "USD", "savings", "main", "sterling"]
REFS = ["rent", "June rent", "INV-4471", "dinner", "bills", "ref 2231", "holiday money", "deposit", "PO-88120"]
# Ways of naming a person to hand over to, and of asking for one (talk_to_human).
WHO = ["a human", "an agent", "a live agent", "an operator", "the operator", "a manager", "your manager", "a supervisor",
       "a real person", "someone", "somebody", "a person", "an advisor", "an adviser", "a representative",
       "customer service", "customer services", "customer support", "the support team", "a member of staff",
       "someone at the bank", "a real human", "a human being", "an actual person", "a banker", "someone real",
       "a live person", "a human agent", "the complaints team", "someone in charge", "a team member", "staff"]
ASK = ["can I {v} {who}", "I want to {v} {who}", "I'd like to {v} {who}", "I need to {v} {who}", "please let me {v} {who}",
       "could I {v} {who}", "is it possible to {v} {who}", "how do I {v} {who}", "I would rather {v} {who}",
       "just let me {v} {who}", "I demand to {v} {who}", "can you let me {v} {who}"]
VERBS = ["talk to", "speak to", "speak with", "chat with", "chat to", "talk with", "get through to", "reach", "contact"]
CONNECT = ["connect me to", "connect me with", "put me through to", "transfer me to", "pass me to", "hand me over to",
           "get me", "find me", "give me", "I need", "I want", "route me to", "escalate this to", "send me to",
           "forward me to", "bring in"]
FRUSTRATION = ["this isn't working", "you don't understand", "this is useless", "you're not helping", "this bot is rubbish",
               "I'm going round in circles", "none of this helps", "you keep getting it wrong", "that's not what I asked",
               "I'm fed up with this bot", "this chatbot is hopeless", "stop, this is pointless", "you're useless",
               "this is getting me nowhere", "I have a complaint", "I want to make a complaint", "I'm not happy with this"]

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
        "I owe {payee} {amount}, can you send it", "{amount} to {payee} please", "settle up with {payee}, {amount}",
        "send {payee} {amount} for the {reference}", "pay the {reference} to my {relation}, {amount}",
        "can you transfer {amount} from {account} to {payee}", "bank transfer of {amount} to {payee}",
        "I want to make a transfer to {payee}", "pay {payee} what I owe, {amount}", "send money to my {relation}",
        "I'd like to send some money", "I need to make a payment to someone", "send some money please",
        "{payee} needs {amount} from me", "can you send {payee} {amount} today", "send {amount} to {payee} now",
    ],
    ADD_PAYEE: [
        "add {newpayee} as a new payee", "save {payee} as a payee", "new beneficiary {newpayee}", "add a new recipient called {newpayee}",
        "I want to add {newpayee} to my payees", "set {newpayee} up as a payee, IBAN {iban}", "add payee {newpayee} {iban}",
        "create a new beneficiary for {newpayee}", "save my {newrelation} as a payee", "can I add a payee?", "add someone as a payee",
        "register {newpayee} as a beneficiary with IBAN {iban}", "add {newpayee}, iban {iban}", "make {newpayee} a saved payee",
        "add a new payee named {newpayee}", "save a new recipient", "I'd like to add {newpayee} as a beneficiary",
        "new payee please", "add {newpayee} to my beneficiaries", "store {newpayee}'s bank details as a payee",
        "{newpayee} {iban} add as payee", "new recipient: {newpayee}, {iban}", "payee {newpayee} iban {iban}",
        "save {newpayee} {iban}", "add {newpayee} {iban}", "please add {newpayee} with account {iban}",
        "add my {newrelation}, IBAN {iban}", "add my {newrelation} {iban}", "save this IBAN {iban} as {newpayee}",
        "add a beneficiary with IBAN {iban}", "new payee {iban}", "here's an IBAN for a new payee: {iban}",
        "put {newpayee} on my list of payees", "set up {newpayee} as someone I can pay", "save {newpayee}'s IBAN {iban}",
        "I need to set up a payee for my {newrelation}", "add {newpayee} to the people I pay", "how can I add a new beneficiary",
        "register a new payee", "I want to create a payee", "create payee {newpayee}", "add {newpayee} as recipient",
        "save the details of {newpayee}", "add {newpayee} ({iban})", "{newpayee}'s IBAN is {iban}, save them as a payee",
    ],
    TOP_UP_ACCOUNT: [
        "top up {amount}", "top up my account by {amount}", "please top up {amount} from my card", "add {amount} to my account",
        "top up {amount} with the card ending {last4}", "top my {account} account up with {amount}", "I'd like to top up",
        "add {amount} from my linked card", "load {amount} onto my {account} account", "top up {amount} from card {last4}",
        "can I top up {amount} using my {kind} card", "put {amount} on my account", "top up my balance with {amount}",
        "add funds to my account", "top up using the card ending in {last4}", "i want to add {amount} to my balance",
        "topup {amount}", "top up my {account} account", "add money from my card", "top up {amount} now",
        "fund my {account} account with {amount}", "charge {amount} to my card and add it to my account",
        "I need more money in my {account} account, top up {amount}", "reload my account with {amount}",
        "move {amount} from my linked card into my account", "add {amount} to my {account} balance using card {last4}",
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
        "show me all my {merchant} {things} {date}", "list every {merchant} {thing} {date}", "show {merchant} {things}",
        "how much have I spent on {merchant} {things} {date}", "what's the total for my {merchant} {things} {date}",
        "total of all {merchant} {things} {date}", "list all {things} {date}", "show me my {things} {date}",
        "how much have I paid {payee} so far", "how much have I sent {payee} {date}", "what's the total I paid {payee} {date}",
        "did I pay {merchant} {amount} {date}", "did I get charged by {merchant} {date}", "was there a {merchant} payment {date}",
        "how much was paid into my account {date}", "money in {date}", "what did I receive {date}", "incoming payments {date}",
        "what did I buy {date}", "biggest purchase {date}", "my largest transactions {date}", "how much are {merchant} {things} costing me",
        "sum of my {merchant} spending {date}", "total at {merchant} {date}", "how much in total at {merchant}",
        "spending at {merchant} {date} in total", "show payments above {amount} at {merchant} {date}",
        "list transactions under {amount} {date}", "anything over {amount} {date}?", "my {merchant} spend {date}",
        "show me the transactions from {day}", "what happened on my account on {day}", "payments on {day}",
        "how often did I use {merchant} {date}", "find the {merchant} transactions between {day} and {day}",
    ],
    DISPUTE_CHARGE: [
        "dispute the {merchant} payment", "I want to dispute a {amount} charge from {merchant}", "open a dispute about {merchant}",
        "please dispute the {amount} {merchant} transaction", "raise a chargeback on {merchant} {date}", "I need to dispute a charge",
        "dispute the charge of {amount} on {day}", "contest the {merchant} charge", "the {merchant} payment of {amount} is wrong, dispute it",
        "I want to challenge the {merchant} transaction {date}", "start a chargeback", "dispute {amount} from {merchant}",
        "{merchant} overcharged me {amount}, please open a dispute", "I never got my {merchant} order, dispute it",
        "open a dispute on the card ending {last4}", "dispute my {merchant} charge from {day}", "file a chargeback for {amount}",
        "I'd like to dispute a payment", "please raise a dispute for {merchant}", "dispute the transaction on {day}",
        "{merchant} charged me for something I cancelled, I want to dispute it", "I want my money back from {merchant}, dispute it",
        "can you open a chargeback against {merchant}", "flag the {amount} {merchant} charge as disputed",
    ],
    TALK_TO_HUMAN: [
        "I want to talk to a real person", "speak to a human please", "get me a human", "can I speak with an agent",
        "put me through to a person", "I need to talk to someone", "connect me with an advisor", "let me talk to support",
        "you are not helping, I want a person", "real human please", "I'd like to speak to a member of the team",
        "can a person help me", "talk to someone from the bank", "agent please", "hand me over to a human",
        "I want a customer service agent", "this is not working, get me someone", "can I chat with a real agent",
        "please connect me to a person", "speak to customer support", "a human, please", "escalate this to a person",
        "{ask}", "{ask}", "{ask}", "{connect} {who} please", "{connect} {who} now", "{frustration}, {ask}",
        "{frustration}. {connect} {who}", "{frustration}", "{who} please", "{who}, now", "I want {who} not a bot",
        "{ask} about my card ending {last4}", "{ask} about a {amount} payment", "{ask} about the {merchant} charge",
        "{connect} {who}, it's about a {amount} transfer", "are there any {whos} available", "is {who} available",
        "I don't want a bot, I want {who}", "can {who} call me back", "can {who} ring me", "{v} {who} please",
        "I'd prefer to {v} {who}", "no more bot, {who}", "let me {v} {who}", "{who} needed", "could {who} help me",
        "escalate to {who}", "I need {who} to help me", "hand this over to {who}", "live chat with {who}",
    ],
}
PREFIXES = [""] * 8 + ["hi, ", "hey ", "ok so ", "um ", "hello, ", "quick question, ", "sorry, ", "right, "]
SUFFIXES = [""] * 8 + [" please", " pls", " thanks", "?", " now", " asap", " thank you", "!"]
IBAN_BBAN = {"GB": "AAAA" + "9" * 14, "DE": "9" * 18, "NL": "AAAA" + "9" * 10, "ES": "9" * 20,
             "IT": "A" + "9" * 22, "BE": "9" * 12, "IE": "AAAA" + "9" * 14, "PL": "9" * 24, "AT": "9" * 16}
"""BBAN shapes per country ("A" a capital letter, "9" a digit) for random IBANs with valid check digits."""


def _iban(rng: random.Random) -> str:
    """A random IBAN (ISO 13616 mod-97 check digits valid), compact or in groups of four, sometimes lower-case."""
    country = rng.choice(sorted(IBAN_BBAN))
    bban = "".join(rng.choice(string.ascii_uppercase) if c == "A" else rng.choice(string.digits) for c in IBAN_BBAN[country])
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    iban = f"{country}{98 - int(digits) % 97:02d}{bban}"
    if rng.random() < 0.45:
        iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    return iban.lower() if rng.random() < 0.1 else iban


SYLLABLES = ["ka", "ri", "lo", "ma", "ten", "sa", "vi", "del", "mar", "o", "an", "el", "ber", "to", "ni", "gu", "ras",
             "wen", "do", "li", "ya", "zo", "fen", "hal", "mi", "ros", "tu", "ne", "ja", "bo", "ck", "ll", "en", "ak"]


def _made_up(rng: random.Random) -> str:
    """A pronounceable made-up name word of 2-3 syllables, capitalised (so unseen names read as names)."""
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _name(rng: random.Random) -> str:
    """A random first name, full name, made-up name or company."""
    r = rng.random()
    if r < 0.2:
        return rng.choice(FIRST)
    if r < 0.55:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if r < 0.9:
        first = rng.choice(FIRST) if rng.random() < 0.5 else _made_up(rng)
        return first if rng.random() < 0.25 else f"{first} {_made_up(rng)}"
    return rng.choice(COMPANIES)


def _amount(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.15:
        return rng.choice(WORDS)
    n = rng.choice([str(rng.randint(1, 99)), str(rng.randint(100, 999)), f"{rng.randint(1, 300)}.{rng.randint(0, 99):02d}",
                    f"{rng.randint(1, 9)},{rng.randint(0, 999):03d}", f"{rng.randint(1000, 4000)}"])
    if r < 0.27:
        return n
    return rng.choice(CURR[rng.choice(["GBP", "GBP", "EUR", "USD"])]).format(n=n)


_PLAIN = {"things": THINGS, "who": WHO, "v": VERBS, "connect": CONNECT, "frustration": FRUSTRATION}


def _fill(key: str, rng: random.Random) -> tuple[str, str | None]:
    """(surface text, span label or None) for one placeholder; ``{ask}`` expands to an asking phrase
    (``ASK`` with a verb and a person, no spans)."""
    if key == "amount":
        return _amount(rng), "amount"
    if key == "payee":
        return (rng.choice(PAYEES) if rng.random() < 0.5 else _name(rng)), "payee"
    if key == "newpayee":
        return rng.choice([rng.choice(NEW_PAYEES), rng.choice(PAYEES), _name(rng)]), "payee"
    if key == "relation":
        return rng.choice(RELATIONS), "payee"
    if key == "newrelation":
        return rng.choice(NEW_RELATIONS + RELATIONS), "payee"
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
        return _iban(rng), None
    if key == "thing":
        return rng.choice(THINGS).rstrip("s"), None
    if key == "whos":
        return rng.choice(["agents", "humans", "people", "advisors", "operators", "managers", "staff"]), None
    if key == "ask":
        return rng.choice(ASK).format(v=rng.choice(VERBS), who=rng.choice(WHO)), None
    if key in _PLAIN:
        return rng.choice(_PLAIN[key]), None
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
