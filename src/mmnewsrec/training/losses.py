"""Training objectives over a batch's click logits.

Each sample of a batch is one click and K sampled non-clicks of the same impression
(:mod:`mmnewsrec.batching`); ``batch.targets`` says which candidate is the click.

* ``listwise`` (NRMS): softmax cross-entropy of the click against its non-clicks.
* ``pointwise_weighted_ce`` (the study's): every real candidate is its own click / no-click
  example; the scorer's logit ``s`` is the click log-odds, so the two-class logits are ``(0, s)``
  and the loss is ``torch.nn.CrossEntropyLoss(weight=class_weights)`` over those examples: the
  per-example losses weighted by their class's weight, divided by the sum of those weights.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from mmnewsrec.batching.batch import Batch
from mmnewsrec.config import TrainingConfig


def listwise_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Shape: (B, C) logits (padded candidates at the dtype's minimum), targets (B,) -> scalar."""
    return functional.cross_entropy(logits.float(), batch.targets)


def pointwise_weighted_ce(logits: torch.Tensor, batch: Batch, class_weights: tuple[float, float]) -> torch.Tensor:
    """Shape: (B, C) logits, cand_mask (B, C) bool, targets (B,) -> scalar."""
    real = batch.cand_mask  # (B, C)
    clicked = functional.one_hot(batch.targets, logits.shape[1]).bool() & real  # (B, C)
    scores = logits.float()[real]  # (R,)
    labels = clicked[real]  # (R,)
    weights = torch.where(labels, class_weights[1], class_weights[0]).to(scores.dtype)  # (R,)
    # -log softmax((0, s))[y] = softplus(s) if y = no click, softplus(-s) if y = click.
    per_example = functional.softplus(torch.where(labels, -scores, scores))  # (R,)
    return (weights * per_example).sum() / weights.sum()


def training_loss(logits: torch.Tensor, batch: Batch, config: TrainingConfig) -> torch.Tensor:
    """The configured objective (``training.loss``)."""
    if config.loss == "pointwise_weighted_ce":
        return pointwise_weighted_ce(logits, batch, config.class_weights)
    return listwise_loss(logits, batch)
