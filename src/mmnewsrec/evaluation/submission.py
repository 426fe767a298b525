"""The MIND competition file formats: truth and prediction lines, and scoring one against the other.

* truth: ``17 [0,1,0]`` -- impression id, then the 0/1 label of each candidate in impression order;
* prediction: ``17 [2,1,3]`` -- impression id, then each candidate's rank (1 = most likely click).

The prediction file is what the MIND leaderboard takes (zipped as ``prediction.txt``). Lines are
matched by position, as in the official scorer: line k of the prediction answers line k of the truth.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmnewsrec.atomic import atomic_write_text
from mmnewsrec.errors import DataFormatError
from mmnewsrec.evaluation.metrics import RankingMetrics, ranking_metrics, scores_to_ranks


@dataclass(frozen=True)
class RankedLines:
    """Parsed truth or prediction file: impression ids, flat values and per-impression offsets."""

    impression_ids: np.ndarray  # (M,) int64
    values: np.ndarray  # (N,) int64: labels or ranks
    offsets: np.ndarray  # (M + 1,) int64


def _read_lines(path: str | Path, kind: str) -> RankedLines:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "file not found")
    ids: list[int] = []
    values: list[int] = []
    offsets = [0]
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise DataFormatError(path, number, f"not UTF-8 text (byte {exc.start + 1} of the line)") from None
            if not text:
                raise DataFormatError(path, number, "empty line")
            head, _, tail = text.partition(" ")
            try:
                impression_id = int(head)
                items = json.loads(tail)
            except ValueError:
                raise DataFormatError(
                    path, number, f"expected '<impression id> [v1,v2,...]', got {text[:60]!r}"
                ) from None
            if not isinstance(items, list) or not items or not all(type(v) is int for v in items):
                raise DataFormatError(path, number, "expected a non-empty list of integers")
            if kind == "truth" and any(v not in (0, 1) for v in items):
                raise DataFormatError(path, number, "labels must be 0 or 1")
            if kind == "prediction" and sorted(items) != list(range(1, len(items) + 1)):
                raise DataFormatError(
                    path, number, f"ranks must be a permutation of 1..{len(items)} (each rank once), got {tail[:60]}"
                )
            ids.append(impression_id)
            values.extend(items)
            offsets.append(len(values))
    if not ids:
        raise DataFormatError(path, None, "file is empty")
    return RankedLines(np.array(ids, np.int64), np.array(values, np.int64), np.array(offsets, np.int64))


def read_truth(path: str | Path) -> RankedLines:
    return _read_lines(path, "truth")


def read_prediction(path: str | Path) -> RankedLines:
    return _read_lines(path, "prediction")


def score_files(truth_path: str | Path, prediction_path: str | Path) -> RankingMetrics:
    """Scores a prediction file against a truth file, as the official MIND scorer does.

    Raises:
        DataFormatError: line counts, impression ids or list lengths that do not match, naming the
            prediction file's line.
    """
    truth = read_truth(truth_path)
    prediction = read_prediction(prediction_path)
    prediction_path = Path(prediction_path)
    common = min(len(truth.impression_ids), len(prediction.impression_ids))
    mismatch = np.flatnonzero(truth.impression_ids[:common] != prediction.impression_ids[:common])
    if mismatch.size:
        line = int(mismatch[0])
        raise DataFormatError(
            prediction_path,
            line + 1,
            f"impression id {prediction.impression_ids[line]} does not match truth impression id "
            f"{truth.impression_ids[line]}",
        )
    truth_sizes, pred_sizes = np.diff(truth.offsets), np.diff(prediction.offsets)
    mismatch = np.flatnonzero(truth_sizes[:common] != pred_sizes[:common])
    if mismatch.size:
        line = int(mismatch[0])
        raise DataFormatError(prediction_path, line + 1, f"{pred_sizes[line]} ranks for {truth_sizes[line]} candidates")
    if len(truth.impression_ids) != len(prediction.impression_ids):
        raise DataFormatError(
            prediction_path,
            common + 1,
            f"{len(prediction.impression_ids)} lines, but the truth file has {len(truth.impression_ids)}",
        )
    # A smaller rank is a better candidate: the score -rank orders them the same way as 1/rank.
    return ranking_metrics(-prediction.values.astype(np.float64), truth.values, truth.offsets)


def format_lines(impression_ids: Iterable[int], values: np.ndarray, offsets: np.ndarray) -> str:
    """Truth or prediction lines ``<impression id> [v1,v2,...]``, one per impression."""
    return "".join(
        f"{impression_id} [{','.join(map(str, values[offsets[m] : offsets[m + 1]].tolist()))}]\n"
        for m, impression_id in enumerate(impression_ids)
    )


def _write_lines(path: str | Path, impression_ids: Iterable[int], values: np.ndarray, offsets: np.ndarray) -> None:
    atomic_write_text(path, format_lines(impression_ids, values, offsets))


def write_prediction(path: str | Path, impression_ids: np.ndarray, scores: np.ndarray, offsets: np.ndarray) -> None:
    """Writes a leaderboard prediction file from model scores (ties ranked in candidate order).

    The file appears whole or not at all (written beside it, then renamed); folders are created.
    """
    _write_lines(path, impression_ids, scores_to_ranks(scores, offsets), offsets)


def zip_prediction(path: str | Path) -> Path:
    """The leaderboard upload: ``prediction.zip`` beside ``path`` holding it as ``prediction.txt``.

    Written to a temporary file and renamed, so a failed run never leaves half a zip.
    """
    path = Path(path)
    target = path.with_suffix(".zip")
    partial = target.with_name(f".{target.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.write(path, arcname="prediction.txt")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def write_truth(path: str | Path, impression_ids: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> None:
    """Writes a truth file (the format the official scorer reads) from labels."""
    _write_lines(path, impression_ids, np.asarray(labels, dtype=np.int64), offsets)
