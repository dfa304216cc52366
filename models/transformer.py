"""A small transformer encoder for intent classification, written from scratch.

The layout follows the pre-LN transformer (Xiong et al., "On Layer Normalization in the
Transformer Architecture", ICML 2020) with sinusoidal positional encoding and scaled
dot-product attention from Vaswani et al., "Attention Is All You Need" (NeurIPS 2017);
the attention itself runs in torch's fused ``scaled_dot_product_attention`` kernel.
Structure after karpathy/nanoGPT's ``model.py``: a config dataclass and small modules.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TransformerConfig:
    """Hyper-parameters of ``IntentTransformer`` (saved as config.json beside the weights).

    vocab_size: tokenizer vocabulary (tokens); n_labels: number of intents (77 for BANKING77);
    max_len: longest input in tokens (longer inputs are truncated); d_model: width;
    n_heads: attention heads (d_model % n_heads == 0); n_layers: blocks; d_ff: MLP hidden width;
    dropout: dropout probability on residual branches and the head; pad_id: padding token id;
    ngram_buckets: size of the hashed n-gram embedding table (0 = no n-gram branch);
    ngram_dim: width of the n-gram branch; n_entity_labels: BIO tags of the entity-span head
    (``models.span_tags.ENTITY_TAGS``, 15), 0 = no span head (versions saved before issue 16).
    """

    vocab_size: int = 8000
    n_labels: int = 77
    max_len: int = 64
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 512
    dropout: float = 0.1
    pad_id: int = 0
    ngram_buckets: int = 0
    ngram_dim: int = 128
    n_entity_labels: int = 0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")

    def to_dict(self) -> dict:
        return asdict(self)


class TokenEmbedding(nn.Module):
    """Token ids (B, T) int64 -> embeddings (B, T, d_model) float32, scaled by sqrt(d_model)."""

    def __init__(self, vocab_size: int, d_model: int, pad_id: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.scale = math.sqrt(d_model)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.emb(ids) * self.scale


class SinusoidalPositionalEncoding(nn.Module):
    """Adds fixed sin/cos position signals (Vaswani et al. 2017, section 3.5) to (B, T, d) inputs."""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.size(1)].unsqueeze(0)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention. x (B, T, d) float, key_mask (B, T) bool (True = real token)
    -> (B, T, d). Uses ``F.scaled_dot_product_attention`` (fused kernel)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.attn_dropout = dropout
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        # (B, T, D) -> (B, H, T, D/H)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))
        attn_mask = key_mask[:, None, None, :]  # broadcast over heads and query positions
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.attn_dropout if self.training else 0.0
        )
        y = y.transpose(1, 2).contiguous().view(B, T, D)
        return self.resid_dropout(self.proj(y))


class FeedForward(nn.Module):
    """Position-wise MLP d -> d_ff -> d with GELU; (B, T, d) -> (B, T, d)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + mlp(LN(x)). Shapes as attention."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = MultiHeadSelfAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), key_mask)
        return x + self.mlp(self.ln2(x))


class MaskedMeanMaxPool(nn.Module):
    """Pools (B, T, d) over real tokens (key_mask (B, T) bool) into (B, 2d): [mean ; max]."""

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        m = key_mask.unsqueeze(-1).to(x.dtype)
        mean = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        mx = x.masked_fill(~key_mask.unsqueeze(-1), float("-inf")).amax(1)
        return torch.cat([mean, mx], dim=-1)


class NgramBag(nn.Module):
    """Hashed n-gram ids (B, F) int64 (0 = padding) -> mean of their embeddings (B, ngram_dim).
    A fastText-style lexical branch (Joulin et al. 2017) beside the transformer."""

    def __init__(self, n_buckets: int, dim: int) -> None:
        super().__init__()
        # Sparse gradients: a step touches only the rows of the n-grams in its batch.
        self.bag = nn.EmbeddingBag(n_buckets, dim, mode="mean", padding_idx=0, sparse=True)

    def forward(self, ngram_ids: torch.Tensor) -> torch.Tensor:
        return self.bag(ngram_ids)


class SpanHead(nn.Module):
    """BIO tag logits per token: final token states (B, T, d) -> (B, T, n_tags). Each token sees its
    own state and its two neighbours' ([h_{t-1}; h_t; h_{t+1}], zeros past the ends), then a GELU
    layer and a linear layer: DIET's CRF-free token head (Bunk et al. 2020) with the neighbour
    window standing in for the CRF's view of adjacent tags."""

    def __init__(self, d_model: int, n_tags: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(3 * d_model, d_model), nn.GELU(),
                                 nn.Linear(d_model, n_tags))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        prev = F.pad(h, (0, 0, 1, 0))[:, :-1]
        nxt = F.pad(h, (0, 0, 0, 1))[:, 1:]
        return self.net(torch.cat([prev, h, nxt], dim=-1))


class IntentTransformer(nn.Module):
    """Token ids (B, T) int64 (padded with ``pad_id``), and when ``ngram_buckets`` > 0 hashed
    n-gram ids (B, F) int64 -> intent logits (B, n_labels) float32.

    Head input: [mean-pooled ; max-pooled] final hidden states (2 * d_model), concatenated with
    the n-gram bag (ngram_dim) when that branch is on. With ``n_entity_labels`` > 0 a span head
    (``SpanHead``: a small layer over each final token state and its neighbours, DIET's CRF-free variant)
    gives BIO tag logits (B, T, n_entity_labels): ``forward(..., with_spans=True)``.
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = TokenEmbedding(cfg.vocab_size, cfg.d_model, cfg.pad_id)
        self.pos = SinusoidalPositionalEncoding(cfg.max_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.pool = MaskedMeanMaxPool()
        self.ngrams = NgramBag(cfg.ngram_buckets, cfg.ngram_dim) if cfg.ngram_buckets else None
        head_in = 2 * cfg.d_model + (cfg.ngram_dim if cfg.ngram_buckets else 0)
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(head_in, cfg.n_labels))
        self.span_head = SpanHead(cfg.d_model, cfg.n_entity_labels, cfg.dropout) if cfg.n_entity_labels else None
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
            nn.init.normal_(m.weight, std=0.02)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()

    def forward(self, ids: torch.Tensor, ngram_ids: torch.Tensor | None = None,
                with_spans: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Intent logits (B, n_labels); with ``with_spans`` the pair (intent logits, span tag
        logits (B, T, n_entity_labels)). Raises ``ValueError`` for ``with_spans`` without a span head."""
        if with_spans and self.span_head is None:
            raise ValueError("this model has no entity-span head (n_entity_labels=0)")
        pooled, h = self.features(ids, ngram_ids)
        logits = self.head(pooled)
        return (logits, self.span_head(h)) if with_spans else logits

    def features(self, ids: torch.Tensor, ngram_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The intent head's input (B, head_in) float32 ([mean ; max] pooled states, plus the n-gram
        bag) and the final token states (B, T, d_model): what training's feature distillation
        projects onto the teacher's sentence embedding. Raises ``ValueError`` when the n-gram
        branch is on and ``ngram_ids`` is None."""
        ids = ids[:, : self.cfg.max_len]
        key_mask = ids != self.cfg.pad_id
        # An all-padding row would make attention undefined; keep position 0 attendable.
        key_mask[:, 0] = True
        x = self.drop(self.pos(self.tok(ids)))
        for blk in self.blocks:
            x = blk(x, key_mask)
        h = self.ln_f(x)
        pooled = self.pool(h, key_mask)
        if self.ngrams is not None:
            if ngram_ids is None:
                raise ValueError("this model has an n-gram branch: pass ngram_ids")
            pooled = torch.cat([pooled, self.ngrams(ngram_ids)], dim=-1)
        return pooled, h

    @property
    def head_in(self) -> int:
        """Width of the intent head's input (2 * d_model, plus ngram_dim with the n-gram bag)."""
        return self.head[1].in_features

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
