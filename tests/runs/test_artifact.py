"""TrainedRun: one loaded run for every job, and the rule that only the runs layer spells its files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mmnewsrec.runs import TrainedRun
from mmnewsrec.runs.layout import (
    HISTORY_CACHE_FILE,
    METRICS_CSV_SUFFIX,
    METRICS_LOG_FILE,
    OPTIMIZER_FILE,
    ORIGIN_SUFFIX,
    PREDICTION_FILE,
    REPLAY_FILE,
    RNG_FILE,
    STATE_FILE,
    TENSORBOARD_DIR,
    RunDir,
    RunError,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "mmnewsrec"
#: Every name inside a run folder (docs/architecture.md: the runs layer owns the layout); the
#: service's ``state.db`` is left out: any SQLite store may have that name (replay's, a user's).
RUN_FILE_NAMES = {
    RunDir.CONFIG, RunDir.INFO, RunDir.METRICS, RunDir.VOCABS, RunDir.CHECKPOINTS, RunDir.TRAIN_LOG,
    RunDir.COUNTERS, STATE_FILE, OPTIMIZER_FILE, RNG_FILE, HISTORY_CACHE_FILE, METRICS_LOG_FILE,
    TENSORBOARD_DIR, PREDICTION_FILE, REPLAY_FILE, "categories.json", "subcategories.json",
}  # fmt: skip
RUN_FILE_SUFFIXES = {METRICS_CSV_SUFFIX, ORIGIN_SUFFIX}
#: The MIND leaderboard's own name for the file inside its zip (the upload format, not our layout).
ALLOWED = {("evaluation/submission.py", PREDICTION_FILE)}


def spelled_names(path: Path) -> list[tuple[int, str]]:
    """String constants of ``path`` (docstrings left out) that name a file of a run folder."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            value = node.value
            names = {n for n in RUN_FILE_NAMES if value == n or value.endswith("/" + n)}
            names |= {s for s in RUN_FILE_SUFFIXES if value == s}
            found += [(node.lineno, name) for name in names]
    return found


def test_no_module_outside_the_runs_layer_spells_a_run_file_name() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("runs/"):
            continue
        for line, name in spelled_names(path):
            if (relative, name) not in ALLOWED:
                offenders.append(f"{relative}:{line}: {name!r}")
    assert offenders == []


def test_the_rule_catches_a_spelled_name(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('"""Reads run.json."""\nPATH = "RUN/run.json"\nSUFFIX = "_metrics.csv"\nOK = "run.jsonl"\n')
    assert sorted(spelled_names(sample)) == [(2, "run.json"), (3, "_metrics.csv")]


def test_trained_run_loads_from_the_folder_alone(word_run: Path) -> None:
    trained = TrainedRun.load(word_run)
    assert trained.config.name == "word" and trained.info.status == "finished"
    assert not trained.model.training and len(trained.vocabs.categories) == trained.info.context.num_categories
    assert TrainedRun.load(word_run, "last").checkpoint == "last"
    with pytest.raises(RunError, match="checkpoint 'final': choose one of"):
        TrainedRun.load(word_run, "final")


def test_featurize_plans_once_and_in_memory_writes_nothing(word_run: Path, tiny_mind: Path, tokenizer_loads) -> None:
    from mmnewsrec.data.mind import read_news

    loads = tokenizer_loads
    trained = TrainedRun.load(word_run)
    cache = Path(trained.config.features.cache_dir)
    before = sorted(p.name for p in cache.rglob("seg-*"))
    news = read_news(tiny_mind / "dev" / "news.tsv")
    first = trained.featurize(news.slice(0, 5), cache=False)
    again = trained.featurize(news.slice(5, 5), cache=False)
    assert loads["n"] == 1 and len(first.tensors["title_ids"]) == 5 and len(again.tensors["title_ids"]) == 5
    assert sorted(p.name for p in cache.rglob("seg-*")) == before  # no segment for in-memory features
    stored = trained.featurize(news.slice(0, 5), cache=True)
    assert (stored.tensors["title_ids"] == first.tensors["title_ids"]).all()  # same features either way
