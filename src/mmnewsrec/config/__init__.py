"""Frozen, self-validating configuration dataclasses with strict YAML loading.

Every stage has its own dataclass; each validates its values in ``__post_init__`` and raises
:class:`~mmnewsrec.errors.ConfigError` naming the offending field. Loading is strict: an unknown key
is an error that lists the valid ones, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from mmnewsrec.config.backbone import BackboneConfig, EncoderPooling, LoraConfig
from mmnewsrec.config.data import ConflictingNewsPolicy, DataConfig, ImageConfig, MissingImagePolicy, UnknownNewsPolicy
from mmnewsrec.config.experiment import ExperimentConfig, Loss, MixedPrecision, TrainingConfig
from mmnewsrec.config.features import (
    FeaturesConfig,
    FrozenEncoderConfig,
    Modality,
    PixelsConfig,
    Pooling,
    TextField,
    TokensConfig,
)
from mmnewsrec.config.loading import apply_overrides, dump_yaml, from_dict, load_yaml, to_dict
from mmnewsrec.config.model import EntityConfig, ModelConfig, TransformerRankerConfig, UserEncoderConfig
from mmnewsrec.config.news import (
    NEWS_CONFIGS,
    BlipEncoderConfig,
    FeatureBranch,
    FusionEncoderConfig,
    FusionMode,
    NewsEncoderConfig,
    PrecomputedEncoderConfig,
    Projection,
    TextEncoderConfig,
    VisionEncoderConfig,
    WordEncoderConfig,
    migrate_news,
    read_saved_config,
    register_news_config,
)
from mmnewsrec.errors import ConfigError

__all__ = [
    "NEWS_CONFIGS",
    "BackboneConfig",
    "BlipEncoderConfig",
    "ConfigError",
    "ConflictingNewsPolicy",
    "DataConfig",
    "EncoderPooling",
    "EntityConfig",
    "ExperimentConfig",
    "FeatureBranch",
    "FeaturesConfig",
    "FrozenEncoderConfig",
    "FusionEncoderConfig",
    "FusionMode",
    "ImageConfig",
    "LoraConfig",
    "Loss",
    "MissingImagePolicy",
    "MixedPrecision",
    "Modality",
    "ModelConfig",
    "NewsEncoderConfig",
    "PixelsConfig",
    "Pooling",
    "PrecomputedEncoderConfig",
    "Projection",
    "TextEncoderConfig",
    "TextField",
    "TokensConfig",
    "TrainingConfig",
    "TransformerRankerConfig",
    "UnknownNewsPolicy",
    "UserEncoderConfig",
    "VisionEncoderConfig",
    "WordEncoderConfig",
    "apply_overrides",
    "dump_yaml",
    "from_dict",
    "load_yaml",
    "migrate_news",
    "read_saved_config",
    "register_news_config",
    "to_dict",
]
