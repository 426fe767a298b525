"""`mmnewsrec serve` as a real process: start-up errors, and kill -9 while clicks stream in."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from mmnewsrec.cli.main import main
from tests.serving.conftest import free_port

TOKEN = "kill-test-token"


def start_server(run: Path, news: Path, state: Path, token_file: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "mmnewsrec", "-q", "serve", "--run", str(run), "--news", str(news)]
    command += ["--state", f"sqlite:///{state}", "--port", str(port), "--token-file", str(token_file)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("serve did not answer /healthz within 120 s")


@pytest.mark.slow
def test_kill_9_while_10k_clicks_stream_loses_and_duplicates_nothing(
    word_run: Path, tiny_mind: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    state, port = tmp_path / "state.db", free_port()
    news_ids = [line.split("\t")[0] for line in (tiny_mind / "dev" / "news.tsv").read_text().splitlines()]
    clicks = [(f"U{i % 97}", news_ids[(i * 7) % len(news_ids)], f"c{i}") for i in range(10_000)]
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def stream(start: int, acknowledged: list[int]) -> int:
        """Posts clicks from ``start`` until the server goes away; returns the first unacknowledged."""
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
            for i in range(start, len(clicks)):
                user, news_id, click_id = clicks[i]
                try:
                    response = client.post(f"/users/{user}/clicks", json={"news_id": news_id, "click_id": click_id})
                except httpx.TransportError:
                    return i
                assert response.status_code == 201, response.text
                acknowledged.append(i)
        return len(clicks)

    server = start_server(word_run, tiny_mind / "dev", state, token_file, port)
    acknowledged: list[int] = []
    killer = threading.Thread(target=lambda: (time.sleep(3.0), os.kill(server.pid, signal.SIGKILL)))
    killer.start()
    stopped_at = stream(0, acknowledged)
    killer.join()
    server.wait(timeout=30)
    assert 0 < stopped_at < len(clicks), "the kill must land mid-stream"

    def stored() -> dict[str, int]:
        with sqlite3.connect(state) as db:
            return dict(db.execute("SELECT event_id, COUNT(*) FROM events GROUP BY event_id").fetchall())

    after_kill = stored()
    assert all(after_kill.get(f"c{i}:0") == 1 for i in acknowledged)  # every 2xx click is there, once
    assert len(after_kill) in (len(acknowledged), len(acknowledged) + 1)  # at most the one in flight

    server = start_server(word_run, tiny_mind / "dev", state, token_file, port)
    try:
        assert stream(stopped_at, acknowledged) == len(clicks)  # the client re-sends what was not acknowledged
    finally:
        server.terminate()
        server.wait(timeout=30)
    final = stored()
    assert len(final) == len(clicks) and set(final.values()) == {1}


def test_serve_refuses_to_start_without_a_token(word_run: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("MMNEWSREC_TOKEN", raising=False)
    assert main(["serve", "--run", str(word_run)]) == 1
    assert "error: serve needs a write token: --token-file FILE or MMNEWSREC_TOKEN" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--demo", "--host", "0.0.0.0"], "--demo leaves writes open and serves only on 127.0.0.1"),
        (["--token-file", "/nonexistent/token"], "--token-file /nonexistent/token: No such file or directory"),
        (["--demo", "--state", "mysql://x"], "the scheme must be sqlite:/// or redis://"),
        (["--demo", "--news", "/nonexistent/news"], "--news /nonexistent/news: no such file or folder"),
    ],
)
def test_serve_start_up_errors_are_one_line(word_run: Path, capsys, args: list[str], message: str) -> None:
    assert main(["serve", "--run", str(word_run), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_two_workers_share_one_port_and_every_click(word_run: Path, tiny_mind: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    port = free_port()
    command = [sys.executable, "-m", "mmnewsrec", "-q", "serve", "--run", str(word_run), "--news", str(tiny_mind)]
    command += ["--state", f"sqlite:///{tmp_path / 'state.db'}", "--port", str(port)]
    command += ["--token-file", str(token_file), "--workers", "2"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:  # fresh connections reach both workers
            try:
                workers.add(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()["worker"])
            except httpx.TransportError:
                time.sleep(0.2)
        assert len(workers) == 2, server.stderr.read().decode() if server.poll() is not None else "one worker"
        base = f"http://127.0.0.1:{port}"
        top = httpx.get(f"{base}/users/w1/recommendations?k=5").json()["recommendations"][0]["news_id"]
        response = httpx.post(
            f"{base}/users/w1/clicks", json={"news_id": top}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 201
        answered: set[int] = set()
        for _ in range(200):  # whichever worker answers, the click is in the user's next recommendations
            with httpx.Client(base_url=base) as client:
                answered.add(client.get("/healthz").json()["worker"])
                recommended = [
                    r["news_id"] for r in client.get("/users/w1/recommendations?k=5").json()["recommendations"]
                ]
                assert top not in recommended
            if len(answered) == 2:
                break
        assert answered == workers
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (b"\xff\xfe\x00token", [], "not UTF-8 text (byte 0)"),
        (b"\n\nsecond-line", [], "the first line is empty"),
        (b"t0ken", ["--demo"], "--demo leaves writes open, so it takes no --token-file"),
    ],
)
def test_token_files_are_read_as_the_docs_say(
    word_run: Path, tmp_path: Path, capsys, content: bytes, extra: list[str], message: str
) -> None:
    token = tmp_path / "token"
    token.write_bytes(content)
    assert main(["serve", "--run", str(word_run), "--token-file", str(token), *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_the_token_is_the_first_line_of_its_file(tmp_path: Path) -> None:
    from mmnewsrec.workflows.serve import read_token

    token = tmp_path / "token"
    token.write_text("  s3cret  \nnotes for the operator\n")
    assert read_token(token) == "s3cret"


def test_serving_a_folder_that_is_no_run_creates_nothing_in_it(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    assert main(["serve", "--run", str(folder), "--demo"]) == 1
    err = capsys.readouterr().err
    assert f"{folder}: not a run folder" in err and list(folder.iterdir()) == []
    assert main(["serve", "--run", str(tmp_path / "missing"), "--demo"]) == 1
    assert "missing: not a run folder" in capsys.readouterr().err and not (tmp_path / "missing").exists()


def test_serve_refuses_a_redis_that_would_lose_acknowledged_clicks(
    word_run: Path, tmp_path: Path, capsys, caplog
) -> None:
    """Redis without its append-only file loses every acknowledged click since its last snapshot
    when it crashes: serve refuses it at start-up, and with --allow-volatile-store says so and goes on."""
    from mmnewsrec.workflows.serve import check_durable
    from tests.serving.conftest import RedisServer

    volatile = RedisServer(tmp_path, appendonly=False)
    try:
        assert main(["serve", "--run", str(word_run), "--demo", "--state", volatile.url]) == 1
        err = capsys.readouterr().err
        assert "appendonly is off" in err and "--appendonly yes" in err and "--allow-volatile-store" in err
        assert "Traceback" not in err
        with caplog.at_level(logging.WARNING):
            check_durable(volatile.url, allow_volatile=True)
        assert "serving anyway (--allow-volatile-store)" in caplog.text
    finally:
        volatile.stop()
    check_durable(f"sqlite:///{tmp_path / 'state.db'}")  # SQLite commits to its WAL before answering


def test_with_its_append_only_file_redis_keeps_every_acknowledged_click_through_kill_9(tmp_path: Path) -> None:
    from mmnewsrec.serving.state import Event, RedisStore
    from tests.serving.conftest import RedisServer

    server = RedisServer(tmp_path)
    store = RedisStore(server.url)
    assert store.durability_problem() is None
    acknowledged = sum(store.record([Event("u1", f"N{i}", 1000 + i, True, f"c{i}:0")]) for i in range(300))
    store.close()
    server.process.kill()  # SIGKILL: no shutdown save
    server.process.wait(timeout=10)
    again = RedisServer(tmp_path)  # the same folder: Redis replays its append-only file
    try:
        reopened = RedisStore(again.url)
        assert acknowledged == 300 and len(reopened.history("u1", 1000)) == 300
        assert reopened.record([Event("u1", "N0", 1000, True, "c0:0")]) == 0  # idempotency keys kept too
        reopened.close()
    finally:
        again.stop()


def test_serve_says_where_it_listens(word_run: Path, tmp_path: Path, caplog, monkeypatch) -> None:
    import mmnewsrec.workflows.serve as serve_module

    served = []
    monkeypatch.setattr(serve_module, "_run", lambda listener, app: served.append(listener.getsockname()))
    port = free_port()
    with caplog.at_level(logging.INFO, logger="mmnewsrec.workflows.serve"):
        serve_module.serve(word_run, state=f"sqlite:///{tmp_path / 'state.db'}", port=port, demo=True, progress=False)
    assert served == [("127.0.0.1", port)]
    assert f"serving http://127.0.0.1:{port}/ (the page; API docs at http://127.0.0.1:{port}/docs)" in caplog.text
