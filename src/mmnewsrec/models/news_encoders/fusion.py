"""Text + image fusion encoders (Hadamard, concat, gate), missing images masked."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from mmnewsrec.config import FeaturesConfig, NewsEncoderConfig
from mmnewsrec.errors import ConfigError
from mmnewsrec.features.plan import FeatureNeed
from mmnewsrec.models.news_encoders.base import NEWS_ENCODERS, ModelContext, NewsEncoder
from mmnewsrec.models.news_encoders.precomputed import PrecomputedEncoder
from mmnewsrec.models.news_encoders.text import TextEncoder
from mmnewsrec.models.news_encoders.vision import VisionEncoder


@NEWS_ENCODERS.register("fusion")
class FusionEncoder(NewsEncoder):
    """A text branch and an image branch combined into one news vector.

    Branches: the text branch is a ``text`` backbone or a precomputed text feature; the image
    branch a ``vision`` backbone or a precomputed image feature (``precomputed: [text, image]``,
    "" for a backbone). Modes:

    * ``hadamard``: ``t * v`` (the study's choice); without an image the text vector alone;
    * ``concat``: ``W [t; v; has_image]``, the image part zeroed without an image;
    * ``gate``: ``t + g * v`` with ``g = sigmoid(W [t; v])``, g = 0 without an image.

    Missing images are masked through ``has_image``, never fed as if blank pixels were real.

    Shape:
        -> (U, dim).
    """

    config_keys = frozenset(
        {"text", "vision", "precomputed", "fusion", "text_field", "max_length", "use_category", "projection"}
    )

    def __init__(self, config: NewsEncoderConfig, context: ModelContext):
        super().__init__()
        names = [*config.precomputed, "", ""][:2]
        self.text = (
            PrecomputedEncoder(config, context, names[0]) if names[0] else TextEncoder(config, context, config.text)
        )
        self.image = (
            PrecomputedEncoder(config, context, names[1]) if names[1] else VisionEncoder(config, context, config.vision)
        )
        self.flag = self.image.flag if isinstance(self.image, PrecomputedEncoder) else "has_image"
        if self.flag is None:
            raise ConfigError(
                f"model.news.precomputed: {names[1]!r} is not an image feature (it has no has_image flag)"
            )
        self.mode = config.fusion
        dim = config.dim
        if self.mode == "concat":
            self.combine = nn.Linear(2 * dim + 1, dim)
        elif self.mode == "gate":
            self.combine = nn.Linear(2 * dim, dim)
        self.dim = dim

    @classmethod
    def feature_needs(cls, config: NewsEncoderConfig, features: FeaturesConfig) -> list[FeatureNeed]:
        text, image = [*config.precomputed, "", ""][:2]
        return [
            *(
                PrecomputedEncoder.feature_needs(config, features, text)
                if text
                else TextEncoder.feature_needs(config, features)
            ),
            *(
                PrecomputedEncoder.feature_needs(config, features, image)
                if image
                else VisionEncoder.feature_needs(config, features)
            ),
        ]

    def inputs(self) -> list[str]:
        return sorted(set(self.text.inputs()) | set(self.image.inputs()) | {self.flag})

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.text.pretrained_parameters()
        yield from self.image.pretrained_parameters()

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        text = self.text(inputs)  # (U, dim)
        image = self.image(inputs).to(text.dtype)  # (U, dim)
        has_image = inputs[self.flag].unsqueeze(-1)  # (U, 1) bool
        if self.mode == "hadamard":
            return torch.where(has_image, text * image, text)
        if self.mode == "concat":
            image = image * has_image
            return self.combine(torch.cat([text, image, has_image.to(text.dtype)], dim=-1))
        gate = torch.sigmoid(self.combine(torch.cat([text, image], dim=-1))) * has_image
        return text + gate * image
