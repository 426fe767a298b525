"""Scorers: user state x candidate vectors (and what the log says about each candidate) -> click logits.

Every scorer is built as ``SCORERS.get(name)(dim, model_config)``. The user state is the user
encoder's output: a user vector (B, D) for these, the history sequence for the study's ranker
(:mod:`mmnewsrec.models.study_ranker`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmnewsrec.config import ModelConfig
from mmnewsrec.data.popularity import NEVER_SHOWN, STAT_NAMES
from mmnewsrec.registry import Registry

SCORERS: Registry = Registry("scorer")


@dataclass(frozen=True)
class ScorerCapabilities:
    """What a scorer can do beyond scoring, declared once on its class (``Scorer.capabilities``).

    Attributes:
        reads_log_counters: the score reads the candidates' log counters (``Batch.cand_stats``),
            so evaluation and serving must supply them.
        inner_product: the score is ``q(user) . c + o`` (:meth:`Scorer.as_inner_product`), so an
            inner-product index search over the news vectors gives the model's own ranking.
    """

    reads_log_counters: bool = False
    inner_product: bool = False


class Scorer(nn.Module):
    """Base of every scorer: user state x candidate vectors (x log counters) -> click logits."""

    capabilities = ScorerCapabilities()

    def as_inner_product(self, user_vecs: torch.Tensor) -> tuple[torch.Tensor, float]:
        """A query q and offset o with score(user, c) = q . c + o for every candidate c (what an
        inner-product index can search exactly); only for ``capabilities.inner_product`` scorers.

        Shape: (B, D) -> (B, D), float.
        """
        raise NotImplementedError(f"{type(self).__name__} is not an inner product of user and candidate")


@SCORERS.register("dot")
class DotScorer(Scorer):
    """Dot product (NRMS). Shape: user (B, D), candidates (B, C, D) -> logits (B, C)."""

    capabilities = ScorerCapabilities(inner_product=True)

    def __init__(self, dim: int = 0, config: ModelConfig | None = None):
        super().__init__()

    def forward(
        self, user_vecs: torch.Tensor, cand_vecs: torch.Tensor, cand_stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        return torch.einsum("bd,bcd->bc", user_vecs, cand_vecs)

    def as_inner_product(self, user_vecs: torch.Tensor) -> tuple[torch.Tensor, float]:
        return user_vecs, 0.0


@SCORERS.register("dot_bias")
class DotBiasScorer(Scorer):
    """Dot product plus a bias read from the candidate's own vector: how clickable a news looks to
    everyone (a telling title), which a dot product with a user vector cannot express alone.

    Shape: user (B, D), candidates (B, C, D) -> logits (B, C).
    """

    capabilities = ScorerCapabilities(inner_product=True)

    def __init__(self, dim: int, config: ModelConfig | None = None):
        super().__init__()
        self.bias = nn.Linear(dim, 1)

    def forward(
        self, user_vecs: torch.Tensor, cand_vecs: torch.Tensor, cand_stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        return torch.einsum("bd,bcd->bc", user_vecs, cand_vecs) + self.bias(cand_vecs).squeeze(-1)

    def as_inner_product(self, user_vecs: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(user + w) . c + b: the bias folds into the query. Shape: (B, D) -> (B, D), float."""
        return user_vecs + self.bias.weight[0], float(self.bias.bias.detach()[0])


_RECENT = STAT_NAMES.index("recent_clicks")


def _without_recent_term(state: dict, prefix: str, *args) -> None:
    """A run saved before the recent-popularity term had none: it loads with the term's weight at
    0, so it scores exactly as it did."""
    state.setdefault(prefix + "recent", torch.zeros(()))


@SCORERS.register("popularity")
class PopularityScorer(Scorer):
    """The NRMS dot product plus a popularity score that each user weighs (after PP-Rec, Qi et al.,
    ACL 2021, kept simple).

    A third term is the recent-popularity baseline, ``w log(1 + clicks in the last day)`` with
    ``w`` learned from 1, so that the model starts from that baseline's ranking where clicks follow
    recent popularity. The popularity score is a small MLP over the candidate's log counters
    (clicks and displays so far, clicks in the last day, age, smoothed click rate) and its news
    vector, so news never shown
    yet get a content-based prior instead of a zero count. A gate computed from the user vector
    decides how much popularity counts for that user. Without counters (a news just published, a
    caller that has none) every candidate is scored as never shown.

    Shape:
        user (B, D), candidates (B, C, D), cand_stats (B, C, F) or None -> logits (B, C).
    """

    # The popularity term depends on live counters: retrieve, then re-score.
    capabilities = ScorerCapabilities(reads_log_counters=True)

    def __init__(self, dim: int, config: ModelConfig | None = None, hidden: int = 64):
        super().__init__()
        self.popularity = nn.Sequential(nn.Linear(len(STAT_NAMES) + dim, hidden), nn.GELU(), nn.Linear(hidden, 1))
        self.gate = nn.Linear(dim, 1)
        # The learned popularity score starts at 0 (its last layer zeroed; the hidden layer still
        # gets gradients through it), so the first ranking is the personal score plus the
        # recent-popularity term below, not that plus a random function of the counters.
        nn.init.zeros_(self.popularity[-1].weight)
        nn.init.zeros_(self.popularity[-1].bias)
        # The recent-popularity baseline, log(1 + clicks in the last day), as a term of its own that
        # starts at weight 1: before the first step the ranking already holds what that baseline
        # knows, and training moves the weight where the data says.
        self.recent = nn.Parameter(torch.ones(()))
        self._register_load_state_dict_pre_hook(_without_recent_term)
        self.register_buffer("never_shown", torch.tensor(NEVER_SHOWN, dtype=torch.float32), persistent=False)

    def blend_parameters(self) -> list[nn.Parameter]:
        """The recent-popularity weight (see ``training.blend_lr``)."""
        return [self.recent]

    def forward(
        self, user_vecs: torch.Tensor, cand_vecs: torch.Tensor, cand_stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        personal = torch.einsum("bd,bcd->bc", user_vecs, cand_vecs)  # (B, C)
        if cand_stats is None:
            cand_stats = self.never_shown.expand(*cand_vecs.shape[:2], -1)  # (B, C, F)
        features = torch.cat([cand_stats.to(cand_vecs.dtype), cand_vecs], dim=-1)  # (B, C, F + D)
        popularity = self.popularity(features).squeeze(-1)  # (B, C)
        gate = torch.sigmoid(self.gate(user_vecs))  # (B, 1)
        recent = cand_stats[..., _RECENT].to(cand_vecs.dtype)  # (B, C) log(1 + clicks in the last day)
        return personal + gate * popularity + self.recent * recent
