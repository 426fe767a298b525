"""A trained run as one loaded object: what evaluation, serving, replay and reports all start from.

:class:`TrainedRun` holds the run's config, ``run.json`` info, vocabularies and model (weights of
one checkpoint, in eval mode), and a news featurizer planned once per process: the feature builders
(tokenizer, frozen backbones) are made on first use and kept, so encoding news batch after batch
loads nothing again. It is built from the run folder alone; no training data is read.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import ExperimentConfig
from mmnewsrec.data.mind import DatasetLocation, MindDataset, Vocabs
from mmnewsrec.data.popularity import LogCounters
from mmnewsrec.features.build import NamedBuilder, default_store
from mmnewsrec.features.memory import MemoryStore
from mmnewsrec.features.store import FeatureStore
from mmnewsrec.models.build import build_model, load_weights, news_feature_builders, news_features
from mmnewsrec.models.recommender import NewsRecommender
from mmnewsrec.runs.hub import locate_run
from mmnewsrec.runs.layout import RunDir, RunError, RunInfo

logger = logging.getLogger(__name__)

CHECKPOINTS = ("best", "last")


@dataclass
class TrainedRun:
    """A run folder loaded for use (see the module docstring).

    Attributes:
        folder: the run folder (its layout).
        checkpoint: whose weights the model holds, ``best`` or ``last``.
        cache_dir: the feature store for :meth:`featurize` with ``cache=True`` (default: the run's).
    """

    folder: RunDir
    config: ExperimentConfig
    info: RunInfo
    vocabs: Vocabs
    model: NewsRecommender
    checkpoint: str = "best"
    cache_dir: str | Path | None = None
    _plans: dict[bool, tuple[FeatureStore, list[NamedBuilder]]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _counters: LogCounters | None = field(default=None, init=False, repr=False)
    _checked: bool = field(default=False, init=False, repr=False)

    @classmethod
    def load(
        cls, run: str | Path | RunDir, checkpoint: str = "best", cache_dir: str | Path | None = None
    ) -> TrainedRun:
        """Loads config, info, vocabularies and the weights of ``checkpoint`` from the run folder
        (or from a run pushed to the Hugging Face Hub: ``ORG/NAME[@REVISION]``, see ``runs.hub``).

        Raises:
            RunError: not a run, a baseline run (no model), damaged files, no saved weights yet.
        """
        if checkpoint not in CHECKPOINTS:
            raise RunError(f"checkpoint {checkpoint!r}: choose one of {CHECKPOINTS}")
        folder = run if isinstance(run, RunDir) else RunDir(locate_run(run))
        config = folder.read_config()
        if config.baseline:
            raise RunError(f"{folder.path}: a '{config.baseline}' baseline run has no model to load")
        info = folder.read_info()
        vocabs = folder.read_vocabs()
        model = build_model(config.model, info.context)
        weights = folder.best if checkpoint == "best" else folder.last
        if not weights.is_dir():
            raise RunError(f"{weights}: no saved weights; the run has not reached its first evaluation or checkpoint")
        load_weights(model, weights)
        return cls(folder, config, info, vocabs, model.eval(), checkpoint, cache_dir)

    @property
    def path(self) -> Path:
        return self.folder.path

    def log_counters(self) -> LogCounters:
        """The training log's popularity summary (models whose scorer reads log counters), read once."""
        if self._counters is None:
            self._counters = self.folder.read_log_counters()
        return self._counters

    def featurize(self, news: pa.Table, progress: bool = False, cache: bool = True) -> NewsFeatures:
        """The model's inputs for ``news`` (any news, seen in training or not), built by the same
        feature code as training. Thread-safe (one featurization at a time).

        ``cache=True`` reuses and extends the run's content-keyed feature store (worth it for a
        dataset's news, read again and again); ``cache=False`` computes in memory and writes nothing.

        Raises:
            RunError: the features no longer have the shapes the model was trained on (a changed
                backbone folder, say).
        """
        with self._lock:
            store, builders = self._plan(cache)
            store.progress = progress
            features = news_features(self.config, store, news, self.vocabs, builders)
            if not self._checked:
                self._check_shapes(features)
                self._checked = True
            return features

    def _plan(self, cache: bool) -> tuple[FeatureStore, list[NamedBuilder]]:
        if cache not in self._plans:
            store = default_store(self.config.features, self.cache_dir) if cache else MemoryStore()
            builders = news_feature_builders(self.config, store)
            for named in builders:
                trained_on = self.info.feature_keys.get(named.name)
                if trained_on and trained_on != named.builder.spec().dirname:
                    logger.warning(
                        "feature %s is now computed with other settings or model files (%s) than in training (%s)",
                        named.name,
                        named.builder.spec().dirname,
                        trained_on,
                    )
            self._plans[cache] = (store, builders)
        return self._plans[cache]

    def _check_shapes(self, features: NewsFeatures) -> None:
        for name, dim in self.info.context.feature_dims.items():
            if name in features.names() and features.dim(name) != dim:
                raise RunError(
                    f"{self.folder.info_path}: feature {name!r} now has size {features.dim(name)}, but the model was "
                    f"trained on size {dim}; the model or tokenizer it reads changed since training"
                )


@dataclass
class LoadedRun:
    """A run's model and the features of one dataset's news, ready to score its splits."""

    config: ExperimentConfig
    info: RunInfo
    model: NewsRecommender
    dataset: MindDataset
    features: NewsFeatures


def load_run(
    run: str | Path,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    splits: tuple[str, ...] = ("dev",),
) -> LoadedRun:
    """A run's best model plus the features of ``splits`` of a dataset (default: the run's own data
    root). The training split is not needed: the model is rebuilt from the run folder alone."""
    trained = TrainedRun.load(run, cache_dir=cache_dir)
    dataset = DatasetLocation.resolve(trained.config.data, data_root).load(splits)
    features = trained.featurize(dataset.news, progress)
    return LoadedRun(trained.config, trained.info, trained.model, dataset, features)
