"""User encoders: click history vectors -> one user vector."""

from __future__ import annotations

import torch
from torch import nn

from mmnewsrec.config import UserEncoderConfig
from mmnewsrec.features.encoding import masked_mean
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


@USER_ENCODERS.register("sequence")
class HistorySequenceEncoder(nn.Module):
    """The click history itself as the user's state, for a scorer that reads the whole sequence
    together with each candidate (``model.scorer: transformer``, the study's ranker).

    The state is one tensor, so evaluation, serving and the user cache carry it as they carry a
    user vector: the history vectors (zeros at padding) with one more channel that is 1.0 at real
    positions and 0.0 at padding (:meth:`unpack` gives the bool mask back).

    Shape:
        hist_vecs (B, H, D), hist_mask (B, H) bool -> (B, H, D + 1).
    """

    def __init__(self, dim: int, config: UserEncoderConfig):
        super().__init__()
        self.dim = dim

    def forward(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        real = hist_mask.unsqueeze(-1)  # (B, H, 1)
        vectors = torch.where(real, hist_vecs, torch.zeros_like(hist_vecs))  # padding never leaks
        return torch.cat([vectors, real.to(hist_vecs.dtype)], dim=-1)

    @staticmethod
    def unpack(state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape: (B, H, D + 1) -> vectors (B, H, D), mask (B, H) bool."""
        return state[..., :-1], state[..., -1] > 0.5

    def query(self, state: torch.Tensor) -> torch.Tensor:
        """A vector to retrieve candidates with before the sequence scorer re-ranks them: the mean
        of the history vectors (zeros for an empty history).

        Shape: (B, H, D + 1) -> (B, D).
        """
        vectors, mask = self.unpack(state)
        return masked_mean(vectors, mask)
