"""Per-impression ranking metrics of the official MIND scorer, vectorised over all impressions.

Definitions (msnews.github.io, ``evaluate.py`` of the MIND competition), computed for each
impression and then averaged with a plain mean over impressions:

* AUC: ROC AUC of scores against 0/1 labels; tied scores count one half.
* MRR: sum over clicked candidates of 1 / rank, divided by the number of clicked candidates.
* nDCG@k: DCG@k / ideal DCG@k, gain ``2**label - 1``, discount ``log2(rank + 1)``.

Ranks sort by score, highest first; equal scores are ranked in candidate order (the earlier
candidate first), the same rule :func:`scores_to_ranks` uses to write prediction files, so scoring
scores and scoring the ranks written from them give the same numbers.

Impressions without a click or without a non-click have no AUC (the official scorer fails on them).
They are left out of **all four** means, so every metric averages over the same impressions; their
number is reported as ``skipped_impressions``.

All functions take a flat layout: ``scores`` and ``labels`` of shape (N,) holding every candidate of
every impression back to back, and ``offsets`` of shape (M + 1,) with impression ``m`` occupying
``[offsets[m], offsets[m + 1])``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankingMetrics:
    """Mean per-impression metrics, as in the official MIND scorer."""

    auc: float
    mrr: float
    ndcg5: float
    ndcg10: float
    impressions: int
    skipped_impressions: int

    def to_dict(self) -> dict[str, float | int]:
        """The scorer's JSON keys: ``auc``, ``mrr``, ``ndcg@5``, ``ndcg@10`` (+ counts)."""
        return {
            "auc": self.auc,
            "mrr": self.mrr,
            "ndcg@5": self.ndcg5,
            "ndcg@10": self.ndcg10,
            "impressions": self.impressions,
            "skipped_impressions": self.skipped_impressions,
        }


@dataclass(frozen=True)
class PerImpressionMetrics:
    """Metric of every impression, shape (M,) each; NaN where the impression is not scorable."""

    auc: np.ndarray
    mrr: np.ndarray
    ndcg5: np.ndarray
    ndcg10: np.ndarray
    valid: np.ndarray  # (M,) bool: has at least one click and one non-click


def _check_layout(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> None:
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be equal 1-d shapes")
    if offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != len(scores) or np.any(np.diff(offsets) <= 0):
        raise ValueError("offsets must start at 0, end at len(scores) and increase strictly")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")


def per_impression_metrics(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> PerImpressionMetrics:
    """AUC, MRR, nDCG@5 and nDCG@10 of every impression.

    Shape:
        scores, labels: (N,); offsets: (M + 1,); every output: (M,).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    offsets = np.asarray(offsets, dtype=np.int64)
    _check_layout(scores, labels, offsets)
    labels = labels.astype(np.float64)
    num_imp = len(offsets) - 1
    sizes = np.diff(offsets)
    group = np.repeat(np.arange(num_imp), sizes)  # (N,) impression of each candidate
    position = np.arange(len(scores))

    n_pos = np.bincount(group, weights=labels, minlength=num_imp)
    n_neg = sizes - n_pos
    valid = (n_pos > 0) & (n_neg > 0)

    # One ordering serves every metric: by impression, then score descending, ties by position.
    # Two sorts instead of a 3-key lexsort: a stable global score sort gives every candidate a
    # unique global rank, then the integer key (impression, global rank) sorts in one pass.
    by_score = np.argsort(-scores, kind="stable")
    global_rank = np.empty(len(scores), dtype=np.int64)
    global_rank[by_score] = position
    order = np.argsort(group * len(scores) + global_rank)
    # group is non-decreasing, so group[order] == group: slot j of ``order`` belongs to group[j].
    rank = position - offsets[group] + 1  # (N,) 1-based rank of the candidate in slot j
    y = labels[order]  # (N,) labels in ranked order

    # AUC: rank-sum statistic with tied scores sharing their average rank.
    s_sorted = scores[order]
    new_run = np.ones(len(order), dtype=bool)
    new_run[1:] = (s_sorted[1:] != s_sorted[:-1]) | (group[1:] != group[:-1])
    run_id = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_end = np.append(run_start[1:], len(order)) - 1
    avg_rank_desc = (run_start[run_id] + run_end[run_id]) / 2.0 - offsets[group] + 1.0
    avg_rank_asc = sizes[group] + 1.0 - avg_rank_desc
    pos_rank_sum = np.bincount(group, weights=avg_rank_asc * y, minlength=num_imp)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
        mrr = np.bincount(group, weights=y / rank, minlength=num_imp) / n_pos

    # nDCG@k with gain 2**label - 1 (= label for 0/1 labels); the ideal ranking puts the n_pos clicks
    # first, so ideal DCG@k is a prefix sum of discounts.
    discount = 1.0 / np.log2(np.arange(1, 12) + 1.0)  # ranks 1..11
    ideal_prefix = np.concatenate([[0.0], np.cumsum(discount)])
    ndcg = {}
    for k in (5, 10):
        top = rank <= k
        dcg = np.bincount(group[top], weights=y[top] / np.log2(rank[top] + 1.0), minlength=num_imp)
        idcg = ideal_prefix[np.minimum(n_pos, k).astype(np.int64)]
        with np.errstate(invalid="ignore", divide="ignore"):
            ndcg[k] = dcg / idcg
    nan = np.where(valid, 0.0, np.nan)
    return PerImpressionMetrics(auc + nan, mrr + nan, ndcg[5] + nan, ndcg[10] + nan, valid)


def ranking_metrics(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> RankingMetrics:
    """Mean per-impression AUC, MRR, nDCG@5, nDCG@10 over scorable impressions (see module doc)."""
    per = per_impression_metrics(scores, labels, offsets)
    count = int(per.valid.sum())
    if count == 0:
        raise ValueError("no impression has both a click and a non-click: metrics are undefined")

    def mean(values: np.ndarray) -> float:
        return float(values[per.valid].mean())

    return RankingMetrics(
        auc=mean(per.auc),
        mrr=mean(per.mrr),
        ndcg5=mean(per.ndcg5),
        ndcg10=mean(per.ndcg10),
        impressions=count,
        skipped_impressions=int(len(per.valid) - count),
    )


def scores_to_ranks(scores: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """1-based rank of every candidate within its impression (1 = highest score).

    Equal scores are ranked in candidate order, so ranks are always a permutation of 1..size.

    Shape:
        scores: (N,); offsets: (M + 1,); returns (N,) int64.
    """
    scores = np.asarray(scores, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    group = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    position = np.arange(len(scores))
    order = np.lexsort((position, -scores, group))
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = position - offsets[group] + 1
    return ranks


def ranking_metrics_subset(
    scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray, keep: np.ndarray
) -> RankingMetrics | None:
    """Metrics over the kept candidates only (e.g. news with an image), each impression re-ranked
    among its kept candidates; None when no impression keeps both a click and a non-click.

    Shape:
        scores, labels, keep (bool): (N,); offsets: (M + 1,).
    """
    keep = np.asarray(keep, dtype=bool)
    group = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))[keep]
    counts = np.bincount(group, minlength=len(offsets) - 1)
    nonempty = counts > 0
    new_offsets = np.concatenate([[0], np.cumsum(counts[nonempty])])
    try:
        return ranking_metrics(np.asarray(scores)[keep], np.asarray(labels)[keep], new_offsets)
    except ValueError:
        return None


def reference_metrics(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> dict[str, float]:
    """The official MIND scorer's per-impression formulas, one impression at a time, in plain numpy.

    The slow reference that :func:`ranking_metrics` is tested and benchmarked against: AUC counts
    every (click, non-click) pair, ties one half; MRR and nDCG rank by descending score (distinct
    scores rank the same under any tie rule). Impressions without a click or without a non-click
    are skipped, as in :func:`ranking_metrics`.
    """

    def dcg(y_true: np.ndarray, y_score: np.ndarray, k: int) -> float:
        order = np.argsort(y_score)[::-1]
        gains = 2 ** np.take(y_true, order[:k]) - 1
        return float(np.sum(gains / np.log2(np.arange(len(gains)) + 2)))

    out: dict[str, list[float]] = {"auc": [], "mrr": [], "ndcg@5": [], "ndcg@10": []}
    for m in range(len(offsets) - 1):
        s, y = scores[offsets[m] : offsets[m + 1]], labels[offsets[m] : offsets[m + 1]]
        if y.sum() == 0 or y.sum() == len(y):
            continue
        pos, neg = s[y == 1], s[y == 0]
        wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        out["auc"].append(wins / (len(pos) * len(neg)))
        ranked = np.take(y, np.argsort(s)[::-1])
        out["mrr"].append(np.sum(ranked / (np.arange(len(y)) + 1)) / np.sum(y))
        for k in (5, 10):
            out[f"ndcg@{k}"].append(dcg(y, s, k) / dcg(y, y, k))
    return {key: float(np.mean(values)) for key, values in out.items()}
