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

With ``model.user.profile_posterior`` the score also gets, for the candidate's subcategory and
category, ``b log((count + alpha prior) / (clicks + alpha))``: the log of the history's share
smoothed towards a learned prior (the posterior mean of a Dirichlet-multinomial). A share of 1/2
from two clicks then counts less than one from twenty, an empty history ranks by the prior, and a
subcategory with no click gets a finite penalty that shrinks with the history's length. The news
vectors carry the unscaled codes for this (the user side counts them), and the user vector the
weighted log shares; the learned ``b``, ``alpha`` and prior live in :class:`ProfileUserEncoder`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from mmnewsrec.features.encoding import masked_mean
from mmnewsrec.models.news_encoders import ModelContext, NewsEncoder
from mmnewsrec.models.news_encoders.base import HeadExtension


def _without_content_scale(state: dict, prefix: str, *args) -> None:
    """A run saved before the content scale had none: it loads with the scale at 1, so it scores
    exactly as it did."""
    state.setdefault(prefix + "content_scale", torch.ones(()))


class ProfileNewsEncoder(HeadExtension):
    """Appends scaled one-hot subcategory and category codes to an encoder's vectors.

    Shape:
        the inner encoder's inputs + ``category``, ``subcategory`` (U,) -> (U, D + S + K);
        with ``posterior``, (U, D + 2 (S + K)).
    """

    extra_inputs = ("category", "subcategory")

    def __init__(self, inner: NewsEncoder, context: ModelContext, scale: float = 2.0, posterior: bool = False):
        super().__init__(inner)
        self.num_subcategories, self.num_categories = context.num_subcategories, context.num_categories
        self.subcategory_scale = nn.Parameter(torch.tensor(scale))
        self.category_scale = nn.Parameter(torch.tensor(scale / 2))
        self.content_dim = inner.dim
        self.posterior = posterior
        codes = self.num_subcategories + self.num_categories
        self.dim = inner.dim + codes * (2 if posterior else 1)

    def blend_parameters(self) -> list[nn.Parameter]:
        """The profile's scales (see ``training.blend_lr``)."""
        return [self.subcategory_scale, self.category_scale]

    def head(self, body: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        content = self.inner.head(body, inputs)  # (U, D)
        sub = functional.one_hot(inputs["subcategory"], self.num_subcategories).to(content.dtype)  # (U, S)
        cat = functional.one_hot(inputs["category"], self.num_categories).to(content.dtype)  # (U, K)
        parts = [content, self.subcategory_scale * sub, self.category_scale * cat]
        if self.posterior:  # unscaled codes: the user side counts them and weighs its log shares
            parts += [sub, cat]
        return torch.cat(parts, dim=-1)  # (U, D + S + K) or (U, D + 2 (S + K))


class ProfileUserEncoder(nn.Module):
    """The inner user encoder over the content part of the history vectors, plus the history's
    mean profile part (zeros for an empty history).

    Shape:
        hist_vecs (B, H, D + P), hist_mask (B, H) bool -> (B, D + P).

    Given ``num_subcategories`` (and ``num_categories``), the profile part P is the news encoder's
    ``posterior`` layout: the scaled codes, whose mean is kept, then the unscaled codes, counted
    and turned into weighted log smoothed shares.
    """

    def __init__(
        self,
        inner: nn.Module,
        content_dim: int,
        num_subcategories: int = 0,
        num_categories: int = 0,
        content_init: float = 1.0,
    ):
        super().__init__()
        self.inner = inner
        self.content_dim = content_dim
        # The learned weight of the inner user vector (model.user.content_init): at 0 the first
        # ranking is the profile's alone, and the content part enters as training finds it helps.
        self.content_scale = nn.Parameter(torch.tensor(float(content_init)))
        self._register_load_state_dict_pre_hook(_without_content_scale)
        self.posterior = bool(num_subcategories)
        if self.posterior:
            self.sizes = (num_subcategories, num_categories)
            self.prior_logits = nn.ParameterList([nn.Parameter(torch.zeros(n)) for n in self.sizes])
            self.concentration = nn.Parameter(torch.zeros(2))  # softplus -> alpha
            self.posterior_scale = nn.Parameter(torch.full((2,), 0.25))

    def blend_parameters(self) -> list[nn.Parameter]:
        """The content scale and the posterior's scales and concentrations (see ``training.blend_lr``)."""
        return [self.content_scale, *([self.concentration, self.posterior_scale] if self.posterior else [])]

    def history_weights(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        """The inner encoder's weights over the history (the profile part weighs each click equally).

        Shape:
            (B, H, D + P), (B, H) bool -> (B, H).
        """
        return self.inner.history_weights(hist_vecs[..., : self.content_dim], hist_mask)

    def forward(self, hist_vecs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        content, profile = hist_vecs[..., : self.content_dim], hist_vecs[..., self.content_dim :]
        user = self.content_scale * self.inner(content, hist_mask)  # (B, D)
        if not self.posterior:
            return torch.cat([user, masked_mean(profile, hist_mask).to(user.dtype)], dim=-1)  # (B, D + P)
        codes = sum(self.sizes)
        shares = masked_mean(profile[..., :codes], hist_mask).to(user.dtype)  # (B, S + K)
        counts = (profile[..., codes:] * hist_mask.unsqueeze(-1)).sum(dim=1).float()  # (B, S + K)
        clicks = hist_mask.sum(dim=1, keepdim=True).float()  # (B, 1)
        logs = []
        for i, part in enumerate(counts.split(list(self.sizes), dim=-1)):
            alpha = functional.softplus(self.concentration[i]) + 1e-3
            prior = torch.softmax(self.prior_logits[i], dim=0)  # (S,) or (K,)
            log_share = torch.log(part + alpha * prior) - torch.log(clicks + alpha)  # (B, S) or (B, K)
            logs.append(self.posterior_scale[i] * log_share)
        return torch.cat([user, shares, *[x.to(user.dtype) for x in logs]], dim=-1)  # (B, D + 2 (S + K))
