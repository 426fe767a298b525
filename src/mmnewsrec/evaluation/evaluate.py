"""The fast evaluation path: every news encoded once, then every user, then all candidates scored.

It calls the model's own ``encode_news`` / ``encode_user`` / ``score`` (the functions training
uses), so its scores equal the full forward pass; only the news vectors are shared across
impressions instead of being recomputed for every history and candidate slot.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from mmnewsrec.batching.batch import ImpressionArrays, impression_batches
from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import ExperimentConfig
from mmnewsrec.data.mind import MindSplit
from mmnewsrec.data.popularity import LogCounters
from mmnewsrec.evaluation.metrics import RankingMetrics, ranking_metrics
from mmnewsrec.models.build import reads_log_counters
from mmnewsrec.models.recommender import NewsRecommender


@torch.inference_mode()
def encode_all_news(
    model: NewsRecommender,
    features: NewsFeatures,
    rows: np.ndarray | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> torch.Tensor:
    """News vectors of ``rows`` (default: every catalogue news), in that order.

    Shape:
        returns (len(rows), D) on ``device``.
    """
    rows = np.arange(features.num_news) if rows is None else np.asarray(rows)
    names = model.news_encoder.inputs()
    chunks = []
    for start in tqdm(range(0, len(rows), batch_size), desc="encode news", disable=not progress):
        index = torch.from_numpy(rows[start : start + batch_size])
        chunks.append(model.encode_news(features.gather(index, names, device)).float())
    return torch.cat(chunks) if chunks else torch.zeros((0, model.news_encoder.dim), device=device)


@dataclass(frozen=True)
class EvaluationResult:
    scores: np.ndarray  # (candidates,) flat, impression order
    metrics: RankingMetrics | None  # None for an unlabelled split


@torch.inference_mode()
def evaluate(
    model: NewsRecommender,
    features: NewsFeatures,
    arrays: ImpressionArrays,
    history_len: int = 50,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> EvaluationResult:
    """Scores every candidate of every impression; metrics when the split is labelled."""
    was_training = model.training
    model.eval()
    try:
        needed = np.unique(np.concatenate([arrays.hist_rows, arrays.cand_rows]))
        vectors = encode_all_news(model, features, needed, batch_size, device, progress)  # (U, D)
        lookup = torch.zeros((features.num_news, vectors.shape[1]), device=device)  # catalogue row -> vector
        lookup[torch.from_numpy(needed).to(device)] = vectors
        scores = score_impressions(model, lookup, arrays, history_len, batch_size, device, progress)
    finally:
        model.train(was_training)
    metrics = None if arrays.labels is None else ranking_metrics(scores, arrays.labels, arrays.cand_offsets)
    return EvaluationResult(scores, metrics)


@torch.inference_mode()
def score_impressions(
    model: NewsRecommender,
    lookup: torch.Tensor,
    arrays: ImpressionArrays,
    history_len: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Every candidate's logit, users encoded from ready news vectors (the model in eval mode).

    Shape:
        lookup (N, D) news vectors by catalogue row -> (candidates,) float64, impression order.
    """
    scores = np.empty(len(arrays.cand_rows), dtype=np.float64)
    batches = impression_batches(arrays, batch_size, history_len)
    total = (len(arrays) + batch_size - 1) // batch_size
    for impressions, batch in tqdm(batches, total=total, desc="score", disable=not progress):
        batch = batch.to(device)
        user = model.encode_user(lookup[batch.hist_rows], batch.hist_mask)  # (B, D) user state
        logits = model.score(user, lookup[batch.cand_rows], batch.cand_stats).float()  # (B, C)
        flat = logits[batch.cand_mask].cpu().numpy()  # row-major: impressions in order
        scores[arrays.cand_offsets[impressions[0]] : arrays.cand_offsets[impressions[-1] + 1]] = flat
    return scores


def with_log_counters(
    config: ExperimentConfig, arrays: ImpressionArrays, split: MindSplit, prior: LogCounters | None = None
) -> ImpressionArrays:
    """``arrays`` with each candidate's log counters when the model reads them (counted against
    ``prior``, a summary of an earlier log, and the split's own earlier impressions)."""
    if not reads_log_counters(config.model):
        return arrays
    return replace(arrays, cand_stats=(prior or LogCounters.empty()).candidate_stats(split))
