"""Builds a :class:`NewsRecommender` from a :class:`~mmnewsrec.config.ModelConfig`, the news features
it reads, and saves/loads its weights.

News- and user-encoder weights are saved to separate safetensors files, so either can be loaded
alone (e.g. a serving process that only re-encodes users).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import ExperimentConfig, ModelConfig, load_yaml
from mmnewsrec.data.mind import ENTITY_EMBEDDING_FILE, EntityVectors, Vocabs, read_entity_vectors
from mmnewsrec.errors import ConfigError, MmnewsrecError
from mmnewsrec.features.backbones import load_tokenizer
from mmnewsrec.features.build import NamedBuilder, build_features
from mmnewsrec.features.entities import bucket_vectors
from mmnewsrec.features.plan import (
    EntitiesNeed,
    FeatureNeed,
    LowerStatesNeed,
    TokensNeed,
    lower_states_feature,
    plan_builders,
)
from mmnewsrec.features.store import FeatureStore
from mmnewsrec.features.text import category_ids
from mmnewsrec.models.entities import EntityNewsEncoder, EntityUserEncoder
from mmnewsrec.models.news_encoders import NEWS_ENCODERS, ModelContext, build_news_encoder
from mmnewsrec.models.profile import ProfileNewsEncoder, ProfileUserEncoder
from mmnewsrec.models.recommender import NewsRecommender
from mmnewsrec.models.scorers import SCORERS
from mmnewsrec.models.study_ranker import TransformerRanker  # noqa: F401  (registers the scorer)
from mmnewsrec.models.user_encoders import USER_ENCODERS

logger = logging.getLogger(__name__)

PARTS = ("news_encoder", "user_encoder", "scorer")


def build_model(config: ModelConfig, context: ModelContext) -> NewsRecommender:
    news_encoder = build_news_encoder(config.news, context)
    content_dim = news_encoder.dim
    user_encoder = USER_ENCODERS.get(config.user.type)(news_encoder.dim, config.user)
    if config.user.profile:  # the history's category profile beside the learned user vector
        sizes = (context.num_subcategories, context.num_categories) if config.user.profile_posterior else (0, 0)
        user_encoder = ProfileUserEncoder(user_encoder, news_encoder.dim, *sizes, config.user.content_init)
        news_encoder = ProfileNewsEncoder(news_encoder, context, posterior=config.user.profile_posterior)
    if config.entities is not None:  # the news' knowledge entities: a branch, the user's entity profile
        if config.entities.profile:
            user_encoder = EntityUserEncoder(user_encoder, news_encoder.dim, config.entities.profile_buckets)
        news_encoder = EntityNewsEncoder(news_encoder, config.entities, config.news.dropout, branch_dim=content_dim)
    return NewsRecommender(news_encoder, user_encoder, SCORERS.get(config.scorer)(news_encoder.dim, config))


def reads_log_counters(config: ModelConfig) -> bool:
    """Whether the model's scorer reads the candidates' log counters (popularity and recency)."""
    return SCORERS.get(config.scorer).capabilities.reads_log_counters


class WeightsError(MmnewsrecError):
    """Saved weights that are missing, damaged or do not fit the model."""


def check_experiment(config: ExperimentConfig) -> ExperimentConfig:
    """Checks what the config dataclasses cannot check themselves, before any data is read: the
    registry names (``model.user.type``, ``model.scorer``; ``model.news.type`` chose the class that
    read its section, which refused the keys that type does not read) and what the chosen news
    encoder needs from the config (a backbone, a frozen feature). Returns ``config``.

    Raises:
        ConfigError: naming the full key.
    """
    if config.baseline:  # a baseline run builds no model
        return config
    for key, name, registry in (
        ("model.news.type", config.model.news.type, NEWS_ENCODERS),  # a class registered without its encoder
        ("model.user.type", config.model.user.type, USER_ENCODERS),
        ("model.scorer", config.model.scorer, SCORERS),
    ):
        if name not in registry:
            raise ConfigError(f"{key}: {name!r} is not one of {registry.names()}")
    feature_needs(config)  # the encoder's own checks of its part of the config (no data, no weights)
    return config


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """An experiment config from YAML (:func:`~mmnewsrec.config.load_yaml`), checked whole by
    :func:`check_experiment`; every message names the file and the key."""
    config = load_yaml(ExperimentConfig, path, overrides)
    try:
        return check_experiment(config)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def feature_needs(config: ExperimentConfig) -> list[FeatureNeed]:
    """What the configured news encoder reads, as it declares it (``feature_needs`` of its class),
    and the news' entities when the model reads them."""
    needs = NEWS_ENCODERS.get(config.model.news.type).feature_needs(config.model.news, config.features)
    entities = config.model.entities
    if entities is not None:
        needs.append(EntitiesNeed(entities.max_per_news, entities.buckets))
    return needs


def init_pretrained_entities(model: NewsRecommender, config: ModelConfig, folders: Sequence[Path]) -> int:
    """Starts the entity embeddings of ``model`` from the ``entity_embedding.vec`` files of the
    split ``folders`` that have one (an entity listed twice keeps its first vector); returns how
    many buckets got a pretrained vector (0 when no file exists or the model reads none)."""
    entities = config.entities
    if entities is None or not entities.pretrained or not entities.branch:
        return 0
    files = [folder / ENTITY_EMBEDDING_FILE for folder in folders if (folder / ENTITY_EMBEDDING_FILE).is_file()]
    if not files:
        logger.info("no %s in %s: entity embeddings start at random", ENTITY_EMBEDDING_FILE, [str(f) for f in folders])
        return 0
    ids: dict[str, np.ndarray] = {}
    for path in files:
        vectors = read_entity_vectors(path)
        for entity_id, vector in zip(vectors.ids, vectors.vectors, strict=True):
            ids.setdefault(entity_id, vector)
    merged = EntityVectors(list(ids), np.stack(list(ids.values())) if ids else np.zeros((0, entities.dim), np.float32))
    started = model.news_encoder.init_embeddings(*bucket_vectors(merged, entities.buckets))
    logger.info("entity embeddings: %d buckets start from the pretrained vectors of %d entities", started, len(ids))
    return started


def news_feature_builders(config: ExperimentConfig, store: FeatureStore) -> list[NamedBuilder]:
    """The feature builders the configured news encoder reads (what train, evaluate and serving build)."""
    return plan_builders(feature_needs(config), config.features, config.data.images.missing, store, config.data.root)


def news_features(
    config: ExperimentConfig, store: FeatureStore, news: pa.Table, vocabs: Vocabs, builders: list[NamedBuilder]
) -> NewsFeatures:
    """Every input the news encoder reads, for the rows of ``news`` (built or reused in ``store``),
    with category and subcategory ids from the train-fitted ``vocabs``."""
    sets = build_features(store, builders, news)
    categories, subcategories = category_ids(vocabs, news)
    # Per-token hidden states are large ((N, L, h)): they stay memory-mapped like pixels.
    states = [lower_states_feature(need.field) for need in feature_needs(config) if isinstance(need, LowerStatesNeed)]
    mapped = ("pixels", *("frozen:" + name for name in states))
    return NewsFeatures.from_sets(sets, {"category": categories, "subcategory": subcategories}, mapped)


def model_context(config: ExperimentConfig, features: NewsFeatures, vocabs: Vocabs) -> ModelContext:
    """The facts the model's shapes depend on, from the train-fitted vocabularies and the features."""
    vocab_size = 0
    if NEWS_ENCODERS.get(config.model.news.type).needs_vocab_size:
        tokens = [need for need in feature_needs(config) if isinstance(need, TokensNeed)]
        vocab_size = len(load_tokenizer(tokens[0].tokenizer, tokens[0].revision))
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
