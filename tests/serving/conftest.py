"""Serving fixtures: a real ``redis-server`` on 127.0.0.1, a popularity-scorer run, live services."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.run_fixtures import word_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private ``redis-server`` on 127.0.0.1 (its data in ``folder``), up once it answers a ping.

    ``appendonly``: Redis's append-only file, which keeps acknowledged writes through a crash; the
    service refuses a Redis without it (``serve --allow-volatile-store`` to serve anyway).
    """

    def __init__(self, folder: Path, appendonly: bool = True):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: apt-get install -y redis-server (make test installs it)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)]
        args += ["--appendonly", "yes" if appendonly else "no"]
        self.process = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        import redis

        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    pytest.fail("redis-server did not start within 20 s")
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for the session (with its append-only file); yields its URL."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One fresh store of each kind: the same test table runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("redis_server")


@pytest.fixture()
def open_fresh_store(store_url: str):
    """Opens stores on ``store_url`` with a key prefix private to the test (Redis is shared)."""
    from mmnewsrec.serving.state import RedisStore, open_store

    prefix = f"t{uuid.uuid4().hex[:8]}"
    opened = []

    def opener():
        store = RedisStore(store_url, prefix=prefix) if store_url.startswith("redis") else open_store(store_url)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


@pytest.fixture(scope="session")
def popularity_run(tiny_mind: Path, tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished word-model run whose scorer reads the log counters (popularity and recency)."""
    from mmnewsrec.config import ExperimentConfig, apply_overrides, from_dict, to_dict
    from mmnewsrec.workflows.train import run_train

    root = tmp_path_factory.mktemp("popularity-run")
    config = word_config(tiny_mind, tiny_bert, root / "cache", max_steps=12, eval_every=6, patience=0)
    config = from_dict(ExperimentConfig, apply_overrides(to_dict(config), ["model.scorer=popularity"]))
    run_train(config, run_dir=root / "run")
    return root / "run"


@pytest.fixture(scope="session")
def study_run(tiny_mind: Path, tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished word-model run under the study's ranker (a Transformer over history + candidate)."""
    from mmnewsrec.config import ExperimentConfig, apply_overrides, from_dict, to_dict
    from mmnewsrec.workflows.train import run_train

    root = tmp_path_factory.mktemp("study-run")
    config = word_config(tiny_mind, tiny_bert, root / "cache", max_steps=6, eval_every=6, patience=0)
    overrides = [
        "model.user.type=sequence",
        "model.scorer=transformer",
        "model.transformer={d_model: 16, heads: 4, layers: 2, feedforward: 32, hidden: [8, 4]}",
        "training.loss=pointwise_weighted_ce",
    ]
    run_train(from_dict(ExperimentConfig, apply_overrides(to_dict(config), overrides)), run_dir=root / "run")
    return root / "run"
