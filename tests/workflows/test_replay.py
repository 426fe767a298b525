"""`mmnewsrec replay`: static scoring equals evaluate; online histories grow with earlier clicks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmnewsrec.cli.main import main
from mmnewsrec.workflows.evaluate import run_evaluate
from mmnewsrec.workflows.replay import run_replay


def test_replay_static_equals_evaluate_and_online_differs_only_after_earlier_impressions(
    word_run_copy: Path, tiny_mind: Path
) -> None:
    evaluated = run_evaluate(word_run_copy, tiny_mind, "dev")
    result = run_replay(word_run_copy, tiny_mind, "dev", cold_start="model")
    assert result["static"]["auc"] == pytest.approx(evaluated["auc"], abs=1e-9)
    assert result["static"]["ndcg@10"] == pytest.approx(evaluated["ndcg@10"], abs=1e-9)
    groups = result["groups"]
    assert sum(g["impressions"] for g in groups.values()) == result["impressions"]
    assert groups["0"]["static"] == groups["0"]["online"]  # no earlier impression: the same history
    assert groups["5+"]["impressions"] > 0 and groups["5+"]["static"] != groups["5+"]["online"]
    assert set(result["cold_start"]) == {"model", "popularity"}
    stored = json.loads((word_run_copy / "dev" / "replay.json").read_text())
    assert stored["online"] == result["online"] and "table" not in stored


def test_replay_cli_prints_the_table_and_refuses_an_unlabelled_split(
    word_run_copy: Path, tiny_mind: Path, capsys
) -> None:
    assert main(["-q", "replay", "--run", str(word_run_copy), "--data", str(tiny_mind), "--split", "test"]) == 1
    assert "replay needs a labelled split" in capsys.readouterr().err
