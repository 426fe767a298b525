"""The study's ranker for its frozen-feature experiments, as the ``transformer`` scorer.

A Transformer encoder reads the user's history vectors followed by one candidate's vector (with
sinusoidal positions), the outputs are mean-pooled over the sequence, and stacked linear layers
with no activations between them (768 -> 256 -> 16 -> 2 in the study) give two logits: no click,
click. The study trained it pointwise with class-weighted cross-entropy
(``training.loss: pointwise_weighted_ce``); it can equally be trained listwise.

The score is the click log-odds ``z_click - z_no_click``: the two-class softmax's click
probability is ``sigmoid`` of it, so ranking by it is ranking by that probability, and the
listwise loss and evaluation read it like any other scorer's logit.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mmnewsrec.config import ModelConfig
from mmnewsrec.features.encoding import masked_mean
from mmnewsrec.models.scorers import SCORERS, Scorer, ScorerCapabilities
from mmnewsrec.models.user_encoders import HistorySequenceEncoder


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The fixed encoding of Vaswani et al. (2017). Shape: -> (length, dim)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (dim/2,)
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


@SCORERS.register("transformer")
class TransformerRanker(Scorer):
    """Scores each candidate by a Transformer over (history..., candidate), pooled, then linear layers.

    Each token's position is the number of real tokens before it, so the candidate sits right after
    the last click whatever the padding, and padded slots (masked keys) never change a score.
    Sequences are processed in chunks of at most ``chunk_tokens`` tokens to bound memory when an
    impression has hundreds of candidates.

    Shape:
        user state (B, H, D + 1) from :class:`HistorySequenceEncoder`, candidates (B, C, D) -> (B, C).
    """

    # Reads the sequence with each candidate: retrieve, then re-score.
    capabilities = ScorerCapabilities()

    def __init__(self, dim: int, config: ModelConfig, chunk_tokens: int = 1 << 15):
        super().__init__()
        ranker = config.transformer
        self.d_model = ranker.d_model
        self.chunk_tokens = chunk_tokens
        self.input = nn.Identity() if dim == ranker.d_model else nn.Linear(dim, ranker.d_model)
        self.dropout = nn.Dropout(ranker.dropout)
        layer = nn.TransformerEncoderLayer(
            ranker.d_model, ranker.heads, ranker.feedforward, ranker.dropout, batch_first=True
        )
        # No nested tensors: padded positions are computed like real ones, so outputs do not depend
        # on how much padding a batch has.
        self.encoder = nn.TransformerEncoder(layer, ranker.layers, enable_nested_tensor=False)
        sizes = (ranker.d_model, *ranker.hidden, 2)
        self.head = nn.Sequential(*(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)))
        self._positions = torch.zeros((0, ranker.d_model))

    def positions(self, length: int, device: torch.device) -> torch.Tensor:
        """Shape: -> (length, d_model), cached."""
        if len(self._positions) < length:
            self._positions = sinusoidal_positions(max(length, 64), self.d_model)
        return self._positions[:length].to(device)

    def click_logits(self, user_state: torch.Tensor, cand_vecs: torch.Tensor) -> torch.Tensor:
        """The head's two logits (no click, click) for every candidate.

        Shape: (B, H, D + 1), (B, C, D) -> (B, C, 2).
        """
        hist, mask = HistorySequenceEncoder.unpack(user_state)  # (B, H, D), (B, H)
        b, h, d = hist.shape
        c = cand_vecs.shape[1]
        order = torch.cumsum(mask.long(), dim=1) - 1  # (B, H): real tokens before each slot
        hist_pos = order.clamp(min=0)
        cand_pos = mask.sum(dim=1)  # (B,): the candidate follows the last click
        table = self.positions(h + 1, hist.device).to(hist.dtype)
        hist_in = self.input(hist) + table[hist_pos]  # (B, H, d_model)
        cand_in = self.input(cand_vecs) + table[cand_pos].unsqueeze(1)  # (B, C, d_model)
        per_chunk = max(1, self.chunk_tokens // (h + 1))
        pairs = torch.arange(b * c, device=hist.device)  # (N,) = (user, candidate) pairs, row-major
        out = []
        for start in range(0, len(pairs), per_chunk):
            index = pairs[start : start + per_chunk]
            users = torch.div(index, c, rounding_mode="floor")  # (n,)
            tokens = torch.cat([hist_in[users], cand_in.reshape(b * c, 1, -1)[index]], dim=1)  # (n, H + 1, d_model)
            real = torch.cat([mask[users], mask.new_ones((len(index), 1))], dim=1)  # (n, H + 1)
            encoded = self.encoder(self.dropout(tokens), src_key_padding_mask=~real)  # (n, H + 1, d_model)
            out.append(self.head(masked_mean(encoded, real)))  # pooled (n, d_model) -> (n, 2)
        return torch.cat(out).view(b, c, 2)

    def forward(
        self, user_state: torch.Tensor, cand_vecs: torch.Tensor, cand_stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = self.click_logits(user_state, cand_vecs)  # (B, C, 2)
        return logits[..., 1] - logits[..., 0]
