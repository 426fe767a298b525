"""Feed stages after the scorer: diversifiers and samplers that turn the model's scores of a pool of
candidates into a list of ``k``, as pure functions over arrays (the shape POPROX's recommender
uses: filters -> scorer -> diversifier -> sampler -> fill).

Every stage returns positions into the pool, best first, never one twice, and ``min(k, C)`` of
them: a short list is filled from the rest by score. Relevance for the diversifiers is the model's
score min-max scaled to [0, 1] over the pool, so that a trade-off means the same whatever the
scale of a model's logits.

* :func:`mmr`: maximal marginal relevance (Carbonell and Goldstein 1998): each next item maximises
  ``theta * relevance - (1 - theta) * max cosine similarity to the items already chosen``.
* :func:`calibrate`: calibrated recommendations (Steck 2018): greedily maximises
  ``(1 - lam) * sum of relevance - lam * KL(p || q~)`` where ``p`` is the user's category
  distribution (of the history), ``q`` that of the list so far and ``q~ = (1 - a) q + a p`` with
  ``a = 0.01`` (so the KL stays finite).
* :func:`softmax_sample`: a Plackett-Luce draw without replacement at a temperature (the Gumbel
  top-k trick: each item's score / temperature plus Gumbel noise, the top k taken).
* :func:`epsilon_greedy`: each slot the best remaining item, or with probability ``epsilon`` a
  uniformly drawn remaining one.
* :func:`thompson`: Thompson sampling over each item's click-through rate: a Beta posterior whose
  prior has the content-based click probability as mean (``prior_strength`` pseudo-impressions),
  updated by the item's impressions and clicks; items ranked by a draw from their posteriors.

Shapes: scores (C,), vectors (C, D), categories (C,) int; returns (min(k, C),) int64 positions.
"""

from __future__ import annotations

import numpy as np

#: Calibration's smoothing of the list's distribution towards the user's (Steck 2018's alpha).
CALIBRATION_ALPHA = 0.01


def relevance(scores: np.ndarray) -> np.ndarray:
    """Scores min-max scaled to [0, 1] over the pool (all 1 when they are all equal)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    low, high = scores.min(), scores.max()
    return np.ones_like(scores) if high - low <= 0 else (scores - low) / (high - low)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best positions, best first (ties keep the pool's order)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[: max(0, k)]


def fill(chosen: np.ndarray | list[int], scores: np.ndarray, k: int) -> np.ndarray:
    """``chosen`` (unique positions, kept in order), then the best of the rest by score up to ``k``."""
    chosen = [int(i) for i in chosen][:k]
    taken = set(chosen)
    for i in top_k(scores, len(scores)):
        if len(chosen) >= k:
            break
        if int(i) not in taken:
            chosen.append(int(i))
            taken.add(int(i))
    return np.asarray(chosen, dtype=np.int64)


def mmr(scores: np.ndarray, vectors: np.ndarray, k: int, theta: float) -> np.ndarray:
    """Maximal marginal relevance; ``theta`` 1 is the ranking by score, 0 the most diverse list."""
    count, k, rel = _greedy_start("theta", theta, scores, k)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    unit = np.asarray(vectors, dtype=np.float32)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)  # (C, D)
    chosen = [int(top_k(rel, 1)[0])]
    # Each step needs every candidate's similarity to the item just chosen only: k passes of (C, D),
    # not the (C, C) matrix.
    closest = unit @ unit[chosen[0]]  # (C,) max cosine similarity to the chosen ones
    free = np.ones(count, dtype=bool)
    free[chosen[0]] = False
    while len(chosen) < k:
        gain = np.where(free, theta * rel - (1 - theta) * closest, -np.inf)
        best = int(np.argmax(gain))  # first of equal gains: the pool's order
        chosen.append(best)
        free[best] = False
        np.maximum(closest, unit @ unit[best], out=closest)
    return np.asarray(chosen, dtype=np.int64)


def kl_divergence(p: np.ndarray, q: np.ndarray, alpha: float = CALIBRATION_ALPHA) -> float:
    """KL(p || (1 - alpha) q + alpha p), in nats: 0 when the list's distribution is the user's."""
    p = np.asarray(p, dtype=np.float64)
    smoothed = (1 - alpha) * np.asarray(q, dtype=np.float64) + alpha * p
    present = p > 0
    return float(np.sum(p[present] * np.log(p[present] / smoothed[present])))


def category_distribution(categories: np.ndarray, size: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Shares of each of ``size`` categories among ``categories`` (uniform when there are none)."""
    counts = np.bincount(np.asarray(categories, dtype=np.int64), weights=weights, minlength=size).astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.full(size, 1.0 / size)


def calibrate(scores: np.ndarray, categories: np.ndarray, target: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Steck's calibrated list of ``k``: ``lam`` 0 is the ranking by score; higher keeps the list's
    category distribution closer to ``target`` (the user's, a distribution over category indices)."""
    count, k, rel = _greedy_start("lam", lam, scores, k)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    categories = np.asarray(categories, dtype=np.int64)
    target = np.asarray(target, dtype=np.float64)
    size = len(target)
    counts = np.zeros(size)
    chosen: list[int] = []
    free = np.ones(count, dtype=bool)
    total_rel = 0.0
    for step in range(k):
        # The objective of the list with each free item added: the KL of each possible next share.
        shares = (counts[None, :] + np.eye(size)[categories]) / (step + 1)  # (C, K)
        smoothed = (1 - CALIBRATION_ALPHA) * shares + CALIBRATION_ALPHA * target[None, :]
        present = target > 0
        kl = np.sum(target[present] * np.log(target[present] / smoothed[:, present]), axis=1)  # (C,)
        objective = np.where(free, (1 - lam) * (total_rel + rel) - lam * kl, -np.inf)
        best = int(np.argmax(objective))
        chosen.append(best)
        free[best] = False
        counts[categories[best]] += 1
        total_rel += rel[best]
    return np.asarray(chosen, dtype=np.int64)


def softmax_sample(scores: np.ndarray, k: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """A Plackett-Luce draw of ``k`` without replacement: item i first with probability
    ``softmax(scores / temperature)[i]``; temperature -> 0 is the ranking by score."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    scores = np.asarray(scores, dtype=np.float64)
    noisy = scores / temperature + rng.gumbel(size=scores.shape)
    return top_k(noisy, min(k, len(scores)))


def epsilon_greedy(scores: np.ndarray, k: int, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Each slot: the best remaining item, or with probability ``epsilon`` a random remaining one."""
    _check_unit("epsilon", epsilon)
    ranked = [int(i) for i in top_k(scores, len(scores))]
    chosen = []
    for _ in range(min(k, len(ranked))):
        pick = int(rng.integers(len(ranked))) if rng.random() < epsilon else 0
        chosen.append(ranked.pop(pick))
    return np.asarray(chosen, dtype=np.int64)


def thompson(
    prior_ctr: np.ndarray,
    impressions: np.ndarray,
    clicks: np.ndarray,
    k: int,
    rng: np.random.Generator,
    prior_strength: float = 10.0,
) -> np.ndarray:
    """Thompson sampling: each item's click-through rate ~ Beta(m s + clicks, (1 - m) s + impressions
    - clicks), ``m`` its content-based click probability, ``s`` the prior's pseudo-impressions; the
    items ranked by one draw from each. Fresh items (no impressions) are explored in proportion to
    how uncertain their prior leaves them."""
    if prior_strength <= 0:
        raise ValueError(f"prior_strength must be > 0, got {prior_strength}")
    mean = np.clip(np.asarray(prior_ctr, dtype=np.float64), 1e-6, 1 - 1e-6)
    shown = np.asarray(impressions, dtype=np.float64)
    clicked = np.minimum(np.asarray(clicks, dtype=np.float64), shown)
    draw = rng.beta(mean * prior_strength + clicked, (1 - mean) * prior_strength + shown - clicked)
    return top_k(draw, min(k, len(draw)))


def _greedy_start(name: str, trade_off: float, scores: np.ndarray, k: int) -> tuple[int, int, np.ndarray]:
    """What a greedy diversifier starts from: the pool's size, the list's length (at most the
    pool's, at least 0), the relevance (the trade-off checked first)."""
    _check_unit(name, trade_off)
    count = len(scores)
    return count, max(0, min(k, count)), relevance(scores)


def _check_unit(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
