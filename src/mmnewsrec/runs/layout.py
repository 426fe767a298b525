"""A run folder: one object that owns its layout, so no other module spells a path inside it
(``tests/runs/test_layout.py`` fails when one does).

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
      SPLIT/                 evaluate's prediction.txt (+ .origin.json) and metrics.json per split,
                             replay's replay.json
      serve/state.db         the live service's default state store (users, clicks, posted news)

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

import yaml

from mmnewsrec.atomic import atomic_directory, atomic_write_bytes, atomic_write_text
from mmnewsrec.config import ExperimentConfig, from_dict, read_saved_config, to_dict
from mmnewsrec.data.mind import Vocabs
from mmnewsrec.data.popularity import LogCounters
from mmnewsrec.data.vocab import Vocab
from mmnewsrec.errors import ConfigError, MmnewsrecError
from mmnewsrec.models.news_encoders import ModelContext

logger = logging.getLogger(__name__)

#: Bumped when the layout changes in a way older code cannot read.
RUN_FORMAT = 1

#: The files of a checkpoint folder (``checkpoints/last``; ``best`` holds the weights only).
STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"
HISTORY_CACHE_FILE = "history_cache.safetensors"
#: The training log: one JSON record per line, and one CSV per record kind (``train``, ``eval``).
METRICS_LOG_FILE = "metrics.jsonl"
METRICS_CSV_SUFFIX = "_metrics.csv"
TENSORBOARD_DIR = "tensorboard"
PREDICTION_FILE = "prediction.txt"
#: Beside a prediction file (wherever ``--out`` puts it): which run wrote it.
ORIGIN_SUFFIX = ".origin.json"
REPLAY_FILE = "replay.json"
SERVE_DIR = "serve"
STATE_DB_FILE = "state.db"


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
        translations=absolute(config.data.translations),
    )
    features = replace(config.features, cache_dir=absolute(config.features.cache_dir))
    return replace(config, run_dir=absolute(config.run_dir), data=data, features=features)


class RunDir:
    """The folder of one training run (see the module docstring for the layout)."""

    CONFIG = "config.yaml"
    INFO = "run.json"
    METRICS = "metrics.json"
    VOCABS = "vocabs"
    CHECKPOINTS = "checkpoints"
    TRAIN_LOG = "train.log"
    COUNTERS = "log_counters.npz"

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
        return self.path / self.VOCABS

    @property
    def last(self) -> Path:
        """The resumable checkpoint."""
        return self.path / self.CHECKPOINTS / "last"

    @property
    def best(self) -> Path:
        """The weights of the best dev evaluation (the final weights without a dev split)."""
        return self.path / self.CHECKPOINTS / "best"

    def checkpoint_step(self) -> int:
        """The optimiser step of the resumable checkpoint (0 when there is none yet)."""
        try:
            return int(json.loads((self.last / STATE_FILE).read_text())["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    @property
    def log_path(self) -> Path:
        return self.path / self.TRAIN_LOG

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
                if self.is_run() and not self.info_path.is_file() and not (self.path / self.CHECKPOINTS).is_dir():
                    raise RunError(
                        f"{self.path}: holds a run whose start was cut short (config.yaml without {self.INFO}); "
                        "start it again with --overwrite (the old files are moved aside, never deleted)"
                    )
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

    def create(self, config: ExperimentConfig, vocabs: Vocabs, info: RunInfo, overwrite: bool = False) -> Path | None:
        """Writes a new run's config, vocabularies and ``run.json`` into a temporary folder that then
        takes the run's place: a failure (a full disk) leaves no half-made run behind. Returns where
        an older run was moved (``overwrite``), if any.

        Raises:
            RunError: the folder holds something and ``overwrite`` is False; the files could not be
                written (the disk and its free space named).
        """
        moved = self.prepare_new(overwrite)
        try:
            with atomic_directory(self.path) as tmp:
                staged = RunDir(tmp)
                staged.write_config(config)
                staged.write_vocabs(vocabs)
                staged.write_info(info)
        except OSError as exc:
            from mmnewsrec.runs.checkpoint import save_failure

            raise RunError(save_failure(self.path, exc, what="the new run", then="train again")) from None
        return moved

    def mark_failed(self) -> None:
        """Sets ``run.json``'s status to ``failed`` (best effort: on a full disk it may not be written)."""
        try:
            self.update_info(status="failed")
        except (OSError, RunError):
            logger.warning("%s: could not record the failed status", self.info_path)

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
        raw = read_saved_config(raw, str(self.config_path))  # a run saved in an earlier layout reads as it was
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
            if not self.last.is_dir() and not self.best.is_dir():  # config.yaml alone: a start cut short
                raise RunError(
                    f"{self.path}: a run whose start was cut short (config.yaml but no {self.INFO} or checkpoint); "
                    "start it again with --overwrite"
                ) from None
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
        return self.path / self.COUNTERS

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
        return self.split_dir(split) / PREDICTION_FILE

    def replay_path(self, split: str) -> Path:
        """Where ``replay`` writes its record for a split."""
        return self.split_dir(split) / REPLAY_FILE

    @property
    def metrics_log_path(self) -> Path:
        return self.path / METRICS_LOG_FILE

    def metrics_csv_path(self, kind: str) -> Path:
        return self.path / f"{kind}{METRICS_CSV_SUFFIX}"

    def metrics_csv_paths(self) -> list[Path]:
        return sorted(self.path.glob(f"*{METRICS_CSV_SUFFIX}"))

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD_DIR

    def serve_dir(self, create: bool = False) -> Path:
        """The live service's folder inside the run (its default state store)."""
        folder = self.path / SERVE_DIR
        if create:
            folder.mkdir(exist_ok=True)
        return folder

    def default_state_url(self) -> str:
        """``sqlite:///RUN/serve/state.db``, the folder created."""
        return f"sqlite:///{self.serve_dir(create=True) / STATE_DB_FILE}"

    def created(self) -> str:
        """When the run was created (``run.json``), "" for a run without one (a baseline's)."""
        if not self.info_path.is_file():
            return ""
        return self.read_info().created
