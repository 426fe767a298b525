"""Builds a :class:`NewsRecommender` from a :class:`~mmnewsrec.config.ModelConfig`, the news features
it reads, and saves/loads its weights.

News- and user-encoder weights are saved to separate safetensors files, so either can be loaded
alone (e.g. a serving process that only re-encodes users).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import ExperimentConfig, FrozenEncoderConfig, ModelConfig
from mmnewsrec.data.mind import Vocabs
from mmnewsrec.errors import ConfigError, MmnewsrecError
from mmnewsrec.features.backbones import load_config, load_tokenizer
from mmnewsrec.features.build import NamedBuilder, build_features, frozen_builder
from mmnewsrec.features.image import PixelBuilder, ProcessorGeometry
from mmnewsrec.features.store import FeatureStore
from mmnewsrec.features.text import TokenBuilder
from mmnewsrec.models.news_encoders import ModelContext, build_news_encoder, cached_states_feature
from mmnewsrec.models.recommender import NewsRecommender
from mmnewsrec.models.scorers import SCORERS
from mmnewsrec.models.user_encoders import USER_ENCODERS

PARTS = ("news_encoder", "user_encoder", "scorer")


def build_model(config: ModelConfig, context: ModelContext) -> NewsRecommender:
    news_encoder = build_news_encoder(config.news, context)
    user_encoder = USER_ENCODERS.get(config.user.type)(news_encoder.dim, config.user)
    return NewsRecommender(news_encoder, user_encoder, SCORERS.get(config.scorer)())


class WeightsError(MmnewsrecError):
    """Saved weights that are missing, damaged or do not fit the model."""


def tokenizer_name(config: ExperimentConfig) -> str:
    """The tokenizer whose ids the news encoder reads (its own backbone's, when it has one)."""
    news = config.model.news
    if news.type in ("text", "fusion", "blip") and news.text is not None and not (news.precomputed[:1] or [""])[0]:
        return news.text.model
    return config.features.tokens.tokenizer if config.features.tokens else "bert-base-uncased"


def news_feature_builders(config: ExperimentConfig, store: FeatureStore) -> list[NamedBuilder]:
    """The feature builders the configured news encoder reads (what train, evaluate and serving build)."""
    news, missing = config.model.news, config.data.images.missing
    names = [*news.precomputed, "", ""][:2]
    needs_tokens = news.type in ("text", "word", "blip") or (news.type == "fusion" and not names[0])
    needs_pixels = news.type in ("vision", "blip") or (news.type == "fusion" and not names[1])
    builders = []
    cached = news.type in ("text", "fusion") and needs_tokens and news.text is not None and news.text.cache_frozen
    if needs_tokens and not cached:
        builders.append(
            NamedBuilder("tokens", TokenBuilder(tokenizer_name(config), {news.text_field: news.max_length}))
        )
    if cached:
        builders.append(_cached_states_builder(config, store))
    if needs_pixels:
        backbone = news.text if news.type == "blip" else news.vision  # BLIP: one model, both parts
        if backbone is None:
            raise ConfigError("model.news.vision: this encoder reads images and needs a vision backbone")
        geometry = ProcessorGeometry.load(backbone.model, backbone.revision)
        builders.append(NamedBuilder("pixels", PixelBuilder(geometry, missing)))
    frozen = {f.name: f for f in config.features.frozen}
    for name in news.precomputed:
        if not name:
            continue
        if name not in frozen:
            raise ConfigError(f"model.news.precomputed: {name!r} is not among features.frozen {sorted(frozen)}")
        builders.append(NamedBuilder(f"frozen:{name}", frozen_builder(frozen[name], store, missing)))
    return builders


def _cached_states_builder(config: ExperimentConfig, store: FeatureStore) -> NamedBuilder:
    """The hidden states entering the text backbone's trained top layers (``cache_frozen``)."""
    news = config.model.news
    backbone = news.text
    layers = int(getattr(load_config(backbone.model, backbone.revision), "num_hidden_layers", 0))
    if backbone.train_layers > layers:
        raise ConfigError(f"model.news.text.train_layers: {backbone.train_layers}, but {backbone.model} has {layers}")
    name = cached_states_feature(news.text_field)
    frozen = FrozenEncoderConfig(
        name=name,
        model=backbone.model,
        revision=backbone.revision,
        modality="text",
        pooling="tokens",
        text_field=news.text_field,
        max_length=news.max_length,
        layer=layers - backbone.train_layers,
        device="auto",
    )
    return NamedBuilder(f"frozen:{name}", frozen_builder(frozen, store, config.data.images.missing))


def news_features(
    config: ExperimentConfig, store: FeatureStore, news: pa.Table, vocabs: Vocabs, builders: list[NamedBuilder]
) -> NewsFeatures:
    """Every input the news encoder reads, for the rows of ``news`` (built or reused in ``store``),
    with category and subcategory ids from the train-fitted ``vocabs``."""
    sets = build_features(store, builders, news)
    categories = vocabs.categories.lookup(news["category"])
    subcategories = vocabs.subcategories.lookup(news["subcategory"])
    # Per-token hidden states are large ((N, L, h)): they stay memory-mapped like pixels.
    mapped = ("pixels", "frozen:" + cached_states_feature(config.model.news.text_field))
    return NewsFeatures.from_sets(sets, {"category": categories, "subcategory": subcategories}, mapped)


def model_context(config: ExperimentConfig, features: NewsFeatures, vocabs: Vocabs) -> ModelContext:
    """The facts the model's shapes depend on, from the train-fitted vocabularies and the features."""
    vocab_size = len(load_tokenizer(tokenizer_name(config))) if config.model.news.type == "word" else 0
    return ModelContext(
        num_categories=len(vocabs.categories),
        num_subcategories=len(vocabs.subcategories),
        feature_dims={name: features.dim(name) for name in features.names()},
        vocab_size=vocab_size,
    )


def save_weights(model: NewsRecommender, folder: str | Path) -> None:
    """Writes ``news_encoder.safetensors``, ``user_encoder.safetensors`` (and the scorer's, if any)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        state = {k: v.detach().contiguous().cpu() for k, v in getattr(model, part).state_dict().items()}
        if state:
            save_file(state, str(folder / f"{part}.safetensors"))


def load_weights(model: NewsRecommender, folder: str | Path, parts: tuple[str, ...] = PARTS) -> None:
    """Loads the named parts' weights saved by :func:`save_weights` (strict: every key must match).

    Raises:
        WeightsError: a file is missing, damaged (truncated, not safetensors) or does not fit.
    """
    folder = Path(folder)
    for part in parts:
        path = folder / f"{part}.safetensors"
        module = getattr(model, part)
        if not path.is_file():
            if not module.state_dict():
                continue
            raise WeightsError(f"{path}: no saved weights for {part}")
        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path}: damaged weights file ({exc}); restore it or train the run again") from None
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[:3]
            raise WeightsError(f"{path}: the weights do not fit this model ({' '.join(first)})") from None


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}
