"""The news encoders' configs: one class per encoder type, selected by ``type`` when a config loads.

Every class here is registered under its encoder's name (:func:`register_news_config`; an encoder
registered in :data:`mmnewsrec.models.news_encoders.NEWS_ENCODERS` brings its own), so that a YAML
``model.news`` section is read into the class of its ``type``: a key that type does not read is
refused when the file loads, naming it and the types that do read it. :func:`migrate_news` turns a
section of the earlier flat layout (one class for every type, ``precomputed: [text, image]``) into
this one, for the message that says what to change and for run folders written before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from mmnewsrec.config.backbone import BackboneConfig
from mmnewsrec.config.checks import _check_dropout, _check_positive, check_choices
from mmnewsrec.config.features import TextField
from mmnewsrec.errors import ConfigError

logger = logging.getLogger(__name__)

FusionMode = Literal["hadamard", "concat", "gate"]


Projection = Literal["linear", "mlp", "none"]


@dataclass(frozen=True)
class NewsEncoderConfig:
    """What every news encoder reads; each encoder type extends it with its own keys.

    Types: ``text`` (:class:`TextEncoderConfig`), ``vision`` (:class:`VisionEncoderConfig`),
    ``precomputed`` (:class:`PrecomputedEncoderConfig`), ``word`` (:class:`WordEncoderConfig`),
    ``fusion`` (:class:`FusionEncoderConfig`), ``blip`` (:class:`BlipEncoderConfig`).

    Attributes:
        type: the news encoder (a name registered in ``NEWS_ENCODERS``); it chooses which other
            keys this section may hold.
        dim: size of the news vectors (every encoder projects to it).
        dropout: dropout on the encoder's head.
    """

    type: str = "text"
    dim: int = 256
    dropout: float = 0.2

    def __post_init__(self) -> None:
        registered = NEWS_CONFIGS.get(self.type)
        if registered is not None and not isinstance(self, registered):
            raise ConfigError(
                f"model.news.type: {self.type!r} is read by {registered.__name__}, not {type(self).__name__}"
            )
        check_choices(self, "model.news")
        _check_positive("model.news", self, ("dim",))
        _check_dropout("model.news.dropout", self.dropout)

    @classmethod
    def variant(cls, values: Mapping[str, Any], prefix: str) -> type[NewsEncoderConfig]:
        """The class that reads ``values`` (the registered class of its ``type``)."""
        if cls is not NewsEncoderConfig:
            return cls
        name = values.get("type", cls.type)
        if name not in NEWS_CONFIGS:
            raise ConfigError(f"{prefix}type: {name!r} is not one of {sorted(NEWS_CONFIGS)}")
        return NEWS_CONFIGS[name]

    @classmethod
    def unknown_key(cls, key: str, values: Mapping[str, Any], prefix: str) -> str:
        """The message for a key this type does not read: which types do, or what an old one became."""
        old = migrate_news(values)[1]
        if old and _flat_layout(values):
            return (
                f"{prefix.rstrip('.')}: written in the layout before one config per encoder type; change: "
                + "; ".join(old)
            )
        reads = sorted(f.name for f in fields(cls) if f.init)
        readers = sorted(name for name, other in NEWS_CONFIGS.items() if key in {f.name for f in fields(other)})
        if not readers:
            return f"{prefix}{key}: unknown key; valid keys under {prefix!r} for type {cls.type!r} are {reads}"
        verb = "does" if len(readers) == 1 else "do"
        return (
            f"{prefix}{key}: the {cls.type!r} encoder does not read this key (it reads {reads}); "
            f"{' and '.join(readers)} {verb}: remove it (an override: ~{prefix}{key}), or choose that model.news.type"
        )


#: Encoder type -> the config class that reads its section (filled by :func:`register_news_config`).
NEWS_CONFIGS: dict[str, type[NewsEncoderConfig]] = {}


def register_news_config(name: str, config: type[NewsEncoderConfig]) -> None:
    """Makes ``config`` the class that reads ``model.news`` sections of ``type: name``."""
    if not (isinstance(config, type) and issubclass(config, NewsEncoderConfig)):
        raise TypeError(f"news encoder {name!r}: its config_class must subclass NewsEncoderConfig, got {config!r}")
    if NEWS_CONFIGS.get(name, config) is not config:
        raise ValueError(f"news encoder {name!r} already reads its config with {NEWS_CONFIGS[name].__name__}")
    if config.type != name:
        raise ValueError(f"{config.__name__}.type defaults to {config.type!r}; a {name!r} config must default to it")
    NEWS_CONFIGS[name] = config


def _registered(name: str):
    def add(config: type[NewsEncoderConfig]) -> type[NewsEncoderConfig]:
        register_news_config(name, config)
        return config

    return add


@dataclass(frozen=True)
class FeatureBranch:
    """A fusion branch read from the feature store instead of a backbone.

    Attributes:
        feature: the ``features.frozen`` entry (by its ``name``) the branch reads.
    """

    _alias: ClassVar[str] = "branch"  # how its messages name it; loaded from a file, its place

    feature: str

    def __post_init__(self) -> None:
        if not self.feature:
            raise ConfigError("branch.feature: name the features.frozen entry this branch reads")


@_registered("text")
@dataclass(frozen=True)
class TextEncoderConfig(NewsEncoderConfig):
    """``text``: a pretrained text backbone (BERT, MiniLM, ...) over one tokenised field, pooled
    and projected to ``dim``.

    Attributes:
        text: the backbone.
        text_field: which tokenised text the encoder reads.
        max_length: token width of that text.
        use_category: add category and subcategory embeddings to the text vector.
    """

    type: str = "text"
    text: BackboneConfig | None = None
    text_field: TextField = "title"
    max_length: int = 30
    use_category: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_length(self.max_length)


@_registered("vision")
@dataclass(frozen=True)
class VisionEncoderConfig(NewsEncoderConfig):
    """``vision``: a vision backbone (ViT, ...) over the stored pixels, pooled and projected; a news
    without an image gets a learned vector.

    Attributes:
        vision: the backbone.
    """

    type: str = "vision"
    vision: BackboneConfig | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vision is not None and self.vision.cache_frozen:
            raise ConfigError("model.news.vision.cache_frozen: hidden-state caching is for text backbones")


@_registered("precomputed")
@dataclass(frozen=True)
class PrecomputedEncoderConfig(NewsEncoderConfig):
    """``precomputed``: frozen vectors from the feature store under a trainable projection (the
    study's frozen experiments).

    Attributes:
        feature: the ``features.frozen`` entry (by its ``name``) the encoder reads, text or image.
        projection: how the feature is mapped to ``dim``: ``linear``, ``mlp`` (linear, GELU,
            linear) to let the model pick non-linear combinations of frozen features, or ``none``
            (the frozen vector as it is, as the study's frozen experiments fed their ranker;
            ``dim`` must then equal the feature's size).
        use_category: add category and subcategory embeddings (to a text feature only).
    """

    type: str = "precomputed"
    feature: str = ""
    projection: Projection = "linear"
    use_category: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()


@_registered("word")
@dataclass(frozen=True)
class WordEncoderConfig(NewsEncoderConfig):
    """``word``: the classic NRMS news encoder (word embeddings, multi-head self-attention, additive
    attention), no pretraining; token ids come from ``features.tokens.tokenizer``.

    Attributes:
        text_field: which tokenised text the encoder reads.
        max_length: token width of that text.
        heads: self-attention heads (must divide ``dim``).
        word_dim: word embedding size.
    """

    type: str = "word"
    text_field: TextField = "title"
    max_length: int = 30
    heads: int = 16
    word_dim: int = 300

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_length(self.max_length)
        _check_positive("model.news", self, ("heads", "word_dim"))
        if self.dim % self.heads:
            raise ConfigError(f"model.news.heads: {self.heads} must divide model.news.dim {self.dim}")


@_registered("fusion")
@dataclass(frozen=True)
class FusionEncoderConfig(NewsEncoderConfig):
    """``fusion``: a text branch and an image branch combined into one news vector. Each branch is a
    backbone (``{model: ...}``) or a frozen feature (``{feature: NAME}``).

    Attributes:
        text: the text branch: a text backbone or a frozen text feature.
        image: the image branch: a vision backbone or a frozen image feature.
        fusion: ``hadamard`` (``t * v``, the study's; the text vector alone without an image),
            ``concat`` (``W [t; v; has_image]``) or ``gate`` (``t + sigmoid(W [t; v]) * v``).
        text_field: which tokenised text a text backbone reads.
        max_length: token width of that text.
        use_category: add category and subcategory embeddings to the text branch.
        projection: how a frozen feature branch is mapped to ``dim`` (as ``precomputed``'s).
    """

    type: str = "fusion"
    text: BackboneConfig | FeatureBranch | None = None
    image: BackboneConfig | FeatureBranch | None = None
    fusion: FusionMode = "hadamard"
    text_field: TextField = "title"
    max_length: int = 30
    use_category: bool = False
    projection: Projection = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_length(self.max_length)
        if isinstance(self.image, BackboneConfig) and self.image.cache_frozen:
            raise ConfigError("model.news.image.cache_frozen: hidden-state caching is for text backbones")

    def branch(self, name: Literal["text", "image"]) -> NewsEncoderConfig:
        """The config of one branch as an encoder of its own (``text``, ``vision`` or ``precomputed``),
        with this section's ``dim``, ``dropout`` and the keys that branch reads.

        Raises:
            ConfigError: the branch is not set.
        """
        source = getattr(self, name)
        if source is None:
            kind = "text" if name == "text" else "vision"
            raise ConfigError(
                f"model.news.{name}: a fusion encoder needs its {name} branch: a {kind} backbone "
                f"({name}: {{model: NAME}}) or a frozen feature ({name}: {{feature: NAME}})"
            )
        common = {"dim": self.dim, "dropout": self.dropout}
        if isinstance(source, FeatureBranch):
            category = self.use_category and name == "text"
            return PrecomputedEncoderConfig(
                feature=source.feature, projection=self.projection, use_category=category, **common
            )
        if name == "text":
            return TextEncoderConfig(
                text=source,
                text_field=self.text_field,
                max_length=self.max_length,
                use_category=self.use_category,
                **common,
            )
        return VisionEncoderConfig(vision=source, **common)


@_registered("blip")
@dataclass(frozen=True)
class BlipEncoderConfig(NewsEncoderConfig):
    """``blip``: BLIP's image-grounded text encoder (the title cross-attending the image), frozen
    or trainable, pooled and projected.

    Attributes:
        backbone: the BLIP model (its ``train_layers`` apply to the text and the vision model).
        text_field: which tokenised text the encoder reads.
        max_length: token width of that text.
    """

    type: str = "blip"
    backbone: BackboneConfig | None = None
    text_field: TextField = "title"
    max_length: int = 30

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_length(self.max_length)
        if self.backbone is not None and (self.backbone.cache_frozen or self.backbone.lora is not None):
            raise ConfigError("model.news.backbone: cache_frozen and lora are not available for the blip encoder")


def _check_length(max_length: int) -> None:
    if max_length < 2:
        raise ConfigError(f"model.news.max_length: must be >= 2, got {max_length}")


# The earlier flat layout: every key of every type in one class, with these defaults.
_FLAT_DEFAULTS: dict[str, Any] = {
    "text": None,
    "vision": None,
    "text_field": "title",
    "max_length": 30,
    "precomputed": [],
    "fusion": "hadamard",
    "use_category": False,
    "projection": "linear",
    "heads": 16,
    "word_dim": 300,
}


def migrate_news(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A ``model.news`` section of the earlier flat layout in this one, and the changes, in words.

    The flat layout named frozen features in a list (``precomputed: [text, image]``, "" for a
    backbone), called the fusion image backbone ``vision`` and the BLIP model ``text``, and wrote
    every key of every type (a saved run's config has them all, at their defaults). A section in
    this layout comes back unchanged, with no changes.
    """
    values = dict(values)
    kind = values.get("type", "text")
    config = NEWS_CONFIGS.get(kind)
    if config is None:
        return values, []
    reads = {f.name for f in fields(config)}
    changes = []
    precomputed = values.pop("precomputed", None)
    if precomputed is not None:
        names = [*(precomputed or []), "", ""][:2] if isinstance(precomputed, (list, tuple)) else [precomputed, ""]
        if kind == "precomputed" and names[0]:
            values["feature"] = names[0]
            changes.append(f"precomputed: [{names[0]}] -> feature: {names[0]}")
        elif kind == "fusion":
            for branch, name in zip(("text", "image"), names, strict=True):
                if name:
                    values[branch] = {"feature": name}
                    changes.append(f"precomputed[{('text', 'image').index(branch)}] -> {branch}: {{feature: {name}}}")
        elif names[0]:
            changes.append(f"precomputed: {list(precomputed)} -> remove it (the {kind!r} encoder reads no feature)")
        else:
            changes.append("precomputed: [] -> remove it")
    if kind == "fusion" and "vision" in values:
        vision = values.pop("vision")
        if vision is not None:
            values["image"] = vision
            changes.append("vision: -> image: (the image branch)")
    if kind == "blip" and "text" in values:
        values["backbone"] = values.pop("text")
        changes.append("text: -> backbone: (the BLIP model)")
    for key in sorted(set(values) & set(_FLAT_DEFAULTS) - reads):
        if values[key] == _FLAT_DEFAULTS[key] or values[key] is None:
            del values[key]
            changes.append(f"{key}: remove it (a {kind!r} encoder does not read it)")
    return values, changes


def _flat_layout(values: Mapping[str, Any]) -> bool:
    """Whether a ``model.news`` section uses a key that only the earlier flat layout had."""
    kind = values.get("type", "text")
    return "precomputed" in values or (kind == "fusion" and "vision" in values) or (kind == "blip" and "text" in values)


def read_saved_config(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A saved run's config (``config.yaml``) in this layout: a ``model.news`` section of the earlier
    flat one is migrated (:func:`migrate_news`) and ``data.images.size``, which nothing read, is
    dropped, with a warning naming ``where`` it came from. Anything else is left to the loader."""
    values = dict(values)
    model, data = values.get("model"), values.get("data")
    if isinstance(model, Mapping) and isinstance(model.get("news"), Mapping):
        news, changes = migrate_news(model["news"])
        if changes:
            logger.warning("%s: model.news in the earlier layout, read as: %s", where, "; ".join(changes))
            values["model"] = {**model, "news": news}
    if isinstance(data, Mapping) and isinstance(data.get("images"), Mapping) and "size" in data["images"]:
        images = {key: value for key, value in data["images"].items() if key != "size"}
        logger.warning("%s: data.images.size is no longer a key (nothing read it): ignored", where)
        values["data"] = {**data, "images": images}
    return values
