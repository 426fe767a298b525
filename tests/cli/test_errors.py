"""Every fault a user can fix is one ``error:`` line naming the file, line or field, exit status 1,
never a traceback; and nothing half-written or damaged is left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from mmnewsrec.cli.main import build_parser, main
from tests.run_fixtures import word_config, write_config


def fails(capsys, *argv: str) -> str:
    """Runs the CLI, expects exit status 1 and one ``error:`` line; returns that line."""
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), err
    assert "Traceback" not in err
    return lines[-1]


@pytest.fixture()
def word_yaml(tiny_mind: Path, tiny_bert: Path, tmp_path: Path) -> Path:
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=2, eval_impressions=40)
    return write_config(config, tmp_path / "word.yaml")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.user.heads=0", "model.user.heads: must be an integer >= 1, got 0"),
        ("model.user.dropout=2", "model.user.dropout: a dropout probability must lie in [0, 1), got 2"),
        ("training.eval_impressions=-5", "training.eval_impressions: must be >= 0"),
        ("training.max_steps=-1", "training.max_steps: must be >= 0"),
        ("model.news={dim: [1", "the value is not valid YAML"),
        ("training.lr=fast", "training.lr: expected a number"),
    ],
)
def test_bad_config_values_fail_before_anything_runs(
    override: str, message: str, capsys, word_yaml: Path, tmp_path: Path
) -> None:
    line = fails(capsys, "train", "--config", str(word_yaml), "--run-dir", str(tmp_path / "run"), override)
    assert message in line and str(word_yaml) in line or "override" in line
    assert not (tmp_path / "run").exists()


def test_the_readmes_float_spelling_trains(capsys, word_yaml: Path, tmp_path: Path) -> None:
    code = main(["-q", "train", "--config", str(word_yaml), "--run-dir", str(tmp_path / "run"), "training.lr=2e-5"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "finished"


def test_a_hub_model_that_is_not_cached_fails_fast_offline(
    capsys, tiny_mind: Path, tmp_path: Path, monkeypatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: the hub is unreachable
    config = tmp_path / "hub.yaml"
    config.write_text(
        f"name: hub\ndata: {{root: {tiny_mind}}}\nfeatures: {{cache_dir: {tmp_path / 'cache'}}}\n"
        "model:\n  news: {type: text, dim: 32, text: {model: mmnewsrec-tests/not-a-cached-model}}\n"
        "  user: {heads: 4}\n"
    )
    started = time.monotonic()
    line = fails(capsys, "train", "--config", str(config), "--run-dir", str(tmp_path / "run"))
    assert time.monotonic() - started < 2.5
    assert "'mmnewsrec-tests/not-a-cached-model' is not in the local Hugging Face cache" in line
    assert "point the config's model field at that folder" in line
    assert not (tmp_path / "run").exists()


def test_baseline_creates_the_prediction_folder(capsys, tiny_mind: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "folder" / "prediction.txt"
    code = main(["-q", "baseline", "--data", str(tiny_mind), "--method", "random", "--prediction-out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 500


def test_synth_rejects_a_negative_seed(capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "--out", str(tmp_path / "d"), "--seed", "-5"])
    assert exit_info.value.code == 1  # like every fixable mistake
    assert "error: argument --seed: expected an integer >= 0, got -5" in capsys.readouterr().err
    from mmnewsrec.data.synthetic import generate_mind
    from mmnewsrec.errors import MmnewsrecError

    with pytest.raises(MmnewsrecError, match="seed: must be an integer >= 0"):
        generate_mind(tmp_path / "d", seed=-5)


def test_an_unwritable_output_is_an_error_line(capsys, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    line = fails(capsys, "synth", "--out", str(blocker / "data"))
    assert str(blocker) in line


def test_permission_denied_is_an_error_line(capsys, tmp_path: Path, monkeypatch) -> None:
    """Injected: tests run as root, which no file mode stops."""
    truth = tmp_path / "truth.txt"
    truth.write_text("1 [0,1]\n")
    real_open = Path.open

    def denied(self, *args, **kwargs):
        if self == truth:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    line = fails(capsys, "score", "--truth", str(truth), "--prediction", str(truth))
    assert line == f"error: {truth}: permission denied; choose a path you can read and write, or fix its permissions"


def test_a_full_disk_while_featurizing_is_an_error_line(
    capsys, tiny_mind: Path, tiny_bert: Path, tmp_path: Path, monkeypatch
) -> None:
    config = tmp_path / "f.yaml"
    config.write_text(f"features: {{cache_dir: {tmp_path / 'cache'}, tokens: {{tokenizer: {tiny_bert}}}}}\n")
    calls = {"count": 0}
    real = os.pwrite

    def short_writes(fd, data, offset):
        calls["count"] += 1
        return 0 if calls["count"] > 1 else real(fd, bytes(data)[: len(data) // 2], offset)  # short, then none

    monkeypatch.setattr(os, "pwrite", short_writes)
    line = fails(capsys, "featurize", "--config", str(config), "--data", str(tiny_mind))
    assert line.startswith("error: ") and "the disk is full" in line
    complete = [p for p in (tmp_path / "cache").rglob("manifest.json") if ".partial" not in str(p)]
    assert complete == []  # no segment was published from the half-written arrays


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"1 [1,1]\n", "prediction.txt:1: ranks must be a permutation of 1..2"),
        (b"1 [2,1]\n2 [1,3,3]\n", "prediction.txt:2: ranks must be a permutation of 1..3"),
        (b"1 [2,1]\n\xff\xfe [1]\n", "prediction.txt:2: not UTF-8 text"),
    ],
)
def test_score_rejects_bad_prediction_files_by_line(content: bytes, message: str, capsys, tmp_path: Path) -> None:
    (tmp_path / "truth.txt").write_text("1 [0,1]\n2 [1,0,0]\n")
    (tmp_path / "prediction.txt").write_bytes(content)
    truth, prediction = str(tmp_path / "truth.txt"), str(tmp_path / "prediction.txt")
    line = fails(capsys, "score", "--truth", truth, "--prediction", prediction)
    assert message in line


def test_train_into_an_existing_run_is_an_error_line(capsys, word_run_copy: Path, tmp_path: Path) -> None:
    from mmnewsrec.runs.layout import RunDir

    config = write_config(RunDir(word_run_copy).read_config(), tmp_path / "c.yaml")
    line = fails(capsys, "train", "--config", str(config), "--run-dir", str(word_run_copy))
    assert f"error: {word_run_copy}: already holds a run" in line


def test_evaluate_names_damaged_weights(capsys, word_run_copy: Path) -> None:
    path = word_run_copy / "checkpoints" / "best" / "news_encoder.safetensors"
    path.write_bytes(path.read_bytes()[:50])
    line = fails(capsys, "evaluate", "--run", str(word_run_copy), "--split", "dev")
    assert f"error: {path}: damaged weights file" in line


def test_evaluate_of_a_folder_that_is_no_run(capsys, tmp_path: Path) -> None:
    line = fails(capsys, "evaluate", "--run", str(tmp_path), "--split", "dev")
    assert "not a run folder (no config.yaml)" in line


def test_conflicting_news_between_splits_is_an_error_line(capsys, tiny_mind: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_mind, data, ignore=shutil.ignore_patterns("images"))
    lines = (data / "dev" / "news.tsv").read_text().splitlines()
    fields = lines[0].split("\t")
    fields[3] = "A different title"
    (data / "dev" / "news.tsv").write_text("\n".join(["\t".join(fields), *lines[1:]]) + "\n")
    line = fails(capsys, "baseline", "--data", str(data), "--method", "random")
    assert f"dev/news.tsv:1: news {fields[0]!r} has a different title than in" in line
    assert "train/news.tsv:" in line and "data.on_conflicting_news=first" in line


def test_logging_flags_work_after_the_subcommand(capsys, tmp_path: Path) -> None:
    assert main(["synth", "-q", "--out", str(tmp_path / "d")]) == 0
    assert main(["synth", "--out", str(tmp_path / "e"), "-v", "--no-images"]) == 0
    args = build_parser().parse_args(["train", "--config", "x", "-q"])
    assert args.quiet is True


def test_every_option_of_every_command_is_explained() -> None:
    import argparse

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        assert sub.description, name
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{name} {action.option_strings or action.dest}"


def test_baseline_on_an_unlabelled_split_needs_somewhere_to_write(capsys, tiny_mind: Path) -> None:
    assert main(["-q", "baseline", "--data", str(tiny_mind), "--split", "test", "--method", "random"]) == 1
    err = capsys.readouterr().err
    assert "split 'test' has no labels" in err and "--prediction-out" in err


def test_popularity_without_a_train_split_says_what_it_counted(caplog, tiny_mind: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(tiny_mind / "dev", tmp_path / "dev")
    with caplog.at_level("WARNING"):
        assert main(["-q", "baseline", "--data", str(tmp_path), "--method", "popularity"]) == 0
    assert "the dataset has no train split" in caplog.text


def test_synth_mistakes_name_the_flags(capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "--out", str(tmp_path / "d"), "--interest-drift", "1.5"])
    assert exit_info.value.code == 1
    assert "argument --interest-drift: expected a share between 0 and 1, got 1.5" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "full")]) == 1
    err = capsys.readouterr().err
    assert "--out" in err and "--overwrite" in err and "overwrite=True" not in err


def test_train_says_when_the_dataset_folder_is_missing_or_is_a_split(capsys, tiny_mind: Path, tmp_path: Path) -> None:
    config = str(Path(__file__).parents[2] / "configs" / "demo_text_minilm.yaml")
    for data, message in (
        (tmp_path / "nowhere", "dataset folder not found (--data, or data.root in the config)"),
        (tiny_mind / "train", "this is one split's folder (it holds news.tsv); --data takes the dataset root"),
    ):
        code = main(["-q", "train", "--config", config, "--data", str(data), "--run-dir", str(tmp_path / "r")])
        err = capsys.readouterr().err
        assert code == 1 and message in err and "dev_split" not in err, err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.news.type=nope"], "model.news.type: 'nope' is not one of ['blip', 'fusion',"),
        (["model.user.type=nrmz"], "model.user.type: 'nrmz' is not one of"),
        (["model.scorer=dott"], "model.scorer: 'dott' is not one of ['dot', 'dot_bias'"),
        (
            ["model.news.type=text", "~model.news.feature"],
            "model.news.text: a text encoder needs a backbone: set model.news.text.model",
        ),
    ],
)
def test_train_refuses_bad_names_in_the_config_before_reading_data(
    capsys, tmp_path: Path, overrides: list[str], message: str
) -> None:
    """Checked at load: the dataset folder does not even exist, and the file is named."""
    config = Path(__file__).parents[2] / "configs" / "demo_text_minilm.yaml"
    args = ["-q", "train", "--config", str(config), "--data", str(tmp_path / "none"), "--run-dir", str(tmp_path / "r")]
    assert main([*args, *overrides]) == 1
    err = capsys.readouterr().err
    assert f"{config}: {message}" in err and "dataset folder" not in err, err
