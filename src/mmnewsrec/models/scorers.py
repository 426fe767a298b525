"""Scorers: user state x candidate vectors (and what the log says about each candidate) -> click logits.

Every scorer is built as ``SCORERS.get(name)(dim, model_config)``. The user state is the user
encoder's output: a user vector (B, D) for these, the history sequence for the study's ranker
(:mod:`mmnewsrec.models.study_ranker`).
"""

from __future__ import annotations

import torch
from torch import nn

from mmnewsrec.config import ModelConfig
from mmnewsrec.data.popularity import NEVER_SHOWN, STAT_NAMES
from mmnewsrec.registry import Registry

SCORERS: Registry = Registry("scorer")


@SCORERS.register("dot")
class DotScorer(nn.Module):
    """Dot product (NRMS). Shape: user (B, D), candidates (B, C, D) -> logits (B, C)."""

    #: Whether the scorer reads the candidates' log counters (``Batch.cand_stats``).
    needs_stats = False

    def __init__(self, dim: int = 0, config: ModelConfig | None = None):
        super().__init__()

    def forward(
        self, user_vecs: torch.Tensor, cand_vecs: torch.Tensor, cand_stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        return torch.einsum("bd,bcd->bc", user_vecs, cand_vecs)

    def as_inner_product(self, user_vecs: torch.Tensor) -> tuple[torch.Tensor, float] | None:
        """A query q and offset o with score(user, c) = q . c + o for every candidate c (what an
        inner-product index can search exactly); None when the scorer is not of that form.

        Shape: (B, D) -> (B, D), float.
        """
        return user_vecs, 0.0


@SCORERS.register("dot_bias")
class DotBiasScorer(nn.Module):
    """Dot product plus a bias read from the candidate's own vector: how clickable a news looks to
    everyone (a telling title), which a dot product with a user vector cannot express alone.

    Shape: user (B, D), candidates (B, C, D) -> logits (B, C).
    """

    needs_stats = False

    def __init__(self, dim: int, config: ModelConfig | None = None):
        super().__init__()
        self.bias = nn.Linear(dim, 1)

    def forward(
        self, user_vecs: torch.Tensor, cand_vecs: torch.Tensor, cand_stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        return torch.einsum("bd,bcd->bc", user_vecs, cand_vecs) + self.bias(cand_vecs).squeeze(-1)

    def as_inner_product(self, user_vecs: torch.Tensor) -> tuple[torch.Tensor, float] | None:
        """(user + w) . c + b: the bias folds into the query. Shape: (B, D) -> (B, D), float."""
        return user_vecs + self.bias.weight[0], float(self.bias.bias.detach()[0])


@SCORERS.register("popularity")
class PopularityScorer(nn.Module):
    """The NRMS dot product plus a popularity score that each user weighs (after PP-Rec, Qi et al.,
    ACL 2021, kept simple).

    The popularity score is a small MLP over the candidate's log counters (clicks and displays so
    far, clicks in the last day, age, smoothed click rate) and its news vector, so news never shown
    yet get a content-based prior instead of a zero count. A gate computed from the user vector
    decides how much popularity counts for that user. Without counters (a news just published, a
    caller that has none) every candidate is scored as never shown.

    Shape:
        user (B, D), candidates (B, C, D), cand_stats (B, C, F) or None -> logits (B, C).
    """

    needs_stats = True

    def __init__(self, dim: int, config: ModelConfig | None = None, hidden: int = 64):
        super().__init__()
        self.popularity = nn.Sequential(nn.Linear(len(STAT_NAMES) + dim, hidden), nn.GELU(), nn.Linear(hidden, 1))
        self.gate = nn.Linear(dim, 1)
        self.register_buffer("never_shown", torch.tensor(NEVER_SHOWN, dtype=torch.float32), persistent=False)

    def forward(
        self, user_vecs: torch.Tensor, cand_vecs: torch.Tensor, cand_stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        personal = torch.einsum("bd,bcd->bc", user_vecs, cand_vecs)  # (B, C)
        if cand_stats is None:
            cand_stats = self.never_shown.expand(*cand_vecs.shape[:2], -1)  # (B, C, F)
        features = torch.cat([cand_stats.to(cand_vecs.dtype), cand_vecs], dim=-1)  # (B, C, F + D)
        popularity = self.popularity(features).squeeze(-1)  # (B, C)
        gate = torch.sigmoid(self.gate(user_vecs))  # (B, 1)
        return personal + gate * popularity

    def as_inner_product(self, user_vecs: torch.Tensor) -> tuple[torch.Tensor, float] | None:
        return None  # the popularity term depends on live counters: retrieve, then re-score
