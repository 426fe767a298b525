"""The recommender: a news encoder, a user encoder and a scorer, composed."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mmnewsrec.batching.batch import Batch
from mmnewsrec.models.news_encoders import NewsEncoder

#: Gathers the news encoder's inputs for catalogue rows (U,) onto the model's device.
InputGatherer = Callable[[torch.Tensor], dict[str, torch.Tensor]]


class NewsRecommender(nn.Module):
    """NRMS-style recommender (Wu et al., EMNLP 2019) with injected parts.

    ``encode_news`` -> ``encode_user`` -> ``score`` is the whole model; ``forward`` runs them for a
    batch, and the fast evaluation path calls the same three methods on cached news vectors.
    Everything returns logits.
    """

    def __init__(self, news_encoder: NewsEncoder, user_encoder: nn.Module, scorer: nn.Module):
        super().__init__()
        self.news_encoder = news_encoder
        self.user_encoder = user_encoder
        self.scorer = scorer

    def encode_news(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Shape: per-news inputs of U news -> (U, D)."""
        return self.news_encoder(inputs)

    def encode_user(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        """Shape: (B, H, D), (B, H) bool -> (B, D)."""
        return self.user_encoder(hist_vecs, hist_mask)

    def score(self, user_vecs: torch.Tensor, cand_vecs: torch.Tensor) -> torch.Tensor:
        """Shape: (B, D), (B, C, D) -> logits (B, C)."""
        return self.scorer(user_vecs, cand_vecs)

    def forward(self, batch: Batch, gather: InputGatherer, dedup: bool = True) -> torch.Tensor:
        """Click logits of a batch; padded candidates get the dtype's minimum (ignored by softmax).

        With ``dedup`` each distinct news of the batch (histories and candidates) is encoded once;
        without it every history and candidate slot is encoded separately (the naive set-up).

        Shape:
            returns (B, C).
        """
        b, h = batch.hist_rows.shape
        c = batch.cand_rows.shape[1]
        rows = torch.cat([batch.hist_rows.reshape(-1), batch.cand_rows.reshape(-1)])  # (B*H + B*C,)
        real = torch.cat([batch.hist_mask.reshape(-1), batch.cand_mask.reshape(-1)])
        if dedup:
            unique, inverse = torch.unique(rows[real], return_inverse=True)
            encoded = self.encode_news(gather(unique))  # (U, D)
            vectors = encoded.new_zeros((len(rows), encoded.shape[-1]))
            vectors[real] = encoded[inverse]
        else:
            encoded = self.encode_news(gather(rows[real]))
            vectors = encoded.new_zeros((len(rows), encoded.shape[-1]))
            vectors[real] = encoded
        hist_vecs = vectors[: b * h].view(b, h, -1)  # (B, H, D)
        cand_vecs = vectors[b * h :].view(b, c, -1)  # (B, C, D)
        logits = self.score(self.encode_user(hist_vecs, batch.hist_mask), cand_vecs)  # (B, C)
        return logits.masked_fill(~batch.cand_mask, torch.finfo(logits.dtype).min)
