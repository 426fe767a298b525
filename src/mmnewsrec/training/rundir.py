"""A run folder: one object that owns its layout, so no other module spells a path inside it.

::

    RUN/
      config.yaml            resolved experiment config (absolute data and cache paths)
      run.json               format, name, model context (sizes, feature dims, feature cache keys),
                             config changes applied on resume, status
      vocabs/                categories.json, subcategories.json (fitted on train)
      log_counters.npz       the training log's popularity summary (models that read log counters)
      checkpoints/last/      resumable: weights, optimizer.pt, rng.pt, state.json,
                             history_cache.safetensors (when training.history_cache_steps > 0)
      checkpoints/best/      best dev AUC: news_encoder.safetensors, user_encoder.safetensors
      metrics.jsonl, train_metrics.csv, eval_metrics.csv, tensorboard/   training curves
      metrics.json           final dev metrics of the best checkpoint
      train.log              the library's log records of every training session of the run
      SPLIT/                 evaluate's prediction.txt and metrics.json per split

A run loads from these files alone: evaluation and serving never re-read the training split.
Every file is written whole or not at all (temporary file or folder, then rename).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from mmnewsrec.atomic import atomic_write_bytes, atomic_write_text
from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import ExperimentConfig, from_dict, to_dict
from mmnewsrec.data.mind import Vocabs
from mmnewsrec.data.popularity import LogCounters
from mmnewsrec.data.vocab import Vocab
from mmnewsrec.errors import ConfigError, MmnewsrecError
from mmnewsrec.features.build import default_store
from mmnewsrec.models.build import build_model, load_weights, news_feature_builders, news_features
from mmnewsrec.models.news_encoders import ModelContext
from mmnewsrec.models.recommender import NewsRecommender

logger = logging.getLogger(__name__)

#: Bumped when the layout changes in a way older code cannot read.
RUN_FORMAT = 1

#: The files of a checkpoint folder (``checkpoints/last``; ``best`` holds the weights only).
STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"
HISTORY_CACHE_FILE = "history_cache.safetensors"

#: Settings a resumed run may change: they steer the rest of training without invalidating the
#: checkpoint or the order of samples. Any other change is refused before anything is written.
RESUMABLE_CHANGES = frozenset(
    {
        "name",
        "run_dir",
        "data.root",
        "features.cache_dir",
        "training.epochs",
        "training.max_steps",
        "training.lr",
        "training.pretrained_lr",
        "training.weight_decay",
        "training.warmup_ratio",
        "training.max_grad_norm",
        "training.eval_every",
        "training.eval_impressions",
        "training.eval_batch_size",
        "training.patience",
        "training.mixed_precision",
        "training.log_every",
    }
)


class RunError(MmnewsrecError):
    """A run folder that is missing, occupied, damaged, or incompatible with what was asked."""


@dataclass(frozen=True)
class RunInfo:
    """What ``run.json`` holds besides the config: enough to rebuild the model without any data.

    Attributes:
        name: the experiment's name.
        context: the model's data-derived sizes.
        feature_keys: feature name -> the feature store folder (kind and content key) it was built in;
            evaluation and serving build new news into the same caches.
        changes: config changes applied on resume: ``{"step": s, "changed": {field: [old, new]}}``.
        status: ``training`` until the run ends, then ``finished``.
    """

    name: str
    context: ModelContext
    feature_keys: dict[str, str] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    status: str = "training"
    created: str = ""
    format: int = RUN_FORMAT

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> RunInfo:
        values = dict(values)
        values["context"] = ModelContext(**values["context"])
        return cls(**values)


def config_changes(old: ExperimentConfig, new: ExperimentConfig) -> dict[str, list[Any]]:
    """Dotted field -> [old, new] for every leaf setting that differs."""
    changes: dict[str, list[Any]] = {}

    def walk(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{prefix}{key}.")
        elif a != b:
            changes[prefix[:-1]] = [a, b]

    walk(to_dict(old), to_dict(new), "")
    return changes


def absolute_paths(config: ExperimentConfig, base: Path | None = None) -> ExperimentConfig:
    """The config with every path made absolute (relative ones resolved against ``base`` or the
    working directory), so a run folder works from anywhere."""

    def absolute(path: str | None) -> str | None:
        if path is None:
            return None
        resolved = Path(path).expanduser()
        return os.path.abspath(base / resolved if base and not resolved.is_absolute() else resolved)

    data = replace(
        config.data,
        root=absolute(config.data.root),
        images=replace(config.data.images, directory=absolute(config.data.images.directory)),
    )
    features = replace(config.features, cache_dir=absolute(config.features.cache_dir))
    return replace(config, run_dir=absolute(config.run_dir), data=data, features=features)


class RunDir:
    """The folder of one training run (see the module docstring for the layout)."""

    CONFIG = "config.yaml"
    INFO = "run.json"
    METRICS = "metrics.json"

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().absolute()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ---------------------------------------------------------------------------------- layout
    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def info_path(self) -> Path:
        return self.path / self.INFO

    @property
    def vocab_dir(self) -> Path:
        return self.path / "vocabs"

    @property
    def last(self) -> Path:
        """The resumable checkpoint."""
        return self.path / "checkpoints" / "last"

    @property
    def best(self) -> Path:
        """The weights of the best dev evaluation (the final weights without a dev split)."""
        return self.path / "checkpoints" / "best"

    def checkpoint_step(self) -> int:
        """The optimiser step of the resumable checkpoint (0 when there is none yet)."""
        try:
            return int(json.loads((self.last / STATE_FILE).read_text())["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @contextmanager
    def logging_to_file(self) -> Iterator[None]:
        """While training, the library's log records also go to ``train.log`` in the run folder
        (appended across resumes), at the level the caller configured."""
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        library = logging.getLogger("mmnewsrec")
        library.addHandler(handler)
        try:
            yield
        finally:
            library.removeHandler(handler)
            handler.close()

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    def split_dir(self, split: str) -> Path:
        """Where ``evaluate`` writes a split's ``prediction.txt`` and ``metrics.json``."""
        if not split or "/" in split or split.startswith("."):
            raise ConfigError(f"split {split!r}: a split folder name such as dev or test")
        return self.path / split

    # ---------------------------------------------------------------------------------- state
    def has_run(self) -> bool:
        """Whether the folder holds anything (a run, or files a new run would mix with)."""
        return self.path.is_dir() and any(self.path.iterdir())

    def is_run(self) -> bool:
        return self.config_path.is_file()

    def require_run(self) -> None:
        if not self.is_run():
            raise RunError(f"{self.path}: not a run folder (no {self.CONFIG}); train one with 'mmnewsrec train'")

    def prepare_new(self, overwrite: bool = False) -> Path | None:
        """Makes the folder ready for a new run; returns where an older run was moved, if any.

        Raises:
            RunError: the folder holds something and ``overwrite`` is False.
        """
        moved = None
        if self.has_run():
            if not overwrite:
                raise RunError(
                    f"{self.path}: already holds a run; continue it with --resume, start again with --overwrite "
                    "(the old run is moved aside, never deleted), or choose another --run-dir"
                )
            stamp = time.strftime("%Y%m%d-%H%M%S")
            moved = self.path.with_name(f"{self.path.name}.old-{stamp}")
            suffix = 1
            while moved.exists():
                moved, suffix = self.path.with_name(f"{self.path.name}.old-{stamp}-{suffix}"), suffix + 1
            os.replace(self.path, moved)
            logger.warning("moved the previous run in %s to %s", self.path, moved)
        self.path.mkdir(parents=True, exist_ok=True)
        return moved

    # ---------------------------------------------------------------------------------- config
    def write_config(self, config: ExperimentConfig) -> None:
        atomic_write_text(self.config_path, yaml.safe_dump(to_dict(config), sort_keys=False))

    def read_config(self) -> ExperimentConfig:
        """The run's resolved config; relative paths (older runs) are taken relative to the run folder."""
        self.require_run()
        try:
            raw = yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise RunError(f"{self.config_path}: damaged config ({str(exc).splitlines()[0]})") from None
        if not isinstance(raw, Mapping):
            raise RunError(f"{self.config_path}: damaged config (not a mapping)")
        try:
            config = from_dict(ExperimentConfig, raw)
        except ConfigError as exc:
            raise RunError(f"{self.config_path}: {exc}") from None
        return absolute_paths(config, base=self.path)

    # ---------------------------------------------------------------------------------- run.json
    def write_info(self, info: RunInfo) -> None:
        atomic_write_text(self.info_path, json.dumps(info.to_json(), indent=1) + "\n")

    def read_info(self) -> RunInfo:
        self.require_run()
        try:
            values = json.loads(self.info_path.read_text(encoding="utf-8"))
            info = RunInfo.from_json(values)
        except FileNotFoundError:
            raise RunError(
                f"{self.info_path}: missing; this run was written by an older mmnewsrec without its model context "
                "and must be trained again"
            ) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise RunError(f"{self.info_path}: damaged ({exc})") from None
        if info.format > RUN_FORMAT:
            raise RunError(f"{self.info_path}: run format {info.format} is newer than this mmnewsrec ({RUN_FORMAT})")
        return info

    def update_info(self, **changes: Any) -> RunInfo:
        info = replace(self.read_info(), **changes)
        self.write_info(info)
        return info

    # ---------------------------------------------------------------------------------- vocabularies
    def write_vocabs(self, vocabs: Vocabs) -> None:
        for name in ("categories", "subcategories"):
            atomic_write_text(
                self.vocab_dir / f"{name}.json", json.dumps(list(getattr(vocabs, name).tokens), ensure_ascii=False)
            )

    def read_vocabs(self) -> Vocabs:
        """The train-fitted category vocabularies (users are not part of the model: an empty map)."""
        loaded = {}
        for name in ("categories", "subcategories"):
            path = self.vocab_dir / f"{name}.json"
            try:
                loaded[name] = Vocab.load(path)
            except FileNotFoundError:
                raise RunError(f"{path}: missing; the run folder is incomplete") from None
            except (ValueError, TypeError) as exc:
                raise RunError(f"{path}: damaged ({exc})") from None
        return Vocabs(users=Vocab(("<pad>", "<unk>")), **loaded)

    # ---------------------------------------------------------------------------------- metrics
    def write_metrics(self, record: Mapping[str, Any], split: str | None = None) -> Path:
        """The final metrics of the run (``split`` None) or of one evaluated split."""
        path = self.metrics_path if split is None else self.split_dir(split) / self.METRICS
        atomic_write_text(path, json.dumps(dict(record), indent=2) + "\n")
        return path

    # ---------------------------------------------------------------------------------- log counters
    @property
    def counters_path(self) -> Path:
        return self.path / "log_counters.npz"

    def write_log_counters(self, counters: LogCounters) -> None:
        """The training log's popularity summary (what evaluation and serving count against)."""
        buffer = io.BytesIO()
        counters.save(buffer)
        atomic_write_bytes(self.counters_path, buffer.getvalue())

    def read_log_counters(self) -> LogCounters:
        try:
            return LogCounters.load(self.counters_path)
        except FileNotFoundError:
            raise RunError(f"{self.counters_path}: missing; this model reads log counters") from None
        except (OSError, ValueError, KeyError) as exc:
            raise RunError(f"{self.counters_path}: damaged ({exc})") from None

    def prediction_path(self, split: str) -> Path:
        return self.split_dir(split) / "prediction.txt"

    # ---------------------------------------------------------------------------------- the model
    def load_model(self, checkpoint: str = "best") -> tuple[ExperimentConfig, RunInfo, NewsRecommender]:
        """The run's config, info and model with the weights of ``checkpoint`` (``best`` or ``last``),
        in eval mode, from the run folder alone (no dataset is read)."""
        config = self.read_config()
        if config.baseline:
            raise RunError(f"{self.path}: a '{config.baseline}' baseline run has no model to load")
        info = self.read_info()
        model = build_model(config.model, info.context)
        folder = self.best if checkpoint == "best" else self.last
        if not folder.is_dir():
            raise RunError(f"{folder}: no saved weights; the run has not reached its first evaluation or checkpoint")
        load_weights(model, folder)
        return config, info, model.eval()

    def news_features(
        self,
        config: ExperimentConfig,
        info: RunInfo,
        news: pa.Table,
        cache_dir: str | Path | None = None,
        progress: bool = False,
    ) -> NewsFeatures:
        """The model's inputs for ``news`` (any news, seen in training or not), built by the same
        feature code as training into the run's feature store (content-keyed: known news are reused).

        Raises:
            RunError: the features no longer have the shapes the model was trained on (a changed
                backbone folder, say).
        """
        store = default_store(config.features, cache_dir, progress)
        builders = news_feature_builders(config, store)
        for named in builders:
            trained_on = info.feature_keys.get(named.name)
            if trained_on and trained_on != named.builder.spec().dirname:
                logger.warning(
                    "feature %s is now computed with other settings or model files (%s) than in training (%s)",
                    named.name,
                    named.builder.spec().dirname,
                    trained_on,
                )
        features = news_features(config, store, news, self.read_vocabs(), builders)
        for name, dim in info.context.feature_dims.items():
            if name in features.names() and features.dim(name) != dim:
                raise RunError(
                    f"{self.info_path}: feature {name!r} now has size {features.dim(name)}, but the model was trained "
                    f"on size {dim}; the model or tokenizer it reads changed since training"
                )
        return features


def check_resumable(stored: ExperimentConfig, new: ExperimentConfig, run: RunDir) -> dict[str, list[Any]]:
    """The changes a resume would apply; raises when any of them breaks the checkpoint.

    Raises:
        RunError: naming every refused field with its stored and new value.
    """
    changes = config_changes(stored, new)
    refused = {key: values for key, values in changes.items() if key not in RESUMABLE_CHANGES}
    if refused:
        listed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in refused.items())
        raise RunError(
            f"{run.path}: --resume with changed settings the checkpoint cannot follow ({listed}). Undo them, or "
            f"start a new run (--overwrite or another --run-dir). A resume may change: {sorted(RESUMABLE_CHANGES)}"
        )
    return changes
