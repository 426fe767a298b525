"""Frozen vectors from the feature store under a trainable projection (the study's frozen experiments)."""

from __future__ import annotations

import torch
from torch import nn

from mmnewsrec.config import FeaturesConfig, PrecomputedEncoderConfig
from mmnewsrec.errors import ConfigError
from mmnewsrec.features.plan import FeatureNeed, FrozenNeed
from mmnewsrec.models.layers import AdditiveAttention
from mmnewsrec.models.news_encoders.backbone import projection
from mmnewsrec.models.news_encoders.base import NEWS_ENCODERS, CategoryEmbedding, ModelContext, NewsEncoder


@NEWS_ENCODERS.register("precomputed")
class PrecomputedEncoder(NewsEncoder):
    """Frozen vectors from the feature store + a trainable projection (the study's frozen experiments).

    If the feature has a ``has_image`` flag (image or BLIP features), news without an image under
    the mask policy get a learned vector.

    Shape:
        ``frozen:{name}`` (U, F) -> (U, dim).
    """

    config_class = PrecomputedEncoderConfig

    def __init__(self, config: PrecomputedEncoderConfig, context: ModelContext):
        super().__init__()
        feature = config.feature
        key = f"frozen:{feature}"
        if key not in context.feature_dims:
            available = sorted(k.removeprefix("frozen:") for k in context.feature_dims if k.count(":") == 1)
            raise ConfigError(f"model.news.feature: no frozen feature {feature!r}; features.frozen has {available}")
        self.key = key
        self.flag = f"{key}:has_image" if f"{key}:has_image" in context.feature_dims else None
        # Token-level features (frozen pooling "tokens") are pooled here by additive attention,
        # which learns which words matter (a topic word, a hook word) instead of averaging them.
        self.token_mask = f"{key}:mask" if f"{key}:mask" in context.feature_dims else None
        self.token_pool = AdditiveAttention(context.feature_dims[key]) if self.token_mask else None
        in_dim = context.feature_dims[key]
        if config.projection == "none":
            if in_dim != config.dim:
                raise ConfigError(
                    f"model.news.dim: projection none keeps frozen feature {feature!r} as it is, of size {in_dim}; "
                    f"set dim: {in_dim} (got {config.dim})"
                )
            self.project = nn.Identity()
        elif config.projection == "mlp":
            self.project = nn.Sequential(
                nn.Dropout(config.dropout), nn.Linear(in_dim, config.dim), nn.GELU(), nn.Linear(config.dim, config.dim)
            )
        else:
            self.project = projection(in_dim, config.dim, config.dropout)
        self.no_image = nn.Parameter(torch.zeros(config.dim)) if self.flag else None
        # Categories describe the text, so only a text feature (no image flag) adds them.
        self.categories = CategoryEmbedding(config.dim, context) if config.use_category and not self.flag else None
        self.dim = config.dim

    @classmethod
    def feature_needs(cls, config: PrecomputedEncoderConfig, features: FeaturesConfig) -> list[FeatureNeed]:
        if not config.feature:
            raise ConfigError("model.news.feature: name the features.frozen entry this encoder reads")
        return [FrozenNeed(config.feature)]

    def inputs(self) -> list[str]:
        names = [self.key] + [name for name in (self.flag, self.token_mask) if name]
        return names + (["category", "subcategory"] if self.categories is not None else [])

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        features = inputs[self.key]  # (U, F) or, token-level, (U, L, F)
        if self.token_pool is not None:
            features = self.token_pool(features, inputs[self.token_mask])  # (U, F)
        vectors = self.project(features)  # (U, dim)
        if self.categories is not None:
            vectors = vectors + self.categories(inputs)
        if self.flag:
            keep = inputs[self.flag].unsqueeze(-1)
            vectors = torch.where(keep, vectors, self.no_image.to(vectors.dtype).expand_as(vectors))
        return vectors
