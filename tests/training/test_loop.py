from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmnewsrec.config import ExperimentConfig, from_dict
from mmnewsrec.workflows.evaluate import run_evaluate
from mmnewsrec.workflows.train import run_train
from tests.run_fixtures import word_config


@pytest.mark.slow
def test_training_learns_and_writes_a_complete_run(tiny_mind: Path, tiny_bert: Path, tmp_path: Path) -> None:
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", epochs=2)
    run = tmp_path / "run"
    record = run_train(config, run_dir=run)
    assert record["auc"] > 0.58  # random scores 0.5 +- 0.02 on these 500 impressions
    for name in ("config.yaml", "metrics.json", "metrics.jsonl", "train_metrics.csv", "eval_metrics.csv"):
        assert (run / name).is_file(), name
    for part in ("news_encoder", "user_encoder"):
        assert (run / "checkpoints" / "best" / f"{part}.safetensors").is_file()
    losses = [
        json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in line
    ]
    assert losses[-1] < losses[0]
    evaluated = run_evaluate(run, split="dev")
    assert evaluated["auc"] == pytest.approx(record["auc"])
    test = run_evaluate(run, split="test")
    lines = Path(test["prediction"]).read_text().splitlines()
    assert len(lines) == 200 and lines[0].startswith("1 [")


@pytest.mark.slow
def test_two_process_data_parallel_run(tiny_mind: Path, tiny_bert: Path, tmp_path: Path) -> None:
    """A 2-process DDP smoke run on the CPU (gloo), launched the way users launch it."""
    import subprocess
    import sys

    import yaml

    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=4, batch_size=16, eval_impressions=50)
    from mmnewsrec.config import dump_yaml

    dump_yaml(config, tmp_path / "ddp.yaml")
    assert yaml.safe_load((tmp_path / "ddp.yaml").read_text())["training"]["max_steps"] == 4
    command = [
        # --standalone: the rendezvous binds a port the OS picks, so no free port is guessed first (no race).
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "mmnewsrec", "-q", "train", "--config", str(tmp_path / "ddp.yaml"), "--run-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 1, result.stdout  # only the main process reports
    assert records[0]["processes"] == 2 and records[0]["steps"] == 4 and 0 < records[0]["auc"] < 1
    assert (tmp_path / "run" / "checkpoints" / "best" / "news_encoder.safetensors").is_file()


def test_baseline_experiment_trains_nothing_and_evaluates(tiny_mind: Path, tmp_path: Path) -> None:
    config = from_dict(ExperimentConfig, {"name": "rand", "baseline": "random", "data": {"root": str(tiny_mind)}})
    record = run_train(config, run_dir=tmp_path / "run")
    assert abs(record["auc"] - 0.5) < 0.05 and not (tmp_path / "run" / "checkpoints").exists()
    test = run_evaluate(tmp_path / "run", split="test")
    assert "auc" not in test and len(Path(test["prediction"]).read_text().splitlines()) == 200
    assert run_train(config, run_dir=tmp_path / "run", resume=True)["auc"] == record["auc"]  # scored again


def test_early_stopping_stops_at_the_evaluation_that_runs_out_of_patience(
    tiny_mind: Path, tiny_bert: Path, tmp_path: Path, monkeypatch
) -> None:
    import numpy as np

    import mmnewsrec.training.loop as loop
    from mmnewsrec.evaluation.evaluate import EvaluationResult
    from mmnewsrec.evaluation.metrics import RankingMetrics

    aucs = iter([0.60, 0.55, 0.58, 0.70])

    def scripted(*args, **kwargs) -> EvaluationResult:
        return EvaluationResult(np.zeros(1), RankingMetrics(next(aucs), 0.1, 0.1, 0.1, 10, 0))

    monkeypatch.setattr(loop, "evaluate", scripted)
    from mmnewsrec.batching.batch import ImpressionArrays
    from mmnewsrec.models.build import build_model
    from mmnewsrec.workflows.train import prepare

    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", epochs=4, patience=2, batch_size=256)
    prepared = prepare(config)
    model = build_model(config.model, prepared.context)
    train_arrays = ImpressionArrays.from_split(prepared.dataset, "train")
    dev_arrays = ImpressionArrays.from_split(prepared.dataset, "dev")
    state = loop.train(model, prepared.features, train_arrays, dev_arrays, config.training, tmp_path / "run")
    assert state.stopped_early and state.best_step > 0  # the first epoch's 0.60 stays best
    assert state.step == 3 * state.best_step  # stopped right after the third epoch, no step more
    assert [record["auc"] for record in state.history] == [0.60, 0.55, 0.58]  # never reached 0.70


@pytest.mark.slow
def test_training_with_every_speedup_learns(tiny_mind: Path, tiny_bert: Path, tmp_path: Path) -> None:
    """Cached lower layers + LoRA on the top layer + history-vector cache + dedup, end to end."""
    config = from_dict(
        ExperimentConfig,
        {
            "name": "fast",
            "data": {"root": str(tiny_mind)},
            "features": {"cache_dir": str(tmp_path / "cache")},
            "model": {
                "news": {
                    "type": "text",
                    "dim": 32,
                    "max_length": 16,
                    "use_category": True,
                    "text": {
                        "model": str(tiny_bert),
                        "train_layers": 1,
                        "cache_frozen": True,
                        "pooling": "mean",
                        "lora": {"rank": 4},
                    },
                },
                "user": {"heads": 4, "query_dim": 16},
            },
            "training": {
                "batch_size": 32,
                "grad_accum": 1,
                "epochs": 2,
                "lr": 3e-3,
                "history_cache_steps": 5,
                "eval_batch_size": 64,
            },
        },
    )
    run = tmp_path / "run"
    record = run_train(config, run_dir=run)
    assert record["auc"] > 0.58
    cached = list((tmp_path / "cache").glob("frozen-*"))
    assert cached, "the lower-layer states were not cached in the feature store"
    assert run_evaluate(run, split="dev")["auc"] == pytest.approx(record["auc"])
