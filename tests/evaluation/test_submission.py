from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmnewsrec.errors import DataFormatError
from mmnewsrec.evaluation.metrics import ranking_metrics
from mmnewsrec.evaluation.submission import read_prediction, read_truth, score_files, write_prediction, write_truth


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    truth = tmp_path / "truth.txt"
    prediction = tmp_path / "prediction.txt"
    truth.write_text("17 [0,1,0]\n18 [1,0]\n19 [0,0,1,0]\n")
    prediction.write_text("17 [2,1,3]\n18 [2,1]\n19 [4,3,1,2]\n")
    return truth, prediction


def test_scores_official_formats(files: tuple[Path, Path]) -> None:
    result = score_files(*files).to_dict()
    # imp 17: click ranked 1st; imp 18: click ranked 2nd of 2; imp 19: click ranked 1st.
    assert result["auc"] == pytest.approx((1 + 0 + 1) / 3)
    assert result["mrr"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert result["impressions"] == 3


def test_written_prediction_scores_like_the_scores_it_came_from(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    offsets = np.array([0, 5, 9, 20])
    scores = rng.integers(0, 3, size=20).astype(float)  # ties, broken the same way in both paths
    labels = np.zeros(20, int)
    labels[[1, 6, 12, 13]] = 1
    ids = np.array([3, 1, 2])
    write_prediction(tmp_path / "p.txt", ids, scores, offsets)
    write_truth(tmp_path / "t.txt", ids, labels, offsets)
    assert read_truth(tmp_path / "t.txt").impression_ids.tolist() == [3, 1, 2]
    ranks = read_prediction(tmp_path / "p.txt")
    assert sorted(ranks.values[:5].tolist()) == [1, 2, 3, 4, 5]
    from_file = score_files(tmp_path / "t.txt", tmp_path / "p.txt")
    from_scores = ranking_metrics(scores, labels, offsets)
    # Ranks break score ties by position, exactly as MRR and nDCG do; AUC counts a tie one half.
    assert (from_file.mrr, from_file.ndcg5, from_file.ndcg10) == (
        from_scores.mrr,
        from_scores.ndcg5,
        from_scores.ndcg10,
    )
    distinct = rng.permutation(20).astype(float)
    write_prediction(tmp_path / "p.txt", ids, distinct, offsets)
    assert score_files(tmp_path / "t.txt", tmp_path / "p.txt") == ranking_metrics(distinct, labels, offsets)


@pytest.mark.parametrize(
    ("prediction", "message"),
    [
        (
            "17 [2,1,3]\n99 [2,1]\n19 [4,3,1,2]\n",
            r"prediction.txt:2: impression id 99 does not match truth impression id 18",
        ),
        ("17 [2,1,3]\n18 [2,1,3]\n19 [4,3,1,2]\n", r"prediction.txt:2: 3 ranks for 2 candidates"),
        ("17 [2,1,3]\n18 [2,1]\n", r"prediction.txt:3: 2 lines, but the truth file has 3"),
        ("17 [2,1,3]\n18 [2,1]\n19 [4,3,1,2]\n20 [1]\n", r"prediction.txt:4: 4 lines, but the truth file has 3"),
        ("17 [2,1,3]\n18 [0,1]\n19 [4,3,1,2]\n", r"prediction.txt:2: ranks must be a permutation of 1..2"),
        ("17 [2,1,3]\n18 2,1\n19 [4,3,1,2]\n", r"prediction.txt:2: expected '<impression id> \[v1,v2,...\]'"),
        ("17 [2,1,3]\n\n19 [4,3,1,2]\n", r"prediction.txt:2: empty line"),
        ("17 [2,1,3]\n18 [2.5,1]\n19 [4,3,1,2]\n", r"prediction.txt:2: expected a non-empty list of integers"),
    ],
)
def test_mismatches_name_the_line(files: tuple[Path, Path], prediction: str, message: str) -> None:
    truth, path = files
    path.write_text(prediction)
    with pytest.raises(DataFormatError, match=message):
        score_files(truth, path)


def test_truth_labels_must_be_binary(files: tuple[Path, Path]) -> None:
    truth, prediction = files
    truth.write_text("17 [0,2,0]\n")
    with pytest.raises(DataFormatError, match=r"truth.txt:1: labels must be 0 or 1"):
        score_files(truth, prediction)


def test_the_leaderboard_zip_holds_the_prediction_file(tmp_path: Path) -> None:
    import zipfile

    from mmnewsrec.evaluation.submission import write_prediction, zip_prediction

    path = tmp_path / "test" / "prediction.txt"
    write_prediction(path, np.array([3, 9]), np.array([0.1, 0.9, 0.5, 0.2, 0.4]), np.array([0, 3, 5]))
    archive = zip_prediction(path)
    assert archive == tmp_path / "test" / "prediction.zip"
    with zipfile.ZipFile(archive) as opened:
        assert opened.namelist() == ["prediction.txt"]
        assert opened.read("prediction.txt").decode() == "3 [3,1,2]\n9 [2,1]\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["prediction.txt", "prediction.zip"]  # no leftovers


def test_evaluate_cli_writes_the_test_split_zip(word_run_copy: Path, tiny_mind: Path, capsys) -> None:
    import json
    import zipfile

    from mmnewsrec.cli.main import main

    assert (
        main(["-q", "evaluate", "--run", str(word_run_copy), "--data", str(tiny_mind), "--split", "test", "--zip"]) == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert record["zip"] == str(word_run_copy / "test" / "prediction.zip") and "auc" not in record  # unlabelled
    with zipfile.ZipFile(record["zip"]) as opened:
        lines = opened.read("prediction.txt").decode().splitlines()
    assert len(lines) == len((tiny_mind / "test" / "behaviors.tsv").read_text().splitlines())
