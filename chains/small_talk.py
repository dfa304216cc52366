"""Short friendly replies to small talk (greetings, thanks, goodbyes, "are you a bot?"...),
each saying what the assistant can do. The backend only says "small_talk"; the kind of reply
is read from the message itself."""

from __future__ import annotations

import re

CAPABILITIES = (
    "I can check your balance and recent transactions, help with your cards (lost, not arrived, "
    "not working), payments and charges you don't recognise, transfers, top-ups and exchange rates."
)

_REPLIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(that'?s (all|everything|it|me done)|nothing else|all (done|sorted|set)|no more questions)\b", re.I),
     "Glad I could help. Goodbye, and thanks for banking with us. I'm here whenever you need help with your account."),
    (re.compile(r"\b(thanks?|thank you|thx|ty|ta|cheers|appreciated?|brill(iant)?|lovely|nice one)\b", re.I),
     "You're welcome! Is there anything else I can help you with?"),
    (re.compile(r"\b(bye|goodbye|see you|see ya|good night|later|that'?s all)\b", re.I),
     "Goodbye, and thanks for banking with us. I'm here whenever you need help with your account."),
    (re.compile(r"\b(bot|robot|human|real person|machine|ai|who are you|what are you|your name)\b", re.I),
     "I'm the bank's virtual assistant, not a person. " + CAPABILITIES),
    (re.compile(r"\b(what can (i|you)|help me|how do you work|what do you do)\b", re.I),
     "Here's what I can do: " + CAPABILITIES),
    (re.compile(r"\b(hi|hello|hey|hiya|good (morning|afternoon|evening)|howdy|yo)\b", re.I),
     "Hello! How can I help with your account today? " + CAPABILITIES),
)
DEFAULT_REPLY = "I'm here to help with your banking. " + CAPABILITIES


def small_talk_reply(text: str) -> str:
    """The reply to a small-talk ``text``: a closer ("that's all", "nothing else"), thanks
    ("ta", "brill", "cheers"), goodbye, bot/identity, capabilities and greeting are recognised
    by keywords (checked in that order); anything else gets a generic
    friendly reply. Every reply says what the assistant can do or invites a request."""
    for pattern, reply in _REPLIES:
        if pattern.search(text):
            return reply
    return DEFAULT_REPLY
