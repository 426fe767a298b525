"""Faults a newcomer hit with run folders: each is refused or reported before anything is written,
and leaves the run resumable."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from mmnewsrec.config import load_yaml
from mmnewsrec.errors import ConfigError
from mmnewsrec.runs.layout import RunDir, RunError
from mmnewsrec.workflows.evaluate import run_evaluate
from mmnewsrec.workflows.train import run_train
from tests.run_fixtures import word_config, write_config


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_of_a_folder_without_a_run_is_refused(tiny_mind, tiny_bert, tmp_path: Path) -> None:
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=2)
    missing = tmp_path / "nothing-here"
    with pytest.raises(RunError, match=rf"{missing}: --resume, but no run is there \(no such folder\)"):
        run_train(config, run_dir=missing, resume=True)
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunError, match=rf"{empty}: --resume, but no run is there \(an empty folder\)"):
        run_train(config, run_dir=empty, resume=True)
    assert list(empty.iterdir()) == []


def test_a_resume_with_a_truncated_optimizer_state_writes_nothing(word_run_copy: Path, tmp_path: Path) -> None:
    optimizer = word_run_copy / "checkpoints" / "last" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:200])
    before = snapshot(word_run_copy)
    config = RunDir(word_run_copy).read_config()
    config = load_yaml(type(config), write_config(config, tmp_path / "c.yaml"), ["training.max_steps=20"])
    with pytest.raises(RunError, match=r"optimizer.pt: damaged checkpoint file"):
        run_train(config, run_dir=word_run_copy, resume=True)
    assert snapshot(word_run_copy) == before  # config.yaml still says 12 steps, run.json still finished
    assert json.loads((word_run_copy / "run.json").read_text())["status"] == "finished"


def test_a_full_disk_at_a_checkpoint_is_one_error_naming_the_disk(
    tiny_mind, tiny_bert, tmp_path: Path, monkeypatch
) -> None:
    import torch

    import mmnewsrec.runs.checkpoint as checkpoint

    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=8, eval_every=4, eval_impressions=40)
    real, calls = torch.save, {"n": 0}

    def torch_on_a_full_disk(obj, path, *args, **kwargs):
        if Path(path).name == "optimizer.pt":
            calls["n"] += 1
            if calls["n"] == 2:  # what torch raises when the disk fills under its zip writer
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4096 vs 3981")
        return real(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", torch_on_a_full_disk)
    run = tmp_path / "run"
    with pytest.raises(RunError) as caught:
        run_train(config, run_dir=run)
    message = str(caught.value)
    assert message.startswith(f"{run / 'checkpoints' / 'last'}: the checkpoint could not be written")
    assert "No space left on device" in message and "MiB free on the disk holding" in message
    assert "the previous checkpoint is intact" in message and "\n" not in message
    assert json.loads((run / "checkpoints" / "last" / "state.json").read_text())["step"] == 4
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    monkeypatch.setattr(checkpoint.torch, "save", real)
    assert run_train(config, run_dir=run, resume=True)["steps"] == 8
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_a_full_disk_while_a_run_is_created_leaves_no_half_made_run(
    tiny_mind, tiny_bert, tmp_path: Path, monkeypatch
) -> None:
    import mmnewsrec.runs.layout as layout

    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=2, eval_impressions=40)
    real = layout.atomic_write_text

    def full_at_vocabularies(path, text):
        if "vocabs" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, text)

    monkeypatch.setattr(layout, "atomic_write_text", full_at_vocabularies)
    run = tmp_path / "run"
    with pytest.raises(RunError, match=rf"{run}: the new run could not be written \(No space left on device"):
        run_train(config, run_dir=run)
    assert not run.exists() or list(run.iterdir()) == []  # no config.yaml and empty vocabs/ left behind
    monkeypatch.setattr(layout, "atomic_write_text", real)
    assert run_train(config, run_dir=run)["steps"] == 2  # the retry needs no --overwrite


def test_a_half_made_run_from_an_older_version_is_named_as_such(tiny_mind, tiny_bert, tmp_path: Path) -> None:
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=2, eval_impressions=40)
    run = tmp_path / "run"
    (run / "vocabs").mkdir(parents=True)
    write_config(config, run / "config.yaml")
    with pytest.raises(RunError, match=r"holds a run whose start was cut short .*start it again with --overwrite"):
        run_train(config, run_dir=run)
    with pytest.raises(RunError, match=r"a run whose start was cut short .*start it again with --overwrite"):
        run_train(config, run_dir=run, resume=True)
    assert run_train(config, run_dir=run, overwrite=True)["steps"] == 2


def test_a_truncated_run_json_is_named_by_evaluate(word_run_copy: Path) -> None:
    info = word_run_copy / "run.json"
    info.write_bytes(info.read_bytes()[:40])
    with pytest.raises(RunError, match=r"run.json: damaged"):
        run_evaluate(word_run_copy, split="dev")


def test_an_unlabelled_dev_split_is_refused_before_training(tiny_mind, tiny_bert, tmp_path: Path) -> None:
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=2)
    config = load_yaml(type(config), write_config(config, tmp_path / "c.yaml"), ["training.dev_split=test"])
    with pytest.raises(ConfigError, match=r"training.dev_split: .*test has no click labels"):
        run_train(config, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_full_disk_while_featurizing_removes_the_unfinished_segment(
    tiny_mind, tiny_bert, tmp_path: Path, monkeypatch
) -> None:
    from mmnewsrec.data.mind import load_mind
    from mmnewsrec.features.build import default_store
    from mmnewsrec.features.store import FeatureStoreError
    from mmnewsrec.models.build import news_feature_builders

    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=2)
    news = load_mind(tiny_mind, config.data, splits=("dev",)).news
    store = default_store(config.features)
    (named,) = news_feature_builders(config, store)
    real, calls = os.pwrite, {"n": 0}

    def full_after_one_write(fd, data, offset):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", full_after_one_write)
    with pytest.raises(FeatureStoreError, match=r"seg-\w+\.partial: the disk is full while building the tokens"):
        store.features(named.builder, news)
    assert not list((tmp_path / "cache").rglob("*.partial"))  # nothing left holding the space
    monkeypatch.setattr(os, "pwrite", real)
    assert store.features(named.builder, news).status == "built"
    shutil.rmtree(tmp_path / "cache")
