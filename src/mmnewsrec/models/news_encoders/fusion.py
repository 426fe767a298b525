"""Text + image fusion encoders (Hadamard, concat, gate), missing images masked."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from mmnewsrec.config import FeaturesConfig, FusionEncoderConfig, NewsEncoderConfig
from mmnewsrec.errors import ConfigError
from mmnewsrec.features.plan import FeatureNeed
from mmnewsrec.models.news_encoders.base import NEWS_ENCODERS, ModelContext, NewsEncoder
from mmnewsrec.models.news_encoders.precomputed import PrecomputedEncoder
from mmnewsrec.models.news_encoders.text import TextEncoder
from mmnewsrec.models.news_encoders.vision import VisionEncoder


@NEWS_ENCODERS.register("fusion")
class FusionEncoder(NewsEncoder):
    """A text branch and an image branch combined into one news vector.

    Branches (``model.news.text`` and ``model.news.image``): each a backbone (a ``text`` or
    ``vision`` encoder) or a frozen feature (a ``precomputed`` encoder). Modes:

    * ``hadamard``: ``t * v`` (the study's choice); without an image the text vector alone;
    * ``concat``: ``W [t; v; has_image]``, the image part zeroed without an image;
    * ``gate``: ``t + g * v`` with ``g = sigmoid(W [t; v])``, g = 0 without an image.

    Missing images are masked through ``has_image``, never fed as if blank pixels were real.

    Shape:
        -> (U, dim).
    """

    config_class = FusionEncoderConfig

    def __init__(self, config: FusionEncoderConfig, context: ModelContext):
        super().__init__()
        self.text = _branch_encoder(config.branch("text"), context)
        self.image = _branch_encoder(config.branch("image"), context)
        self.flag = self.image.flag if isinstance(self.image, PrecomputedEncoder) else "has_image"
        if self.flag is None:
            raise ConfigError(
                f"model.news.image.feature: {config.image.feature!r} is not an image feature (it has no has_image flag)"
            )
        self.mode = config.fusion
        dim = config.dim
        if self.mode == "concat":
            self.combine = nn.Linear(2 * dim + 1, dim)
        elif self.mode == "gate":
            self.combine = nn.Linear(2 * dim, dim)
        self.dim = dim

    @classmethod
    def feature_needs(cls, config: FusionEncoderConfig, features: FeaturesConfig) -> list[FeatureNeed]:
        needs = []
        for name in ("text", "image"):
            branch = config.branch(name)
            needs += NEWS_ENCODERS.get(branch.type).feature_needs(branch, features)
        return needs

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


def _branch_encoder(config: NewsEncoderConfig, context: ModelContext) -> NewsEncoder:
    """A branch's own encoder: text or vision over a backbone, or precomputed over a feature."""
    return {"text": TextEncoder, "vision": VisionEncoder, "precomputed": PrecomputedEncoder}[config.type](
        config, context
    )
