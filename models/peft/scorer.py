"""One-step label scoring: one forward pass of the prompt, a softmax over the 77 label tokens."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.peft.prompt import PROMPT_TEMPLATE, label_token_ids, prompt_ids


class LabelScorer:
    """Scores queries with a causal LM whose labels are single tokens (see ``models.peft.prompt``).

    ``model``: a transformers causal LM (LoRA merged or peft-wrapped) in eval mode;
    ``tokenizer``: the version's tokenizer (with the label tokens); ``labels``: the answer
    vocabulary (77 BANKING77 labels). ``probabilities`` returns the softmax of the last prompt
    position's logits restricted to the label tokens: the model's exact distribution over the
    labels conditioned on answering with a label (sums to 1 per row).
    """

    def __init__(self, model: Any, tokenizer: Any, labels: list[str], max_query_tokens: int = 64,
                 template: str = PROMPT_TEMPLATE):
        import torch

        self.torch = torch
        self.model, self.tokenizer, self.labels = model, tokenizer, list(labels)
        self.max_query_tokens, self.template = max_query_tokens, template
        self.label_ids = torch.tensor(label_token_ids(tokenizer, self.labels), dtype=torch.long)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else tokenizer.eos_token_id)
        self.device = next(model.parameters()).device

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """(len(texts), n_labels) float32 label probabilities (rows sum to 1), in ``labels`` order.

        The batch is left-padded with explicit position ids (each row sees positions 0..n-1 as
        in training) and only the last position's logits are computed (``logits_to_keep=1``)."""
        torch = self.torch
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        ids = prompt_ids(self.tokenizer, texts, self.max_query_tokens, self.template)
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([[self.pad_id] * (width - len(x)) + x for x in ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=pos, logits_to_keep=1, use_cache=False)
            logits = out.logits[:, -1, :].float()
            if logits.shape[-1] != len(self.labels):  # full vocabulary head (see local.shrink_head)
                logits = logits[:, self.label_ids.to(self.device)]
            return torch.softmax(logits, dim=-1).cpu().numpy()

    def rank(self, texts: list[str], k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-``k`` (label, probability) per query, best first."""
        probs = self.probabilities(texts)
        order = np.argsort(-probs, axis=1)[:, :k]
        return [[(self.labels[j], float(p[j])) for j in row] for p, row in zip(probs, order)]
