"""Official MIND metrics on a MIND-small-dev-sized evaluation: vectorised vs one impression at a time.

The loop is :func:`~mmnewsrec.evaluation.metrics.reference_metrics`, the official scorer's
per-impression formulas (numpy per impression, as in the MIND ``evaluate.py``), the same reference
the tests check against; both run in this process on the same random scores and must agree.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mmnewsrec.evaluation.metrics import ranking_metrics, reference_metrics


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
    slow = reference_metrics(scores, labels, offsets)
    slow_s = time.perf_counter() - start
    for key in slow:
        assert abs(fast[key] - slow[key]) < 1e-9, (key, fast[key], slow[key])
    print(f"{args.impressions:,} impressions, {n:,} candidates")
    print(f"vectorised: {fast_s:6.2f} s  ({args.impressions / fast_s:,.0f} impressions/s)")
    print(f"loop      : {slow_s:6.2f} s  ({args.impressions / slow_s:,.0f} impressions/s)")
    print(f"speed-up  : {slow_s / fast_s:5.1f}x   (metrics agree to 1e-9)")


if __name__ == "__main__":
    main()
