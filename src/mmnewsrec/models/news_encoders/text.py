"""Text encoders: a pretrained text backbone over one tokenised field (or its cached lower-layer states)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from mmnewsrec.config import FeaturesConfig, TextEncoderConfig
from mmnewsrec.errors import ConfigError
from mmnewsrec.features.backbones import transformer_layers
from mmnewsrec.features.encoding import trim_to_longest
from mmnewsrec.features.plan import FeatureNeed, LowerStatesNeed, TokensNeed, lower_states_feature
from mmnewsrec.models.news_encoders.backbone import (
    load_backbone,
    pooled_projection,
    pretrained_weights,
    require_backbone,
    run_top_layers,
)
from mmnewsrec.models.news_encoders.base import NEWS_ENCODERS, CategoryEmbedding, ModelContext, NewsEncoder


@NEWS_ENCODERS.register("text")
class TextEncoder(NewsEncoder):
    """A pretrained text model (BERT, MiniLM, ...) over one tokenised field, pooled and projected.

    With ``cache_frozen`` the encoder reads the cached hidden states below its ``train_layers``
    top layers (``frozen:lower_{field}``) and runs only those layers; the result is the same as
    running the whole backbone over the tokens (in eval mode), at a fraction of the cost.

    Shape:
        ``{field}_ids`` / ``{field}_mask`` (U, L) -> (U, dim); cached: ``frozen:lower_{field}``
        (U, L, h) with ``frozen:lower_{field}:mask`` (U, L) -> (U, dim).
    """

    config_class = TextEncoderConfig

    def __init__(self, config: TextEncoderConfig, context: ModelContext):
        super().__init__()
        backbone = require_backbone(config.text, "text")
        self.field = config.text_field
        self.backbone = load_backbone(backbone)
        self.top_layers = backbone.train_layers if backbone.cache_frozen else 0
        if self.top_layers:
            layers = transformer_layers(self.backbone)
            if layers is None or self.top_layers > len(layers):
                raise ConfigError(
                    f"model.news.text.train_layers: {self.top_layers} top layers to run over cached states, "
                    f"but {backbone.model} has {0 if layers is None else len(layers)}"
                )
        # What the backbone reads: token ids, or (cache_frozen) the cached states entering the top layers.
        if self.top_layers:
            self.sequence = "frozen:" + lower_states_feature(self.field)
            self.sequence_mask = f"{self.sequence}:mask"
        else:
            self.sequence, self.sequence_mask = f"{self.field}_ids", f"{self.field}_mask"
        hidden = self.backbone.config.hidden_size
        self.pool, self.project = pooled_projection(backbone.pooling, hidden, config.dim, config.dropout)
        self.categories = CategoryEmbedding(config.dim, context) if config.use_category else None
        self.dim = config.dim

    @classmethod
    def feature_needs(cls, config: TextEncoderConfig, features: FeaturesConfig) -> list[FeatureNeed]:
        backbone = require_backbone(config.text, "text")
        if backbone.cache_frozen:
            top = backbone.train_layers
            return [LowerStatesNeed(backbone.model, config.text_field, config.max_length, top, backbone.revision)]
        return [TokensNeed(backbone.model, config.text_field, config.max_length, backbone.revision)]

    def inputs(self) -> list[str]:
        return [self.sequence, self.sequence_mask, *self.head_inputs()]

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        return pretrained_weights(self.backbone)

    def head_inputs(self) -> list[str]:
        return ["category", "subcategory"] if self.categories is not None else []

    @property
    def body_dim(self) -> int:
        return self.backbone.config.hidden_size

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.body(inputs), inputs)

    #: News per backbone call: rows are sorted by length and each chunk is cut to its longest row,
    #: so short titles do not pay for the padding of long ones.
    chunk_size: int = 64

    def body(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The pooled backbone output. Shape: -> (U, h)."""
        mask = inputs[self.sequence_mask]  # (U, L)
        if len(mask) <= self.chunk_size:
            return self._body(inputs, slice(None))
        order = torch.argsort(mask.sum(1), descending=True, stable=True)  # (U,)
        chunks = [self._body(inputs, order[i : i + self.chunk_size]) for i in range(0, len(order), self.chunk_size)]
        return torch.cat(chunks)[torch.argsort(order)]  # back to the input order

    def _body(self, inputs: dict[str, torch.Tensor], rows) -> torch.Tensor:
        sequence, mask = inputs[self.sequence][rows], inputs[self.sequence_mask][rows]  # (u, L[, h]), (u, L)
        mask, sequence = trim_to_longest(mask, sequence)  # (u, W), (u, W[, h])
        if self.top_layers:
            output = run_top_layers(self.backbone, sequence, mask, self.top_layers)
        else:
            output = self.backbone(input_ids=sequence, attention_mask=mask.long())
        return self.pool(output, mask)  # (u, h)

    def head(self, body: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        vectors = self.project(body)  # (U, dim)
        if self.categories is not None:
            vectors = vectors + self.categories(inputs)
        return vectors
