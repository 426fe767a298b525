"""User encoders: click history vectors -> one user vector."""

from __future__ import annotations

import torch
from torch import nn

from mmnewsrec.config import UserEncoderConfig
from mmnewsrec.models.layers import AdditiveAttention
from mmnewsrec.registry import Registry

USER_ENCODERS: Registry = Registry("user encoder")


@USER_ENCODERS.register("nrms")
class NRMSUserEncoder(nn.Module):
    """NRMS user encoder (Wu et al., EMNLP 2019): multi-head self-attention over the clicked news,
    then additive attention.

    A user without history gets a learned vector: self-attention over zero keys is undefined
    (softmax over nothing), so those rows attend to one dummy position and their result is
    replaced.

    Shape:
        hist_vecs (B, H, D), hist_mask (B, H) bool -> (B, D).
    """

    def __init__(self, dim: int, config: UserEncoderConfig):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, config.heads, dropout=config.dropout, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.pool = AdditiveAttention(dim, config.query_dim)
        self.empty_user = nn.Parameter(torch.zeros(dim))

    def history_weights(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        """How much each clicked news weighs in the user vector: the additive attention's weights.

        Shape:
            (B, H, D), (B, H) bool -> (B, H), each real row summing to 1 (an empty history: zeros).
        """
        safe_mask = hist_mask.clone()
        safe_mask[~hist_mask.any(dim=1), 0] = True
        hist_vecs = self.dropout(hist_vecs)
        attended, _ = self.attention(hist_vecs, hist_vecs, hist_vecs, key_padding_mask=~safe_mask, need_weights=False)
        return self.pool.weights(self.dropout(attended), safe_mask) * hist_mask

    def forward(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        empty = ~hist_mask.any(dim=1)  # (B,)
        safe_mask = hist_mask.clone()
        safe_mask[empty, 0] = True  # keeps softmax defined; the row is replaced below
        hist_vecs = self.dropout(hist_vecs)
        attended, _ = self.attention(hist_vecs, hist_vecs, hist_vecs, key_padding_mask=~safe_mask, need_weights=False)
        user = self.pool(self.dropout(attended), safe_mask)  # (B, D)
        return torch.where(empty.unsqueeze(-1), self.empty_user.to(user.dtype).expand_as(user), user)
