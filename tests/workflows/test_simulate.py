"""`mmnewsrec simulate`: a trained run serving the tiny synthetic world's readers day after day."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mmnewsrec.cli.main import main
from mmnewsrec.data.synthetic.live import load_world
from mmnewsrec.serving.predictor import Predictor
from mmnewsrec.serving.service import RecommenderService
from mmnewsrec.serving.state import SQLiteStore
from mmnewsrec.workflows.simulate import (
    SHADOW_SUFFIX,
    ServiceFeed,
    SimulationConfig,
    days_to_follow,
    entropy_bits,
    run_simulation,
    simulate,
)
from tests.serving.conftest import free_port

FIELDS = {
    "day",
    "impressions",
    "clicks",
    "expected_clicks",
    "oracle_expected_clicks",
    "category_entropy_shown",
    "category_entropy_clicked",
    "coverage",
    "fresh_share_shown",
    "fresh_share_clicked",
}


def _strip(result: dict) -> list[dict]:
    """The days without their latencies (the only part a rerun may change)."""
    return [{k: v for k, v in day.items() if not k.startswith("latency")} for day in result["days"]]


def test_a_simulation_writes_its_days_reproducibly_and_the_pipeline_changes_the_feeds(
    word_run_copy: Path, tiny_mind: Path, tmp_path: Path
) -> None:
    config = {"days": 2, "users": 60, "seed": 3}
    first = run_simulation(word_run_copy, tiny_mind, tmp_path / "a", **config)
    stored = json.loads((tmp_path / "a" / "simulation.json").read_text())
    assert [d["day"] for d in stored["days"]] == [0, 1] and FIELDS <= set(stored["days"][0])
    for day in first["days"]:
        assert day["impressions"] == 60 and 0 < day["expected_clicks"] <= day["oracle_expected_clicks"]
        assert 0 < day["coverage"] <= 1 and 0 <= day["fresh_share_shown"] <= 1 and day["news_published"] > 0
    assert first["pipeline"] == "top-k" and first["config"]["online"]
    again = run_simulation(word_run_copy, tiny_mind, tmp_path / "b", **config)
    assert _strip(again) == _strip(first)
    mmr = tmp_path / "mmr.yaml"
    mmr.write_text("name: mmr-low\npool: 50\ndiversifier: mmr\ntheta: 0.3\n")
    diverse = run_simulation(word_run_copy, tiny_mind, tmp_path / "c", pipeline=mmr, **config)
    assert diverse["pipeline"] == "mmr-low"
    assert diverse["summary"]["category_entropy_shown"] > first["summary"]["category_entropy_shown"]
    # A sampler without a seed of its own draws from the simulation's seed: a rerun is the same run.
    sampler = tmp_path / "softmax.yaml"
    sampler.write_text("name: soft\nsampler: softmax\ntemperature: 1.0\n")
    drawn = [
        _strip(run_simulation(word_run_copy, tiny_mind, tmp_path / f"s{i}", pipeline=sampler, **config)) for i in (0, 1)
    ]
    assert drawn[0] == drawn[1] and drawn[0] != _strip(first)


class Spy(ServiceFeed):
    """A service in process that keeps what the simulator asked of it."""

    def __init__(self, service: RecommenderService):
        super().__init__(service)
        self.asked: list[str] = []
        self.posted: list[tuple[str, list[str], list[str], int]] = []

    def recommend(self, user_id: str, k: int, time: int) -> list[str]:
        self.asked.append(user_id)
        return super().recommend(user_id, k, time)

    def impression(self, user_id: str, shown: list[str], clicked: list[str], time: int) -> None:
        self.posted.append((user_id, shown, clicked, time))
        super().impression(user_id, shown, clicked, time)


@pytest.mark.parametrize("online", [True, False])
def test_online_readers_histories_grow_and_static_ones_post_under_a_shadow_id(
    word_run_copy: Path, tiny_mind: Path, tmp_path: Path, online: bool
) -> None:
    service = RecommenderService(Predictor.load(word_run_copy), SQLiteStore(tmp_path / "state.db"), sync_seconds=0.0)
    feed = Spy(service)
    world = load_world(tiny_mind)
    primed = sum(1 for h in world.draw.latest_history if len(h))
    result = simulate(world, feed, SimulationConfig(days=1, users=80, seed=2, online=online))
    posted = feed.posted[primed:]  # after every reader's history
    assert len(posted) == 80 == result["days"][0]["impressions"] and len(feed.asked) == 80
    assert all(not user.endswith(SHADOW_SUFFIX) for user in feed.asked)
    assert all(user.endswith(SHADOW_SUFFIX) != online for user, _, _, _ in posted)
    assert sum(len(clicked) for _, _, clicked, _ in posted) == result["days"][0]["clicks"] > 0
    times = [time for _, _, _, time in posted]
    assert times == sorted(times)
    user, _, clicked, _ = next(p for p in posted if p[2])
    reader = user.removesuffix(SHADOW_SUFFIX)
    grown = {news for news, _ in service.history(reader)} >= set(clicked)
    assert grown == online  # a static reader's own history never holds the simulated clicks
    shown = [set(s) for u, s, _, _ in posted if u == user]
    later = [s for u, s, _, _ in posted[posted.index(next(p for p in posted if p[2])) + 1 :] if u == user]
    assert all(not (set(clicked) & s) for s in later)  # a clicked news is never shown to its reader again
    assert shown


def test_the_cli_refuses_a_folder_synth_did_not_write(word_run_copy: Path, tmp_path: Path, capsys) -> None:
    assert main(["simulate", "--run", str(word_run_copy), "--data", str(word_run_copy), "--out", str(tmp_path)]) == 1
    assert "not a synthetic dataset (no synthetic.json)" in capsys.readouterr().err
    assert not (tmp_path / "simulation.json").exists()


def test_entropy_and_days_to_follow() -> None:
    assert entropy_bits([5, 5]) == pytest.approx(1.0) and entropy_bits([3]) == 0.0 and entropy_bits([]) == 0.0
    days = [
        {"day": 0, "drifted_expected_share": 0.2, "others_expected_share": 0.6},
        {"day": 1, "drifted_expected_share": 0.58, "others_expected_share": 0.6},
    ]
    assert days_to_follow(days) == 2 and days_to_follow(days[:1]) is None


@pytest.mark.slow
def test_over_http_the_simulation_is_the_one_in_process(word_run_copy: Path, tiny_mind: Path, tmp_path: Path) -> None:
    config = {"days": 1, "users": 40, "seed": 1}
    local = run_simulation(word_run_copy, tiny_mind, tmp_path / "local", **config)
    token, port = "sim-token", free_port()
    (tmp_path / "token").write_text(token + "\n")
    command = [sys.executable, "-m", "mmnewsrec", "-q", "serve", "--run", str(word_run_copy), "--port", str(port)]
    command += ["--state", f"sqlite:///{tmp_path / 'state.db'}", "--token-file", str(tmp_path / "token")]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer /healthz"
                time.sleep(0.2)
        remote = run_simulation(
            word_run_copy,
            tiny_mind,
            tmp_path / "remote",
            http=f"http://127.0.0.1:{port}",
            token_file=tmp_path / "token",
            **config,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    for there, here in zip(_strip(remote), _strip(local), strict=True):
        assert there.keys() == here.keys()
        for key, value in here.items():
            assert there[key] == (value if value is None else pytest.approx(value, rel=1e-6)), key
