"""``mmnewsrec train`` and ``mmnewsrec evaluate``: from an experiment config to a run folder.

A run folder holds ``config.yaml`` (the resolved config), ``checkpoints/last`` (resumable),
``checkpoints/best`` (best dev AUC: ``news_encoder.safetensors``, ``user_encoder.safetensors``),
``metrics.jsonl`` / ``*_metrics.csv`` (training curve) and ``metrics.json`` (final dev metrics).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mmnewsrec.batching.batch import ImpressionArrays
from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import ExperimentConfig, FrozenEncoderConfig, dump_yaml, load_yaml
from mmnewsrec.data.mind import MindDataset, load_mind
from mmnewsrec.errors import ConfigError
from mmnewsrec.evaluation.evaluate import evaluate
from mmnewsrec.evaluation.submission import write_prediction
from mmnewsrec.features.backbones import load_config, load_tokenizer
from mmnewsrec.features.build import NamedBuilder, build_features, default_store, frozen_builder
from mmnewsrec.features.image import PixelBuilder, ProcessorGeometry
from mmnewsrec.features.text import TokenBuilder, category_ids
from mmnewsrec.models.build import build_model, count_parameters, load_weights
from mmnewsrec.models.news_encoders import ModelContext, cached_states_feature
from mmnewsrec.models.recommender import NewsRecommender
from mmnewsrec.training.loop import distributed_state, train
from mmnewsrec.workflows.baseline import run_baseline

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"


@dataclass
class Prepared:
    dataset: MindDataset
    features: NewsFeatures
    context: ModelContext


def _tokenizer_name(config: ExperimentConfig) -> str:
    news = config.model.news
    if news.type in ("text", "fusion", "blip") and news.text is not None and not (news.precomputed[:1] or [""])[0]:
        return news.text.model
    return config.features.tokens.tokenizer if config.features.tokens else "bert-base-uncased"


def model_builders(config: ExperimentConfig, store) -> list[NamedBuilder]:
    """The feature builders the configured news encoder reads."""
    news, missing = config.model.news, config.data.images.missing
    names = [*news.precomputed, "", ""][:2]
    needs_tokens = news.type in ("text", "word", "blip") or (news.type == "fusion" and not names[0])
    needs_pixels = news.type in ("vision", "blip") or (news.type == "fusion" and not names[1])
    builders = []
    cached = news.type in ("text", "fusion") and needs_tokens and news.text is not None and news.text.cache_frozen
    if needs_tokens and not cached:
        tokenizer = _tokenizer_name(config)
        builders.append(NamedBuilder("tokens", TokenBuilder(tokenizer, {news.text_field: news.max_length})))
    if cached:
        builders.append(_cached_states_builder(config, store))
    if needs_pixels:
        backbone = news.text if news.type == "blip" else news.vision  # BLIP: one model, both parts
        if backbone is None:
            raise ConfigError("model.news.vision: this encoder reads images and needs a vision backbone")
        geometry = ProcessorGeometry.load(backbone.model, backbone.revision)
        builders.append(NamedBuilder("pixels", PixelBuilder(geometry, missing)))
    frozen = {f.name: f for f in config.features.frozen}
    for name in news.precomputed:
        if not name:
            continue
        if name not in frozen:
            raise ConfigError(f"model.news.precomputed: {name!r} is not among features.frozen {sorted(frozen)}")
        builders.append(NamedBuilder(f"frozen:{name}", frozen_builder(frozen[name], store, missing)))
    return builders


def _cached_states_builder(config: ExperimentConfig, store) -> NamedBuilder:
    """The hidden states entering the text backbone's trained top layers (``cache_frozen``)."""
    news = config.model.news
    backbone = news.text
    layers = int(getattr(load_config(backbone.model, backbone.revision), "num_hidden_layers", 0))
    if backbone.train_layers > layers:
        raise ConfigError(f"model.news.text.train_layers: {backbone.train_layers}, but {backbone.model} has {layers}")
    name = cached_states_feature(news.text_field)
    frozen = FrozenEncoderConfig(
        name=name,
        model=backbone.model,
        revision=backbone.revision,
        modality="text",
        pooling="tokens",
        text_field=news.text_field,
        max_length=news.max_length,
        layer=layers - backbone.train_layers,
        device="auto",
    )
    return NamedBuilder(f"frozen:{name}", frozen_builder(frozen, store, config.data.images.missing))


def prepare(
    config: ExperimentConfig,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> Prepared:
    """Loads the data and builds (or reuses) every feature the model reads."""
    dataset = load_mind(Path(data_root or config.data.root), config.data)
    store = default_store(config.features, cache_dir, progress)
    with distributed_state().main_process_first():  # one process builds, the others then reuse
        sets = build_features(store, model_builders(config, store), dataset.news)
    categories, subcategories = category_ids(dataset)
    # Per-token hidden states are large ((N, L, h)): they stay memory-mapped like pixels.
    mapped = ("pixels", "frozen:" + cached_states_feature(config.model.news.text_field))
    features = NewsFeatures.from_sets(sets, {"category": categories, "subcategory": subcategories}, mapped)
    vocab_size = len(load_tokenizer(_tokenizer_name(config))) if config.model.news.type == "word" else 0
    context = ModelContext(
        num_categories=len(dataset.vocabs.categories),
        num_subcategories=len(dataset.vocabs.subcategories),
        feature_dims={name: features.dim(name) for name in features.names()},
        vocab_size=vocab_size,
    )
    return Prepared(dataset, features, context)


def run_train(
    config: ExperimentConfig,
    data_root: str | Path | None = None,
    run_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    on_step=None,
) -> dict[str, object] | None:
    """Trains (or, for a baseline, scores) an experiment; returns the final dev metrics record.

    Under a multi-process launch only the main process evaluates, writes and returns the record;
    the others return None.
    """
    main_process = distributed_state().is_main_process  # when launched as several processes, one writes
    run = Path(run_dir) if run_dir else Path(config.run_dir) / config.name
    run.mkdir(parents=True, exist_ok=True)
    data_root = Path(data_root or config.data.root)
    config = replace(config, data=replace(config.data, root=str(data_root)))
    if main_process:
        dump_yaml(config, run / CONFIG_FILE)
    if config.baseline:
        dataset = load_mind(data_root, config.data, splits=("train", "dev"))
        metrics = run_baseline(dataset, "dev", config.baseline, seed=config.training.seed).to_dict()
        record = {"name": config.name, "baseline": config.baseline, **metrics}
        (run / METRICS_FILE).write_text(json.dumps(record, indent=2) + "\n")
        return record
    prepared = prepare(config, data_root, cache_dir, progress)
    torch.manual_seed(config.training.seed)  # the initial weights are part of the run's identity
    model = build_model(config.model, prepared.context)
    logger.info("model %s: %s parameters", config.name, count_parameters(model))
    train_arrays = ImpressionArrays.from_split(prepared.dataset, "train")
    dev_arrays = ImpressionArrays.from_split(prepared.dataset, "dev") if "dev" in prepared.dataset.splits else None
    state = train(model, prepared.features, train_arrays, dev_arrays, config.training, run, resume, progress, on_step)
    record: dict[str, object] = {
        "name": config.name,
        "steps": state.step,
        "best_step": state.best_step,
        "processes": state.processes,
    }
    if not main_process:
        return None
    if dev_arrays is not None:
        load_weights(model, run / "checkpoints" / "best")
        result = evaluate(
            model, prepared.features, dev_arrays, config.training.history_len, config.training.eval_batch_size
        )
        record.update(result.metrics.to_dict())
    (run / METRICS_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def load_run(
    run: str | Path, data_root: str | Path | None = None, cache_dir: str | Path | None = None, progress: bool = False
):
    """The config, prepared data and best model of a finished run."""
    run = Path(run)
    if not (run / CONFIG_FILE).is_file():
        raise ConfigError(f"{run}: not a run folder (no {CONFIG_FILE})")
    config = load_yaml(ExperimentConfig, run / CONFIG_FILE)
    prepared = prepare(config, data_root, cache_dir, progress)
    model = build_model(config.model, prepared.context)
    load_weights(model, run / "checkpoints" / "best")
    return config, prepared, model


def run_evaluate(
    run: str | Path,
    data_root: str | Path | None = None,
    split: str = "dev",
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, object]:
    """Scores ``split`` with a run's best model: ``metrics.json`` (labelled split) and ``prediction.txt``."""
    run = Path(run)
    out = run / split
    out.mkdir(parents=True, exist_ok=True)
    if not (run / CONFIG_FILE).is_file():
        raise ConfigError(f"{run}: not a run folder (no {CONFIG_FILE})")
    config = load_yaml(ExperimentConfig, run / CONFIG_FILE)
    if config.baseline:
        root = Path(data_root or config.data.root)
        dataset = load_mind(root, config.data, splits=tuple(dict.fromkeys(("train", split))))
        metrics = run_baseline(dataset, split, config.baseline, config.training.seed, out / "prediction.txt")
        record = {"run": str(run), "split": split, "prediction": str(out / "prediction.txt")}
        if metrics is not None:
            record.update(metrics.to_dict())
            (out / METRICS_FILE).write_text(json.dumps(record, indent=2) + "\n")
        return record
    config, prepared, model = load_run(run, data_root, cache_dir, progress)
    model: NewsRecommender
    arrays = ImpressionArrays.from_split(prepared.dataset, split)
    result = evaluate(
        model,
        prepared.features,
        arrays,
        config.training.history_len,
        config.training.eval_batch_size,
        progress=progress,
    )
    write_prediction(out / "prediction.txt", arrays.impression_ids, result.scores, arrays.cand_offsets)
    record: dict[str, object] = {"run": str(run), "split": split, "prediction": str(out / "prediction.txt")}
    if result.metrics is not None:
        record.update(result.metrics.to_dict())
        (out / METRICS_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record
