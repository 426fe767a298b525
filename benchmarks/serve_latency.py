"""The live service under load: latency, throughput, click-to-recommendation, add_news, memory.

Starts the real server (``mmnewsrec serve``, one process, SQLite state with ``synchronous=FULL``)
on a run trained on synthetic ``small`` (default ``runs/small-text``: ``configs/text_minilm.yaml``,
frozen MiniLM), with every news of the dataset preloaded (51k) and 10k users whose histories come
from the training split. A bounded asyncio load generator (one keep-alive connection per worker,
a fixed time per cell) drives it over loopback in a separate process:

* ``GET /users/{id}/recommendations?k=10``, ``POST /users/{id}/clicks``, ``POST /rank`` (20 history
  news, 40 candidates) at concurrency 1, 8, 32: p50 / p99 latency and requests/s;
* click then recommend, 200 times: is the clicked news gone from the very next recommendation, and
  how long from the click's acknowledgement to that recommendation;
* ``POST /news`` of fresh articles (new titles, so MiniLM encodes them): news/s;
* ``fresh_news``: 2,000 posts of one article each, one after another: the mean latency of the first
  and the last 200, p50 / p99, news/s, and the disk the feature store and the state store use
  before and after (posted news keep their vectors in the state store's news log, not in segments);
* ``poprox``: ``POST /poprox`` (the POPROX protocol) with 100 candidates and 20 clicked articles,
  a fresh candidate pool every request and one pool for every reader, beside ``POST /rank`` of 100
  candidates and the encoding of 120 fresh articles alone;
* ``pipelines``: ``GET /users/{id}/recommendations?k=10&pipeline=NAME`` for every pipeline in
  ``configs/pipelines/`` (served with ``--pipeline``) at concurrency 1, beside no pipeline;
* the server's peak RSS (VmHWM);
* ``--index``: exact numpy search against faiss ``IndexIDMap2(IndexFlatIP)`` at 100k news
  (``benchmarks/index_search.py``).

    .venv/bin/python benchmarks/serve_latency.py [--run runs/small-text] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TOKEN = "benchmark-token"


class Connection:
    """One HTTP/1.1 keep-alive connection; the smallest client, so the load generator stays cheap."""

    def __init__(self, port: int):
        self.port = port

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, method: str, path: str, body: object | None = None) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode() + payload)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load(port: int, make_request, concurrency: int, seconds: float) -> dict[str, float]:
    """Workers send requests back to back for ``seconds``; latency of each, then percentiles."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        connection = await Connection(port).open()
        while time.perf_counter() < deadline:
            method, path, body = make_request(rng)
            start = time.perf_counter()
            status, _ = await connection.request(method, path, body)
            latencies.append(time.perf_counter() - start)
            errors += status >= 300
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "per_s": len(latencies) / elapsed,
    }


async def load_once(port: int, path: str) -> None:
    connection = await Connection(port).open()
    status, _ = await connection.request("GET", path)
    assert status == 200, (path, status)
    connection.close()


async def click_then_recommend(port: int, users: list[str], trials: int) -> dict[str, float]:
    connection = await Connection(port).open()
    reflected, waits = 0, []
    for i in range(trials):
        user = users[i]
        _, body = await connection.request("GET", f"/users/{user}/recommendations?k=10")
        before = [r["news_id"] for r in json.loads(body)["recommendations"]]
        status, _ = await connection.request("POST", f"/users/{user}/clicks", {"news_id": before[0]})
        acknowledged = time.perf_counter()
        assert status == 201
        _, body = await connection.request("GET", f"/users/{user}/recommendations?k=10")
        waits.append(time.perf_counter() - acknowledged)
        after = [r["news_id"] for r in json.loads(body)["recommendations"]]
        reflected += before[0] not in after and after != before
    connection.close()
    return {"trials": trials, "reflected_in_next": reflected, "ack_to_next_ms_p50": 1000 * float(np.median(waits))}


async def add_news(port: int, titles: list[str], batches: int, size: int) -> dict[str, float]:
    """POST /news throughput after a first small POST (which also loads MiniLM: timed apart)."""
    connection = await Connection(port).open()
    rng = random.Random(time.time_ns())  # titles never seen before: the feature store must encode them
    first = time.perf_counter()
    warm = [{"news_id": f"WARM-{i}", "category": "news", "title": f"{rng.choice(titles)} {i}"} for i in range(20)]
    status, body = await connection.request("POST", "/news", {"news": warm})
    assert status == 201, body
    first_post_s = time.perf_counter() - first
    total, started = 0, time.perf_counter()
    for b in range(batches):
        news = []
        for i in range(size):
            # A title of the dataset's length with a number no cache has seen: MiniLM must encode it.
            title = f"{rng.choice(titles)} {rng.randrange(10**6)}"
            news.append({"news_id": f"FRESH-{b}-{i}", "category": "news", "title": title})
        status, body = await connection.request("POST", "/news", {"news": news})
        assert status == 201, body
        total += size
    elapsed = time.perf_counter() - started
    connection.close()
    return {"news": total, "seconds": elapsed, "news_per_s": total / elapsed, "first_post_s": first_post_s}


#: MIND categories -> the POPROX topic an article of that category would be tagged with.
POPROX_TOPICS = {"sports": "Sports", "finance": "Business", "health": "Health", "entertainment": "Entertainment"}


def poprox_article(rng: random.Random, row: dict, fresh: bool) -> dict:
    """A POPROX article from a dataset news (a number no cache has seen in the title when ``fresh``)."""
    import uuid

    title = f"{row['title']} {rng.randrange(10**6)}" if fresh else row["title"]
    topic = POPROX_TOPICS.get(row["category"], "U.S. news")
    return {
        "article_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "headline": title,
        "subhead": row["abstract"],
        "mentions": [
            {"source": "bench", "relevance": 1.0, "entity": {"name": topic, "entity_type": "topic", "source": "bench"}}
        ],
    }


def poprox_request(pool: list[dict], history: list[dict], num_recs: int = 10) -> dict:
    clicks = [{"article_id": a["article_id"]} for a in history]
    return {
        "candidates": {"articles": pool},
        "interacted": {"articles": history},
        "interest_profile": {"click_history": clicks, "entity_interests": []},
        "num_recs": num_recs,
    }


async def poprox(port: int, rows: list[dict], run: Path, seconds: float) -> list[dict[str, float]]:
    """POST /poprox with 100 candidates and 20 clicked articles: every request a fresh pool (all 120
    articles encoded), and one pool for every reader (as POPROX sends it: the vectors are reused),
    beside POST /rank of 100 catalogue candidates and the encoding of 120 articles alone."""
    from mmnewsrec.serving.poprox import PoproxRecommender
    from mmnewsrec.serving.predictor import Predictor

    rng = random.Random(1)
    shared = [poprox_article(rng, r, fresh=True) for r in rng.sample(rows, 100)]
    clicked = [poprox_article(rng, r, fresh=True) for r in rng.sample(rows, 400)]

    def fresh_pool(r: random.Random):
        pool = [poprox_article(r, row, fresh=True) for row in r.sample(rows, 100)]
        history = [poprox_article(r, row, fresh=True) for row in r.sample(rows, 20)]
        return "POST", "/poprox", poprox_request(pool, history)

    def same_pool(r: random.Random):
        return "POST", "/poprox", poprox_request(shared, r.sample(clicked, 20))

    ids = [r["news_id"] for r in rows]

    def rank(r: random.Random):
        return "POST", "/rank", {"history": r.sample(ids, 20), "candidates": r.sample(ids, 100)}

    await load(port, same_pool, 1, 2.0)  # warm-up: the shared pool and the clicked articles encoded once
    cells = []
    for name, make in (
        ("rank 20/100", rank),
        ("poprox 100, same pool", same_pool),
        ("poprox 100, fresh pool", fresh_pool),
    ):
        for concurrency in (1, 8):
            cell = await load(port, make, concurrency, seconds)
            cell["endpoint"] = name
            cells.append(cell)
            print(json.dumps(cell), flush=True)
    # Encoding 120 fresh articles alone, in this process with the same run and threads as the server
    # (the server's cost of a fresh pool).
    predictor = Predictor.load(run)
    recommender = PoproxRecommender(predictor, encode_threads=os.cpu_count())
    from mmnewsrec.serving.poprox import Article

    times = []
    for _ in range(10):
        articles = [Article.model_validate(poprox_article(rng, row, fresh=True)) for row in rng.sample(rows, 120)]
        start = time.perf_counter()
        recommender.vectors([recommender.record(a)[0] for a in articles])
        times.append(time.perf_counter() - start)
    cells.append({"endpoint": "encode 120 fresh articles (in process)", "p50_ms": 1000 * float(np.median(times[2:]))})
    print(json.dumps(cells[-1]), flush=True)
    return cells


def folder_bytes(*paths: Path) -> int:
    """Bytes of the files under (or at) each path."""
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total


async def fresh_news(port: int, titles: list[str], posts: int, stores: dict[str, list[Path]]) -> dict[str, float]:
    """``posts`` POST /news of one unseen article each, one after another: does each get slower?"""
    connection = await Connection(port).open()
    rng = random.Random(time.time_ns())
    before = {name: folder_bytes(*paths) for name, paths in stores.items()}
    latencies, started = [], time.perf_counter()
    for i in range(posts):
        news = [
            {"news_id": f"ONE-{i}-{rng.randrange(10**9)}", "category": "news", "title": f"{rng.choice(titles)} {i}"}
        ]
        start = time.perf_counter()
        status, body = await connection.request("POST", "/news", {"news": news})
        latencies.append(time.perf_counter() - start)
        assert status == 201, body
    elapsed = time.perf_counter() - started
    connection.close()
    ms = np.array(latencies) * 1000
    window = min(200, posts // 2)
    first, last = float(ms[:window].mean()), float(ms[-window:].mean())
    after = {name: folder_bytes(*paths) for name, paths in stores.items()}
    return {
        "posts": posts,
        "first_mean_ms": first,
        "last_mean_ms": last,
        "last_over_first": last / first,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "news_per_s": posts / elapsed,
        **{f"{name}_mib_before": b / 2**20 for name, b in before.items()},
        **{f"{name}_mib_after": b / 2**20 for name, b in after.items()},
    }


def prepare_state(data: Path, folder: Path, users: int) -> tuple[list[str], list[str], list[str]]:
    """10k users with their training histories in a SQLite store; returns users, news ids, titles."""
    from mmnewsrec.data.mind import read_news, read_split
    from mmnewsrec.serving.state import Event, SQLiteStore

    train = read_split(data / "train")
    rows = train.behaviors.select(["user_id", "history"]).to_pylist()
    seen: dict[str, list[str]] = {}
    for row in rows:
        if row["user_id"] not in seen and row["history"]:
            seen[row["user_id"]] = row["history"]
        if len(seen) == users:
            break
    store = SQLiteStore(folder / "state.db", synchronous="OFF")
    events = [Event(u, n, 1_000_000 + i, True) for u, history in seen.items() for i, n in enumerate(history)]
    store.record(events)
    store.close()
    news = [read_news(data / split / "news.tsv") for split in ("train", "dev", "test")]
    ids = sorted({i for table in news for i in table["news_id"].to_pylist()})
    titles = news[0]["title"].to_pylist()
    return list(seen), ids, titles


def start_server(
    run: Path, data: Path, folder: Path, port: int, workers: int, pipelines: list[Path] = ()
) -> tuple[subprocess.Popen, float]:
    (folder / "token").write_text(TOKEN)
    command = [sys.executable, "-m", "mmnewsrec", "-q", "serve", "--run", str(run), "--news", str(data)]
    for pipeline in pipelines:
        command += ["--pipeline", str(pipeline)]
    command += ["--state", f"sqlite:///{folder / 'state.db'}", "--port", str(port)]
    command += ["--token-file", str(folder / "token"), "--workers", str(workers)]
    started = time.perf_counter()
    server = subprocess.Popen(command)
    import urllib.request

    ready: set[int] = set()
    while len(ready) < workers:  # every worker has answered once: all have loaded the run and the news
        if server.poll() is not None:
            raise SystemExit("the server exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                health = json.loads(response.read())
                assert health["news"] > 0
                ready.add(health["worker"])
        except OSError:
            time.sleep(0.5)
    return server, time.perf_counter() - started


def peak_rss_mib(pid: int) -> float:
    """Peak RSS (VmHWM) of the server and its worker processes, summed."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid] + [int(c) for c in children.read_text().split()] if children.exists() else [pid]
    total = 0.0
    for each in pids:
        status = Path(f"/proc/{each}/status").read_text()
        total += int(status.split("VmHWM:")[1].split()[0]) / 1024
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/small-text"))
    parser.add_argument("--data", type=Path, default=None, help="dataset root (default: the run's)")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=8.0, help="per load cell")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=1, help="server processes (serve --workers)")
    parser.add_argument("--index", action="store_true", help="also compare numpy and faiss search at 100k news")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument(
        "--parts",
        default="load,click,add_news,fresh_news,poprox,pipelines",
        help="comma-separated: load, click, add_news, fresh_news, poprox, pipelines (default: all)",
    )
    parser.add_argument("--fresh-posts", type=int, default=2000, help="fresh_news: POST /news of one article each")
    args = parser.parse_args()
    import yaml

    data = args.data or Path(yaml.safe_load((args.run / "config.yaml").read_text())["data"]["root"])
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="mmnewsrec-serve-bench-") as tmp:
        folder = Path(tmp)
        users, news_ids, titles = prepare_state(data, folder, args.users)
        parts = set(args.parts.split(","))
        shipped = sorted((HERE.parent / "configs" / "pipelines").glob("*.yaml")) if "pipelines" in parts else []
        server, startup = start_server(args.run, data, folder, args.port, args.workers, shipped)
        results["startup_s"], results["workers"] = startup, args.workers
        try:
            rng = random.Random(0)

            def recommendations(r: random.Random):
                return "GET", f"/users/{r.choice(users)}/recommendations?k=10", None

            def clicks(r: random.Random):
                return "POST", f"/users/{r.choice(users)}/clicks", {"news_id": r.choice(news_ids)}

            def rank(r: random.Random):
                return "POST", "/rank", {"history": r.sample(news_ids, 20), "candidates": r.sample(news_ids, 40)}

            asyncio.run(load(args.port, recommendations, 4, 2.0))  # warm-up
            cells = []
            for name, make in (("recommendations k=10", recommendations), ("clicks", clicks), ("rank 20/40", rank)):
                for concurrency in (1, 8, 32) if "load" in parts else ():
                    cell = asyncio.run(load(args.port, make, concurrency, args.seconds))
                    cell["endpoint"] = name
                    cells.append(cell)
                    print(json.dumps(cell), flush=True)
            results["load"] = cells
            rng.shuffle(users)
            if "click" in parts:
                results["click_then_recommend"] = asyncio.run(click_then_recommend(args.port, users, 200))
                print(json.dumps(results["click_then_recommend"]), flush=True)
            if "add_news" in parts:
                results["add_news"] = asyncio.run(add_news(args.port, titles, batches=4, size=500))
                print(json.dumps(results["add_news"]), flush=True)
            if "fresh_news" in parts:
                cache = Path(yaml.safe_load((args.run / "config.yaml").read_text())["features"]["cache_dir"])
                state_files = [folder / name for name in ("state.db", "state.db-wal", "state.db-shm")]
                stores = {"feature_store": [cache], "state_store": state_files}
                results["fresh_news"] = asyncio.run(fresh_news(args.port, titles, args.fresh_posts, stores))
                print(json.dumps(results["fresh_news"]), flush=True)
            if "pipelines" in parts:
                import yaml as _yaml

                cells = []
                readers = users[:300]  # their vectors computed once first: every cell then reads the cache
                for reader in readers:
                    asyncio.run(load_once(args.port, f"/users/{reader}/recommendations?k=10"))
                for i, path in enumerate([None, *shipped, None]):  # no pipeline first and last: any drift shows
                    name = (
                        "none" + (" (again)" if i else "")
                        if path is None
                        else _yaml.safe_load(path.read_text())["name"]
                    )
                    query = "" if path is None else f"&pipeline={name}"

                    def piped(r: random.Random, query=query):
                        return "GET", f"/users/{r.choice(readers)}/recommendations?k=10{query}", None

                    cell = asyncio.run(load(args.port, piped, 1, args.seconds))
                    cell["pipeline"] = name
                    cells.append(cell)
                    print(json.dumps(cell), flush=True)
                results["pipelines"] = cells
            if "poprox" in parts:
                from mmnewsrec.data.mind import read_news

                rows = read_news(data / "dev" / "news.tsv").select(["news_id", "category", "title", "abstract"])
                results["poprox"] = asyncio.run(poprox(args.port, rows.to_pylist(), args.run, args.seconds))
            results["server_peak_rss_mib"] = peak_rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    if args.index:
        from index_search import index_comparison  # benchmarks/index_search.py

        results["index"] = index_comparison()
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
