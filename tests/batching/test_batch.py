from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmnewsrec.batching.batch import ImpressionArrays, TrainSampler, impression_batches, recent_histories
from mmnewsrec.data.mind import load_mind


@pytest.fixture(scope="module")
def train_arrays(tiny_mind: Path) -> ImpressionArrays:
    return ImpressionArrays.from_split(load_mind(tiny_mind, splits=("train",)), "train")


def test_histories_keep_the_most_recent_clicks(mind_sample: Path) -> None:
    dataset = load_mind(mind_sample)
    arrays = ImpressionArrays.from_split(dataset, "train")  # histories N1 N2 | - | N1 N2 N3
    rows, mask = recent_histories(arrays, np.array([0, 1, 2]), history_len=2)
    assert mask.tolist() == [[True, True], [False, False], [True, True]]
    assert rows.tolist() == [[0, 1], [0, 0], [1, 2]]  # N2 N3: the last two of N1 N2 N3


def test_samples_are_a_click_then_k_non_clicks_of_the_same_impression(train_arrays: ImpressionArrays) -> None:
    sampler = TrainSampler(train_arrays, negatives=4, history_len=50, seed=3)
    assert len(sampler) == int(train_arrays.labels.sum())
    batch = next(sampler.epoch_batches(0, batch_size=64))
    assert batch.cand_rows.shape == (64, 5) and batch.targets.tolist() == [0] * 64
    owner = np.repeat(np.arange(len(train_arrays)), np.diff(train_arrays.cand_offsets))
    clicked = {
        (int(o), int(r)) for o, r, y in zip(owner, train_arrays.cand_rows, train_arrays.labels, strict=True) if y
    }
    shown_not_clicked = {
        (int(o), int(r)) for o, r, y in zip(owner, train_arrays.cand_rows, train_arrays.labels, strict=True) if not y
    }
    order = np.random.default_rng([3, 0]).permutation(len(sampler))[:64]
    for i, sample in enumerate(order):
        imp = sampler.pos_owner[sample]
        assert (imp, int(batch.cand_rows[i, 0])) in clicked
        for neg in batch.cand_rows[i, 1:][batch.cand_mask[i, 1:]]:
            assert (imp, int(neg)) in shown_not_clicked


def test_epochs_are_deterministic_and_resumable(train_arrays: ImpressionArrays) -> None:
    sampler = TrainSampler(train_arrays, negatives=4, seed=1)
    full = list(sampler.epoch_batches(2, batch_size=50))
    tail = list(sampler.epoch_batches(2, batch_size=50, start_batch=3))
    assert len(full) == sampler.num_batches(50)
    for a, b in zip(full[3:], tail, strict=True):
        assert (a.cand_rows == b.cand_rows).all() and (a.hist_rows == b.hist_rows).all()
    other = next(sampler.epoch_batches(3, batch_size=50))
    assert not (other.cand_rows == full[0].cand_rows).all()


def test_impression_batches_cover_every_candidate_once(train_arrays: ImpressionArrays) -> None:
    subset = train_arrays.subset(np.arange(0, 100, 3))
    seen = []
    for impressions, batch in impression_batches(subset, batch_size=8, history_len=10):
        seen.append(batch.cand_rows[batch.cand_mask].numpy())
        assert batch.hist_rows.shape == (len(impressions), 10)
    np.testing.assert_array_equal(np.concatenate(seen), subset.cand_rows)
    assert subset.labels is not None and len(subset.labels) == len(subset.cand_rows)
