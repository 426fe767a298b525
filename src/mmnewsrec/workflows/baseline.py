"""Score a split with a non-learned baseline, optionally writing leaderboard files."""

from __future__ import annotations

import logging
from pathlib import Path

from mmnewsrec.data.mind import MindDataset
from mmnewsrec.evaluation.baselines import BASELINES
from mmnewsrec.evaluation.metrics import RankingMetrics, ranking_metrics
from mmnewsrec.evaluation.submission import write_prediction, write_truth

logger = logging.getLogger(__name__)


def run_baseline(
    dataset: MindDataset,
    split: str,
    method: str,
    seed: int = 0,
    prediction_out: str | Path | None = None,
    truth_out: str | Path | None = None,
) -> RankingMetrics | None:
    """Scores ``split`` with baseline ``method``; returns metrics, or None for an unlabelled split."""
    scorer = BASELINES.get(method)
    data = dataset[split]
    scores = scorer(dataset, split, seed)
    offsets = data.candidate_offsets()
    impression_ids = data.behaviors["impression_id"].to_numpy()
    if prediction_out is not None:
        write_prediction(prediction_out, impression_ids, scores, offsets)
        logger.info("wrote %s", prediction_out)
    if not data.labelled:
        return None
    labels = data.flat_labels()
    if truth_out is not None:
        write_truth(truth_out, impression_ids, labels, offsets)
        logger.info("wrote %s", truth_out)
    return ranking_metrics(scores, labels, offsets)
