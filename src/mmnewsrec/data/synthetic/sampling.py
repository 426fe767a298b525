"""Sampling the logs from the world: impressions, click labels, base histories, the click bias."""

from __future__ import annotations

import numpy as np

from mmnewsrec.data.synthetic.world import (
    PARAMETERS,
    ClickModel,
    SynthScale,
    World,
    WorldParameters,
    sigmoid,
)
from mmnewsrec.errors import MmnewsrecError


def sample_impressions(
    world: World,
    scale: SynthScale,
    model: ClickModel,
    count: int,
    days: tuple[float, float],
    rng: np.random.Generator,
    params: WorldParameters = PARAMETERS,
) -> dict[str, np.ndarray]:
    """Users, times and candidate news of ``count`` impressions (no labels yet)."""
    users = rng.choice(len(world.user_activity), size=count, p=world.user_activity)
    day = np.sort(rng.uniform(days[0], days[1], size=count))
    lo = np.searchsorted(world.publish_day, day - params.fresh_window_days)
    hi = np.searchsorted(world.publish_day, day)
    available = hi - lo
    sizes = rng.lognormal(np.log(params.candidates_median), params.candidates_sigma, size=count)
    sizes = np.clip(np.rint(sizes), 2, scale.max_candidates).astype(np.int64)
    sizes = np.minimum(sizes, np.floor(available * params.max_candidate_share).astype(np.int64))
    if (sizes < 2).any():
        raise MmnewsrecError("too few news per day for the requested impressions; raise the news count")
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    owner = np.repeat(np.arange(count), sizes)
    news = lo[owner] + (rng.random(len(owner)) * available[owner]).astype(np.int64)
    # Candidates of one impression are distinct: redraw duplicates until none is left.
    for _ in range(50):
        key = owner * len(world.publish_day) + news
        _, first = np.unique(key, return_index=True)
        dup = np.ones(len(key), dtype=bool)
        dup[first] = False
        if not dup.any():
            break
        news[dup] = lo[owner[dup]] + (rng.random(dup.sum()) * available[owner[dup]]).astype(np.int64)
    else:
        raise MmnewsrecError("could not draw distinct candidates")
    return {"users": users, "day": day, "offsets": offsets, "owner": owner, "news": news}


def calibrate_bias(world: World, sample: dict[str, np.ndarray], model: ClickModel) -> float:
    """Bias such that the click rate of impressions conditioned on >= 1 click is the target."""
    owner = sample["owner"]
    world.bias = 0.0
    logits = world.logits(sample["users"][owner], sample["news"], sample["day"][owner], model)
    lo, hi = -20.0, 5.0
    for _ in range(40):
        mid = (lo + hi) / 2
        p = sigmoid(logits + mid)
        expected = np.bincount(owner, weights=p)
        p_none = np.exp(np.bincount(owner, weights=np.log1p(-np.minimum(p, 1 - 1e-7))))
        rate = (expected / np.maximum(1 - p_none, 1e-12)).sum() / len(owner)
        lo, hi = (mid, hi) if rate < model.target_click_rate else (lo, mid)
    return (lo + hi) / 2


def draw_labels(probs: np.ndarray, owner: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    labels = rng.random(len(probs)) < probs
    for _ in range(20):
        clicked = np.bincount(owner, weights=labels, minlength=count) > 0
        redo = ~clicked[owner]
        if not redo.any():
            return labels.astype(np.int8)
        labels[redo] = rng.random(redo.sum()) < probs[redo]
    # Rare click-less impressions left: one click chosen in proportion to p (Gumbel-max per impression).
    clicked = np.bincount(owner, weights=labels, minlength=count) > 0
    redo = ~clicked[owner]
    gumbel = np.log(probs) - np.log(-np.log(rng.random(len(probs))))
    gumbel[~redo] = -np.inf
    order = np.lexsort((-gumbel, owner))
    starts = np.searchsorted(owner[order], np.flatnonzero(~clicked))
    labels[order[starts]] = True
    return labels.astype(np.int8)


def sample_histories(
    world: World, model: ClickModel, max_len: int, rng: np.random.Generator, params: WorldParameters = PARAMETERS
) -> list[np.ndarray]:
    """Base click history of every user: news published before the logs, drawn by the click model."""
    n_users = len(world.user_interest)
    # News older than the first impressions' candidate window, so base histories and train candidates
    # do not overlap.
    old = int(np.searchsorted(world.publish_day, -params.fresh_window_days))
    lengths = rng.lognormal(np.log(params.history_median), params.history_sigma, size=n_users)
    lengths = np.clip(np.rint(lengths), 1, max_len).astype(np.int64)
    lengths[rng.random(n_users) < model.empty_history_fraction] = 0
    lengths = np.minimum(lengths, old)
    pool_size = min(old, params.history_pool)
    histories: list[np.ndarray] = []
    chunk = 1024
    for start in range(0, n_users, chunk):
        users = np.arange(start, min(start + chunk, n_users))
        pool = rng.integers(0, old, size=(len(users), pool_size))  # (U, P)
        logits = world.logits(np.repeat(users, pool_size), pool.ravel(), np.zeros(pool.size), model)
        logits = logits.reshape(len(users), pool_size)  # (U, P)
        # Gumbel top-k: k draws without replacement in proportion to p; duplicates in the pool removed.
        keys = np.log(sigmoid(logits)) - np.log(-np.log(rng.random(pool.shape)))
        order = np.argsort(-keys, axis=1)
        for row, user in enumerate(users):
            ranked = pool[row, order[row]]
            _, first = np.unique(ranked, return_index=True)
            chosen = ranked[np.sort(first)][: lengths[user]]
            histories.append(np.sort(chosen))  # chronological, as in MIND (ids follow publish time)
    return histories
