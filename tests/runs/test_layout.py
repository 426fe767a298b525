"""The run folder: never overwritten by accident, resumed only when the checkpoint can follow the
config, damaged files reported by name, loadable without the training data and from anywhere."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmnewsrec.config import load_yaml
from mmnewsrec.runs.layout import RunDir, RunError
from mmnewsrec.workflows.evaluate import run_evaluate
from mmnewsrec.workflows.train import run_train
from tests.run_fixtures import word_config, write_config

METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10")


class Interrupt(Exception):
    pass


def stop_at(step: int):
    def hook(state) -> None:
        if state.step == step:
            raise Interrupt

    return hook


def test_training_into_a_run_is_refused_and_overwrite_moves_it_aside(
    tiny_mind, tiny_bert, tmp_path: Path, caplog
) -> None:
    caplog.set_level("INFO", logger="mmnewsrec")  # what the CLI does without -q
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=2, eval_impressions=40)
    run = tmp_path / "run"
    run_train(config, run_dir=run)
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(RunError, match="already holds a run; continue it with --resume, start again with --overwrite"):
        run_train(config, run_dir=run)
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before  # untouched: same files, same bytes
    run_train(config, run_dir=run, overwrite=True)
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(moved) == 1 and (moved[0] / "checkpoints" / "best" / "news_encoder.safetensors").is_file()
    assert len((run / "eval_metrics.csv").read_text().splitlines()) == 2  # header + this run's one evaluation
    assert "dev auc" in (run / "train.log").read_text()


def test_a_failure_before_training_leaves_no_run_folder(tiny_mind, tmp_path: Path) -> None:
    from mmnewsrec.config import ExperimentConfig, from_dict
    from mmnewsrec.errors import MmnewsrecError

    config = from_dict(
        ExperimentConfig,
        {
            "name": "x",
            "data": {"root": str(tiny_mind)},
            "features": {"cache_dir": str(tmp_path / "cache"), "tokens": {"tokenizer": str(tmp_path / "no-model")}},
            "model": {"news": {"type": "word", "dim": 32, "heads": 4}, "user": {"heads": 4}},
        },
    )
    with pytest.raises(MmnewsrecError, match="no such folder"):
        run_train(config, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_change_the_checkpoint_cannot_follow_before_writing(
    tiny_mind, tiny_bert, tmp_path: Path
) -> None:
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=4, eval_every=2, eval_impressions=40)
    run = tmp_path / "run"
    with pytest.raises(Interrupt):
        run_train(config, run_dir=run, on_step=stop_at(3))
    stored = (run / "config.yaml").read_bytes()
    changed = load_yaml(type(config), write_config(config, tmp_path / "c.yaml"), ["model.news.dim=32"])
    with pytest.raises(RunError, match=r"model.news.dim: 64 -> 32.*A resume may change"):
        run_train(changed, run_dir=run, resume=True)
    assert (run / "config.yaml").read_bytes() == stored
    changed = load_yaml(type(config), write_config(config, tmp_path / "c.yaml"), ["training.seed=7"])
    with pytest.raises(RunError, match="training.seed: 42 -> 7"):
        run_train(changed, run_dir=run, resume=True)
    record = run_train(config, run_dir=run, resume=True)  # unchanged: continues
    assert record["steps"] == 4


def test_resume_applies_and_records_a_new_learning_rate(tiny_mind, tiny_bert, tmp_path: Path) -> None:
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=6, eval_every=2, eval_impressions=40)
    run = tmp_path / "run"
    with pytest.raises(Interrupt):
        run_train(config, run_dir=run, on_step=stop_at(3))
    faster = load_yaml(
        type(config), write_config(config, tmp_path / "c.yaml"), ["training.lr=2e-5", "training.max_steps=8"]
    )
    record = run_train(faster, run_dir=run, resume=True)
    assert record["steps"] == 8
    saved = torch.load(run / "checkpoints" / "last" / "optimizer.pt", weights_only=False)
    assert [g["initial_lr"] for g in saved["optimizer"]["param_groups"]] == [2e-5]
    assert saved["scheduler"]["base_lrs"] == [2e-5]
    assert RunDir(run).read_config().training.lr == 2e-5
    changes = json.loads((run / "run.json").read_text())["changes"]
    assert changes == [{"step": 2, "changed": {"training.lr": [0.003, 2e-5], "training.max_steps": [6, 8]}}]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # records after the checkpoint were dropped, then written again once


@pytest.mark.parametrize("history_cache_steps", [0, 3])
def test_interrupted_and_resumed_equals_uninterrupted(
    history_cache_steps: int, tiny_mind, tiny_bert, tmp_path: Path
) -> None:
    settings = dict(max_steps=12, eval_every=4, eval_impressions=60, patience=0)
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", history_cache_steps=history_cache_steps, **settings)
    straight = run_train(config, run_dir=tmp_path / "straight")
    with pytest.raises(Interrupt):
        run_train(config, run_dir=tmp_path / "resumed", on_step=stop_at(6))
    assert RunDir(tmp_path / "resumed").checkpoint_step() == 4  # the last checkpoint before the interrupt
    resumed = run_train(config, run_dir=tmp_path / "resumed", resume=True)
    assert resumed["steps"] == straight["steps"] == 12 and resumed["best_step"] == straight["best_step"]
    for key in METRICS:
        assert resumed[key] == pytest.approx(straight[key], rel=1e-6)
    # Same samples, dropout masks and optimiser state; only the order of CPU scatter-add reductions
    # in backward may differ between runs, which moves weights by float rounding alone.
    a = load_file(str(tmp_path / "straight" / "checkpoints" / "last" / "news_encoder.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoints" / "last" / "news_encoder.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-3)
    if history_cache_steps:
        cache = load_file(str(tmp_path / "resumed" / "checkpoints" / "last" / "history_cache.safetensors"))
        assert cache["stamps"].max() >= 8  # the cache's own state travels with the checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("history_cache_steps", [0, 3])
def test_kill_9_then_resume_equals_an_uninterrupted_run(
    history_cache_steps: int, tiny_mind, tiny_bert, tmp_path: Path
) -> None:
    """The CLI killed with SIGKILL mid-run, then ``--resume``d, ends with the uninterrupted metrics."""
    settings = dict(max_steps=24, eval_every=4, eval_impressions=60, patience=0, batch_size=16)
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", history_cache_steps=history_cache_steps, **settings)
    path = write_config(config, tmp_path / "c.yaml")
    straight = run_train(config, run_dir=tmp_path / "straight")
    command = [sys.executable, "-m", "mmnewsrec", "-q", "train", "--config", str(path), "--run-dir"]
    run = tmp_path / "killed"
    process = subprocess.Popen([*command, str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = run / "checkpoints" / "last" / "state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if json.loads(state.read_text())["step"] >= 8:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert json.loads((run / "run.json").read_text())["status"] == "training"
    result = subprocess.run([*command, str(run), "--resume"], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    resumed = json.loads(result.stdout)
    for key in METRICS:
        assert resumed[key] == pytest.approx(straight[key], rel=1e-6)
    assert resumed["steps"] == straight["steps"] == 24
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluations = [r["step"] for r in records if r["kind"] == "eval"]
    assert evaluations == [4, 8, 12, 16, 20, 24]  # each once: what the killed run logged after its checkpoint went


@pytest.mark.parametrize(
    ("file", "damage"),
    [
        ("news_encoder.safetensors", "truncate"),
        ("optimizer.pt", "truncate"),
        ("state.json", "truncate"),
        ("rng.pt", "delete"),
    ],
)
def test_a_damaged_checkpoint_file_is_named(file: str, damage: str, word_run_copy: Path) -> None:
    path = word_run_copy / "checkpoints" / "last" / file
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    else:
        path.unlink()
    config = RunDir(word_run_copy).read_config()
    with pytest.raises(RunError, match=rf"{file}.*(damaged|missing).*cannot be resumed"):
        run_train(config, run_dir=word_run_copy, resume=True)


def test_damaged_best_weights_are_named_by_evaluate(word_run_copy: Path) -> None:
    from mmnewsrec.models.build import WeightsError

    path = word_run_copy / "checkpoints" / "best" / "user_encoder.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError, match=r"user_encoder.safetensors: damaged weights file"):
        run_evaluate(word_run_copy, split="dev")


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(
    tiny_mind, tiny_bert, tmp_path: Path, monkeypatch
) -> None:
    import mmnewsrec.runs.checkpoint as loop  # where checkpoints are written

    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=8, eval_every=4, eval_impressions=40)
    saves = {"count": 0}
    real = loop.save_weights

    def fill_disk_on_second_save(model, folder) -> None:
        if Path(folder).name.startswith(".last."):  # the resumable checkpoint's temporary folder
            saves["count"] += 1
            if saves["count"] == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))
        real(model, folder)

    monkeypatch.setattr(loop, "save_weights", fill_disk_on_second_save)
    run = tmp_path / "run"
    with pytest.raises(OSError, match="No space left"):
        run_train(config, run_dir=run)
    assert json.loads((run / "checkpoints" / "last" / "state.json").read_text())["step"] == 4
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]  # no half-written folder
    monkeypatch.setattr(loop, "save_weights", real)
    assert run_train(config, run_dir=run, resume=True)["steps"] == 8


def test_training_without_a_dev_split_is_refused_unless_asked(tiny_mind, tiny_bert, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_mind, data, ignore=shutil.ignore_patterns("dev"))
    config = word_config(data, tiny_bert, tmp_path / "cache", max_steps=2)
    from mmnewsrec.errors import ConfigError

    with pytest.raises(ConfigError, match=r"dev: no 'dev' split to evaluate on.*set it to null"):
        run_train(config, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    config = load_yaml(type(config), write_config(config, tmp_path / "c.yaml"), ["training.dev_split=null"])
    record = run_train(config, run_dir=tmp_path / "run")
    assert record["evaluated"] is False and "auc" not in record and record["steps"] == 2
    final = load_file(str(tmp_path / "run" / "checkpoints" / "last" / "news_encoder.safetensors"))
    best = load_file(str(tmp_path / "run" / "checkpoints" / "best" / "news_encoder.safetensors"))
    assert all(torch.equal(final[k], best[k]) for k in final)  # the run's model is the final weights


def test_a_run_evaluates_without_its_training_data_and_from_any_folder(
    word_run_copy: Path, tiny_mind: Path, tmp_path: Path, monkeypatch
) -> None:
    expected = json.loads((word_run_copy / "metrics.json").read_text())
    data = tmp_path / "data"
    shutil.copytree(tiny_mind, data, ignore=shutil.ignore_patterns("train"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    record = run_evaluate(os.path.relpath(word_run_copy, elsewhere), data_root=data, split="dev")
    for key in METRICS:
        assert record[key] == pytest.approx(expected[key], abs=1e-9)


def test_the_stored_config_holds_absolute_paths(tiny_mind, tiny_bert, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    os.symlink(tiny_mind, tmp_path / "data")
    config = word_config(Path("data"), tiny_bert, Path("cache"), max_steps=2, eval_impressions=40)
    run_train(config, run_dir="run")
    stored = RunDir(tmp_path / "run").read_config()
    assert stored.data.root == str(tmp_path / "data") and stored.features.cache_dir == str(tmp_path / "cache")
    assert stored.run_dir == str(tmp_path / "runs")


def test_a_popularity_run_evaluates_without_its_training_data(tiny_mind, tiny_bert, tmp_path: Path) -> None:
    """The run keeps the training log's counters, so dev scores need no train split."""
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=6, patience=0)
    config = load_yaml(type(config), write_config(config, tmp_path / "c.yaml"), ["model.scorer=popularity"])
    record = run_train(config, run_dir=tmp_path / "run")
    assert (tmp_path / "run" / "log_counters.npz").is_file()
    data = tmp_path / "data"
    shutil.copytree(tiny_mind, data, ignore=shutil.ignore_patterns("train"))
    evaluated = run_evaluate(tmp_path / "run", data_root=data, split="dev")
    for key in METRICS:
        assert evaluated[key] == pytest.approx(record[key], abs=1e-9)


def test_a_run_saved_in_the_flat_news_layout_reads_as_it_was(word_run_copy: Path, caplog) -> None:
    """Run folders written before one config class per encoder type hold every key of every type
    in ``model.news``; they read into the class of their type, with a warning saying so."""
    import yaml

    run = RunDir(word_run_copy)
    expected, scored = run.read_config(), run_evaluate(word_run_copy, split="dev")
    raw = yaml.safe_load(run.config_path.read_text())
    flat = {"text": None, "vision": None, "precomputed": [], "fusion": "hadamard", "projection": "linear"}
    flat |= {"use_category": False, "text_field": "title", "max_length": 30, "heads": 16, "word_dim": 300}
    raw["model"]["news"] = {**flat, **raw["model"]["news"]}
    raw["data"]["images"]["size"] = 224  # a key that nothing read
    run.config_path.write_text(yaml.safe_dump(raw))
    with caplog.at_level("WARNING"):
        assert run.read_config() == expected
    assert "model.news in the earlier layout" in caplog.text and "precomputed: [] -> remove it" in caplog.text
    assert "data.images.size is no longer a key" in caplog.text
    assert run_evaluate(word_run_copy, split="dev")["auc"] == scored["auc"]
