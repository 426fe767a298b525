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


def test_eval_at_start_lets_the_initial_weights_win_the_best_checkpoint(
    tiny_mind: Path, tiny_bert: Path, tmp_path: Path, monkeypatch
) -> None:
    import numpy as np
    import torch

    import mmnewsrec.training.loop as loop
    from mmnewsrec.batching.batch import ImpressionArrays
    from mmnewsrec.evaluation.evaluate import EvaluationResult
    from mmnewsrec.evaluation.metrics import RankingMetrics
    from mmnewsrec.models.build import build_model, load_weights
    from mmnewsrec.workflows.train import prepare

    aucs = iter([0.70, 0.60, 0.65, 0.90])  # the initial weights score best; training never catches up

    def scripted(*args, **kwargs) -> EvaluationResult:
        return EvaluationResult(np.zeros(1), RankingMetrics(next(aucs), 0.1, 0.1, 0.1, 10, 0))

    monkeypatch.setattr(loop, "evaluate", scripted)
    config = word_config(
        tiny_mind, tiny_bert, tmp_path / "cache", epochs=4, patience=2, batch_size=256, eval_at_start=True
    )
    prepared = prepare(config)
    model = build_model(config.model, prepared.context)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    train_arrays = ImpressionArrays.from_split(prepared.dataset, "train")
    dev_arrays = ImpressionArrays.from_split(prepared.dataset, "dev")
    state = loop.train(model, prepared.features, train_arrays, dev_arrays, config.training, tmp_path / "run")
    assert [record["auc"] for record in state.history] == [0.70, 0.60, 0.65]
    assert state.history[0]["step"] == 0 and state.best_step == 0 and state.stopped_early
    assert any(not torch.equal(initial[k], v) for k, v in model.state_dict().items())  # training moved them
    best = build_model(config.model, prepared.context)
    load_weights(best, tmp_path / "run" / "checkpoints" / "best")
    assert all(torch.equal(initial[k], v) for k, v in best.state_dict().items())  # the best are the initial ones


def test_blend_lr_puts_the_blend_weights_in_their_own_group() -> None:
    from mmnewsrec.config import ModelConfig, TrainingConfig
    from mmnewsrec.models.build import build_model
    from mmnewsrec.models.news_encoders import ModelContext
    from mmnewsrec.training.loop import build_optimizer

    model_config = from_dict(
        ModelConfig,
        {
            "news": {"type": "precomputed", "feature": "vec", "dim": 8},
            "user": {"heads": 2, "query_dim": 4, "profile": True, "profile_posterior": True},
            "scorer": "popularity",
        },
    )
    context = ModelContext(num_categories=3, num_subcategories=5, feature_dims={"frozen:vec": 6})
    model = build_model(model_config, context)
    groups = {g["name"]: g for g in build_optimizer(model, TrainingConfig(lr=1e-3, blend_lr=0.05)).param_groups}
    assert set(groups) == {"new", "blend"}
    user, news = model.user_encoder, model.news_encoder
    expected = [news.subcategory_scale, news.category_scale, user.content_scale, user.concentration]
    expected += [user.posterior_scale, model.scorer.recent]
    assert {id(p) for p in groups["blend"]["params"]} == {id(p) for p in expected}
    assert groups["blend"]["lr"] == 0.05 and groups["blend"]["weight_decay"] == 0.0
    every = [p for g in groups.values() for p in g["params"]]
    assert len(every) == len({id(p) for p in every}) == len(list(model.parameters()))
    # Without blend_lr the groups are what they always were (old checkpoints resume).
    assert [g["name"] for g in build_optimizer(model, TrainingConfig(lr=1e-3)).param_groups] == ["new"]


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
