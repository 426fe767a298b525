"""Scorers: user vector x candidate vectors -> click logits."""

from __future__ import annotations

import torch
from torch import nn

from mmnewsrec.registry import Registry

SCORERS: Registry = Registry("scorer")


@SCORERS.register("dot")
class DotScorer(nn.Module):
    """Dot product (NRMS). Shape: user (B, D), candidates (B, C, D) -> logits (B, C)."""

    def forward(self, user_vecs: torch.Tensor, cand_vecs: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bd,bcd->bc", user_vecs, cand_vecs)
