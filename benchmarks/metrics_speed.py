"""Official MIND metrics on a MIND-small-dev-sized evaluation: vectorised vs one impression at a time.

The loop is the official scorer's per-impression formulas (numpy per impression, as in the MIND
``evaluate.py``); both run in this process on the same random scores and their results must agree.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mmnewsrec.evaluation.metrics import ranking_metrics


def loop_metrics(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> dict[str, float]:
    def dcg(y_true, y_score, k):
        order = np.argsort(y_score)[::-1]
        gains = 2 ** np.take(y_true, order[:k]) - 1
        return np.sum(gains / np.log2(np.arange(len(gains)) + 2))

    out = {"auc": [], "mrr": [], "ndcg@5": [], "ndcg@10": []}
    for m in range(len(offsets) - 1):
        s, y = scores[offsets[m] : offsets[m + 1]], labels[offsets[m] : offsets[m + 1]]
        n_pos = y.sum()
        if n_pos == 0 or n_pos == len(y):
            continue
        ranks = np.empty(len(s))
        ranks[np.argsort(s)] = np.arange(1, len(s) + 1)
        out["auc"].append((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (len(y) - n_pos)))
        ranked = np.take(y, np.argsort(s)[::-1])
        out["mrr"].append(np.sum(ranked / (np.arange(len(y)) + 1)) / n_pos)
        for k in (5, 10):
            out[f"ndcg@{k}"].append(dcg(y, s, k) / dcg(y, y, k))
    return {key: float(np.mean(v)) for key, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impressions", type=int, default=73_152)
    parser.add_argument("--mean-candidates", type=float, default=37.4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sizes = np.clip(rng.lognormal(np.log(args.mean_candidates) - 0.3, 0.8, args.impressions), 2, 300).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n = int(offsets[-1])
    scores = rng.random(n)  # continuous: no ties, so both paths rank identically
    labels = (rng.random(n) < 0.04).astype(np.int64)
    labels[offsets[:-1] + rng.integers(0, sizes)] = 1

    start = time.perf_counter()
    fast = ranking_metrics(scores, labels, offsets).to_dict()
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    slow = loop_metrics(scores, labels, offsets)
    slow_s = time.perf_counter() - start
    for key in slow:
        assert abs(fast[key] - slow[key]) < 1e-9, (key, fast[key], slow[key])
    print(f"{args.impressions:,} impressions, {n:,} candidates")
    print(f"vectorised: {fast_s:6.2f} s  ({args.impressions / fast_s:,.0f} impressions/s)")
    print(f"loop      : {slow_s:6.2f} s  ({args.impressions / slow_s:,.0f} impressions/s)")
    print(f"speed-up  : {slow_s / fast_s:5.1f}x   (metrics agree to 1e-9)")


if __name__ == "__main__":
    main()
