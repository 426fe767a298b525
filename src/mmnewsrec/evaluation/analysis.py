"""Report numbers: bootstrap intervals, paired comparisons, breakdowns, beyond-accuracy measures.

Pure functions over per-candidate scores (or ranks), labels and per-impression offsets: the report
workflow feeds them the runs' predictions. Every interval is a percentile bootstrap over
impressions (the unit the official metrics average over); paired comparisons resample the same
impressions for both runs. Only impressions with a click and a non-click count, as in the metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmnewsrec.evaluation.metrics import per_impression_metrics

#: The metrics of every table, in order; keys as in the official scorer's JSON.
METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10")
#: History-length groups (clicks): label, low, high (inclusive; None = no bound).
HISTORY_GROUPS = (("0", 0, 0), ("1-4", 1, 4), ("5-14", 5, 14), ("15-29", 15, 29), ("30+", 30, None))
#: Impression-size groups (candidates).
SIZE_GROUPS = (("2-10", 2, 10), ("11-30", 11, 30), ("31-100", 31, 100), ("101+", 101, None))


def impression_metrics(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-impression metric matrix, NaN rows where an impression has no click or no non-click.

    Shape:
        scores, labels (N,); offsets (M + 1,) -> (M, 4) in :data:`METRICS` order.
    """
    per = per_impression_metrics(scores, labels, offsets)
    return np.stack([per.auc, per.mrr, per.ndcg5, per.ndcg10], axis=1)


class Resamples:
    """Bootstrap resamples of M impressions, drawn once and shared by every table of a report.

    ``counts[b, i]`` is how often impression ``i`` is drawn in resample ``b`` (M draws with
    replacement). Every table reads the same resamples, so two runs are paired, and a group of
    impressions (a history-length bucket) is bootstrapped as part of the whole: its size varies
    between resamples as it would in the population.

    Shape:
        counts (samples, M) uint8 (a count over 255 is clipped; it needs p < 1e-300).
    """

    def __init__(self, num: int, samples: int = 1000, seed: int = 0, chunk: int = 50):
        rng = np.random.default_rng(seed)
        self.num, self.samples = num, samples
        self.counts = np.empty((samples, num), dtype=np.uint8)
        for start in range(0, samples, chunk):
            size = min(chunk, samples - start)
            draws = rng.integers(0, num, size=(size, num), dtype=np.int64)  # (size, M)
            draws += (np.arange(size, dtype=np.int64) * num)[:, None]
            counts = np.bincount(draws.ravel(), minlength=size * num).reshape(size, num)
            self.counts[start : start + size] = np.minimum(counts, 255)

    def means(self, values: np.ndarray, rows: np.ndarray | None = None, chunk: int = 100) -> np.ndarray:
        """Column means in every resample, each column over its non-NaN rows.

        Shape:
            values (R, K) for impressions ``rows`` (R,) (default: all M) -> (samples, K).
        """
        valid = ~np.isnan(values)
        filled, present = np.where(valid, values, 0.0).astype(np.float32), valid.astype(np.float32)
        out = np.empty((self.samples, values.shape[1]))
        for start in range(0, self.samples, chunk):
            counts = self.counts[start : start + chunk]
            counts = (counts if rows is None else counts[:, rows]).astype(np.float32)  # (chunk, R)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start : start + len(counts)] = (counts @ filled) / (counts @ present)
        return out


def bootstrap_means(values: np.ndarray, samples: int = 1000, seed: int = 0) -> np.ndarray:
    """Column means of ``samples`` bootstrap resamples of the rows (NaN rows of a column skipped).

    Shape:
        values (M, K) -> (samples, K).
    """
    return Resamples(len(values), samples, seed).means(values)


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% percentile-bootstrap interval."""

    mean: float
    low: float
    high: float

    def text(self, digits: int = 4) -> str:
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def intervals(values: np.ndarray, boot: np.ndarray) -> list[Interval]:
    """Each column's mean over its non-NaN rows with the 95% interval of its bootstrap means.

    Shape:
        values (M, K), boot (B, K) from :func:`bootstrap_means` -> K intervals.
    """
    with np.errstate(invalid="ignore"):
        means = np.nanmean(np.where(np.isnan(values).all(0), 0.0, values), axis=0)
    empty = np.isnan(values).all(0)
    low, high = np.nanpercentile(np.where(np.isnan(boot).all(0), 0.0, boot), [2.5, 97.5], axis=0)
    return [
        Interval(float("nan"), float("nan"), float("nan")) if e else Interval(float(m), float(lo), float(hi))
        for m, lo, hi, e in zip(means, low, high, empty, strict=True)
    ]


def bootstrap_intervals(metrics: np.ndarray, samples: int = 1000, seed: int = 0) -> list[Interval]:
    """Mean and 95% interval of each column of a per-impression metric matrix (NaN rows skipped)."""
    return intervals(metrics, bootstrap_means(metrics, samples, seed))


@dataclass(frozen=True)
class PairedDifference:
    """Mean difference (run - reference) over shared impressions, its 95% interval and p-value."""

    diff: float
    low: float
    high: float
    p_value: float


def paired_differences(run: np.ndarray, reference: np.ndarray, boot_diff: np.ndarray) -> list[PairedDifference]:
    """Mean difference (run - reference) of each column over impressions both score, with the 95%
    interval and two-sided p-value of its paired bootstrap ``boot_diff`` (the bootstrap means of
    ``run - reference``). The p-value is twice the smaller share of bootstrap differences on either
    side of 0, capped at 1: a run against itself gives a difference of exactly 0 and p = 1.

    Shape:
        run, reference (M, K); boot_diff (B, K) -> K results.
    """
    if run.shape != reference.shape:
        raise ValueError(f"paired runs must score the same impressions: {run.shape} vs {reference.shape}")
    diffs = run - reference
    out = []
    for k in range(diffs.shape[1]):
        column, boot = diffs[:, k], boot_diff[:, k]
        if np.isnan(column).all():
            out.append(PairedDifference(float("nan"), float("nan"), float("nan"), float("nan")))
            continue
        low, high = np.percentile(boot, [2.5, 97.5])
        p_value = min(1.0, 2 * min(float((boot <= 0).mean()), float((boot >= 0).mean())))
        out.append(PairedDifference(float(np.nanmean(column)), float(low), float(high), p_value))
    return out


def paired_bootstrap(
    run: np.ndarray, reference: np.ndarray, samples: int = 1000, seed: int = 0
) -> list[PairedDifference]:
    """Paired bootstrap of per-impression metric differences, one result per column.

    Shape:
        run, reference (M, K), the same impressions in the same order -> K results.
    """
    diffs = run - reference
    return paired_differences(run, reference, bootstrap_means(diffs, samples, seed))


def group_of(values: np.ndarray, groups: Sequence[tuple[str, int, int | None]]) -> np.ndarray:
    """The label of each value's group (``""`` where none matches). Shape: (M,) -> (M,) object."""
    out = np.full(len(values), "", dtype=object)
    for label, low, high in groups:
        inside = (values >= low) & (values <= (high if high is not None else np.iinfo(np.int64).max))
        out[inside] = label
    return out


def subset_metrics(
    scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-impression metrics over the kept candidates only (each impression re-ranked among them).

    Shape:
        scores, labels, keep (N,); offsets (M + 1,) -> metrics (M, 4) with NaN rows for impressions
        that keep no click or no non-click, and the (M,) number of kept candidates.
    """
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    counts = np.bincount(owner[keep], minlength=len(offsets) - 1)
    out = np.full((len(offsets) - 1, len(METRICS)), np.nan)
    nonempty = counts > 0
    if nonempty.any():
        kept_offsets = np.concatenate([[0], np.cumsum(counts[nonempty])])
        out[nonempty] = impression_metrics(scores[keep], labels[keep], kept_offsets)
    return out, counts


def top_k(scores: np.ndarray, offsets: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The k best candidates of every impression (descending score, ties by position).

    Shape:
        scores (N,), offsets (M + 1,) -> flat candidate positions (L,) grouped by impression in rank
        order, and the impression of each (L,).
    """
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    order = np.lexsort((np.arange(len(scores)), -scores, owner))  # by impression, then score
    rank = np.arange(len(scores)) - offsets[owner]  # owner is sorted: slot j belongs to owner[j]
    chosen = order[rank < k]
    return chosen, owner[chosen]


def beyond_accuracy(
    scores: np.ndarray,
    offsets: np.ndarray,
    news_codes: np.ndarray,
    category_codes: np.ndarray,
    popularity: np.ndarray,
    vectors: np.ndarray | None = None,
    k: int = 10,
    pairs: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Diversity, coverage, novelty and personalisation of each impression's top-k.

    Args:
        scores, offsets: the run's scores (N,) and the impressions' offsets (M + 1,).
        news_codes: (N,) integer id of each candidate's news (rows of ``popularity`` and ``vectors``).
        category_codes: (N,) integer category of each candidate.
        popularity: (V,) probability that a user clicks each news (e.g. its share of the log's
            clicks), > 0.
        vectors: (V, D) the run's news vectors, for the mean pairwise cosine distance.

    Returns:
        ``category_diversity`` (distinct categories / list length, mean over lists),
        ``vector_diversity`` (mean pairwise cosine distance within a list; only with ``vectors``),
        ``coverage`` (distinct recommended news / distinct candidates), ``novelty`` (mean
        -log2 popularity of the recommended news) and ``personalisation`` (1 - mean Jaccard overlap
        of the lists of ``pairs`` random pairs of different impressions).
    """
    chosen, owner = top_k(scores, offsets, k)
    num = len(offsets) - 1
    lengths = np.bincount(owner, minlength=num)
    categories = category_codes[chosen]
    distinct = np.unique(owner * (int(category_codes.max(initial=0)) + 1) + categories)
    per_list = np.bincount(distinct // (int(category_codes.max(initial=0)) + 1), minlength=num)
    nonempty = lengths > 0
    news = news_codes[chosen]
    out = {
        "category_diversity": float(np.mean(per_list[nonempty] / lengths[nonempty])),
        "coverage": len(np.unique(news)) / len(np.unique(news_codes)),
        "novelty": float(np.mean(-np.log2(popularity[news]))),
    }
    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    if num > 1:
        first = rng.integers(0, num, pairs)
        second = (first + rng.integers(1, num, pairs)) % num  # never the same list
        overlaps = []
        for a, b in zip(first, second, strict=True):
            left, right = set(news[starts[a] : starts[a + 1]].tolist()), set(news[starts[b] : starts[b + 1]].tolist())
            overlaps.append(len(left & right) / max(1, len(left | right)))
        out["personalisation"] = float(1.0 - np.mean(overlaps))
    else:
        out["personalisation"] = 0.0
    if vectors is not None:
        # Mean pairwise cosine of n unit vectors = (|sum|^2 - n) / (n (n - 1)).
        unit = (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        lists = np.flatnonzero(lengths >= 2)
        distances = []
        for chunk in np.array_split(lists, max(1, len(lists) // 4096)):  # bounded memory: 4k lists at a time
            if not len(chunk):
                continue
            sizes = lengths[chunk]
            owners = np.repeat(np.arange(len(chunk)), sizes)
            local = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # position in its list
            span = np.repeat(starts[chunk], sizes) + local  # the chunk's slots in ``news``
            sums = np.zeros((len(chunk), unit.shape[1]), dtype=np.float64)
            np.add.at(sums, owners, unit[news[span]])  # (chunk, D)
            n = lengths[chunk].astype(np.float64)
            mean_cosine = ((sums**2).sum(axis=1) - n) / (n * (n - 1))
            distances.append(1.0 - mean_cosine)
        out["vector_diversity"] = float(np.mean(np.concatenate(distances))) if distances else float("nan")
    return out
