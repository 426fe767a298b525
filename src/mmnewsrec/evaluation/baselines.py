"""Non-learned rankers that bracket every model: random (floor), popularity, oracle (ceiling)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmnewsrec.data.mind import MindDataset, MindSplit, entry_owner
from mmnewsrec.data.popularity import LogCounters, recent_clicks
from mmnewsrec.data.synthetic import ORACLE_FILE, read_oracle_probs
from mmnewsrec.errors import DataFormatError, MmnewsrecError
from mmnewsrec.evaluation.metrics import RankingMetrics, ranking_metrics
from mmnewsrec.evaluation.submission import write_prediction, write_truth
from mmnewsrec.registry import Registry

#: A baseline maps (dataset, split name, seed) to one score per candidate, shape (N,), flat in
#: impression order.
Baseline = Callable[[MindDataset, str, int], np.ndarray]

logger = logging.getLogger(__name__)

BASELINES: Registry[Baseline] = Registry("baseline")


@BASELINES.register("random")
def random_scores(dataset: MindDataset, split: str, seed: int = 0) -> np.ndarray:
    """Uniform random scores: AUC 0.5 in expectation."""
    count = len(dataset[split].flat_candidates())
    return np.random.default_rng(seed).random(count)


@BASELINES.register("popularity")
def popularity_scores(dataset: MindDataset, split: str, seed: int = 0) -> np.ndarray:
    """Scores each candidate by how often it was clicked before the evaluated impressions.

    Clicks counted: the training split's impression clicks plus every click-history entry of the
    training split and of the evaluated split (histories precede the split's impressions, so no
    label of the evaluated split is used). Ties, e.g. among news never clicked, are broken by a
    seeded random jitter smaller than one click.
    """
    counted: list[pa.Array] = []
    if "train" in dataset.splits:
        train = dataset["train"]
        clicked = pc.filter(train.flat_candidates(), pa.array(train.flat_labels() == 1))
        counted += [clicked, _unique_user_history(train)]
    if split != "train":
        counted.append(_unique_user_history(dataset[split]))
    candidates = dataset[split].flat_candidates()
    scores = np.zeros(len(candidates))
    if counted:
        counts = pc.value_counts(pa.concat_arrays(counted))
        rows = pc.fill_null(pc.index_in(candidates, value_set=counts.field("values")), -1).to_numpy()
        freq = counts.field("counts").to_numpy()
        scores = np.where(rows >= 0, freq[np.maximum(rows, 0)], 0).astype(np.float64)
    return scores + 0.5 * np.random.default_rng(seed).random(len(scores))


def _unique_user_history(split: MindSplit) -> pa.Array:
    # A user's history repeats in each of their impressions; count it once per user.
    first = pc.index_in(pc.unique(split.behaviors["user_id"]), value_set=split.behaviors["user_id"])
    return pc.list_flatten(split.behaviors["history"].take(first).combine_chunks())


@BASELINES.register("oracle")
def oracle_scores(dataset: MindDataset, split: str, seed: int = 0) -> np.ndarray:
    """The generator's true click probabilities (synthetic data only): the best achievable ranking."""
    data = dataset[split]
    path = data.directory / ORACLE_FILE
    if not path.is_file():
        raise DataFormatError(path, None, "no oracle probabilities: the oracle exists only for synthetic data")
    probs = read_oracle_probs(path)
    offsets = data.candidate_offsets()
    scores = np.empty(offsets[-1])
    for m, impression_id in enumerate(data.behaviors["impression_id"].to_numpy()):
        values = probs.get(int(impression_id))
        size = offsets[m + 1] - offsets[m]
        if values is None or len(values) != size:
            raise DataFormatError(path, None, f"impression {impression_id}: expected {size} probabilities")
        scores[offsets[m] : offsets[m + 1]] = values
    return scores


@BASELINES.register("category-profile")
def category_profile_scores(dataset: MindDataset, split: str, seed: int = 0) -> np.ndarray:
    """The share of the user's click history in the candidate's subcategory, plus a thousandth of
    the share in its category (the fall-back when no clicked news shares the subcategory, and the
    tie-break among those that do). An empty history scores every candidate 0 (AUC 0.5)."""
    data = dataset[split]
    hist_rows, cand_rows = dataset.news_rows(data.flat_history()), dataset.news_rows(data.flat_candidates())
    hist_offsets, cand_offsets = data.history_offsets(), data.candidate_offsets()
    hist_owner, cand_owner = entry_owner(hist_offsets), entry_owner(cand_offsets)
    lengths = np.maximum(np.diff(hist_offsets), 1)[cand_owner]  # (N,) history length of each candidate's user

    def shares(column: str) -> np.ndarray:
        codes = np.unique(dataset.news[column].to_numpy(zero_copy_only=False), return_inverse=True)[1]
        width = int(codes.max()) + 1 if len(codes) else 1
        clicked, counts = np.unique(hist_owner * width + codes[hist_rows], return_counts=True)  # (impression, code)
        wanted = cand_owner * width + codes[cand_rows]
        position = np.minimum(np.searchsorted(clicked, wanted), max(len(clicked) - 1, 0))
        found = clicked[position] == wanted if len(clicked) else np.zeros(len(wanted), dtype=bool)
        return np.where(found, counts[position] if len(counts) else 0, 0) / lengths

    return shares("subcategory") + 1e-3 * shares("category")


@BASELINES.register("recent-popularity")
def recent_popularity_scores(dataset: MindDataset, split: str, seed: int = 0) -> np.ndarray:
    """The candidate's clicks in the 24 hours of logs before the impression's time.

    Clicks counted: those of the training split's log (when the scored split is another one) and
    of the scored split's own impressions, each strictly before the impression being scored (see
    :mod:`mmnewsrec.data.popularity`: a click at or after its time never counts, so no label of the
    impression itself is used). Ties (news without recent clicks) are broken by a seeded random
    jitter smaller than one click.
    """
    prior = LogCounters.of_split(dataset["train"]) if split != "train" and "train" in dataset.splits else None
    scores = recent_clicks(prior or LogCounters.empty(), dataset[split])
    return scores + 0.5 * np.random.default_rng(seed).random(len(scores))


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
    if not data.labelled and prediction_out is None:
        raise MmnewsrecError(
            f"split {split!r} has no labels, so there is nothing to score against: pass --prediction-out "
            "FILE to write its predictions (a submission file)"
        )
    if method in ("popularity", "recent-popularity") and split != "train" and "train" not in dataset.splits:
        logger.warning(
            "%s: the dataset has no train split; only the clicks in %s's own logs are counted", method, split
        )
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
