"""Vision encoders: a vision backbone over the stored pixels; missing images get a learned vector."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from mmnewsrec.config import FeaturesConfig, VisionEncoderConfig
from mmnewsrec.features.image import PixelNormalizer, ProcessorGeometry
from mmnewsrec.features.plan import FeatureNeed, PixelsNeed
from mmnewsrec.models.news_encoders.backbone import (
    load_backbone,
    pooled_projection,
    pretrained_weights,
    require_backbone,
)
from mmnewsrec.models.news_encoders.base import NEWS_ENCODERS, ModelContext, NewsEncoder


@NEWS_ENCODERS.register("vision")
class VisionEncoder(NewsEncoder):
    """A vision model (ViT, ...) over the stored uint8 pixels, pooled and projected.

    News without an image get a learned "no image" vector instead of an encoding of blank pixels.

    Shape:
        ``pixels`` (U, 3, S, S) uint8, ``has_image`` (U,) bool -> (U, dim).
    """

    config_class = VisionEncoderConfig

    def __init__(self, config: VisionEncoderConfig, context: ModelContext):
        super().__init__()
        backbone = require_backbone(config.vision, "vision")
        self.backbone = load_backbone(backbone)
        self.normalize = PixelNormalizer(ProcessorGeometry.load(backbone.model, backbone.revision))
        hidden = self.backbone.config.hidden_size
        self.pool, self.project = pooled_projection(backbone.pooling, hidden, config.dim, config.dropout)
        self.no_image = nn.Parameter(torch.zeros(config.dim))
        self.dim = config.dim

    @classmethod
    def feature_needs(cls, config: VisionEncoderConfig, features: FeaturesConfig) -> list[FeatureNeed]:
        backbone = require_backbone(config.vision, "vision")
        return [PixelsNeed(backbone.model, backbone.revision)]

    def inputs(self) -> list[str]:
        return ["pixels", "has_image"]

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        return pretrained_weights(self.backbone)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        has_image = inputs["has_image"]  # (U,)
        out = self.no_image.expand(len(has_image), -1).clone()  # (U, dim)
        if has_image.any():
            pixels = self.normalize(inputs["pixels"][has_image])  # only real images are encoded
            encoded = self.project(self.pool(self.backbone(pixel_values=pixels), None))
            out = out.to(encoded.dtype)
            out[has_image] = encoded
        return out
