"""The recommender: a news encoder, a user encoder and a scorer, composed."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mmnewsrec.batching.batch import Batch
from mmnewsrec.models.news_encoders import NewsEncoder
from mmnewsrec.models.scorers import Scorer

#: Gathers news encoder inputs for catalogue rows (U,) onto the model's device: ``gather(rows)``
#: all of the encoder's inputs, ``gather(rows, names)`` only those named.
InputGatherer = Callable[..., dict[str, torch.Tensor]]


class NewsVectorCache:
    """News encoder body outputs (see :class:`NewsEncoder`) kept across training steps, for the
    history side of a batch.

    Each vector carries the optimiser step it was computed at; one ``max_age`` steps old is stale
    and is recomputed (without gradients, without dropout) the next time its news is in a history.
    Candidates are always encoded with the current weights and written here as they are. History
    news then get the current head (projection, category embeddings) over the cached body, with
    gradients.

    Shape:
        vectors (N, D) float32, stamps (N,) int64 (-1: never computed).
    """

    def __init__(self, num_news: int, dim: int, max_age: int, device: torch.device | str = "cpu"):
        if max_age < 1:
            raise ValueError(f"max_age must be >= 1 step, got {max_age}")
        self.vectors = torch.zeros((num_news, dim), device=device)
        self.stamps = torch.full((num_news,), -1, dtype=torch.long, device=device)
        self.max_age = max_age
        self.step = 0
        self.recomputed = 0  # news re-encoded because they were stale (for throughput reports)

    def stale(self, rows: torch.Tensor) -> torch.Tensor:
        """Shape: (U,) rows -> (U,) bool."""
        stamps = self.stamps[rows]
        return (stamps < 0) | (self.step - stamps >= self.max_age)

    def store(self, rows: torch.Tensor, vectors: torch.Tensor) -> None:
        self.vectors[rows] = vectors.detach().float()
        self.stamps[rows] = self.step

    def tick(self) -> None:
        """One optimiser step has passed."""
        self.step += 1

    def to(self, device: torch.device | str) -> NewsVectorCache:
        self.vectors, self.stamps = self.vectors.to(device), self.stamps.to(device)
        return self

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything a resumed run needs to continue exactly as an uninterrupted one."""
        return {
            "vectors": self.vectors.detach().cpu().contiguous(),
            "stamps": self.stamps.cpu().contiguous(),
            "recomputed": torch.tensor([self.recomputed], dtype=torch.long),
        }

    def load_state_tensors(self, state: dict[str, torch.Tensor], step: int) -> None:
        """Restores :meth:`state_tensors` saved at optimiser step ``step``.

        Raises:
            ValueError: the saved cache is for another number of news or another vector size.
        """
        if state["vectors"].shape != self.vectors.shape or state["stamps"].shape != self.stamps.shape:
            raise ValueError(
                f"history cache of shape {tuple(state['vectors'].shape)}, expected {tuple(self.vectors.shape)}"
            )
        self.vectors.copy_(state["vectors"])
        self.stamps.copy_(state["stamps"])
        self.recomputed = int(state["recomputed"][0])
        self.step = step


class NewsRecommender(nn.Module):
    """NRMS-style recommender (Wu et al., EMNLP 2019) with injected parts.

    ``encode_news`` -> ``encode_user`` -> ``score`` is the whole model; ``forward`` runs them for a
    batch, and the fast evaluation path calls the same three methods on cached news vectors.
    Everything returns logits.
    """

    def __init__(self, news_encoder: NewsEncoder, user_encoder: nn.Module, scorer: Scorer):
        super().__init__()
        self.news_encoder = news_encoder
        self.user_encoder = user_encoder
        self.scorer = scorer

    def encode_news(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Shape: per-news inputs of U news -> (U, D)."""
        return self.news_encoder(inputs)

    def encode_user(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        """Shape: (B, H, D), (B, H) bool -> user state: (B, D) for a user-vector encoder,
        (B, H, D + 1) for the ``sequence`` one."""
        return self.user_encoder(hist_vecs, hist_mask)

    def retrieval_query(self, user_state: torch.Tensor) -> torch.Tensor:
        """A vector whose inner product with news vectors pre-selects candidates for this user
        (serving's index search): the scorer's exact query when it is an inner product, the user
        encoder's summary for a sequence state, else the user vector itself.

        Shape: (B, ...) user state -> (B, D).
        """
        if self.scorer.capabilities.inner_product:
            return self.scorer.as_inner_product(user_state)[0]
        query = getattr(self.user_encoder, "query", None)
        return query(user_state) if query is not None else user_state

    def history_weights(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor | None:
        """What each clicked news weighs in the user vector (None when the user encoder cannot say).

        Shape: (B, H, D), (B, H) bool -> (B, H).
        """
        explain = getattr(self.user_encoder, "history_weights", None)
        return explain(hist_vecs, hist_mask) if explain is not None else None

    def score(
        self, user_vecs: torch.Tensor, cand_vecs: torch.Tensor, cand_stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Shape: user state (B, D) or (B, H, D + 1), (B, C, D), log counters (B, C, F) or None -> logits (B, C)."""
        return self.scorer(user_vecs, cand_vecs, cand_stats)

    def forward(
        self,
        batch: Batch,
        gather: InputGatherer,
        dedup: bool = True,
        history_cache: NewsVectorCache | None = None,
    ) -> torch.Tensor:
        """Click logits of a batch; padded candidates get the dtype's minimum (ignored by softmax).

        With ``dedup`` each distinct news of the batch (histories and candidates) is encoded once;
        without it every history and candidate slot is encoded separately (the naive set-up).
        With a ``history_cache`` only candidates go through the encoder's body (the backbone) with
        gradients; history slots put the current head on the cached bodies, whose stale entries are
        recomputed without gradients first.

        Shape:
            returns (B, C).
        """
        if history_cache is not None:
            return self._forward_cached(batch, gather, dedup, history_cache)
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
        logits = self.score(self.encode_user(hist_vecs, batch.hist_mask), cand_vecs, batch.cand_stats)  # (B, C)
        return logits.masked_fill(~batch.cand_mask, torch.finfo(logits.dtype).min)

    def _forward_cached(self, batch: Batch, gather: InputGatherer, dedup: bool, cache: NewsVectorCache) -> torch.Tensor:
        encoder = self.news_encoder
        cand_real = batch.cand_rows[batch.cand_mask]  # (R,)
        if dedup:
            unique, inverse = torch.unique(cand_real, return_inverse=True)
        else:
            unique, inverse = cand_real, torch.arange(len(cand_real), device=cand_real.device)
        inputs = gather(unique)
        body = encoder.body(inputs)  # (U, h), with gradients
        cache.store(unique, body)
        encoded = encoder.head(body, inputs)  # (U, D)
        cand_vecs = encoded.new_zeros((*batch.cand_rows.shape, encoded.shape[-1]))  # (B, C, D)
        cand_vecs[batch.cand_mask] = encoded[inverse]

        in_history, hist_inverse = torch.unique(batch.hist_rows[batch.hist_mask], return_inverse=True)  # (V,)
        stale = in_history[cache.stale(in_history)]
        if len(stale):
            # Eval mode: a cached vector serves many steps, so it must not carry one step's dropout.
            was_training = encoder.training
            encoder.eval()
            with torch.no_grad():
                cache.store(stale, encoder.body(gather(stale)))
            encoder.train(was_training)
            cache.recomputed += len(stale)
        cached = cache.vectors[in_history].to(body.dtype)  # (V, h), no gradients
        history = encoder.head(cached, gather(in_history, encoder.head_inputs()))  # (V, D)
        hist_vecs = history.new_zeros((*batch.hist_rows.shape, history.shape[-1]))  # (B, H, D)
        hist_vecs[batch.hist_mask] = history[hist_inverse]
        logits = self.score(self.encode_user(hist_vecs, batch.hist_mask), cand_vecs, batch.cand_stats)  # (B, C)
        return logits.masked_fill(~batch.cand_mask, torch.finfo(logits.dtype).min)
