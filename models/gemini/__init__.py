"""The gemini backend: Google Gemini with retrieval-augmented few-shot prompting.

Recipe (Loukas et al. 2023, "Making LLMs Worth Every Penny: Resource-Limited Text
Classification in Banking", arXiv 2311.06102): the prompt lists the 77 BANKING77 labels with a
one-line description each, plus the ``k`` training rows most similar to the query (retrieved by
``models.retrieval.ExampleRetriever``: all-MiniLM-L6-v2 cosine similarity, TF-IDF fallback).
They report about 85.5 % accuracy for retrieval-augmented prompting versus about 83 % for a
fixed 3-shot prompt. The answer is constrained to the label set by structured output (a JSON
schema whose ``intent`` is an enum of the labels); ``confidence`` is the model's own
self-reported number, so every answer carries ``calibrated=False``.

Modules, by job: ``settings`` (``GeminiSettings``, the per-model thinking policy), ``prompt``
(label descriptions, system/user turns, answer schema), ``client`` (the LangChain client, Google's
errors, retries honouring the server's retry delay), ``transport`` (the httpx transport that
keeps answers with enum values newer than the SDK readable), ``answer`` (structured answer ->
``IntentPrediction``, blocked prompts, unknown finish reasons), ``errors``, ``chat_model``
(``GeminiIntentModel``, the chat model of the contract in ``models/base.py``, with its start-up
``self_check``).

Key: ``GOOGLE_API_KEY`` (environment or ``.env``); without it the backend reports itself
unavailable and the rest of the app runs on. Settings prefix ``BANKING_GEMINI_``.
"""

from models.gemini.chat_model import GeminiIntentModel
from models.gemini.errors import GeminiAnswerError, GeminiRejected, PromptBlocked
from models.gemini.prompt import INTENT_DESCRIPTIONS, response_schema, system_prompt, user_prompt
from models.gemini.settings import DEFAULT_BASE_URL, THINKING_DEFAULTS, GeminiSettings

__all__ = [
    "DEFAULT_BASE_URL", "INTENT_DESCRIPTIONS", "THINKING_DEFAULTS", "GeminiAnswerError", "GeminiIntentModel",
    "GeminiRejected", "GeminiSettings", "PromptBlocked", "response_schema", "system_prompt", "user_prompt",
]
