"""The training objectives: the study's class-weighted pointwise loss and NRMS's listwise one."""

from __future__ import annotations

import math

import pytest
import torch

from mmnewsrec.batching.batch import Batch
from mmnewsrec.config import ConfigError, TrainingConfig
from mmnewsrec.training.losses import pointwise_weighted_ce, training_loss

NEG = torch.finfo(torch.float32).min


def tiny_batch() -> Batch:
    # Two samples: click at 0 with two non-clicks; click at 1 with one non-click and one padded slot.
    return Batch(
        hist_rows=torch.zeros((2, 1), dtype=torch.long),
        hist_mask=torch.ones((2, 1), dtype=torch.bool),
        cand_rows=torch.zeros((2, 3), dtype=torch.long),
        cand_mask=torch.tensor([[True, True, True], [True, True, False]]),
        targets=torch.tensor([0, 1]),
    )


def test_the_weighted_pointwise_loss_equals_a_hand_computation() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.5, NEG]])

    # Click examples: s = 2.0 and 1.5, loss -log sigmoid(s); no-click examples: s = -1.0, 0.5, 0.0,
    # loss -log(1 - sigmoid(s)). Weights 1 (no click) and 25 (click); the mean is weighted.
    def click(s: float) -> float:
        return math.log(1 + math.exp(-s))

    def no_click(s: float) -> float:
        return math.log(1 + math.exp(s))

    expected = (25 * (click(2.0) + click(1.5)) + 1 * (no_click(-1.0) + no_click(0.5) + no_click(0.0))) / (25 * 2 + 3)
    loss = pointwise_weighted_ce(logits, tiny_batch(), (1.0, 25.0))
    assert loss.item() == pytest.approx(expected, rel=1e-6)

    # The same as torch's class-weighted cross-entropy over two-class logits (0, s).
    real = tiny_batch().cand_mask
    two_class = torch.stack([torch.zeros_like(logits[real]), logits[real]], dim=-1)
    labels = torch.tensor([1, 0, 0, 0, 1])
    reference = torch.nn.functional.cross_entropy(two_class, labels, weight=torch.tensor([1.0, 25.0]))
    torch.testing.assert_close(loss, reference)


def test_the_padded_candidate_never_counts_and_the_config_picks_the_loss() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.5, NEG]])
    moved = logits.clone()
    moved[1, 2] = 123.0  # a padded slot's value is ignored by the pointwise loss
    batch = tiny_batch()
    pointwise = TrainingConfig(loss="pointwise_weighted_ce", class_weights=(1.0, 25.0))
    assert training_loss(moved, batch, pointwise).item() == pytest.approx(
        training_loss(logits, batch, pointwise).item()
    )
    listwise = training_loss(logits, batch, TrainingConfig())
    expected = (-torch.log_softmax(logits[0], 0)[0] - torch.log_softmax(logits[1, :2], 0)[1]) / 2
    torch.testing.assert_close(listwise, expected)


@pytest.mark.parametrize(
    ("values", "field"),
    [({"loss": "pairwise"}, "training.loss"), ({"class_weights": (1.0, 0.0)}, "training.class_weights")],
)
def test_loss_settings_are_validated(values: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainingConfig(**values)
