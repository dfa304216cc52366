"""Short friendly replies to small talk (greetings, thanks, goodbyes, "are you a bot?"...),
each saying what the assistant can do. The backend only says "small_talk"; the kind of reply
is read from the message itself."""

from __future__ import annotations

import re

from config.i18n import N_, gettext as _

CAPABILITIES = N_(
    "I can check your balance and recent transactions, help with your cards (lost, not arrived, "
    "not working), payments and charges you don't recognise, transfers, top-ups and exchange rates."
)

_REPLIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(that'?s (all|everything|it|me done)|nothing else|all (done|sorted|set)|no more questions|eso es todo|c'est tout|das wär'?s|das ist alles)\b", re.I),
     N_("Glad I could help. Goodbye, and thanks for banking with us. I'm here whenever you need help with your "
        "account.")),
    (re.compile(r"\b(thanks?|thank you|thx|ty|ta|cheers|appreciated?|brill(iant)?|lovely|nice one|gracias|merci|danke)\b", re.I),
     N_("You're welcome! Is there anything else I can help you with?")),
    (re.compile(r"\b(bye|goodbye|see you|see ya|good night|later|that'?s all|adiós|adios|hasta luego|au revoir|tschüss|auf wiedersehen)\b", re.I),
     N_("Goodbye, and thanks for banking with us. I'm here whenever you need help with your account.")),
    (re.compile(r"\b(bot|robot|human|real person|machine|ai|who are you|what are you|your name)\b", re.I),
     N_("I'm the bank's virtual assistant, not a person. {capabilities}")),
    (re.compile(r"\b(what can (i|you)|help me|how do you work|what do you do|qué puedes hacer|que peux-tu faire|was kannst du)\b",
                re.I),
     N_("Here's what I can do: {capabilities}")),
    (re.compile(r"\b(hi|hello|hey|hiya|good (morning|afternoon|evening)|howdy|yo|hola|buenos días|bonjour|salut|hallo|guten tag)\b",
                re.I),
     N_("Hello! How can I help with your account today? {capabilities}")),
)
_DEFAULT = N_("I'm here to help with your banking. {capabilities}")
DEFAULT_REPLY = _DEFAULT.format(capabilities=CAPABILITIES)
"""The generic reply, in English (:func:`small_talk_reply` gives it in the current language)."""


def small_talk_reply(text: str) -> str:
    """The reply to a small-talk ``text``: a closer ("that's all", "nothing else"), thanks
    ("ta", "brill", "cheers"), goodbye, bot/identity, capabilities and greeting are recognised
    by keywords (checked in that order); anything else gets a generic
    friendly reply. Every reply says what the assistant can do or invites a request. Written
    in the current language (config/i18n.py); the keywords of Spanish, French and German small
    talk are in :data:`_REPLIES` too ("gracias", "merci", "danke", "hola", "bonjour")."""
    for pattern, reply in _REPLIES:
        if pattern.search(text):
            return _(reply).format(capabilities=_(CAPABILITIES))
    return _(_DEFAULT).format(capabilities=_(CAPABILITIES))
