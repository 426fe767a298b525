"""Classic NRMS word-level news encoder (no pretraining)."""

from __future__ import annotations

import torch
from torch import nn

from mmnewsrec.config import FeaturesConfig, WordEncoderConfig
from mmnewsrec.errors import ConfigError
from mmnewsrec.features.plan import FeatureNeed, TokensNeed
from mmnewsrec.models.layers import AdditiveAttention
from mmnewsrec.models.news_encoders.base import NEWS_ENCODERS, ModelContext, NewsEncoder


@NEWS_ENCODERS.register("word")
class WordEncoder(NewsEncoder):
    """Classic NRMS news encoder (Wu et al., 2019): word embeddings, multi-head self-attention,
    additive attention. No pretraining; token ids come from the configured tokenizer.

    Shape:
        ``{field}_ids`` / ``{field}_mask`` (U, L) -> (U, dim).
    """

    config_class = WordEncoderConfig

    def __init__(self, config: WordEncoderConfig, context: ModelContext):
        super().__init__()
        if context.vocab_size < 1:
            raise ConfigError("model.news.type word: the tokenizer's vocabulary size is unknown")
        self.field = config.text_field
        self.embed = nn.Embedding(context.vocab_size, config.word_dim, padding_idx=0)
        self.to_dim = nn.Linear(config.word_dim, config.dim)
        self.attention = nn.MultiheadAttention(config.dim, config.heads, dropout=config.dropout, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.pool = AdditiveAttention(config.dim)
        self.dim = config.dim

    needs_vocab_size = True

    @classmethod
    def feature_needs(cls, config: WordEncoderConfig, features: FeaturesConfig) -> list[FeatureNeed]:
        tokenizer, revision = (features.tokens.tokenizer, features.tokens.revision) if features.tokens else (None, None)
        return [TokensNeed(tokenizer or "bert-base-uncased", config.text_field, config.max_length, revision)]

    def inputs(self) -> list[str]:
        return [f"{self.field}_ids", f"{self.field}_mask"]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, mask = inputs[f"{self.field}_ids"], inputs[f"{self.field}_mask"]  # (U, L)
        words = self.to_dim(self.dropout(self.embed(ids)))  # (U, L, dim)
        safe = mask.clone()
        safe[:, 0] = True  # an empty title attends to its [CLS]/pad slot instead of nothing
        attended, _ = self.attention(words, words, words, key_padding_mask=~safe, need_weights=False)
        return self.pool(self.dropout(attended), safe)  # (U, dim)
