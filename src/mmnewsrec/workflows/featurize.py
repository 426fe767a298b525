"""``mmnewsrec featurize``: build (or reuse) every cached feature an experiment config names."""

from __future__ import annotations

import logging
from pathlib import Path

from mmnewsrec.config import ExperimentConfig
from mmnewsrec.data.mind import load_mind
from mmnewsrec.features.build import build_features, default_store, experiment_builders

logger = logging.getLogger(__name__)


def run_featurize(
    config: ExperimentConfig,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> list[dict[str, object]]:
    """Featurises every news of every split (dev/test-only news too: they are candidates).

    Returns one record per feature: name, kind, path, status (``built``, ``reused`` or
    ``extended`` when new news were appended), rows and array shapes.
    """
    root = Path(data_root or config.data.root)
    dataset = load_mind(root, config.data)
    store = default_store(config.features, cache_dir, progress)
    results = build_features(store, experiment_builders(config, store), dataset.news)
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
