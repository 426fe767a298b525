"""The one feature planner: what a news encoder says it reads -> the builders that make it.

News encoders declare their needs from their own config (``feature_needs``); this module turns a
list of needs into feature-store builders, merging needs that share a cache. ``featurize``,
``train``, ``evaluate`` and the serving layer all plan through :func:`plan_builders`, so they
always build the same caches for the same config.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmnewsrec.config import FeaturesConfig, FrozenEncoderConfig, MissingImagePolicy, TextField
from mmnewsrec.errors import ConfigError
from mmnewsrec.features.backbones import load_config
from mmnewsrec.features.build import NamedBuilder, frozen_builder
from mmnewsrec.features.entities import EntityBuilder
from mmnewsrec.features.image import PixelBuilder, ProcessorGeometry
from mmnewsrec.features.store import FeatureStore
from mmnewsrec.features.text import TokenBuilder


@dataclass(frozen=True)
class TokensNeed:
    """Token ids and masks of one text field (``{field}_ids``, ``{field}_mask``)."""

    tokenizer: str
    field: TextField
    length: int
    revision: str | None = None


@dataclass(frozen=True)
class PixelsNeed:
    """Stored images sized for one image processor (``pixels``, ``has_image``)."""

    processor: str
    revision: str | None = None


@dataclass(frozen=True)
class FrozenNeed:
    """An entry of ``features.frozen`` by name (``frozen:{name}`` and its flags)."""

    name: str


@dataclass(frozen=True)
class LowerStatesNeed:
    """The hidden states entering the top ``top_layers`` layers of a text backbone, cached once
    (``frozen:lower_{field}`` with ``:mask``): what a text encoder with ``cache_frozen`` reads."""

    model: str
    field: TextField
    length: int
    top_layers: int
    revision: str | None = None


@dataclass(frozen=True)
class EntitiesNeed:
    """The news' knowledge entities as hashed bucket ids (``entity_ids``, ``entity_mask``,
    ``entity_confidence``), ``max_entities`` per news."""

    max_entities: int
    buckets: int


FeatureNeed = TokensNeed | PixelsNeed | FrozenNeed | LowerStatesNeed | EntitiesNeed


def lower_states_feature(field: str) -> str:
    """Name of the frozen feature holding a text backbone's cached lower-layer states."""
    return f"lower_{field}"


def plan_builders(
    needs: list[FeatureNeed],
    features: FeaturesConfig,
    missing: MissingImagePolicy,
    store: FeatureStore,
    root: str | None = None,
) -> list[NamedBuilder]:
    """The builders of ``needs``, in build order; token needs of one tokenizer share one cache.

    Raises:
        ConfigError: two tokenizers or two image processors in one plan, or a frozen feature
            that ``features.frozen`` does not define.
    """
    builders: list[NamedBuilder] = []
    tokens = [need for need in needs if isinstance(need, TokensNeed)]
    if tokens:
        if len({(need.tokenizer, need.revision) for need in tokens}) > 1:
            raise ConfigError(f"model.news: one tokenizer per model, got {sorted({n.tokenizer for n in tokens})}")
        lengths: dict[str, int] = {}
        for need in tokens:
            lengths[need.field] = max(lengths.get(need.field, 0), need.length)
        builders.append(NamedBuilder("tokens", TokenBuilder(tokens[0].tokenizer, lengths, revision=tokens[0].revision)))
    for need in dict.fromkeys(n for n in needs if isinstance(n, LowerStatesNeed)):
        builders.append(_lower_states_builder(need, store, missing))
    pixels = list(dict.fromkeys(need for need in needs if isinstance(need, PixelsNeed)))
    if len(pixels) > 1:
        raise ConfigError(f"model.news: one image processor per model, got {[p.processor for p in pixels]}")
    for need in pixels:
        geometry = ProcessorGeometry.load(need.processor, need.revision)
        builders.append(NamedBuilder("pixels", PixelBuilder(geometry, missing)))
    for need in dict.fromkeys(n for n in needs if isinstance(n, EntitiesNeed)):
        builders.append(NamedBuilder("entities", EntityBuilder(need.max_entities, need.buckets)))
    frozen = {f.name: f for f in features.frozen}
    for need in dict.fromkeys(n for n in needs if isinstance(n, FrozenNeed)):
        if need.name not in frozen:
            raise ConfigError(f"model.news: frozen feature {need.name!r} is not among features.frozen {sorted(frozen)}")
        builder = frozen_builder(frozen[need.name], store, missing, root)
        builders.append(NamedBuilder(f"frozen:{need.name}", builder))
    return builders


def declared_needs(features: FeaturesConfig) -> list[FeatureNeed]:
    """What a ``features`` config asks for by itself (``featurize`` builds it besides the model's needs)."""
    needs: list[FeatureNeed] = []
    if features.tokens is not None:
        t = features.tokens
        needs += [TokensNeed(t.tokenizer, field, length, t.revision) for field, length in t.lengths().items() if length]
    if features.pixels is not None:
        needs.append(PixelsNeed(features.pixels.processor, features.pixels.revision))
    needs += [FrozenNeed(f.name) for f in features.frozen]
    return needs


def _lower_states_builder(need: LowerStatesNeed, store: FeatureStore, missing: MissingImagePolicy) -> NamedBuilder:
    layers = int(getattr(load_config(need.model, need.revision), "num_hidden_layers", 0))
    if need.top_layers > layers:
        raise ConfigError(f"model.news.text.train_layers: {need.top_layers}, but {need.model} has {layers}")
    name = lower_states_feature(need.field)
    frozen = FrozenEncoderConfig(
        name=name,
        model=need.model,
        revision=need.revision,
        modality="text",
        pooling="tokens",
        text_field=need.field,
        max_length=need.length,
        layer=layers - need.top_layers,
        device="auto",
    )
    return NamedBuilder(f"frozen:{name}", frozen_builder(frozen, store, missing))
