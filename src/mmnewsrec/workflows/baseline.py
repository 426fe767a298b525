"""`mmnewsrec baseline`: score one split of a dataset with a non-learned baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmnewsrec.data.mind import load_mind
from mmnewsrec.evaluation.baselines import run_baseline


def run_baseline_split(
    data_root: str | Path,
    method: str,
    split: str = "dev",
    seed: int = 0,
    prediction_out: str | Path | None = None,
    truth_out: str | Path | None = None,
) -> dict[str, Any]:
    """Scores ``split`` of the dataset at ``data_root`` with baseline ``method`` (the train split
    too is read where it exists: popularity counts its clicks). Returns the metrics, or, for an
    unlabelled split, where its prediction file went."""
    splits = tuple(dict.fromkeys(("train", split)))
    dataset = load_mind(data_root, splits=tuple(s for s in splits if (Path(data_root) / s).is_dir()))
    metrics = run_baseline(dataset, split, method, seed=seed, prediction_out=prediction_out, truth_out=truth_out)
    if metrics is None:
        return {"split": split, "labelled": False, "prediction": str(prediction_out)}
    return metrics.to_dict()
