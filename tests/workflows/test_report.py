"""`mmnewsrec report`: every table, CSV and figure from the runs' own files."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmnewsrec.cli.main import main
from mmnewsrec.errors import ConfigError
from mmnewsrec.workflows.evaluate import run_evaluate
from mmnewsrec.workflows.report import run_report


@pytest.fixture()
def two_runs(word_run: Path, tmp_path: Path) -> list[Path]:
    """The same trained run twice (a copy has no dev predictions yet: the report evaluates it)."""
    first, second = tmp_path / "runs" / "word", tmp_path / "runs" / "word-again"
    shutil.copytree(word_run, first)
    shutil.copytree(word_run, second)
    shutil.rmtree(second / "dev", ignore_errors=True)
    return [first, second]


def test_report_writes_tables_csvs_figures_and_html(two_runs: list[Path], tiny_mind: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    run_evaluate(two_runs[0], tiny_mind, "dev")  # the first has its predictions, the second not
    result = run_report(two_runs, tiny_mind, "dev", out=out, samples=200)
    assert result["runs"] == ["word", "word-again"]
    assert (two_runs[1] / "dev" / "prediction.txt").is_file()  # evaluated first, and the report says so
    assert result["evaluated"] == ["word-again"]
    assert "Evaluated by this report (no dev predictions before): word-again." in (out / "report.md").read_text()
    main_rows = list(csv.DictReader((out / "main.csv").open()))
    assert [r["run"] for r in main_rows] == ["word", "word-again"]
    assert main_rows[0]["auc"] == main_rows[1]["auc"]
    assert float(main_rows[0]["auc_low"]) < float(main_rows[0]["auc"]) < float(main_rows[0]["auc_high"])
    assert float(main_rows[0]["trainable params"]) > 0 and float(main_rows[0]["training s"]) > 0
    paired = list(csv.reader((out / "paired.csv").open()))
    assert paired[2][1].startswith("+0.0000 [+0.0000, +0.0000] p=1")  # the same model: no difference
    for table in ("history", "size", "cold", "image", "category", "beyond"):
        assert (out / f"{table}.csv").is_file(), table
    for figure in result["figures"]:
        with Image.open(out / figure) as image:
            assert image.size[0] > 400 and image.size[1] > 250
    assert {"training_curves.png", "time_to_accuracy.png", "history_length.png", "cold_news.png"} <= set(
        result["figures"]
    )
    markdown = (out / "report.md").read_text()
    assert "### Main table" in markdown and "![history_length.png](history_length.png)" in markdown
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(result["figures"]) and "<table>" in page


def test_report_errors_are_one_line(two_runs: list[Path], tiny_mind: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(ConfigError, match="--baseline nope: not one of the runs"):
        run_report(two_runs, tiny_mind, "dev", out=tmp_path / "r", baseline="nope", samples=10)
    assert main(["report", str(tmp_path / "not-a-run"), "--data", str(tiny_mind)]) == 1
    assert "not a run folder" in capsys.readouterr().err
    assert main(["report", str(two_runs[0]), "--data", str(tiny_mind), "--split", "test"]) == 1
    assert "needs a labelled split" in capsys.readouterr().err
