"""Top-10 search over the live service's news vectors: the service's index against the alternatives.

At ``--news`` news (default 100k) of dimension 201 (the shipped text_minilm's news vectors, 128
content + 73 category profile), one query at a time as requests come, and in batches of 32 (the
API's micro-batcher), each query leaving out a history's worth (50) of seen news:

* ``numpy exact (used)``: :class:`mmnewsrec.serving.index.NewsIndex`, what the service runs;
* ``faiss IndexIDMap2(IndexFlatIP)``: where faiss is installed (one query at a time);
* ``torch cuda``: the same exact inner product and top-k on a GPU, where one is present (vectors
  resident on the device, the query sent and the ids brought back per call).

Every method must return the same top 5 as the service's index.

    .venv/bin/python benchmarks/index_search.py [--news 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def _timed(search, queries: np.ndarray, batch: int) -> tuple[float, list]:
    started = time.perf_counter()
    found = []
    for start in range(0, len(queries), batch):
        found.extend(search(queries[start : start + batch]))
    return (time.perf_counter() - started) / len(queries) * 1000, found


def index_comparison(num_news: int = 100_000, dim: int = 201, queries: int = 500, threads: int = 1) -> list[dict]:
    """ms per query of each method (see the module docstring), one query at a time and in batches."""
    from mmnewsrec.serving.index import NewsIndex, NewsMeta

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((num_news, dim)).astype(np.float32)
    ids = [f"N{i}" for i in range(num_news)]
    query = rng.standard_normal((queries, dim)).astype(np.float32)
    index = NewsIndex(dim)
    index.add(ids, vectors, [NewsMeta()] * num_news)
    exclude = ids[:50]  # a history's worth of seen news
    out = []

    def record(method: str, batch: int, ms: float, found: list[list[str]], reference: list[list[str]]) -> None:
        agree = all(a[:5] == b[:5] for a, b in zip(found, reference, strict=True))
        if not agree:
            raise SystemExit(f"{method}: top 5 differs from the service's index")
        out.append({"index": method, "news": num_news, "batch": batch, "ms_per_query": ms, "device": "cpu"})
        print(json.dumps(out[-1]), flush=True)

    def ours(batch: np.ndarray) -> list[list[str]]:
        hits = index.search_many(batch, [10] * len(batch), [exclude] * len(batch), [None] * len(batch))
        return [[news_id for news_id, _ in found] for found in hits]

    _, reference = _timed(ours, query, 1)  # warm-up, and the answers every method must match
    for batch in (1, 32):
        ms, found = _timed(ours, query, batch)
        record("numpy exact (used)", batch, ms, found, reference)

    try:
        import faiss
    except ImportError:
        print("faiss not installed (pip install faiss-cpu): no faiss row", file=sys.stderr)
    else:
        faiss.omp_set_num_threads(threads)
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        flat.add_with_ids(vectors, np.arange(num_news, dtype=np.int64))

        def with_faiss(batch: np.ndarray) -> list[list[str]]:  # ask for 10 + the seen news, drop the seen
            _, rows = flat.search(batch, 10 + len(exclude))
            return [[ids[r] for r in found if r >= len(exclude)][:10] for found in rows]

        ms, found = _timed(with_faiss, query, 1)
        record("faiss IndexIDMap2(IndexFlatIP)", 1, ms, found, reference)

    if torch.cuda.is_available():
        resident = torch.from_numpy(vectors).cuda()  # (N, D)
        seen = torch.zeros(num_news, dtype=torch.bool, device="cuda")
        seen[: len(exclude)] = True

        def on_gpu(batch: np.ndarray) -> list[list[str]]:
            scores = torch.from_numpy(batch).cuda() @ resident.T  # (B, N)
            scores.masked_fill_(seen, float("-inf"))
            rows = torch.topk(scores, 10, dim=1).indices.cpu().tolist()  # synchronises
            return [[ids[r] for r in found] for found in rows]

        _timed(on_gpu, query[:20], 1)  # CUDA context, cuBLAS handles
        for batch in (1, 32):
            ms, found = _timed(on_gpu, query, batch)
            record("torch cuda exact", batch, ms, found, reference)
            out[-1]["device"] = torch.cuda.get_device_name()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--news", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the service searches on one)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = index_comparison(args.news, queries=args.queries, threads=args.threads)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
