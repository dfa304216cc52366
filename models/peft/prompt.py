"""Prompt and label encoding of the peft backend: a few-token prompt, one added token per label.

Prompt: ``"<query>\\nIntent:"`` (query cut to ``max_query_tokens`` tokens) and nothing else: no
chat template, no system prompt; after fine-tuning they cost forward-pass time on CPU without
adding accuracy. Answer: ONE token per label, ``<|card_arrival|>`` etc., added to the tokenizer
(not special, so decoders and vLLM print them). The output head is untied from the input
embeddings (``untie_output_head``) and only its 77 label rows are trained, through peft's
``trainable_token_indices`` on ``lm_head``, beside LoRA (Hu et al. 2021) on the linear layers:
the label tokens are never model inputs, so nothing below the lowest LoRA layer needs a
gradient. A new row starts at the mean of the base rows of the label's words (``card
arrival``), so the model starts from the label's meaning. One forward pass of the prompt then gives a softmax over exactly the 77 label tokens:
the whole decision, no beam, no trie.
"""

from __future__ import annotations

from typing import Any

PROMPT_TEMPLATE = "{text}\nIntent:"


def label_token(label: str) -> str:
    """The added token of ``label``: ``<|label|>``."""
    return f"<|{label}|>"


def query_text(tokenizer: Any, text: str, max_query_tokens: int) -> str:
    """``text`` stripped and cut to ``max_query_tokens`` tokens of ``tokenizer``."""
    text = " ".join(str(text).split())
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer.decode(ids[:max_query_tokens]) if len(ids) > max_query_tokens else text


def prompt_text(tokenizer: Any, text: str, max_query_tokens: int = 64, template: str = PROMPT_TEMPLATE) -> str:
    """The prompt string of one query (see the module docstring)."""
    return template.format(text=query_text(tokenizer, text, max_query_tokens))


def prompt_ids(tokenizer: Any, texts: list[str], max_query_tokens: int = 64, template: str = PROMPT_TEMPLATE) -> list[list[int]]:
    """Token ids of each query's prompt, no special tokens, no padding."""
    prompts = [prompt_text(tokenizer, t, max_query_tokens, template) for t in texts]
    return [list(x) for x in tokenizer(prompts, add_special_tokens=False)["input_ids"]]


def label_token_ids(tokenizer: Any, labels: list[str]) -> list[int]:
    """The single token id of each label's added token, in ``labels`` order.

    Raises ``ValueError`` when a label token is missing from the tokenizer (a tokenizer without
    ``add_label_tokens`` applied) or two labels share an id."""
    ids = []
    for lab in labels:
        enc = tokenizer(label_token(lab), add_special_tokens=False)["input_ids"]
        if len(enc) != 1:
            raise ValueError(f"Label token {label_token(lab)} is not one token of this tokenizer ({len(enc)} tokens); "
                             "the tokenizer must be the version folder's.")
        ids.append(int(enc[0]))
    if len(set(ids)) != len(ids):
        raise ValueError("Two labels share a token id.")
    return ids


def untie_output_head(model: Any) -> None:
    """Give ``model`` its own output-head weight (a copy of the input embeddings when tied) and
    set ``config.tie_word_embeddings = False``, so that the label rows of the head can be trained
    and saved without touching the input embeddings. No-op for an untied model."""
    import torch

    emb, out = model.get_input_embeddings(), model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() == emb.weight.data_ptr():
        out.weight = torch.nn.Parameter(emb.weight.detach().clone(), requires_grad=False)
    model.config.tie_word_embeddings = False
    if hasattr(model.config, "get_text_config"):
        model.config.get_text_config().tie_word_embeddings = False


def resize_for_labels(model: Any, vocab_size: int) -> None:
    """Resize ``model`` to ``vocab_size`` (base + label tokens) and untie its head: the shape the
    adapter was trained on. New rows are left as they are (the adapter holds the trained ones)."""
    model.resize_token_embeddings(vocab_size, mean_resizing=False)
    untie_output_head(model)


def add_label_tokens(tokenizer: Any, model: Any, labels: list[str]) -> list[int]:
    """Add one token per label to ``tokenizer`` and ``model`` (embeddings resized, head untied).

    Each new row of the input embeddings and of the output head is set to the mean of the base
    rows of the label's words (``card_arrival`` -> tokens of ``card arrival``). Returns the new
    ids in ``labels`` order. Call before wrapping the model with peft."""
    import torch
    from tokenizers import AddedToken

    words = [tokenizer(lab.replace("_", " "), add_special_tokens=False)["input_ids"] for lab in labels]
    tokenizer.add_tokens([AddedToken(label_token(lab), special=False, normalized=False) for lab in labels])
    ids = label_token_ids(tokenizer, labels)
    resize_for_labels(model, len(tokenizer))
    with torch.no_grad():
        for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            for i, w in zip(ids, words):
                weight[i] = weight[w].mean(0)
    return ids
