"""The user's category profile beside the learned user vector (the ``model.user.profile`` option).

A simple profile, the share of a user's clicks in each subcategory and category, ranks news well
when data is small, and NRMS has to learn it from scratch. This option gives it to the model from
the first step, as part of the vectors, so the dot-product scorer, the fast evaluation path and
serving need no change:

* each news vector gets ``a_s * onehot(subcategory)`` and ``a_c * onehot(category)`` appended;
* the user vector gets the masked mean of those parts over the history appended, i.e. the
  history's subcategory and category shares scaled by ``a_s`` and ``a_c``;
* so ``score = u . n + a_s^2 share_sub(candidate) + a_c^2 share_cat(candidate)``, where the
  learned scales ``a_s``, ``a_c`` decide how much the profile counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional

from mmnewsrec.features.encoding import masked_mean
from mmnewsrec.models.news_encoders import ModelContext, NewsEncoder


class ProfileNewsEncoder(NewsEncoder):
    """Appends scaled one-hot subcategory and category codes to an encoder's vectors.

    Shape:
        the inner encoder's inputs + ``category``, ``subcategory`` (U,) -> (U, D + S + K).
    """

    def __init__(self, inner: NewsEncoder, context: ModelContext, scale: float = 2.0):
        super().__init__()
        self.inner = inner
        self.num_subcategories, self.num_categories = context.num_subcategories, context.num_categories
        self.subcategory_scale = nn.Parameter(torch.tensor(scale))
        self.category_scale = nn.Parameter(torch.tensor(scale / 2))
        self.content_dim = inner.dim
        self.dim = inner.dim + self.num_subcategories + self.num_categories

    def inputs(self) -> list[str]:
        return sorted(set(self.inner.inputs()) | {"category", "subcategory"})

    def head_inputs(self) -> list[str]:
        return sorted(set(self.inner.head_inputs()) | {"category", "subcategory"})

    @property
    def body_dim(self) -> int:
        return self.inner.body_dim

    def body(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.inner.body(inputs)

    def head(self, body: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        content = self.inner.head(body, inputs)  # (U, D)
        sub = functional.one_hot(inputs["subcategory"], self.num_subcategories).to(content.dtype)  # (U, S)
        cat = functional.one_hot(inputs["category"], self.num_categories).to(content.dtype)  # (U, K)
        return torch.cat([content, self.subcategory_scale * sub, self.category_scale * cat], dim=-1)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.body(inputs), inputs)

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        return self.inner.pretrained_parameters()


class ProfileUserEncoder(nn.Module):
    """The inner user encoder over the content part of the history vectors, plus the history's
    mean profile part (zeros for an empty history).

    Shape:
        hist_vecs (B, H, D + P), hist_mask (B, H) bool -> (B, D + P).
    """

    def __init__(self, inner: nn.Module, content_dim: int):
        super().__init__()
        self.inner = inner
        self.content_dim = content_dim

    def history_weights(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        """The inner encoder's weights over the history (the profile part weighs each click equally).

        Shape:
            (B, H, D + P), (B, H) bool -> (B, H).
        """
        return self.inner.history_weights(hist_vecs[..., : self.content_dim], hist_mask)

    def forward(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        content, profile = hist_vecs[..., : self.content_dim], hist_vecs[..., self.content_dim :]
        user = self.inner(content, hist_mask)  # (B, D)
        return torch.cat([user, masked_mean(profile, hist_mask).to(user.dtype)], dim=-1)  # (B, D + P)
