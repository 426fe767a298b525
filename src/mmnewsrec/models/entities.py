"""Knowledge entities in the model (the ``model.entities`` section): an entity branch in the news
encoder and an entity profile of the user, both as parts of the vectors, so that the dot-product
scorer, the fast evaluation path and serving need no change (as :mod:`mmnewsrec.models.profile`).

* **Branch** (after DKN and KRED's entity encoders): each news' entities (hashed bucket ids,
  ``entity_ids`` with ``entity_mask``) are embedded, pooled by additive attention and projected
  into the news vector, added to the inner encoder's vector where the news names any.
* **Profile**: with P profile buckets, each news vector gets ``m / |m|``, ``m`` and ``has`` appended
  (``m`` the multi-hot of its entities' buckets, ``has`` whether it names any); the user vector
  gets ``s * log((count + alpha prior) / (clicks + alpha))``, zeros, and a learned offset ``o``,
  where ``count`` is how many history clicks name each bucket. So ``score = u . n + s *
  mean_{e in candidate} log smoothed share(e) + o * has``: the candidate's entities as often as
  the user's clicks name them, a long history counting more than a short one.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from mmnewsrec.config import EntityConfig
from mmnewsrec.errors import ConfigError
from mmnewsrec.models.layers import AdditiveAttention
from mmnewsrec.models.news_encoders import NewsEncoder
from mmnewsrec.models.news_encoders.base import HeadExtension

ENTITY_INPUTS = ["entity_ids", "entity_mask"]


class EntityNewsEncoder(HeadExtension):
    """An inner news encoder with an entity branch and/or the entity profile's parts appended.

    Shape:
        the inner encoder's inputs + ``entity_ids`` (U, M) int, ``entity_mask`` (U, M) bool
        -> (U, D [+ 2 P + 1]).
    """

    extra_inputs = tuple(ENTITY_INPUTS)

    def __init__(self, inner: NewsEncoder, config: EntityConfig, dropout: float = 0.0, branch_dim: int | None = None):
        super().__init__(inner)
        self.config = config
        self.content_dim = inner.dim
        # The branch adds to the leading ``branch_dim`` values: the content vector, not the codes
        # a category profile (ProfileNewsEncoder) appends after it, which its user side counts.
        self.branch_dim = inner.dim if branch_dim is None else branch_dim
        self.embedding = nn.Embedding(config.buckets + 1, config.dim, padding_idx=0) if config.branch else None
        if config.branch:
            self.pool = AdditiveAttention(config.dim)
            self.project = nn.Sequential(nn.Dropout(dropout), nn.Linear(config.dim, self.branch_dim))
            # The branch starts silent: the model's first ranking is the inner encoder's, and
            # training moves away from it only as far as the entities help.
            nn.init.zeros_(self.project[1].weight)
            nn.init.zeros_(self.project[1].bias)
        self.profile_buckets = config.profile_buckets if config.profile else 0
        self.dim = inner.dim + (2 * self.profile_buckets + 1 if config.profile else 0)

    def init_embeddings(self, table: np.ndarray, has: np.ndarray) -> int:
        """Starts the buckets that ``has`` marks from the pretrained ``table`` (bucket_vectors);
        returns how many. Shape: (buckets + 1, dim), (buckets + 1,)."""
        if self.embedding is None:
            return 0
        if table.shape != tuple(self.embedding.weight.shape):
            raise ConfigError(
                f"model.entities.dim: the pretrained entity vectors have {table.shape[1]} values, the model "
                f"{self.config.dim}; set model.entities.dim: {table.shape[1]}, or pretrained: false"
            )
        with torch.no_grad():
            rows = torch.from_numpy(np.flatnonzero(has))
            self.embedding.weight[rows] = torch.from_numpy(table[has]).to(self.embedding.weight.dtype)
        return int(has.sum())

    def head(self, body: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        content = self.inner.head(body, inputs)  # (U, D)
        ids, mask = inputs["entity_ids"].long(), inputs["entity_mask"]  # (U, M)
        has = mask.any(dim=1, keepdim=True)  # (U, 1)
        if self.embedding is not None:
            pooled = self.pool(self.embedding(ids), mask)  # (U, e), zeros without entities
            branch = self.project(pooled).to(content.dtype) * has  # (U, branch_dim)
            content = torch.cat([content[:, : self.branch_dim] + branch, content[:, self.branch_dim :]], dim=-1)
        if not self.profile_buckets:
            return content
        codes = torch.where(mask, (ids - 1) % self.profile_buckets, 0)  # (U, M) profile bucket per entity
        multi = torch.zeros(len(ids), self.profile_buckets, device=ids.device, dtype=content.dtype)  # (U, P)
        multi.scatter_add_(1, codes, mask.to(content.dtype))  # padding adds 0 (to bucket 0)
        multi = multi.clamp(max=1.0)  # two entities in one bucket count once
        normalised = multi / multi.sum(dim=1, keepdim=True).clamp(min=1.0)
        return torch.cat([content, normalised, multi, has.to(content.dtype)], dim=-1)  # (U, D + 2 P + 1)


class EntityUserEncoder(nn.Module):
    """The inner user encoder over the inner part of the history vectors, plus the entity
    profile: weighted log smoothed shares of the history's entity buckets, and the offset.

    Shape:
        hist_vecs (B, H, D + 2 P + 1), hist_mask (B, H) bool -> (B, D + 2 P + 1).
    """

    def __init__(self, inner: nn.Module, content_dim: int, profile_buckets: int):
        super().__init__()
        self.inner = inner
        self.content_dim = content_dim
        self.profile_buckets = profile_buckets
        self.prior_logits = nn.Parameter(torch.zeros(profile_buckets))
        self.concentration = nn.Parameter(torch.zeros(()))  # softplus -> alpha
        self.scale = nn.Parameter(torch.zeros(()))  # starts silent, as the branch does
        self.offset = nn.Parameter(torch.zeros(()))

    def blend_parameters(self) -> list[nn.Parameter]:
        """The entity profile's scale, offset and concentration (see ``training.blend_lr``)."""
        return [self.scale, self.offset, self.concentration]

    def history_weights(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        """The inner encoder's weights over the history. Shape: (B, H, ...), (B, H) -> (B, H)."""
        return self.inner.history_weights(hist_vecs[..., : self.content_dim], hist_mask)

    def forward(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        user = self.inner(hist_vecs[..., : self.content_dim], hist_mask)  # (B, D)
        p = self.profile_buckets
        multi = hist_vecs[..., self.content_dim + p : self.content_dim + 2 * p].float()  # (B, H, P)
        counts = (multi * hist_mask.unsqueeze(-1)).sum(dim=1)  # (B, P) clicks naming each bucket
        clicks = hist_mask.sum(dim=1, keepdim=True).float()  # (B, 1)
        alpha = functional.softplus(self.concentration) + 1e-3
        prior = torch.softmax(self.prior_logits, dim=0)  # (P,)
        log_share = torch.log(counts + alpha * prior) - torch.log(clicks + alpha)  # (B, P)
        offset = self.offset.expand(len(user), 1)  # (B, 1)
        zeros = torch.zeros_like(log_share)
        return torch.cat(
            [user, (self.scale * log_share).to(user.dtype), zeros.to(user.dtype), offset.to(user.dtype)], -1
        )
