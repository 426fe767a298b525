"""Runs on the Hugging Face Hub: push uploads what inference needs with a model card, and
ORG/NAME[@REVISION] loads wherever a run folder does. The real huggingface_hub client talks to a
local stand-in for the Hub (tests/hub_stub.py); nothing in the project is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mmnewsrec.data.mind import load_mind
from mmnewsrec.runs.hub import locate_run, model_card, parse_hub_ref, push_run, run_files
from mmnewsrec.runs.layout import RunError
from mmnewsrec.serving import Predictor
from mmnewsrec.serving.records import read_news_records
from mmnewsrec.workflows.evaluate import run_evaluate
from tests.hub_stub import serve_stub_hub


@pytest.fixture()
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with serve_stub_hub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setenv("MMNEWSREC_HUB_RUNS", str(tmp_path / "hub-runs"))
        yield hub


def test_a_pushed_run_holds_what_inference_needs_and_nothing_else(word_run: Path) -> None:
    names = [name for name, _ in run_files(word_run)]
    assert {"config.yaml", "run.json", "metrics.json", "vocabs/categories.json", "vocabs/subcategories.json"} <= set(
        names
    )
    assert {"checkpoints/best/news_encoder.safetensors", "checkpoints/best/user_encoder.safetensors"} <= set(names)
    assert not [n for n in names if n.startswith("checkpoints/last") or n.endswith((".pt", ".log", ".csv", ".jsonl"))]


def test_the_model_card_renders_the_runs_metrics_data_and_licence(word_run: Path) -> None:
    card = model_card(word_run, "org/word")
    metrics = json.loads((word_run / "metrics.json").read_text())
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "mmnewsrec" and front["license"] == "other"
    assert f"| auc | {metrics['auc']:.4f} |" in card and f"| ndcg@10 | {metrics['ndcg@10']:.4f} |" in card
    assert "research use only" in card and "MSR%20License_Data.pdf" in card
    assert 'Predictor.load("org/word")' in card and "type: word" in card  # usage and the config itself


def test_push_then_load_by_name_scores_like_the_folder(word_run: Path, tiny_mind: Path, hub_env) -> None:
    record = push_run(word_run, "org/word")
    files = hub_env.files("org/word")
    assert record["commit"] == hub_env.refs["org/word"]["main"]
    assert "README.md" in files and "checkpoints/best/news_encoder.safetensors" in files
    assert not [name for name in files if name.startswith("checkpoints/last")]

    local, hub = Predictor.load(word_run), Predictor.load("org/word")
    assert hub.trained.path.name == record["commit"] and hub.trained.path != word_run
    news = read_news_records([tiny_mind / "dev"])
    local.encode_news(news), hub.encode_news(news)
    dev = load_mind(tiny_mind, splits=("dev",))
    for row in dev["dev"].behaviors.to_pylist()[:20]:
        expected = local.score(local.encode_user(row["history"]), row["candidates"])
        np.testing.assert_allclose(hub.score(hub.encode_user(row["history"]), row["candidates"]), expected, rtol=1e-6)

    # evaluate --run ORG/NAME writes next to the linked run, never into the Hugging Face cache.
    scored = run_evaluate("org/word", data_root=tiny_mind, split="dev")
    assert scored["auc"] == pytest.approx(run_evaluate(word_run, split="dev", out=word_run.parent / "p.txt")["auc"])
    assert Path(scored["prediction"]).is_relative_to(Path(os.environ["MMNEWSREC_HUB_RUNS"]))
    assert not list(Path(os.environ["HF_HUB_CACHE"]).rglob("prediction.txt"))


def test_a_revision_is_pinned_and_a_later_push_does_not_change_it(word_run: Path, hub_env) -> None:
    first = push_run(word_run, "org/word")["commit"]
    second = push_run(word_run, "org/word", commit_message="again", revision="v2")["commit"]
    assert locate_run(f"org/word@{first}").name == first
    assert locate_run("org/word@v2").name == second


def test_offline_the_cached_run_loads_and_an_unknown_one_is_an_error(
    word_run: Path, tiny_mind: Path, hub_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pushed = subprocess.run(
        [sys.executable, "-m", "mmnewsrec", "push", str(word_run), "org/word"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["commit"] == hub_env.refs["org/word"]["main"]
    Predictor.load("org/word")  # fetched once, into the cache
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    command = [sys.executable, "-m", "mmnewsrec", "evaluate", "--run", "org/word", "--data", str(tiny_mind)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["auc"] > 0.5
    missing = subprocess.run(
        [sys.executable, "-m", "mmnewsrec", "evaluate", "--run", "org/other"], env=env, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert (
        "org/other: no such run folder, and the Hub model org/other is not in the Hugging Face cache" in missing.stderr
    )
    with pytest.raises(RunError, match="no Hub model repository org/nothing"):
        locate_run("org/nothing")
    # A path under a local folder is a local path, typo or not: the Hub is not asked.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    asked = len(hub_env.requests)
    assert locate_run("runs/typo") == Path("runs/typo") and len(hub_env.requests) == asked
    assert parse_hub_ref("org/name@v1") == ("org/name", "v1") and parse_hub_ref("./org/name") is None
    assert parse_hub_ref("/abs/path") is None and parse_hub_ref("a/b/c") is None


def test_serve_takes_a_pushed_run_by_name(word_run: Path, tiny_mind: Path, hub_env) -> None:
    from mmnewsrec.workflows.serve import build_service

    push_run(word_run, "org/word")
    service = build_service("org/word", [tiny_mind / "dev"], progress=False)
    local = Path(os.environ["MMNEWSREC_HUB_RUNS"]) / "org--word" / hub_env.refs["org/word"]["main"]
    assert service.store.url.endswith(str(local / "serve" / "state.db"))  # beside the linked run, not in the cache
    assert len(service.recommend("U1", k=5)) == 5
