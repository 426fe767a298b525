"""`mmnewsrec replay`: does updating users in real time help? A split fed through the live service.

Impressions go through :class:`RecommenderService` in time order. Each is scored twice before its
clicks are posted:

- **static**: the history written in ``behaviors.tsv`` (what ``evaluate`` scores);
- **online**: that history grown by the clicks the user made in the split's earlier impressions,
  read back from the service's state store.

Both see the same popularity counters (every earlier impression of the split counted), so the
difference is the history alone. Results are broken down by how many earlier impressions the
user had (0, 1, 2-4, 5+). Users without any click are also ranked by popularity alone, to choose
the service's cold-start policy by measurement.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_write_text
from mmnewsrec.data.mind import DatasetLocation, MindSplit
from mmnewsrec.errors import ConfigError
from mmnewsrec.evaluation.metrics import RankingMetrics, ranking_metrics
from mmnewsrec.evaluation.report import metrics_table
from mmnewsrec.runs.hub import locate_run
from mmnewsrec.runs.layout import RunDir
from mmnewsrec.serving.predictor import Predictor, torch_threads
from mmnewsrec.serving.records import NewsRecord, read_news_records
from mmnewsrec.serving.service import RecommenderService
from mmnewsrec.serving.state import SQLiteStore

logger = logging.getLogger(__name__)

#: Groups of impressions by how many earlier impressions of the same user the split had.
EARLIER_GROUPS = (("0", 0, 0), ("1", 1, 1), ("2-4", 2, 4), ("5+", 5, None))


def _metrics(scores: list[np.ndarray], labels: list[np.ndarray]) -> RankingMetrics | None:
    if not scores:
        return None
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in scores])])
    try:
        return ranking_metrics(np.concatenate(scores), np.concatenate(labels), offsets)
    except ValueError:  # no impression with both a click and a non-click
        return None


def run_replay(
    run: str | Path,
    data_root: str | Path | None = None,
    split: str = "dev",
    cache_dir: str | Path | None = None,
    cold_start: str = "popularity",
    limit: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Replays ``split`` and writes ``RUN/SPLIT/replay.json``; returns it with a text ``table``."""
    run = locate_run(run)  # a folder, or a run pushed to the Hub (ORG/NAME[@REVISION])
    predictor = Predictor.load(run, cache_dir=cache_dir)
    location = DatasetLocation.resolve(predictor.config.data, data_root)  # the run's reading policies
    directory = location.split_dir(split)
    data = location.read_split(split)
    if not data.labelled:
        raise ConfigError(f"replay needs a labelled split; {directory} has no click labels")
    records = read_news_records([location.root if location.is_ebnerd else directory])  # EB-NeRD: its articles
    with torch_threads(1):  # one user at a time: small products, where extra threads only add overhead
        return _replay(predictor, run, data, directory, records, cold_start, limit, progress)


def _replay(
    predictor: Predictor,
    run: str | Path,
    data: MindSplit,
    directory: Path,
    records: list[NewsRecord],
    cold_start: str,
    limit: int | None,
    progress: bool,
) -> dict[str, Any]:
    split = data.name

    behaviors = data.behaviors
    times = behaviors["time"].cast(pa.int64()).to_numpy()
    order = np.argsort(times, kind="stable")
    if limit is not None:
        order = order[:limit]
    users = behaviors["user_id"].to_pylist()
    histories = behaviors["history"].to_pylist()
    candidates = behaviors["candidates"].to_pylist()
    labels = behaviors["labels"].to_pylist()

    with tempfile.TemporaryDirectory(prefix="mmnewsrec-replay-") as folder:
        store = SQLiteStore(Path(folder) / "state.db", synchronous="OFF")  # a measurement, not live state
        service = RecommenderService(predictor, store, cold_start=cold_start, sync_seconds=0.0)
        service.add_news(records, time=int(times.min(initial=0)), progress=progress, durable=False, cache=True)
        earlier: dict[str, int] = defaultdict(int)
        static: dict[str, tuple[list, list]] = {name: ([], []) for name, _, _ in EARLIER_GROUPS}
        online: dict[str, tuple[list, list]] = {name: ([], []) for name, _, _ in EARLIER_GROUPS}
        cold: dict[str, list] = {"model": [], "popularity": [], "labels": []}
        for row in tqdm(order, desc="replay", unit="imp", disable=not progress):
            user, cands, clicked = users[row], candidates[row], np.asarray(labels[row], dtype=np.int64)
            given = histories[row] or []
            posted = [news_id for news_id, _ in service.history(user)]
            grown = (given + posted)[-service.history_len :] if service.history_len else []
            time = int(times[row])
            static_scores = service.scores(given, cands, time)
            online_scores = static_scores if grown == given else service.scores(grown, cands, time)
            count = earlier[user]
            group = next(name for name, low, high in EARLIER_GROUPS if count >= low and (high is None or count <= high))
            static[group][0].append(static_scores)
            static[group][1].append(clicked)
            online[group][0].append(online_scores)
            online[group][1].append(clicked)
            if not grown:
                cold["model"].append(online_scores)
                cold["popularity"].append(service.popularity_scores(cands, time))
                cold["labels"].append(clicked)
            service.impression(user, cands, [c for c, y in zip(cands, clicked, strict=True) if y], time)
            earlier[user] += 1
        store.close()

    def overall(groups: dict[str, tuple[list, list]]) -> RankingMetrics | None:
        return _metrics([s for g in groups.values() for s in g[0]], [y for g in groups.values() for y in g[1]])

    result: dict[str, Any] = {"run": str(run), "split": split, "impressions": int(len(order)), "groups": {}}
    rows: dict[str, dict[str, float]] = {}
    for name, groups in (("static", static), ("online", online)):
        metrics = overall(groups)
        result[name] = metrics.to_dict() if metrics else None
        if metrics:
            rows[f"{name} (all)"] = metrics.to_dict()
    for name, _, _ in EARLIER_GROUPS:
        entry = {}
        for mode, groups in (("static", static), ("online", online)):
            metrics = _metrics(*groups[name])
            entry[mode] = metrics.to_dict() if metrics else None
            if metrics:
                rows[f"{mode}, {name} earlier"] = metrics.to_dict()
        entry["impressions"] = len(static[name][0])
        result["groups"][name] = entry
    cold_result = {}
    for policy in ("model", "popularity"):
        metrics = _metrics(cold[policy], cold["labels"])
        cold_result[policy] = metrics.to_dict() if metrics else None
        if metrics:
            rows[f"no clicks yet: {policy}"] = metrics.to_dict()
    result["cold_start"] = cold_result
    result["table"] = metrics_table(rows, title=f"replay of {directory} ({len(order)} impressions, time order)")
    out = RunDir(run).replay_path(split)
    out.parent.mkdir(exist_ok=True)
    atomic_write_text(out, json.dumps({k: v for k, v in result.items() if k != "table"}, indent=1) + "\n")
    return result
