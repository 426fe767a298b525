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


def test_report_draws_simulations_per_day_and_across_trade_offs(
    word_run_copy: Path, tiny_mind: Path, tmp_path: Path, capsys
) -> None:
    from mmnewsrec.workflows.simulate import run_simulation

    folders = [tmp_path / "sims" / name for name in ("top-k", "mmr-0.9", "mmr-0.3")]
    results = [run_simulation(word_run_copy, tiny_mind, folders[0], days=2, users=40, seed=1)]
    for folder, theta in zip(folders[1:], (0.9, 0.3), strict=True):
        pipeline = tmp_path / f"{folder.name}.yaml"
        pipeline.write_text(f"name: {folder.name}\npool: 50\ndiversifier: mmr\ntheta: {theta}\n")
        results.append(run_simulation(word_run_copy, tiny_mind, folder, days=2, users=40, seed=1, pipeline=pipeline))

    out = tmp_path / "report"
    assert main(["report", "--simulation", *map(str, folders), "--out", str(out)]) == 0
    assert "| top-k | top-k | - |" in capsys.readouterr().out  # the summary table is printed
    rows = list(csv.DictReader((out / "simulation.csv").open()))
    assert [(r["simulation"], r["family"], r["trade-off"]) for r in rows] == [
        ("top-k", "top-k", "-"),
        ("mmr-0.9", "MMR (theta)", "0.9"),
        ("mmr-0.3", "MMR (theta)", "0.3"),
    ]
    for row, result in zip(rows, results, strict=True):  # the table is each simulation's own summary
        assert float(row["clicks/imp"]) == pytest.approx(result["summary"]["clicks_per_impression"], abs=1e-4)
        assert float(row["entropy shown"]) == pytest.approx(result["summary"]["category_entropy_shown"], abs=1e-4)
    days = list(csv.DictReader((out / "simulation_days.csv").open()))
    assert [(r["simulation"], r["day"]) for r in days] == [(f.name, d) for f in folders for d in ("1", "2")]
    assert float(days[3]["coverage"]) == pytest.approx(results[1]["days"][1]["coverage"], abs=1e-4)
    for figure in ("simulation_days.png", "simulation_fronts.png"):
        with Image.open(out / figure) as image:
            assert image.size[0] > 800 and image.size[1] > 400, figure
    assert "![simulation_fronts.png](simulation_fronts.png)" in (out / "report.md").read_text()
    assert "Simulations: top-k, mmr-0.9, mmr-0.3 (2 days of 40 arrivals" in (out / "report.md").read_text()


def test_report_refuses_what_simulate_did_not_write(word_run: Path, tiny_mind: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["report", "--simulation", str(tmp_path / "empty")]) == 1
    assert f"{tmp_path / 'empty' / 'simulation.json'}: no such file" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "simulation.json").write_text('{"days": [')
    with pytest.raises(ConfigError, match=r"broken/simulation.json: not a simulation's JSON"):
        run_report(simulation=[broken])
    (broken / "simulation.json").write_text('{"days": [{"day": 0}], "summary": {}, "config": {}}')
    with pytest.raises(ConfigError, match=r"simulation.json: days\[0\]: missing clicks_per_impression"):
        run_report(simulation=[broken])
    (broken / "simulation.json").write_text('{"days": "x", "summary": {}, "config": {}}')
    with pytest.raises(ConfigError, match="simulation.json: days: missing or not a list"):
        run_report(simulation=[broken])
    with pytest.raises(ConfigError, match="at least one run folder or --simulation folder"):
        run_report()


def test_pipelines_offline_reorder_the_logged_impressions(
    two_runs: list[Path], tiny_mind: Path, tmp_path: Path
) -> None:
    files = []
    for name, body in (
        ("plain", ""),
        ("mmr-0.3", "diversifier: mmr\ntheta: 0.3\n"),
        ("calibration-0.8", "diversifier: calibration\ncalibration_lambda: 0.8\n"),
        ("softmax-1", "sampler: softmax\ntemperature: 1.0\nseed: 4\n"),
    ):
        files.append(tmp_path / f"{name}.yaml")
        files[-1].write_text(f"name: {name}\n{body}")
    out = tmp_path / "report"
    result = run_report(two_runs[:1], tiny_mind, "dev", out=out, samples=50, pipeline=files)
    rows = {r["pipeline"]: r for r in csv.DictReader((out / "pipelines.csv").open())}
    model = rows["word (the model's ranking)"]
    main_auc = float(next(csv.DictReader((out / "main.csv").open()))["auc"])
    assert float(model["auc"]) == pytest.approx(main_auc, abs=1e-3)  # the scores the report compared
    # A pipeline without stages is the model's ranking; MMR spreads the lists in vector space.
    assert {k: rows["plain"][k] for k in ("auc", "ndcg@10", "coverage")} == {
        k: model[k] for k in ("auc", "ndcg@10", "coverage")
    }
    assert float(rows["mmr-0.3"]["vector diversity"]) > float(model["vector diversity"]) + 0.01
    assert (rows["mmr-0.3"]["family"], rows["mmr-0.3"]["trade-off"]) == ("MMR (theta)", "0.3")
    assert float(rows["softmax-1"]["ndcg@10"]) < float(model["ndcg@10"])
    assert float(rows["calibration-0.8"]["auc"]) != float(model["auc"])
    assert "pipeline_fronts.png" in result["figures"]
    with Image.open(out / "pipeline_fronts.png") as image:
        assert image.size[0] > 800
    again = tmp_path / "again"
    run_report(two_runs[:1], tiny_mind, "dev", out=again, samples=50, pipeline=files)
    assert (again / "pipelines.csv").read_text() == (out / "pipelines.csv").read_text()  # seeded samplers
    with pytest.raises(ConfigError, match="MMR needs the run's news vectors"):
        run_report(two_runs[:1], tiny_mind, "dev", out=again, samples=50, pipeline=files, vectors=False)
    with pytest.raises(ConfigError, match="--pipeline: the pipelines are applied to a run's scores"):
        run_report(pipeline=files, simulation=[tmp_path])
