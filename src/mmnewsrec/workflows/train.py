"""``mmnewsrec train``: from an experiment config to a run folder (``evaluate`` is in
:mod:`mmnewsrec.workflows.evaluate`).

The run folder's layout belongs to :class:`~mmnewsrec.runs.layout.RunDir`. Training refuses a
folder that already holds a run unless told to ``resume`` it (checking first that the new config
can continue the checkpoint) or to ``overwrite`` it (the old run is moved aside). Nothing is written
until the data, features and model have been prepared, so a failure there leaves no run behind.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mmnewsrec.batching.batch import ImpressionArrays
from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import ExperimentConfig
from mmnewsrec.data.mind import DatasetLocation, MindDataset, dataset_split_dir, load_mind
from mmnewsrec.data.popularity import LogCounters
from mmnewsrec.errors import ConfigError
from mmnewsrec.evaluation.baselines import run_baseline
from mmnewsrec.evaluation.evaluate import evaluate, with_log_counters
from mmnewsrec.features.build import default_store
from mmnewsrec.models.build import (
    build_model,
    count_parameters,
    init_pretrained_entities,
    model_context,
    news_feature_builders,
    news_features,
    reads_log_counters,
)
from mmnewsrec.models.news_encoders import ModelContext
from mmnewsrec.runs.artifact import TrainedRun
from mmnewsrec.runs.checkpoint import has_checkpoint, read_checkpoint
from mmnewsrec.runs.distributed import distributed_state
from mmnewsrec.runs.layout import RunDir, RunError, RunInfo, absolute_paths
from mmnewsrec.runs.resume import check_resumable
from mmnewsrec.training.loop import train

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    dataset: MindDataset
    features: NewsFeatures
    context: ModelContext
    feature_keys: dict[str, str]


def prepare(
    config: ExperimentConfig,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    splits: tuple[str, ...] | None = None,
) -> Prepared:
    """Loads the data (``splits``, default: all) and builds (or reuses) every feature the model reads.

    Raises:
        ConfigError: the train split, whose vocabularies the model is sized by, is not loaded.
    """
    location = DatasetLocation.resolve(config.data, data_root)
    root = location.root
    dataset = location.load(splits)
    if dataset.vocabs is None:
        raise ConfigError(f"{root}: training needs the train split (its categories size the model)")
    store = default_store(config.features, cache_dir, progress)
    with distributed_state().main_process_first():  # one process builds, the others then reuse
        builders = news_feature_builders(config, store)
        features = news_features(config, store, dataset.news, dataset.vocabs, builders)
    keys = {named.name: named.builder.spec().dirname for named in builders}
    return Prepared(dataset, features, model_context(config, features, dataset.vocabs), keys)


def _training_splits(config: ExperimentConfig, root: Path) -> tuple[str, ...]:
    if not root.is_dir():
        raise ConfigError(
            f"{root}: dataset folder not found (--data, or data.root in the config); download MIND "
            "(mmnewsrec download), make a synthetic one (mmnewsrec synth --out DIR), or point --data at a "
            "folder with train/ and dev/"
        )
    if (root / "behaviors.tsv").is_file() or (root / "news.tsv").is_file():
        raise ConfigError(
            f"{root}: this is one split's folder (it holds news.tsv); --data takes the dataset root, "
            f"the folder that holds train/ and dev/ (here perhaps {root.parent})"
        )
    if not (root / "train").is_dir():
        raise ConfigError(f"{root}: no train/ split folder; the dataset root holds train/ and dev/ (and test/)")
    dev = config.training.dev_split
    if dev is None:
        logger.warning("training.dev_split is null: no evaluation; the final weights become the run's model")
        return ("train",)
    if not dataset_split_dir(root, dev).is_dir():
        raise ConfigError(
            f"{dataset_split_dir(root, dev)}: no {dev!r} split to evaluate on; training.dev_split names the "
            "labelled split used for evaluation, early stopping and the best checkpoint (set it to null to "
            "train without one)"
        )
    return ("train", dev)


def run_train(
    config: ExperimentConfig,
    data_root: str | Path | None = None,
    run_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    on_step=None,
    overwrite: bool = False,
) -> dict[str, object] | None:
    """Trains (or, for a baseline, scores) an experiment; returns the final dev metrics record.

    Args:
        resume: continue the run in ``run_dir`` from its last checkpoint (from step 0 when it has
            none yet; refused when the folder holds no run). Changed settings are applied when a
            resume can follow them (see :data:`~mmnewsrec.runs.resume.RESUMABLE_CHANGES`) and recorded in ``run.json``.
        overwrite: start again in a folder that holds a run, moving the old one aside.

    Raises:
        RunError: the folder holds a run and neither ``resume`` nor ``overwrite`` is set; ``resume``
            of a folder without a run; a resume with a change the checkpoint cannot follow, or of a
            damaged checkpoint. Raised before anything is written. A checkpoint that cannot be saved
            (a full disk) is a RunError too, the previous checkpoint kept and the run marked ``failed``.

    Under a multi-process launch only the main process evaluates, writes and returns the record;
    the others return None.
    """
    if resume and overwrite:
        raise ConfigError("resume and overwrite: choose one")
    main_process = distributed_state().is_main_process  # when launched as several processes, one writes
    run = RunDir(run_dir or Path(config.run_dir) / config.name)
    if data_root is not None:
        config = replace(config, data=replace(config.data, root=str(data_root)))
    if cache_dir is not None:
        config = replace(config, features=replace(config.features, cache_dir=str(cache_dir)))
    config = absolute_paths(config)
    root = Path(config.data.root)
    if resume and not run.is_run():
        there = "no such folder" if not run.path.is_dir() else "an empty folder"
        if run.has_run():
            there = "only files of an unfinished start"
        hint = " (with --overwrite)" if run.has_run() else ""
        raise RunError(f"{run.path}: --resume, but no run is there ({there}); leave out --resume to start one{hint}")
    changes: dict[str, list[object]] = {}
    if resume:
        changes = check_resumable(run.read_config(), config, run)
    elif run.has_run() and not overwrite:
        run.prepare_new(overwrite=False)  # raises: the folder is taken
    if config.baseline:
        dataset = load_mind(root, config.data, splits=("train", "dev"))
        metrics = run_baseline(dataset, "dev", config.baseline, seed=config.training.seed).to_dict()
        record = {"name": config.name, "baseline": config.baseline, **metrics}
        if not resume:
            run.prepare_new(overwrite)
        run.write_config(config)
        run.write_metrics(record)
        return record
    prepared = prepare(config, progress=progress, splits=_training_splits(config, root))
    dev = config.training.dev_split
    if dev and not prepared.dataset[dev].labelled:
        raise ConfigError(
            f"training.dev_split: {root / dev} has no click labels (an unlabelled split such as MIND's test); "
            "name a labelled split (dev), or null to train without evaluation"
        )
    torch.manual_seed(config.training.seed)  # the initial weights are part of the run's identity
    model = build_model(config.model, prepared.context)
    init_pretrained_entities(model, config.model, [split.directory for split in prepared.dataset.splits.values()])
    logger.info("model %s: %s parameters", config.name, count_parameters(model))
    checkpoint = None
    if resume:
        stored = run.read_info()
        old, new = run.read_vocabs(), prepared.dataset.vocabs
        same_vocabs = old.categories == new.categories and old.subcategories == new.subcategories
        if stored.context != prepared.context or not same_vocabs:
            raise RunError(
                f"{run.path}: the data or features differ from those the run was trained on "
                f"(model context {stored.context} now {prepared.context}); resume on the same data"
            )
        if has_checkpoint(run.last):  # read whole before anything is written: a damaged one changes nothing
            checkpoint = read_checkpoint(run.last, model, bool(config.training.history_cache_steps))
    if main_process:  # everything the user could get wrong has been checked: now write
        if resume:
            run.write_config(config)
            if changes:
                logger.info("resuming with changed settings: %s", changes)
            step = run.checkpoint_step()
            history = stored.changes + ([{"step": step, "changed": changes}] if changes else [])
            run.write_info(replace(stored, changes=history, status="training"))
        else:
            info = RunInfo(
                name=config.name,
                context=prepared.context,
                feature_keys=prepared.feature_keys,
                created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            )
            run.create(config, prepared.dataset.vocabs, info, overwrite)  # whole, or nothing at all
    dataset = prepared.dataset
    train_arrays = with_log_counters(config, ImpressionArrays.from_split(dataset, "train"), dataset["train"])
    dev_arrays = None
    if dev:
        prior = LogCounters.of_split(dataset["train"])  # dev impressions come after the training log
        dev_arrays = with_log_counters(config, ImpressionArrays.from_split(dataset, dev), dataset[dev], prior)
        if main_process and reads_log_counters(config.model):
            run.write_log_counters(prior)
    try:
        with run.logging_to_file() if main_process else contextlib.nullcontext():
            state = train(
                model,
                prepared.features,
                train_arrays,
                dev_arrays,
                config.training,
                run,
                resume,
                progress,
                on_step,
                checkpoint=checkpoint,
            )
    except RunError:
        if main_process:
            run.mark_failed()
        raise
    if not main_process:
        return None
    record: dict[str, object] = {
        "name": config.name,
        "steps": state.step,
        "best_step": state.best_step,
        "processes": state.processes,
        "evaluated": dev_arrays is not None,
        "train_seconds": round(state.elapsed_s, 3),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    if dev_arrays is not None:
        best = TrainedRun.load(run).model
        result = evaluate(
            best, prepared.features, dev_arrays, config.training.history_len, config.training.eval_batch_size
        )
        record.update(result.metrics.to_dict())
    run.write_metrics(record)
    run.update_info(status="finished")
    return record
