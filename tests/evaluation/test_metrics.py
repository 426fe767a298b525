from __future__ import annotations

import math

import numpy as np
import pytest

from mmnewsrec.evaluation.metrics import per_impression_metrics, ranking_metrics, reference_metrics, scores_to_ranks


def one(scores, labels):
    return ranking_metrics(np.array(scores, float), np.array(labels), np.array([0, len(scores)]))


def test_hand_computed_single_impressions() -> None:
    perfect = one([0.9, 0.5, 0.1], [1, 0, 0])
    assert (perfect.auc, perfect.mrr, perfect.ndcg5, perfect.ndcg10) == (1.0, 1.0, 1.0, 1.0)

    second = one([0.9, 0.5, 0.1], [0, 1, 0])
    assert second.auc == 0.5 and second.mrr == 0.5
    assert second.ndcg5 == pytest.approx(1 / math.log2(3))

    # Two clicks at ranks 1 and 3 of 4.
    two = one([0.4, 0.3, 0.2, 0.1], [1, 0, 1, 0])
    assert two.auc == 0.75
    assert two.mrr == pytest.approx((1 + 1 / 3) / 2)
    assert two.ndcg10 == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))

    # Worst case of a single-click impression of two candidates.
    worst = one([0.1, 0.2], [1, 0])
    assert worst.auc == 0.0 and worst.mrr == 0.5 and worst.ndcg5 == pytest.approx(1 / math.log2(3))


def test_ties_count_half_for_auc_and_rank_by_position() -> None:
    tied = one([0.5, 0.5, 0.1], [1, 0, 0])
    assert tied.auc == 0.75  # beats one negative, ties the other
    assert tied.mrr == 1.0  # the earlier candidate wins the tie
    later = one([0.5, 0.5, 0.1], [0, 1, 0])
    assert later.auc == 0.75 and later.mrr == 0.5
    all_tied = one([1.0] * 5, [0, 0, 1, 0, 0])
    assert all_tied.auc == 0.5


def test_ndcg_cutoff() -> None:
    scores = np.arange(12, 0, -1, dtype=float)
    labels = np.zeros(12, int)
    labels[7] = 1  # rank 8: outside the top 5, inside the top 10
    result = one(scores, labels)
    assert result.ndcg5 == 0.0
    assert result.ndcg10 == pytest.approx(1 / math.log2(9))
    assert result.mrr == pytest.approx(1 / 8)


def test_mean_over_impressions_skips_unscorable_ones() -> None:
    scores = np.array([0.9, 0.1, 0.3, 0.2, 0.5, 0.4, 0.6])
    labels = np.array([1, 0, 0, 0, 1, 1, 0])
    offsets = np.array([0, 2, 4, 6, 7])  # imp 1: no click; imp 2: no non-click; imp 3: one candidate
    result = ranking_metrics(scores, labels, offsets)
    assert result.impressions == 1 and result.skipped_impressions == 3
    assert result.auc == 1.0
    per = per_impression_metrics(scores, labels, offsets)
    assert per.valid.tolist() == [True, False, False, False]
    assert np.isnan(per.auc[1:]).all() and np.isnan(per.mrr[1:]).all()
    with pytest.raises(ValueError, match="no impression has both"):
        ranking_metrics(np.array([0.1, 0.2]), np.array([0, 0]), np.array([0, 2]))


def test_matches_reference_on_random_impressions() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 60, size=400)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    scores = rng.permutation(offsets[-1]).astype(float)  # distinct scores: no tie convention involved
    labels = (rng.random(offsets[-1]) < 0.1).astype(int)
    labels[offsets[:-1]] = 1  # most impressions get a click; some stay all-clicked (size 1)
    got = ranking_metrics(scores, labels, offsets).to_dict()
    want = reference_metrics(scores, labels, offsets)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12)


def test_auc_ties_match_pairwise_reference() -> None:
    rng = np.random.default_rng(3)
    sizes = rng.integers(2, 30, size=200)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    scores = rng.integers(0, 4, size=offsets[-1]).astype(float)  # many ties
    labels = (rng.random(offsets[-1]) < 0.3).astype(int)
    got = ranking_metrics(scores, labels, offsets)
    assert got.auc == pytest.approx(reference_metrics(scores, labels, offsets)["auc"], abs=1e-12)


def test_scores_to_ranks_permutation_with_position_tiebreak() -> None:
    ranks = scores_to_ranks(np.array([0.2, 0.9, 0.2, 0.5, 0.5]), np.array([0, 3, 5]))
    assert ranks.tolist() == [2, 1, 3, 1, 2]


@pytest.mark.parametrize(
    ("scores", "labels", "offsets", "message"),
    [
        ([0.1, 0.2], [0, 2], [0, 2], "labels must be 0 or 1"),
        ([0.1, np.nan], [0, 1], [0, 2], "finite"),
        ([0.1, 0.2], [0, 1], [0, 1], "offsets"),
        ([0.1, 0.2], [0, 1, 0], [0, 2], "equal 1-d shapes"),
        ([0.1, 0.2], [0, 1], [0, 0, 2], "offsets"),
    ],
)
def test_rejects_malformed_input(scores, labels, offsets, message) -> None:
    with pytest.raises(ValueError, match=message):
        ranking_metrics(np.array(scores), np.array(labels), np.array(offsets))


def test_subset_metrics_rerank_within_kept_candidates() -> None:
    from mmnewsrec.evaluation.metrics import ranking_metrics_subset

    scores = np.array([0.9, 0.8, 0.1, 0.7, 0.6, 0.5])
    labels = np.array([0, 1, 0, 1, 0, 0])
    offsets = np.array([0, 3, 6])
    keep = np.array([False, True, True, True, False, False])  # imp 1 keeps N2 N3; imp 2 keeps N4 only
    result = ranking_metrics_subset(scores, labels, offsets, keep)
    assert result.impressions == 1 and result.skipped_impressions == 1
    assert result.auc == 1.0 and result.mrr == 1.0  # the click now ranks first among kept candidates
    assert ranking_metrics_subset(scores, labels, offsets, np.zeros(6, bool)) is None
