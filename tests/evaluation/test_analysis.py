"""Report numbers against hand computations: bootstrap, paired tests, subsets, beyond accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from mmnewsrec.evaluation.analysis import (
    Resamples,
    beyond_accuracy,
    bootstrap_intervals,
    group_of,
    paired_bootstrap,
    subset_metrics,
    top_k,
)
from mmnewsrec.evaluation.metrics import reference_metrics


def test_resamples_draw_each_impression_with_replacement_and_are_seeded() -> None:
    first, again, other = Resamples(50, 20, seed=3), Resamples(50, 20, seed=3), Resamples(50, 20, seed=4)
    assert (first.counts.sum(axis=1) == 50).all()
    assert np.array_equal(first.counts, again.counts) and not np.array_equal(first.counts, other.counts)
    values = np.arange(50, dtype=np.float64)[:, None]
    values[::7] = np.nan  # NaN rows do not count
    counts = first.counts.astype(np.float64)
    valid = ~np.isnan(values[:, 0])
    expected = (counts[:, valid] @ values[valid, 0]) / counts[:, valid].sum(axis=1)
    np.testing.assert_allclose(first.means(values)[:, 0], expected, rtol=1e-6)
    rows = np.arange(10, 30)
    expected_rows = (counts[:, rows] @ np.nan_to_num(values[rows, 0])) / (counts[:, rows] * valid[rows]).sum(axis=1)
    np.testing.assert_allclose(first.means(values[rows], rows)[:, 0], expected_rows, rtol=1e-6)


def test_intervals_cover_the_mean_and_shrink_with_more_impressions() -> None:
    rng = np.random.default_rng(0)
    small = bootstrap_intervals(rng.random((100, 1)), samples=500)[0]
    large = bootstrap_intervals(rng.random((10_000, 1)), samples=500)[0]
    assert small.low < small.mean < small.high and large.low < large.mean < large.high
    assert (large.high - large.low) < (small.high - small.low) / 5
    constant = bootstrap_intervals(np.full((40, 2), 0.7), samples=100)
    assert [(i.mean, i.low, i.high) for i in constant] == [(pytest.approx(0.7),) * 3] * 2


def test_a_run_paired_with_itself_differs_by_exactly_zero_with_p_one() -> None:
    metrics = np.random.default_rng(1).random((300, 4))
    metrics[5] = np.nan
    for result in paired_bootstrap(metrics, metrics, samples=200):
        assert (result.diff, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_a_consistent_gain_is_significant_and_its_size_exact() -> None:
    reference = np.random.default_rng(2).random((500, 1))
    better = reference + 0.1
    result = paired_bootstrap(better, reference, samples=300)[0]
    assert result.diff == pytest.approx(0.1) and result.low == pytest.approx(0.1) and result.p_value == 0.0
    noisy = reference + np.random.default_rng(3).normal(0, 0.3, reference.shape)
    assert paired_bootstrap(noisy, reference, samples=300)[0].p_value > 0.05


def test_groups_by_bounds() -> None:
    groups = (("0", 0, 0), ("1-4", 1, 4), ("5+", 5, None))
    assert group_of(np.array([0, 1, 4, 5, 300]), groups).tolist() == ["0", "1-4", "1-4", "5+", "5+"]


def test_subset_metrics_rerank_each_impression_within_the_subset() -> None:
    scores = np.array([0.9, 0.8, 0.1, 0.5, 0.4, 0.3])
    labels = np.array([0, 1, 0, 1, 0, 0])
    offsets = np.array([0, 3, 6])
    keep = np.array([True, True, False, False, True, True])  # impression 2 keeps no click
    metrics, counts = subset_metrics(scores, labels, offsets, keep)
    assert counts.tolist() == [2, 2]
    assert metrics[0].tolist() == pytest.approx(
        list(reference_metrics(scores[:2], labels[:2], np.array([0, 2])).values())
    )
    assert metrics[0, 0] == 0.0 and metrics[0, 1] == 0.5  # the click ranks 2nd of 2
    assert np.isnan(metrics[1]).all()


def test_top_k_breaks_ties_by_position() -> None:
    chosen, owner = top_k(np.array([1.0, 3.0, 3.0, 0.0, 2.0]), np.array([0, 3, 5]), k=2)
    assert chosen.tolist() == [1, 2, 4, 3] and owner.tolist() == [0, 0, 1, 1]


def test_beyond_accuracy_on_hand_built_rankings() -> None:
    # Two impressions; top 2 of the first: news 0 and 1 (categories a, a); of the second: news 2 and 0 (b, a).
    scores = np.array([3.0, 2.0, 1.0, 1.0, 3.0, 2.0])
    offsets = np.array([0, 3, 6])
    news = np.array([0, 1, 3, 3, 2, 0])
    categories = np.array([0, 0, 1, 1, 1, 0])
    popularity = np.array([0.5, 0.25, 0.125, 0.125])
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 2.0]])
    result = beyond_accuracy(scores, offsets, news, categories, popularity, vectors, k=2, pairs=10)
    assert result["category_diversity"] == pytest.approx((1 / 2 + 2 / 2) / 2)
    assert result["coverage"] == pytest.approx(3 / 4)  # news 0, 1, 2 of the 4 candidates
    assert result["novelty"] == pytest.approx((1 + 2 + 3 + 1) / 4)  # -log2 of 0.5, 0.25, 0.125, 0.5
    assert result["personalisation"] == pytest.approx(1 - 1 / 3)  # {0, 1} vs {2, 0}: Jaccard 1/3
    assert result["vector_diversity"] == pytest.approx((1.0 + 0.0) / 2)  # orthogonal pair, then identical pair
