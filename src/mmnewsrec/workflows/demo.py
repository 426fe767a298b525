"""The built-in default job: synthetic MIND -> inspection -> baselines -> a results table."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mmnewsrec.data.mind import load_mind
from mmnewsrec.data.stats import split_stats
from mmnewsrec.data.synthetic import GENERATOR_VERSION, SUMMARY_FILE, generate_mind
from mmnewsrec.evaluation.report import metrics_table
from mmnewsrec.workflows.baseline import run_baseline

logger = logging.getLogger(__name__)

DEMO_METHODS = ("random", "popularity", "oracle")


def run_demo(
    workdir: str | Path = "runs/demo", scale: str = "tiny", seed: int = 0, progress: bool = False
) -> dict[str, object]:
    """Generates (or reuses) a synthetic dataset in ``workdir/data``, inspects it, scores baselines.

    Returns a mapping with ``stats`` (one dict per split), ``results`` (method -> metrics on dev) and
    ``table`` (the text table); ``results.json`` and ``table.txt`` are written to ``workdir``.
    """
    workdir = Path(workdir)
    data_dir = workdir / "data"
    summary_path = data_dir / SUMMARY_FILE
    reuse = summary_path.is_file() and _same_dataset(summary_path, scale, seed)
    if reuse:
        logger.info("reusing synthetic dataset in %s", data_dir)
    else:
        generate_mind(data_dir, scale=scale, seed=seed, overwrite=True, progress=progress)
    dataset = load_mind(data_dir)
    stats = [split_stats(split) for split in dataset.splits.values()]
    results = {}
    for method in DEMO_METHODS:
        metrics = run_baseline(dataset, "dev", method, seed=seed)
        assert metrics is not None  # dev is labelled
        results[method] = metrics.to_dict()
    table = metrics_table(results, title=f"dev metrics, synthetic MIND ({scale}, seed {seed})")
    (workdir / "results.json").write_text(json.dumps({"stats": stats, "results": results}, indent=2) + "\n")
    (workdir / "table.txt").write_text(table + "\n")
    return {"stats": stats, "results": results, "table": table}


def _same_dataset(summary_path: Path, scale: str, seed: int) -> bool:
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return False
    # The summary is written last, inside the temporary folder that is renamed into place: if it is
    # there, the whole dataset is.
    wanted = {"scale": scale, "seed": seed, "generator_version": GENERATOR_VERSION}
    return all(summary.get(key) == value for key, value in wanted.items())
