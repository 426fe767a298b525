"""The report's analyses: pure functions from the runs' predictions on one split to tables of values.

Each function reads :class:`RunPredictions` (one per run, scored on the same impressions), the
shared bootstrap :class:`~mmnewsrec.evaluation.analysis.Resamples` and facts of the split, and
returns a :class:`Table` whose cells are values (numbers, intervals, paired differences); the
rendering into Markdown, HTML and CSV is :mod:`mmnewsrec.evaluation.rendering`, the reading of
runs and data is the report workflow's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmnewsrec.data.mind import MindSplit
from mmnewsrec.evaluation.analysis import (
    METRICS,
    Interval,
    PairedDifference,
    Resamples,
    beyond_accuracy,
    group_of,
    intervals,
    paired_differences,
    subset_metrics,
)

Curve = list[tuple[float, float, float]]  # (step, elapsed_s, value)


@dataclass
class RunPredictions:
    """One run's predictions on the report's split, and what its training logs say.

    Attributes:
        scores: (N,) per candidate, higher = better (minus the predicted rank).
        metrics: (M, 4) per impression in :data:`METRICS` order, NaN where not scorable.
        curves: ``loss`` and ``auc`` over training, as (step, elapsed_s, value).
    """

    name: str
    scores: np.ndarray
    metrics: np.ndarray
    train_seconds: float | None = None
    samples_per_s: float | None = None
    trainable_parameters: int | None = None
    curves: dict[str, Curve] = field(default_factory=lambda: {"loss": [], "auc": []})


@dataclass(frozen=True)
class Paired:
    """A paired difference as a table cell: its resolution is one bootstrap resample."""

    difference: PairedDifference
    samples: int

    def text(self) -> str:
        d = self.difference
        # A bootstrap p-value of 0 means "below the resolution of the resamples".
        p_value = f"p<{1 / self.samples:.2g}" if d.p_value == 0 else f"p={d.p_value:.3g}"
        return f"{d.diff:+.4f} [{d.low:+.4f}, {d.high:+.4f}] {p_value}"


@dataclass
class Table:
    """One table of the report: a title, a header and rows of value cells."""

    key: str
    title: str
    header: list[str]
    rows: list[list[Any]]


@dataclass
class Bars:
    """A breakdown as a bar chart reads it: groups, each run's AUC intervals, group sizes."""

    groups: list[str]
    per_run: dict[str, list[Interval]]
    counts: list[int]


@dataclass
class CandidateFacts:
    """What the candidate breakdowns read of the split, one entry per flat candidate (N) or per
    distinct candidate news (V).

    Attributes:
        news_ids: (V,) the distinct candidate news; ``news_codes`` (N,) indexes it.
        category_codes: (N,) index into ``category_names``.
        clicks: (V,) clicks in the training log (or, without one, in this split).
        displays: (V,) impressions in the training log (or, without one, in this split).
        seen: (N,) shown as a training candidate, or None without a training log.
        has_image: (N,) the news has an image, or None when the split has no image column.
    """

    news_ids: np.ndarray
    news_codes: np.ndarray
    category_names: np.ndarray
    category_codes: np.ndarray
    clicks: np.ndarray
    displays: np.ndarray
    seen: np.ndarray | None
    has_image: np.ndarray | None


def candidate_facts(data: MindSplit, shown: pa.Table | None) -> CandidateFacts:
    """The candidate facts of ``data``; ``shown`` is the training log's display counts
    (:func:`~mmnewsrec.data.mind.display_counts`), or None without a training log."""
    flat = data.flat_candidates()
    news_ids, news_codes = np.unique(np.asarray(flat.to_numpy(zero_copy_only=False), dtype=str), return_inverse=True)
    seen = None
    clicks = np.zeros(len(news_ids))
    displays = np.zeros(len(news_ids))
    if shown is not None:
        seen = pc.is_in(flat, value_set=shown["news_id"]).to_numpy(zero_copy_only=False)
        where = pc.index_in(pa.array(news_ids), value_set=shown["news_id"])
        where = where.to_numpy(zero_copy_only=False).astype(np.float64)  # NaN: never shown in training
        known = ~np.isnan(where)
        clicks[known] = shown["clicks"].to_numpy()[where[known].astype(np.int64)]
        displays[known] = shown["displays"].to_numpy()[where[known].astype(np.int64)]
    else:
        clicks = np.bincount(news_codes[data.flat_labels() == 1], minlength=len(news_ids)).astype(np.float64)
        displays = np.bincount(news_codes, minlength=len(news_ids)).astype(np.float64)
    news = data.news
    has_image = None
    with_image = None
    if "image_path" in news.column_names:  # MIND with an image folder
        with_image = news.filter(news["image_path"].is_valid())["news_id"]
    elif "image_count" in news.column_names:  # EB-NeRD: the article's image ids
        with_image = news.filter(pc.greater(news["image_count"], 0))["news_id"]
    if with_image is not None:
        has_image = pc.is_in(flat, value_set=with_image).to_numpy(zero_copy_only=False)
    category_of = dict(zip(news["news_id"].to_pylist(), news["category"].to_pylist(), strict=True))
    category_names, category_codes = np.unique(
        np.array([category_of.get(n, "") for n in news_ids], dtype=str)[news_codes], return_inverse=True
    )
    return CandidateFacts(news_ids, news_codes, category_names, category_codes, clicks, displays, seen, has_image)


def main_table(
    runs: Sequence[RunPredictions], resamples: Resamples, title: str
) -> tuple[Table, dict[str, list[Interval]]]:
    """Every metric with its interval, training time and throughput; and the intervals by run."""
    found = {run.name: intervals(run.metrics, resamples.means(run.metrics)) for run in runs}
    rows = [
        [
            run.name,
            *found[run.name],
            run.train_seconds,
            run.samples_per_s,
            run.trainable_parameters,
            int((~np.isnan(run.metrics).any(axis=1)).sum()),
        ]
        for run in runs
    ]
    header = ["run", *METRICS, "training s", "samples/s", "trainable params", "impressions"]
    return Table("main", title, header, rows), found


def paired_table(runs: Sequence[RunPredictions], reference: RunPredictions, resamples: Resamples) -> Table:
    """Each run minus ``reference`` on the same impressions, with paired intervals and p-values."""
    rows = []
    for run in runs:
        boot = resamples.means(run.metrics - reference.metrics)
        diffs = paired_differences(run.metrics, reference.metrics, boot)
        rows.append([run.name] + [Paired(d, resamples.samples) for d in diffs])
    title = f"Paired differences against {reference.name} (run - {reference.name})"
    return Table("paired", title, ["run", *METRICS], rows)


def impression_breakdown(
    key: str,
    title: str,
    runs: Sequence[RunPredictions],
    values: np.ndarray,
    groups: Sequence[tuple[str, int, int | None]],
    resamples: Resamples,
) -> tuple[Table, Bars]:
    """AUC by a per-impression value (history length, impression size) grouped into ``groups``;
    groups with no impression are left out."""
    membership = group_of(values, groups)
    present = [label for label, _, _ in groups if (membership == label).any()]
    per_run: dict[str, list[Interval]] = {run.name: [] for run in runs}
    counts, rows = [], []
    for label in present:
        rows_in = np.flatnonzero(membership == label)
        counts.append(len(rows_in))
        for run in runs:
            auc = run.metrics[rows_in, :1]
            per_run[run.name].append(intervals(auc, resamples.means(auc, rows_in))[0])
        rows.append([label, len(rows_in), *(per_run[run.name][-1] for run in runs)])
    header = ["group", "impressions", *(f"{run.name} AUC" for run in runs)]
    return Table(key, title + ": AUC", header, rows), Bars(present, per_run, counts)


def candidate_subsets(facts: CandidateFacts, top_categories: int = 10) -> dict[str, dict[str, np.ndarray]]:
    """The candidate subsets the report compares: shown in training or cold, with or without an
    image (where known), and the ``top_categories`` categories with the most candidates."""
    subsets: dict[str, dict[str, np.ndarray]] = {}
    if facts.seen is not None:
        subsets["cold"] = {"shown in training": facts.seen, "never shown in training (cold)": ~facts.seen}
    if facts.has_image is not None:
        subsets["image"] = {"with image": facts.has_image, "without image": ~facts.has_image}
    top = np.argsort(-np.bincount(facts.category_codes), kind="stable")[:top_categories]
    subsets["category"] = {str(facts.category_names[c]): facts.category_codes == c for c in top}
    return subsets


def subset_breakdown(
    key: str,
    title: str,
    runs: Sequence[RunPredictions],
    parts: dict[str, np.ndarray],
    labels: np.ndarray,
    offsets: np.ndarray,
    resamples: Resamples,
) -> tuple[Table, Bars]:
    """AUC within each candidate subset (each impression re-ranked within the subset)."""
    per_run: dict[str, list[Interval]] = {run.name: [] for run in runs}
    counts, rows = [], []
    for label, keep in parts.items():
        counts.append(int(keep.sum()))
        for run in runs:
            auc, _ = subset_metrics(run.scores, labels, offsets, keep)
            per_run[run.name].append(intervals(auc[:, :1], resamples.means(auc[:, :1]))[0])
        rows.append([label, int(keep.sum()), *(per_run[run.name][-1] for run in runs)])
    header = ["candidates", "count", *(f"{run.name} AUC" for run in runs)]
    return Table(key, title + ": AUC within the subset", header, rows), Bars(list(parts), per_run, counts)


def beyond_table(
    runs: Sequence[RunPredictions],
    offsets: np.ndarray,
    facts: CandidateFacts,
    vectors: dict[str, np.ndarray | None],
    seed: int = 0,
) -> Table:
    """Diversity, coverage, novelty and personalisation of each run's top 10. Popularity is each
    news's share of the training log's clicks (half a click for a news never clicked, so that
    -log2 stays finite); ``vectors`` are each run's news vectors (V, D) of ``facts.news_ids``."""
    popularity = np.maximum(facts.clicks, 0.5) / max(1.0, facts.clicks.sum())
    rows = []
    for run in runs:
        beyond = beyond_accuracy(
            run.scores, offsets, facts.news_codes, facts.category_codes, popularity, vectors.get(run.name), seed=seed
        )
        rows.append(
            [
                run.name,
                beyond["category_diversity"],
                beyond.get("vector_diversity"),
                beyond["coverage"],
                beyond["novelty"],
                beyond["personalisation"],
            ]
        )
    header = ["run", "category diversity", "vector diversity", "coverage", "novelty (bits)", "personalisation"]
    return Table("beyond", "Beyond accuracy at k = 10 (each impression's top 10)", header, rows)
