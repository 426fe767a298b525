"""The live news catalogue across worker processes and restarts, and ingestion off the request path:
`mmnewsrec serve` as real processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving.conftest import free_port

TOKEN = "catalogue-test-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def serve(run: Path, news: Path, state: Path, folder: Path, port: int, workers: int = 1) -> subprocess.Popen:
    """Starts ``mmnewsrec serve`` and waits until every worker has answered /healthz."""
    token = folder / "token"
    token.write_text(TOKEN + "\n")
    command = [sys.executable, "-m", "mmnewsrec", "-q", "serve", "--run", str(run), "--news", str(news)]
    command += ["--state", f"sqlite:///{state}", "--port", str(port), "--token-file", str(token)]
    command += ["--workers", str(workers)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    seen: set[str] = set()
    deadline = time.monotonic() + 180
    while len(seen) < workers:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.stderr.read().decode()}")
        if time.monotonic() > deadline:
            stop(process)
            raise AssertionError(f"{len(seen)} of {workers} workers answered within 180 s")
        try:
            with httpx.Client() as client:  # a fresh connection: the kernel picks a worker
                response = client.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            seen.add(response.headers["x-mmnewsrec-worker"])
        except httpx.TransportError:
            time.sleep(0.2)
    return process


def stop(process: subprocess.Popen, kill: bool = False) -> None:
    os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def probe_every_worker(port: int, news_id: str, workers: int, seconds: float = 1.0) -> dict[str, bool]:
    """``candidate`` of a news as each worker reports it, on fresh connections, within ``seconds``."""
    answers: dict[str, bool] = {}
    deadline = time.monotonic() + seconds
    while len(answers) < workers and time.monotonic() < deadline:
        with httpx.Client() as client:
            response = client.get(f"http://127.0.0.1:{port}/news/{news_id}", timeout=2)
        assert response.status_code == 200, response.text
        answers[response.headers["x-mmnewsrec-worker"]] = response.json()["candidate"]
    return answers


@pytest.mark.slow
def test_news_posted_or_retired_through_one_worker_reach_both(word_run: Path, tiny_mind: Path, tmp_path: Path) -> None:
    port = free_port()
    server = serve(word_run, tiny_mind / "dev", tmp_path / "state.db", tmp_path, port, workers=2)
    try:
        failures = []
        for trial in range(200):
            news_id = f"LIVE-{trial}"
            with httpx.Client(headers=HEADERS) as client:  # a fresh connection: either worker
                posted = client.post(
                    f"http://127.0.0.1:{port}/news",
                    json={"news": [{"news_id": news_id, "category": "news", "title": f"fresh story {trial}"}]},
                )
            assert posted.status_code == 201, posted.text
            added = probe_every_worker(port, news_id, 2)
            with httpx.Client(headers=HEADERS) as client:
                retired = client.delete(f"http://127.0.0.1:{port}/news/{news_id}")
            assert retired.status_code == 200, retired.text
            gone = probe_every_worker(port, news_id, 2)
            if list(added.values()) != [True, True] or list(gone.values()) != [False, False]:
                failures.append((trial, added, gone))
        assert failures == []  # 200 of 200: both workers served the post and refused the retirement
        with httpx.Client(headers=HEADERS) as client:  # a click on a posted news lands on either worker
            for i in range(20):
                client.post(f"http://127.0.0.1:{port}/news", json={"news": [{"news_id": f"C-{i}", "category": "x"}]})
        for i in range(20):
            with httpx.Client(headers=HEADERS) as client:
                response = client.post(f"http://127.0.0.1:{port}/users/u{i}/clicks", json={"news_id": f"C-{i}"})
            assert response.status_code == 201, response.text
    finally:
        stop(server)


@pytest.mark.slow
def test_acknowledged_news_and_retirements_survive_kill_9(word_run: Path, tiny_mind: Path, tmp_path: Path) -> None:
    port, state = free_port(), tmp_path / "state.db"
    server = serve(word_run, tiny_mind / "dev", state, tmp_path, port)
    preloaded = [line.split("\t")[0] for line in (tiny_mind / "dev" / "news.tsv").read_text().splitlines()]
    acknowledged: list[str] = []
    refused: list[str] = []  # any answer but 201 (the thread stops there)
    retired = preloaded[:5]

    def post_until_killed() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS, timeout=10) as client:
            for b in range(10_000):
                batch = [{"news_id": f"P{b}-{i}", "category": "news", "title": f"story {b} {i}"} for i in range(5)]
                try:
                    response = client.post("/news", json={"news": batch})
                except httpx.TransportError:
                    return
                if response.status_code != 201:
                    refused.append(f"{response.status_code}: {response.text}")
                    return
                acknowledged.extend(item["news_id"] for item in batch)

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS) as client:
        for news_id in retired:
            assert client.delete(f"/news/{news_id}").status_code == 200
        health = client.get("/healthz").json()["news"]
    poster = threading.Thread(target=post_until_killed)
    poster.start()
    deadline = time.monotonic() + 60  # a busy machine answers the first posts late: kill once news flow
    while len(acknowledged) < 50 and poster.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop(server, kill=True)
    poster.join(timeout=30)
    assert refused == []
    assert len(acknowledged) > 20, "the kill must land while news stream in"

    server = serve(word_run, tiny_mind / "dev", state, tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS) as client:
            news = client.get("/healthz").json()["news"]
            assert news >= health + len(acknowledged)  # every acknowledged article is back
            for news_id in acknowledged[:: max(1, len(acknowledged) // 50)] + acknowledged[-5:]:
                response = client.get(f"/news/{news_id}")
                assert response.status_code == 200 and response.json()["candidate"], news_id
            for news_id in retired:  # preloaded from the files again, then retired by the log again
                assert client.get(f"/news/{news_id}").json()["candidate"] is False
            recs = client.get("/users/someone/recommendations?k=1000").json()["recommendations"]
            assert not set(retired) & {r["news_id"] for r in recs}
            click = client.post("/users/u1/clicks", json={"news_id": acknowledged[0]})
            assert click.status_code == 201
            user = client.get("/users/u1").json()["history"]
            assert user[-1]["news_id"] == acknowledged[0] and user[-1]["title"].startswith("story")
    finally:
        stop(server)


@pytest.mark.slow
def test_health_answers_while_5000_news_are_encoded(word_run: Path, tiny_mind: Path, tmp_path: Path) -> None:
    port = free_port()
    server = serve(word_run, tiny_mind / "dev", tmp_path / "state.db", tmp_path, port)
    result: dict[str, object] = {}

    batch = [
        {
            "news_id": f"BULK-{i}",
            "category": "news",
            "title": " ".join(f"word{(i * 7 + j) % 997}" for j in range(12)),
        }
        for i in range(5000)
    ]
    body = json.dumps({"news": batch}).encode()  # serialised first: the probes share this process

    def post() -> None:
        started = time.monotonic()
        with httpx.Client(headers=HEADERS | {"Content-Type": "application/json"}, timeout=600) as client:
            result["response"] = client.post(f"http://127.0.0.1:{port}/news", content=body)
        result["seconds"] = time.monotonic() - started

    try:
        poster = threading.Thread(target=post)
        poster.start()
        latencies = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            while poster.is_alive():
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.005)
        poster.join()
        assert result["response"].status_code == 201, result["response"].text
        assert len(latencies) >= 20, f"the post took {result['seconds']:.2f} s: too short to probe"
        p99 = float(np.percentile(np.array(latencies) * 1000, 99))
        print(f"healthz p99 {p99:.1f} ms over {len(latencies)} probes during a {result['seconds']:.2f} s post")
        assert p99 < 50
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/news/BULK-4999").json()["candidate"] is True
    finally:
        stop(server)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting to be reaped does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.slow
def test_workers_die_with_their_parent_even_after_kill_9(word_run: Path, tiny_mind: Path, tmp_path: Path) -> None:
    import socket

    port = free_port()
    server = serve(word_run, tiny_mind / "dev", tmp_path / "state.db", tmp_path, port, workers=2)
    workers: set[int] = set()
    deadline = time.monotonic() + 30
    while len(workers) < 2 and time.monotonic() < deadline:
        with httpx.Client() as client:
            workers.add(int(client.get(f"http://127.0.0.1:{port}/healthz", timeout=2).headers["x-mmnewsrec-worker"]))
    assert len(workers) == 2
    os.kill(server.pid, signal.SIGKILL)  # the parent alone, as an operator's kill -9 would
    server.wait()
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert not any(alive(pid) for pid in workers), "orphaned workers still serve"
        with socket.socket() as probe:  # the port is free again: a restart can take it
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
