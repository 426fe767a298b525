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
        news: the news encoder (its keys depend on ``model.news.type``).
        user: the user encoder.
        transformer: the sizes of the study's ranker (scorer ``transformer``).
        scorer: ``dot`` (NRMS), ``dot_bias``, ``popularity`` (log counters, see
            :mod:`mmnewsrec.models.scorers`) over a user vector, or ``transformer`` (the study's
            ranker, sized by ``transformer``) over the history sequence, which needs
            ``user.type: sequence``.
    """

    news: NewsEncoderConfig = field(default_factory=TextEncoderConfig)
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
