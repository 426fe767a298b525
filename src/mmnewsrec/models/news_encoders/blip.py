"""BLIP's image-grounded text encoder as a news encoder, frozen or trainable."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from mmnewsrec.config import BlipEncoderConfig, FeaturesConfig
from mmnewsrec.features.backbones import from_pretrained
from mmnewsrec.features.encoding import blip_text_output, trim_to_longest
from mmnewsrec.features.image import PixelNormalizer, ProcessorGeometry
from mmnewsrec.features.plan import FeatureNeed, PixelsNeed, TokensNeed
from mmnewsrec.models.news_encoders.backbone import freeze, pooled_projection, require_backbone
from mmnewsrec.models.news_encoders.base import NEWS_ENCODERS, ModelContext, NewsEncoder


@NEWS_ENCODERS.register("blip")
class BlipEncoder(NewsEncoder):
    """BLIP image-grounded text encoder (Li et al., 2022), frozen or trainable (``backbone.train_layers``).

    The BLIP text encoder reads the title and cross-attends the image patches of the BLIP vision
    model; the pooled result is projected. A news without an image is encoded by the text encoder
    alone (no cross-attention) under the mask policy.

    Shape:
        ``{field}_ids`` / ``{field}_mask`` (U, L), ``pixels`` (U, 3, S, S) uint8, ``has_image`` (U,) -> (U, dim).
    """

    config_class = BlipEncoderConfig

    def __init__(self, config: BlipEncoderConfig, context: ModelContext):
        super().__init__()
        from transformers import AutoConfig, BlipForImageTextRetrieval

        backbone = require_backbone(config.backbone, "backbone", "blip")
        if backbone.pretrained:
            blip = from_pretrained(BlipForImageTextRetrieval, backbone.model, backbone.revision)
        else:
            blip = BlipForImageTextRetrieval(from_pretrained(AutoConfig, backbone.model, backbone.revision))
        self.vision = blip.vision_model
        self.text = blip.text_encoder
        freeze(self.text, backbone.train_layers)
        freeze(self.vision, backbone.train_layers)
        self.normalize = PixelNormalizer(ProcessorGeometry.load(backbone.model, backbone.revision))
        hidden = self.text.config.hidden_size
        self.pool, self.project = pooled_projection(backbone.pooling, hidden, config.dim, config.dropout)
        self.field = config.text_field
        self.dim = config.dim

    @classmethod
    def feature_needs(cls, config: BlipEncoderConfig, features: FeaturesConfig) -> list[FeatureNeed]:
        backbone = require_backbone(config.backbone, "backbone", "blip")
        model, revision = backbone.model, backbone.revision  # one model: its tokenizer and its processor
        return [TokensNeed(model, config.text_field, config.max_length, revision), PixelsNeed(model, revision)]

    def inputs(self) -> list[str]:
        return [f"{self.field}_ids", f"{self.field}_mask", "pixels", "has_image"]

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.text.parameters()
        yield from self.vision.parameters()

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        mask, ids = trim_to_longest(inputs[f"{self.field}_mask"], inputs[f"{self.field}_ids"])  # (U, W)
        has_image = inputs["has_image"]  # (U,): fused where there is an image, the text encoder alone elsewhere
        pixels = inputs["pixels"]
        normalized = torch.zeros((len(ids), *pixels.shape[1:]), device=ids.device)  # (U, 3, S, S)
        if has_image.any():
            normalized[has_image] = self.normalize(pixels[has_image])
        output = blip_text_output(self.text, self.vision, ids, mask, normalized, has_image)
        return self.project(self.pool(output, mask))  # (U, dim)
