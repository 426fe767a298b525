"""The news-encoder contract: the model context, the registry, the base class and its feature needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from mmnewsrec.config import FeaturesConfig, NewsEncoderConfig, register_news_config
from mmnewsrec.features.plan import FeatureNeed
from mmnewsrec.registry import Registry


@dataclass(frozen=True)
class ModelContext:
    """Facts derived from the data and feature store (never typed into configs).

    Attributes:
        num_categories / num_subcategories: sizes of the train-fitted vocabularies.
        feature_dims: last dimension of every available news feature (e.g. ``frozen:bert_cls``).
        vocab_size: the tokenizer's vocabulary size (word encoder).
    """

    num_categories: int = 2
    num_subcategories: int = 2
    feature_dims: dict[str, int] = field(default_factory=dict)
    vocab_size: int = 0


class NewsEncoderRegistry(Registry):
    """The news encoders by ``model.news.type``; registering one registers its ``config_class`` as
    the class that reads ``model.news`` sections of that type (as peft registers a method's config
    with its model), so the config loader refuses the keys it does not read."""

    def register(self, name: str) -> Callable[[type], type]:
        add = super().register(name)

        def register_with_config(encoder: type) -> type:
            register_news_config(name, encoder.config_class)
            return add(encoder)

        return register_with_config


NEWS_ENCODERS: NewsEncoderRegistry = NewsEncoderRegistry("news encoder")


class NewsEncoder(nn.Module):
    """Base class: ``forward(inputs) -> (U, dim)``.

    ``forward`` is ``head(body(inputs), inputs)``: ``body`` is the expensive part (a backbone),
    ``head`` the cheap trainable part on top (projection, category embeddings), which reads only
    ``head_inputs()``. The history-vector cache keeps body outputs, so history news always get
    the current head. By default the body is the whole encoder and the head the identity.
    """

    dim: int

    #: The class that reads this encoder's ``model.news`` section (its keys and their checks).
    config_class: ClassVar[type[NewsEncoderConfig]] = NewsEncoderConfig

    def inputs(self) -> list[str]:
        raise NotImplementedError

    def head_inputs(self) -> list[str]:
        return []

    @property
    def body_dim(self) -> int:
        return self.dim

    def body(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Shape: -> (U, body_dim)."""
        return self(inputs)

    def head(self, body: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Shape: (U, body_dim) -> (U, dim)."""
        return body

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        return iter(())

    @classmethod
    def feature_needs(cls, config: NewsEncoderConfig, features: FeaturesConfig) -> list[FeatureNeed]:
        """The cached features this encoder reads under ``config``, for the feature planner
        (:func:`mmnewsrec.features.plan.plan_builders`). Category and subcategory ids are always
        there. Raises ConfigError when ``config`` lacks what the encoder needs."""
        raise NotImplementedError

    #: True for encoders sized by their tokenizer's vocabulary (``ModelContext.vocab_size``).
    needs_vocab_size = False


class HeadExtension(NewsEncoder):
    """An inner encoder whose head gets more inputs (``extra_inputs``) and more to do (``head``,
    which subclasses write over ``self.inner.head``); its body is the inner encoder's, so the
    history-vector cache and the fast path keep working unchanged."""

    extra_inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, inner: NewsEncoder):
        super().__init__()
        self.inner = inner

    def inputs(self) -> list[str]:
        return sorted(set(self.inner.inputs()) | set(self.extra_inputs))

    def head_inputs(self) -> list[str]:
        return sorted(set(self.inner.head_inputs()) | set(self.extra_inputs))

    @property
    def body_dim(self) -> int:
        return self.inner.body_dim

    def body(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.inner.body(inputs)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.body(inputs), inputs)

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        return self.inner.pretrained_parameters()


class CategoryEmbedding(nn.Module):
    """Category + subcategory embeddings (train-fitted vocabularies), added to a text vector."""

    def __init__(self, dim: int, context: ModelContext):
        super().__init__()
        self.category = nn.Embedding(context.num_categories, dim)
        self.subcategory = nn.Embedding(context.num_subcategories, dim)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.category(inputs["category"]) + self.subcategory(inputs["subcategory"])  # (U, dim)


def build_news_encoder(config: NewsEncoderConfig, context: ModelContext) -> NewsEncoder:
    return NEWS_ENCODERS.get(config.type)(config, context)
