"""Builders for everything an experiment's ``features`` config asks for, over a dataset's news."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from mmnewsrec.config import FeaturesConfig, FrozenEncoderConfig, MissingImagePolicy
from mmnewsrec.features.frozen import FrozenBuilder
from mmnewsrec.features.image import PixelBuilder, ProcessorGeometry
from mmnewsrec.features.store import Builder, FeatureSet, FeatureStore, Shard
from mmnewsrec.features.text import TokenBuilder
from mmnewsrec.features.vectors import VectorFileBuilder

DEFAULT_CACHE_DIR = Path("~/.cache/mmnewsrec/features")


def default_store(
    features: FeaturesConfig, cache_dir: str | Path | None = None, progress: bool = False, shard: Shard | None = None
) -> FeatureStore:
    root = cache_dir or features.cache_dir or DEFAULT_CACHE_DIR
    return FeatureStore(Path(root).expanduser(), progress=progress, shard=shard)


def frozen_builder(
    config: FrozenEncoderConfig, store: FeatureStore, missing: MissingImagePolicy, root: str | Path | None = None
) -> FrozenBuilder | VectorFileBuilder:
    """The builder of one frozen feature, with token and pixel builders matching its backbone, or
    the reader of its file of vectors (a relative path is under the dataset ``root``)."""
    if config.vectors:
        path = Path(config.vectors).expanduser()
        return VectorFileBuilder(path if path.is_absolute() or root is None else Path(root) / path, config.modality)
    tokens = pixels = None
    if config.modality in ("text", "blip"):
        tokens = TokenBuilder(config.model, {config.text_field: config.max_length}, revision=config.revision)
    if config.modality in ("image", "blip"):
        pixels = PixelBuilder(ProcessorGeometry.load(config.model, config.revision), missing)
    return FrozenBuilder(config, store, tokens=tokens, pixels=pixels)


@dataclass(frozen=True)
class NamedBuilder:
    name: str  # "tokens", "pixels", or "frozen:<name>"
    builder: Builder


def build_features(store: FeatureStore, builders: list[NamedBuilder], news: pa.Table) -> dict[str, FeatureSet]:
    """Reuses or builds every feature for ``news`` (its row order is the features' row order)."""
    return {named.name: store.features(named.builder, news) for named in builders}
