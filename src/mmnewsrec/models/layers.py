"""Shared building blocks."""

from __future__ import annotations

import torch
from torch import nn


class AdditiveAttention(nn.Module):
    """Additive attention pooling (Bahdanau et al.; NRMS's word- and news-level aggregation).

    ``a_i = softmax(q^T tanh(W h_i + b))`` over real positions; positions with ``mask`` False get
    weight 0, and a row with no real position pools to a zero vector (never NaN).

    Shape:
        inputs (B, L, D), mask (B, L) bool -> (B, D).
    """

    def __init__(self, dim: int, query_dim: int = 200):
        super().__init__()
        self.proj = nn.Linear(dim, query_dim)
        self.query = nn.Linear(query_dim, 1, bias=False)

    def weights(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The attention weights. Shape: (B, L, D), (B, L) -> (B, L), rows summing to 1 (0 if all padding)."""
        scores = self.query(torch.tanh(self.proj(inputs))).squeeze(-1)  # (B, L)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        return torch.softmax(scores, dim=-1) * mask  # all-padding rows: zeros

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.bmm(self.weights(inputs, mask).unsqueeze(1), inputs).squeeze(1)  # (B, D)
