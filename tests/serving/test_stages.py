"""Feed stages on hand-made pools: MMR trades relevance for diversity as theta says, calibration's
KL falls as lambda rises, and the samplers draw with the frequencies their definitions give."""

from __future__ import annotations

import numpy as np
import pytest

from mmnewsrec.serving.stages import (
    calibrate,
    category_distribution,
    epsilon_greedy,
    fill,
    kl_divergence,
    mmr,
    softmax_sample,
    thompson,
    top_k,
)


def binomial_ok(hits: int, draws: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(hits - draws * p) <= sigmas * np.sqrt(draws * p * (1 - p)) + 1


def test_mmr_on_hand_made_vectors() -> None:
    # A and its near copy A2 score highest; B and C are about other things.
    scores = np.array([1.0, 0.95, 0.5, 0.0])
    vectors = np.array([[1.0, 0.0, 0.0], [0.99, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert mmr(scores, vectors, 4, theta=1.0).tolist() == [0, 1, 2, 3]  # relevance alone
    # theta 0.5: after A, the copy gains 0.5 * 0.95 - 0.5 * 0.995 < 0, B 0.5 * 0.5, C 0; then C beats the copy.
    assert mmr(scores, vectors, 3, theta=0.5).tolist() == [0, 2, 3]
    assert mmr(scores, vectors, 2, theta=0.0)[0] == 0 and set(mmr(scores, vectors, 4, 0.3).tolist()) == {0, 1, 2, 3}
    assert mmr(scores, vectors, 10, theta=0.7).shape == (4,) and mmr(scores[:0], vectors[:0], 3, 0.5).shape == (0,)
    with pytest.raises(ValueError, match="theta"):
        mmr(scores, vectors, 2, theta=1.5)


def test_calibration_kl_falls_as_lambda_rises() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=200)
    categories = rng.integers(0, 5, size=200)
    scores[categories == 0] += 2.0  # the model favours category 0
    target = np.array([0.2, 0.4, 0.2, 0.1, 0.1])  # the user's history spreads wider
    kls, relevances = [], []
    for lam in (0.0, 0.2, 0.5, 0.8, 0.99):
        chosen = calibrate(scores, categories, target, 10, lam)
        assert len(set(chosen.tolist())) == 10
        kls.append(kl_divergence(target, category_distribution(categories[chosen], 5)))
        relevances.append(float(np.sort(scores)[::-1][:10].sum() - scores[chosen].sum()))
    assert calibrate(scores, categories, target, 10, 0.0).tolist() == top_k(scores, 10).tolist()
    assert all(a >= b - 1e-12 for a, b in zip(kls, kls[1:], strict=False)) and kls[-1] < kls[0] / 3
    assert all(a <= b + 1e-12 for a, b in zip(relevances, relevances[1:], strict=False))  # the price in score
    assert kl_divergence(target, target) == pytest.approx(0.0)


def test_softmax_sample_draws_the_first_item_by_softmax() -> None:
    scores, temperature, draws = np.array([2.0, 1.0, 0.0, -1.0]), 0.8, 20_000
    rng = np.random.default_rng(1)
    first = np.bincount([softmax_sample(scores, 3, temperature, rng)[0] for _ in range(draws)], minlength=4)
    expected = np.exp(scores / temperature) / np.exp(scores / temperature).sum()
    assert all(binomial_ok(int(first[i]), draws, float(expected[i])) for i in range(4)), (first, expected)
    assert softmax_sample(scores, 4, 1e-4, rng).tolist() == [0, 1, 2, 3]  # cold: the ranking
    with pytest.raises(ValueError, match="temperature"):
        softmax_sample(scores, 2, 0.0, rng)


def test_epsilon_greedy_explores_as_often_as_epsilon_says() -> None:
    scores, epsilon, draws = np.array([3.0, 2.0, 1.0, 0.0, -1.0]), 0.3, 20_000
    rng = np.random.default_rng(2)
    lists = [epsilon_greedy(scores, 2, epsilon, rng) for _ in range(draws)]
    best_first = sum(int(chosen[0] == 0) for chosen in lists)
    assert binomial_ok(best_first, draws, (1 - epsilon) + epsilon / 5)
    worst_first = sum(int(chosen[0] == 4) for chosen in lists)
    assert binomial_ok(worst_first, draws, epsilon / 5)
    assert all(len(set(c.tolist())) == 2 for c in lists) and epsilon_greedy(scores, 5, 0.0, rng).tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_thompson_samples_from_each_items_posterior() -> None:
    rng = np.random.default_rng(3)
    draws = 20_000
    # Two items with the same prior and no data: each first half the time.
    firsts = [thompson(np.array([0.3, 0.3]), np.zeros(2), np.zeros(2), 1, rng)[0] for _ in range(draws)]
    assert binomial_ok(int(np.sum(firsts)), draws, 0.5)
    # A fresh item with a content prior of 0.2 against one shown 2,000 times at 10% click-through:
    # first with P(Beta(2, 8) > Beta(202, 1808)), estimated from independent draws.
    check = np.random.default_rng(4)
    p_fresh = float(np.mean(check.beta(2, 8, 200_000) > check.beta(202, 1808, 200_000)))
    firsts = [thompson(np.array([0.2, 0.2]), np.array([0, 2000]), np.array([0, 200]), 1, rng)[0] for _ in range(draws)]
    assert binomial_ok(draws - int(np.sum(firsts)), draws, p_fresh) and 0.5 < p_fresh < 0.95
    with pytest.raises(ValueError, match="prior_strength"):
        thompson(np.array([0.5]), np.zeros(1), np.zeros(1), 1, rng, prior_strength=0)


def test_fill_tops_up_a_short_list_by_score_without_repeats() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    assert fill([2], scores, 3).tolist() == [2, 1, 3]
    assert fill([3, 1, 0, 2], scores, 2).tolist() == [3, 1] and fill([], scores, 9).tolist() == [1, 3, 2, 0]
