"""The recommender's parts: news encoder (its configs: :mod:`mmnewsrec.config.news`), user encoder, scorer."""

from __future__ import annotations

from dataclasses import dataclass, field

from mmnewsrec.config.checks import _check_dropout, _check_positive, _divisor_near
from mmnewsrec.config.news import NewsEncoderConfig, TextEncoderConfig
from mmnewsrec.errors import ConfigError


@dataclass(frozen=True)
class UserEncoderConfig:
    """User encoder (registry name ``type``); ``nrms``: multi-head self-attention + additive attention;
    ``sequence``: the history vectors themselves, for a scorer that reads the whole sequence
    (``model.scorer: transformer``).

    Attributes:
        type: ``nrms`` or ``sequence`` (a name registered in ``USER_ENCODERS``).
        heads: self-attention heads over the history (must divide ``model.news.dim``).
        query_dim: size of the additive attention's query.
        dropout: dropout on the history vectors and the attention.
        profile: also give the model the history's subcategory and category shares (the
            ``category-profile`` baseline's signal), scored against each candidate's codes with
            learned weights (see :mod:`mmnewsrec.models.profile`).
        profile_posterior: with ``profile``, also the log of those shares smoothed towards a
            learned prior (a Dirichlet posterior: ``log((count + alpha prior) / (clicks + alpha))``),
            so that a short history counts less than a long one, an empty history falls back to
            the prior, and a subcategory the user never clicked is not scored as if it were
            certain to be ignored.
        content_init: with ``profile``, the learned scale of the user vector's content part
            (the inner encoder's output) at the start of training. 1 is NRMS's start; 0 starts
            from the profile's ranking alone (a smoothed category-profile baseline), the content
            part growing only as training finds it helps (with ``training.eval_at_start`` the
            initial weights compete for the best checkpoint).
    """

    type: str = "nrms"
    heads: int = 16
    query_dim: int = 200
    dropout: float = 0.2
    profile: bool = False
    profile_posterior: bool = False
    content_init: float = 1.0

    def __post_init__(self) -> None:
        _check_positive("model.user", self, ("heads", "query_dim"))
        _check_dropout("model.user.dropout", self.dropout)
        if self.profile_posterior and not self.profile:
            raise ConfigError(
                "model.user.profile_posterior: smooths the category profile; set model.user.profile: true"
            )
        if not 0 <= self.content_init < float("inf"):
            raise ConfigError(f"model.user.content_init: must be a number >= 0 (1: NRMS), got {self.content_init}")
        if self.content_init != 1.0 and not self.profile:
            raise ConfigError(
                "model.user.content_init: scales the content part beside the category profile; "
                "set model.user.profile: true (or remove the key)"
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
class EntityConfig:
    """The news' knowledge entities in the model (MIND's ``title_entities`` / ``abstract_entities``).

    Attributes:
        branch: an entity branch in the news encoder: additive attention over the embeddings of the
            news' entities, projected and added to the news vector (zero for a news without one).
        profile: an entity profile of the user: for each of the candidate's entities, the log of
            the share of the history's clicks that name it, smoothed towards a learned prior (as
            ``model.user.profile_posterior`` does for subcategories), averaged and weighed by a
            learned scale, plus a learned offset for candidates that name any entity.
        dim: size of the entity embeddings; with ``pretrained`` vectors it must be theirs (100 for
            MIND's TransE vectors).
        buckets: entity ids are hashed into this many buckets, each with its own embedding, so an
            entity never seen in training still has one.
        profile_buckets: buckets of the profile (a divisor of ``buckets``): the user and news
            vectors grow by about twice this.
        max_per_news: entities kept per news, its title's first.
        pretrained: start the embeddings from the ``entity_embedding.vec`` files of the dataset's
            splits when they exist (the mean vector of a bucket's entities); learned from scratch
            otherwise.
    """

    branch: bool = True
    profile: bool = True
    dim: int = 100
    buckets: int = 4096
    profile_buckets: int = 256
    max_per_news: int = 8
    pretrained: bool = True

    def __post_init__(self) -> None:
        _check_positive("model.entities", self, ("dim", "buckets", "profile_buckets", "max_per_news"))
        if not (self.branch or self.profile):
            raise ConfigError("model.entities: set branch or profile (or both), or remove the section")
        if self.buckets % self.profile_buckets:
            raise ConfigError(
                f"model.entities.profile_buckets: {self.profile_buckets} must divide model.entities.buckets "
                f"{self.buckets} (e.g. {_divisor_near(self.buckets, self.profile_buckets)})"
            )


@dataclass(frozen=True)
class ModelConfig:
    """The recommender's parts.

    Attributes:
        news: the news encoder (its keys depend on ``model.news.type``).
        user: the user encoder.
        transformer: the sizes of the study's ranker (scorer ``transformer``).
        entities: read the news' knowledge entities (an entity branch, an entity profile of the
            user); null (the default) reads none.
        scorer: ``dot`` (NRMS), ``dot_bias``, ``popularity`` (log counters, see
            :mod:`mmnewsrec.models.scorers`) over a user vector, or ``transformer`` (the study's
            ranker, sized by ``transformer``) over the history sequence, which needs
            ``user.type: sequence``.
    """

    news: NewsEncoderConfig = field(default_factory=TextEncoderConfig)
    user: UserEncoderConfig = field(default_factory=UserEncoderConfig)
    scorer: str = "dot"
    transformer: TransformerRankerConfig = field(default_factory=TransformerRankerConfig)
    entities: EntityConfig | None = None

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
            if self.entities is not None:
                raise ConfigError("model.entities: not available with model.user.type: sequence")
            return
        if self.news.dim % self.user.heads:
            raise ConfigError(
                f"model.user.heads: {self.user.heads} must divide model.news.dim {self.news.dim} "
                f"(e.g. heads {_divisor_near(self.news.dim, self.user.heads)})"
            )
