"""Tiny experiment configs and trained runs shared by the training, workflow, CLI and serving tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mmnewsrec.config import ExperimentConfig, dump_yaml, from_dict


def word_config(tiny_mind: Path, tiny_bert: Path, cache: Path, **training) -> ExperimentConfig:
    """Classic NRMS (word embeddings) on the tiny BERT's tokenizer: trains in seconds."""
    return from_dict(
        ExperimentConfig,
        {
            "name": "word",
            "data": {"root": str(tiny_mind)},
            "features": {"cache_dir": str(cache), "tokens": {"tokenizer": str(tiny_bert), "title_len": 16}},
            "model": {
                "news": {"type": "word", "dim": 64, "heads": 4, "word_dim": 32, "max_length": 16, "dropout": 0.1},
                "user": {"heads": 4, "query_dim": 32, "dropout": 0.1},
            },
            "training": {
                "batch_size": 32,
                "grad_accum": 1,
                "lr": 3e-3,
                "log_every": 5,
                "eval_batch_size": 64,
                **training,
            },
        },
    )


def write_config(config: ExperimentConfig, path: Path) -> Path:
    dump_yaml(config, path)
    return path


@pytest.fixture(scope="session")
def word_run(tiny_mind: Path, tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished word-model run (12 steps) shared by the session: copy it before changing it."""
    from mmnewsrec.workflows.train import run_train

    root = tmp_path_factory.mktemp("word-run")
    config = word_config(tiny_mind, tiny_bert, root / "cache", max_steps=12, eval_every=6, patience=0)
    run_train(config, run_dir=root / "run")
    return root / "run"


@pytest.fixture()
def word_run_copy(word_run: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`word_run` (same feature cache)."""
    target = tmp_path / "run"
    shutil.copytree(word_run, target)
    return target
