"""``mmnewsrec evaluate``: scores a split with a trained run, from the run folder and that split alone.

A model that does not read log counters is scored block by block
(:mod:`mmnewsrec.evaluation.stream`): the news are encoded once, then ``behaviors.tsv`` is read,
scored and written a block of impressions at a time, so memory does not grow with the number of
impressions (MIND-large's 2.37M test impressions included). Launched as several processes
(``accelerate launch --num_processes N -m mmnewsrec evaluate ...``), each process scores every
N-th block and the main process puts the blocks back in file order: the same bytes as one process.

A model that reads log counters (popularity and recency) needs the whole split in time order to
count what came before each impression, and is scored in memory. An EB-NeRD split is read block by
block from its ``behaviors.parquet`` the same way.

The prediction file is the leaderboard's (``prediction.txt``, zipped on request). An
``.origin.json`` file beside it records which run wrote it; a prediction file of another run (or of
unknown origin) is never overwritten unless asked.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_stream, atomic_write_bytes, atomic_write_text
from mmnewsrec.batching.batch import ImpressionArrays
from mmnewsrec.data.ebnerd import iter_split_blocks
from mmnewsrec.data.mind import (
    DatasetLocation,
    catalogue_rows,
    iter_behavior_blocks,
)
from mmnewsrec.data.schema import BEHAVIORS_FILE
from mmnewsrec.errors import ConfigError
from mmnewsrec.evaluation.baselines import run_baseline
from mmnewsrec.evaluation.evaluate import EvaluationResult, encode_all_news, evaluate, with_log_counters
from mmnewsrec.evaluation.metrics import RankingMetrics
from mmnewsrec.evaluation.stream import MetricSums, score_blocks
from mmnewsrec.evaluation.submission import write_prediction, zip_prediction
from mmnewsrec.models.build import reads_log_counters
from mmnewsrec.runs.artifact import TrainedRun, load_run
from mmnewsrec.runs.distributed import distributed_state
from mmnewsrec.runs.hub import locate_run
from mmnewsrec.runs.layout import ORIGIN_SUFFIX, RunDir, RunError

logger = logging.getLogger(__name__)

#: Impressions per block of block-by-block scoring (rounded down to whole scoring batches).
BLOCK_IMPRESSIONS = 20_000


def origin_path(prediction: Path) -> Path:
    """The file beside a prediction file that names the run which wrote it."""
    return prediction.with_name(prediction.name + ORIGIN_SUFFIX)


def _origin(folder: RunDir, split: str) -> dict[str, str]:
    # A baseline run has no run.json: its folder alone names it. A damaged one is a RunError.
    return {"run": str(folder.path.resolve()), "created": folder.created(), "split": split}


def check_prediction_target(
    prediction: Path, folder: RunDir, split: str, mine: dict[str, str], overwrite: bool
) -> None:
    """Refuses to replace a prediction file that another run wrote (or whose origin is unknown);
    ``mine`` is this run's origin record (:func:`_origin`).

    Raises:
        RunError: naming the file and the run that owns it, and how to proceed.
    """
    if overwrite or not prediction.exists():
        return
    origin = origin_path(prediction)
    if not origin.is_file():
        if prediction == folder.prediction_path(split):
            return  # the run's own file, written before origins were recorded
        raise RunError(
            f"{prediction}: exists and was not written by `mmnewsrec evaluate` (no {origin.name} beside it); "
            "choose another --out or pass --overwrite"
        )
    try:
        theirs = json.loads(origin.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        theirs = {}
    if (theirs.get("run"), theirs.get("created")) != (mine["run"], mine["created"]):
        raise RunError(
            f"{prediction}: holds the predictions of run {theirs.get('run', '?')} "
            f"(created {theirs.get('created', '?')}), not of {mine['run']}; choose another --out or pass --overwrite"
        )


def run_evaluate(
    run: str | Path,
    data_root: str | Path | None = None,
    split: str = "dev",
    cache_dir: str | Path | None = None,
    progress: bool = False,
    zip_file: bool = False,
    out: str | Path | None = None,
    overwrite: bool = False,
    block_impressions: int = BLOCK_IMPRESSIONS,
) -> dict[str, object] | None:
    """Scores ``split`` with a run's best model: ``metrics.json`` (labelled split) and the prediction
    file (default ``RUN/SPLIT/prediction.txt``; with ``zip_file`` also the leaderboard's zip).

    Returns the record (None on the non-main processes of a multi-process launch).

    Raises:
        RunError: ``out`` holds another run's predictions (and ``overwrite`` is off).
    """
    folder = RunDir(locate_run(run))  # a folder, or a run pushed to the Hub (ORG/NAME[@REVISION])
    config = folder.read_config()
    prediction = Path(out) if out is not None else folder.prediction_path(split)
    state = distributed_state()
    origin = _origin(folder, split)
    check_prediction_target(prediction, folder, split, origin, overwrite)  # every process: all stop, or none
    record: dict[str, object] = {"run": str(folder.path), "split": split, "prediction": str(prediction)}
    if config.baseline:
        dataset = DatasetLocation.resolve(config.data, data_root).load(tuple(dict.fromkeys(("train", split))))
        metrics = run_baseline(dataset, split, config.baseline, config.training.seed, prediction)
    elif reads_log_counters(config.model):
        metrics = _evaluate_in_memory(folder, data_root, split, cache_dir, progress, prediction)
    else:
        metrics, done = _evaluate_in_blocks(
            folder, data_root, split, cache_dir, progress, prediction, block_impressions
        )
        if not done:
            return None
    if not state.is_main_process:
        return None
    atomic_write_text(origin_path(prediction), json.dumps(origin, indent=2) + "\n")
    if zip_file:
        record["zip"] = str(zip_prediction(prediction))
    if metrics is not None:
        record.update(metrics.to_dict())
        folder.write_metrics(record, split)
    return record


def score_split(
    run: str | Path, data_root: str | Path | None = None, split: str = "dev", cache_dir=None, progress: bool = False
) -> tuple[ImpressionArrays, EvaluationResult]:
    """A trained model's scores of every candidate of ``split``, in memory: the impressions' arrays
    and the flat scores (N,) in candidate order (with the metrics when the split is labelled).

    Raises:
        ConfigError: the run is a baseline (it has no model to score with).
    """
    folder = RunDir(locate_run(run))
    if folder.read_config().baseline:
        raise ConfigError(f"{folder.path}: a baseline run ({folder.read_config().baseline}) has no model's scores")
    loaded = load_run(folder.path, data_root, cache_dir, progress, splits=(split,))
    arrays = ImpressionArrays.from_split(loaded.dataset, split)
    if reads_log_counters(loaded.config.model):
        arrays = with_log_counters(loaded.config, arrays, loaded.dataset[split], folder.read_log_counters())
    training = loaded.config.training
    result = evaluate(
        loaded.model, loaded.features, arrays, training.history_len, training.eval_batch_size, progress=progress
    )
    return arrays, result


def _evaluate_in_memory(
    folder: RunDir, data_root, split: str, cache_dir, progress: bool, prediction: Path
) -> RankingMetrics | None:
    arrays, result = score_split(folder.path, data_root, split, cache_dir, progress)
    if distributed_state().is_main_process:
        write_prediction(prediction, arrays.impression_ids, result.scores, arrays.cand_offsets)
    return result.metrics


def _evaluate_in_blocks(
    folder: RunDir, data_root, split: str, cache_dir, progress: bool, prediction: Path, block_impressions: int
) -> tuple[RankingMetrics | None, bool]:
    """Block-by-block scoring; returns (metrics, whether this process is the one that reports)."""
    state = distributed_state()
    world, rank = state.num_processes, state.process_index
    trained = TrainedRun.load(folder, cache_dir=cache_dir)
    config, model = trained.config, trained.model
    training = config.training
    location = DatasetLocation.resolve(config.data, data_root)
    directory = location.split_dir(split)
    news = location.read_split_news(split)
    with state.main_process_first():  # one process builds missing features, the others reuse them
        features = trained.featurize(news, progress)
    device = state.device
    model.to(device)
    lookup = encode_all_news(model, features, None, training.eval_batch_size, device, progress)  # (N, D)
    news_ids = news["news_id"].combine_chunks()

    def news_rows(ids: pa.Array) -> np.ndarray:
        return catalogue_rows(news, ids, directory)

    per_block = max(1, block_impressions // training.eval_batch_size) * training.eval_batch_size
    take = lambda index: index % world == rank  # noqa: E731 - this process's blocks
    if location.is_ebnerd:  # behaviors.parquet, a block of rows at a time
        blocks = iter_split_blocks(directory, news_ids, config.data.on_unknown_news, per_block, take)
    else:
        blocks = iter_behavior_blocks(
            directory / BEHAVIORS_FILE, news_ids, config.data.on_unknown_news, per_block, take=take
        )
    scored = score_blocks(model, lookup, blocks, news_rows, training.history_len, training.eval_batch_size, device)
    bar = tqdm(desc=f"score {split}", unit=" impressions", disable=not progress or not state.is_main_process)
    if world == 1:
        sums: MetricSums | None = None
        with atomic_stream(prediction) as handle:
            for block in scored:
                handle.write(block.lines)
                sums = _add(sums, block.sums)
                bar.update(block.impressions)
        bar.close()
        return (sums.result() if sums is not None else None), True

    # Several processes: each writes its blocks to a shared folder, the main one joins them in order.
    parts = prediction.with_name(f".{prediction.name}.parts")
    if state.is_main_process:
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
    state.wait_for_everyone()
    for block in scored:
        atomic_write_bytes(parts / f"{block.index:08d}.txt", block.lines)
        block_sums = block.sums.to_dict() if block.sums is not None else None
        atomic_write_text(
            parts / f"{block.index:08d}.json", json.dumps({"impressions": block.impressions, "sums": block_sums})
        )
        bar.update(block.impressions * world)
    bar.close()
    state.wait_for_everyone()
    if not state.is_main_process:
        return None, False
    total: MetricSums | None = None
    try:
        with atomic_stream(prediction) as handle:
            for index in sorted(int(p.stem) for p in parts.glob("*.txt")):
                handle.write((parts / f"{index:08d}.txt").read_bytes())
                meta = json.loads((parts / f"{index:08d}.json").read_text())
                total = _add(total, MetricSums(**meta["sums"]) if meta["sums"] is not None else None)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return (total.result() if total is not None else None), True


def _add(sums: MetricSums | None, block: MetricSums | None) -> MetricSums | None:
    """The running sums with a block's added (None: no labelled block yet)."""
    if block is None:
        return sums
    sums = sums or MetricSums()
    sums.add(block)
    return sums
