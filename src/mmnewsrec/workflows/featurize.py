"""``mmnewsrec featurize``: build (or reuse) every cached feature an experiment config names."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from mmnewsrec.config import ExperimentConfig
from mmnewsrec.data.mind import DatasetLocation
from mmnewsrec.errors import ConfigError
from mmnewsrec.features.build import NamedBuilder, build_features, default_store
from mmnewsrec.features.plan import declared_needs, plan_builders
from mmnewsrec.features.store import Shard
from mmnewsrec.models.build import news_feature_builders
from mmnewsrec.runs.distributed import distributed_state

logger = logging.getLogger(__name__)


def run_featurize(
    config: ExperimentConfig,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> list[dict[str, object]] | None:
    """Featurises every news of every split (dev/test-only news too: they are candidates): the
    features the config declares, then those its model reads that are not among them (named
    ``model:...``), planned exactly as ``train`` plans them.

    Returns one record per feature: name, kind, path, status (``built``, ``reused`` or
    ``extended`` when new news were appended), rows and array shapes; None on the other processes
    of a multi-process launch (``accelerate launch --num_processes N -m mmnewsrec featurize ...``).
    """
    if data_root is not None:  # files of vectors named relative to the dataset are under this one
        config = replace(config, data=replace(config.data, root=str(data_root)))
    news = DatasetLocation.resolve(config.data).news_catalogue()  # every split's news, no behaviours
    state = distributed_state()  # launched as N processes: each computes every N-th batch
    shard = Shard(state.process_index, state.num_processes, state.wait_for_everyone)
    store = default_store(config.features, cache_dir, progress, shard)
    missing = config.data.images.missing
    builders = plan_builders(declared_needs(config.features), config.features, missing, store, config.data.root)
    try:
        model_builders = news_feature_builders(config, store)
    except ConfigError as exc:  # a features-only config: no model section to plan for
        logger.info("building the declared features only (the model's cannot be planned: %s)", exc)
        model_builders = []
    built = {named.builder.spec().dirname for named in builders}
    builders += [
        NamedBuilder(f"model:{named.name}", named.builder)
        for named in model_builders
        if named.builder.spec().dirname not in built
    ]
    results = build_features(store, builders, news)
    if not state.is_main_process:
        return None
    return [
        {
            "feature": name,
            "kind": features.spec.kind,
            "path": str(features.path),
            "status": features.status,
            "rows": len(features.news_ids),
            "arrays": {k: list(v.shape) for k, v in features.arrays.items()},
        }
        for name, features in results.items()
    ]
