"""``mmnewsrec evaluate``: block-by-block scoring equals the whole-split path, the leaderboard file,
another run's file is never overwritten, and two processes write the same bytes as one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mmnewsrec.batching.batch import ImpressionArrays
from mmnewsrec.cli.main import main
from mmnewsrec.data.mind import read_split
from mmnewsrec.evaluation.evaluate import evaluate
from mmnewsrec.evaluation.submission import read_prediction, scores_to_ranks
from mmnewsrec.runs.artifact import load_run
from mmnewsrec.runs.layout import RunError
from mmnewsrec.workflows.evaluate import origin_path, run_evaluate


@pytest.mark.parametrize("block", [64, 128, 20_000])  # 8, 4 and 1 blocks of the 500 dev impressions
def test_block_by_block_scoring_equals_the_whole_split(word_run_copy: Path, tmp_path: Path, block: int) -> None:
    loaded = load_run(word_run_copy, splits=("dev",))
    arrays = ImpressionArrays.from_split(loaded.dataset, "dev")
    whole = evaluate(loaded.model, loaded.features, arrays, loaded.config.training.history_len, 64)
    out = tmp_path / "prediction.txt"
    record = run_evaluate(word_run_copy, split="dev", out=out, block_impressions=block)
    for name in ("auc", "mrr", "ndcg@5", "ndcg@10"):
        assert record[name] == pytest.approx(whole.metrics.to_dict()[name], rel=1e-12, abs=1e-12)
    assert record["impressions"] == 500
    written = read_prediction(out)
    np.testing.assert_array_equal(written.impression_ids, arrays.impression_ids)
    np.testing.assert_array_equal(written.values, scores_to_ranks(whole.scores, arrays.cand_offsets))


def test_the_test_split_gives_the_leaderboard_file_in_order(word_run_copy: Path, tiny_mind: Path) -> None:
    record = run_evaluate(word_run_copy, split="test", zip_file=True, block_impressions=64)
    assert "auc" not in record
    behaviors = read_split(tiny_mind / "test").behaviors
    lines = Path(record["prediction"]).read_text().splitlines()
    assert [int(line.split(" ")[0]) for line in lines] == behaviors["impression_id"].to_pylist()
    sizes = [len(json.loads(line.split(" ", 1)[1])) for line in lines]
    assert sizes == [len(c) for c in behaviors["candidates"].to_pylist()]
    with zipfile.ZipFile(record["zip"]) as archive:
        assert archive.namelist() == ["prediction.txt"]
        assert archive.read("prediction.txt") == Path(record["prediction"]).read_bytes()


@pytest.fixture()
def two_runs(word_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two copies of the word run, the second with another creation time: another run."""
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(word_run, first)
    shutil.copytree(word_run, second)
    info = json.loads((second / "run.json").read_text())
    info["created"] = "2026-01-01T00:00:00+0000"
    (second / "run.json").write_text(json.dumps(info))
    return first, second


def test_another_runs_prediction_file_is_never_overwritten(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    first, second = two_runs
    out = tmp_path / "leaderboard" / "prediction.txt"
    run_evaluate(first, split="test", out=out)
    before = out.read_bytes()
    run_evaluate(first, split="test", out=out)  # the same run again: replaced
    assert out.read_bytes() == before
    with pytest.raises(RunError, match=f"holds the predictions of run {first.resolve()}"):
        run_evaluate(second, split="test", out=out)
    assert out.read_bytes() == before and json.loads(origin_path(out).read_text())["run"] == str(first.resolve())
    run_evaluate(second, split="test", out=out, overwrite=True)
    assert json.loads(origin_path(out).read_text())["run"] == str(second.resolve())

    stranger = tmp_path / "mine.txt"
    stranger.write_text("not a prediction\n")
    with pytest.raises(RunError, match="not written by `mmnewsrec evaluate`"):
        run_evaluate(first, split="test", out=stranger)
    assert stranger.read_text() == "not a prediction\n"


def test_the_cli_names_the_owner_of_the_file(two_runs: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    first, second = two_runs
    out = tmp_path / "p.txt"
    assert main(["-q", "evaluate", "--run", str(first), "--split", "test", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["-q", "evaluate", "--run", str(second), "--split", "test", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and "--overwrite" in err


def launch(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """Two CPU processes in one gloo group, as torchrun starts them (what ``accelerate launch
    --multi_gpu`` runs underneath on GPUs; --standalone lets the OS pick the rendezvous port), one
    thread each like the single process they are compared with."""
    import os

    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mmnewsrec", *args
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def single(args: list[str]) -> subprocess.CompletedProcess:
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mmnewsrec", *args], capture_output=True, text=True, timeout=300, check=False, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_two_processes_evaluate_byte_for_byte_like_one(word_run_copy: Path, tmp_path: Path) -> None:
    common = ["-q", "evaluate", "--run-dir", str(word_run_copy), "--block-impressions", "64"]
    one = single([*common, "--split", "dev", "--out", str(tmp_path / "one.txt")])
    two = launch([*common, "--split", "dev", "--out", str(tmp_path / "two.txt")])
    assert (tmp_path / "one.txt").read_bytes() == (tmp_path / "two.txt").read_bytes()
    records = [json.loads(line) for line in two.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 1  # only the main process reports
    expected = json.loads(one.stdout.splitlines()[-1])
    assert {k: records[0][k] for k in ("auc", "mrr", "ndcg@5", "ndcg@10", "impressions")} == {
        k: expected[k] for k in ("auc", "mrr", "ndcg@5", "ndcg@10", "impressions")
    }
    single([*common, "--split", "test", "--out", str(tmp_path / "one-test.txt")])
    launch([*common, "--split", "test", "--out", str(tmp_path / "two-test.txt")])
    assert (tmp_path / "one-test.txt").read_bytes() == (tmp_path / "two-test.txt").read_bytes()
    assert not list(tmp_path.glob(".*parts"))  # the per-process parts are cleaned up


@pytest.mark.slow
def test_two_processes_featurize_byte_for_byte_like_one(tiny_mind: Path, tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[2] / "configs" / "featurize_minilm.yaml"
    for name, run in (("one", single), ("two", launch)):
        run(["-q", "featurize", "--config", str(config), "--data", str(tiny_mind), "--cache-dir", str(tmp_path / name)])
    arrays = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.npy"))
    assert arrays and arrays == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.npy"))
    assert any("frozen" in str(p) for p in arrays)
    for path in arrays:
        assert (tmp_path / "one" / path).read_bytes() == (tmp_path / "two" / path).read_bytes(), path
    manifests = sorted((tmp_path / "two").rglob("manifest.json"))
    assert manifests and all(json.loads(m.read_text())["processes"] == 2 for m in manifests)
