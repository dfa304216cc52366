"""A WordPiece tokenizer trained from scratch on the training split (no pretrained vocabulary).

Built with Hugging Face ``tokenizers``: BERT-style normalisation (lower-casing, accent
stripping), whitespace/punctuation pre-tokenisation, WordPiece model (Wu et al. 2016,
"Google's Neural Machine Translation System", arXiv 1609.08144). Loading and encoding (what
inference needs) live in ``models/tokenizer.py``.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from models.tokenizer import SPECIAL_TOKENS, UNK


def train_tokenizer(texts: list[str], vocab_size: int = 6000, min_frequency: int = 1) -> Tokenizer:
    """Train a WordPiece tokenizer on ``texts``. ``vocab_size`` is an upper bound in tokens;
    ids 0, 1, 2 are [PAD], [UNK], [MASK]."""
    tok = Tokenizer(models.WordPiece(unk_token=UNK, max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok
