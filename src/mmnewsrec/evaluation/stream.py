"""Scoring a split block by block: memory that does not grow with the number of impressions.

MIND-large's test split has 2.37M impressions and the leaderboard wants a rank list for each. Here
the news are encoded once, then ``behaviors.tsv`` is read, scored and written one block of
impressions at a time (:func:`~mmnewsrec.data.mind.iter_behavior_blocks`); metrics are kept as
running sums of per-impression values. Blocks are independent, so several processes can each take
every ``world``-th block and the results are put back in block order
(:mod:`mmnewsrec.workflows.evaluate`).

A block is a whole number of scoring batches, so every batch holds the same impressions as in the
whole-split path (:func:`~mmnewsrec.evaluation.evaluate.evaluate`) and the scores are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from mmnewsrec.batching.batch import ImpressionArrays
from mmnewsrec.data.mind import BehaviorsBlock
from mmnewsrec.evaluation.evaluate import score_impressions
from mmnewsrec.evaluation.metrics import RankingMetrics, per_impression_metrics, scores_to_ranks
from mmnewsrec.evaluation.submission import format_lines
from mmnewsrec.models.recommender import NewsRecommender


@dataclass
class MetricSums:
    """Running sums of per-impression metrics over scorable impressions: the official means, in
    pieces. Adding blocks in the same order always gives the same bits."""

    auc: float = 0.0
    mrr: float = 0.0
    ndcg5: float = 0.0
    ndcg10: float = 0.0
    impressions: int = 0
    skipped: int = 0

    def add_scores(self, scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> None:
        per = per_impression_metrics(scores, labels, offsets)
        valid = per.valid
        self.auc += float(per.auc[valid].sum())
        self.mrr += float(per.mrr[valid].sum())
        self.ndcg5 += float(per.ndcg5[valid].sum())
        self.ndcg10 += float(per.ndcg10[valid].sum())
        self.impressions += int(valid.sum())
        self.skipped += int(len(valid) - valid.sum())

    def add(self, other: MetricSums) -> None:
        self.auc += other.auc
        self.mrr += other.mrr
        self.ndcg5 += other.ndcg5
        self.ndcg10 += other.ndcg10
        self.impressions += other.impressions
        self.skipped += other.skipped

    def to_dict(self) -> dict[str, float | int]:
        return dict(vars(self))

    def result(self) -> RankingMetrics:
        if not self.impressions:
            raise ValueError("no impression has both a click and a non-click: metrics are undefined")
        n = self.impressions
        return RankingMetrics(self.auc / n, self.mrr / n, self.ndcg5 / n, self.ndcg10 / n, n, self.skipped)


def prediction_lines(impression_ids: np.ndarray, scores: np.ndarray, offsets: np.ndarray) -> bytes:
    """Leaderboard lines ``<impression id> [r1,r2,...]`` (1 = most likely click; ties in candidate order)."""
    return format_lines(impression_ids.tolist(), scores_to_ranks(scores, offsets), offsets).encode("ascii")


@dataclass(frozen=True)
class ScoredBlock:
    index: int
    impressions: int
    lines: bytes  # the block's prediction lines
    sums: MetricSums | None  # None for an unlabelled split


def score_blocks(
    model: NewsRecommender,
    lookup: torch.Tensor,
    blocks: Iterable[BehaviorsBlock],
    news_rows: Callable[[pa.Array], np.ndarray],
    history_len: int,
    batch_size: int,
    device: torch.device | str = "cpu",
) -> Iterator[ScoredBlock]:
    """Scores each block with ready news vectors ``lookup`` (N, D) by catalogue row."""
    was_training = model.training
    model.eval()
    try:
        for block in blocks:
            result = block.result
            arrays = ImpressionArrays.from_behaviors(result.table, result.labelled, news_rows)
            scores = score_impressions(model, lookup, arrays, history_len, batch_size, device)
            sums = None
            if arrays.labels is not None:
                sums = MetricSums()
                sums.add_scores(scores, arrays.labels, arrays.cand_offsets)
            lines = prediction_lines(arrays.impression_ids, scores, arrays.cand_offsets)
            yield ScoredBlock(block.index, len(arrays), lines, sums)
    finally:
        model.train(was_training)
