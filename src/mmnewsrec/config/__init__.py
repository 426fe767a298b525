"""Frozen, self-validating configuration dataclasses with strict YAML loading.

Every stage has its own dataclass; each validates its values in ``__post_init__`` and raises
:class:`~mmnewsrec.errors.ConfigError` naming the offending field. Loading is strict: an unknown key
is an error that lists the valid ones, so a typo never silently falls back to a default.
"""

from __future__ import annotations

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
from mmnewsrec.config.model import (
    BackboneConfig,
    EncoderPooling,
    FusionMode,
    LoraConfig,
    ModelConfig,
    NewsEncoderConfig,
    Projection,
    TransformerRankerConfig,
    UserEncoderConfig,
)
from mmnewsrec.errors import ConfigError

__all__ = [
    "BackboneConfig",
    "ConfigError",
    "ConflictingNewsPolicy",
    "DataConfig",
    "EncoderPooling",
    "ExperimentConfig",
    "FeaturesConfig",
    "FrozenEncoderConfig",
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
    "Projection",
    "TextField",
    "TokensConfig",
    "TrainingConfig",
    "TransformerRankerConfig",
    "UnknownNewsPolicy",
    "UserEncoderConfig",
    "apply_overrides",
    "dump_yaml",
    "from_dict",
    "load_yaml",
    "to_dict",
]
