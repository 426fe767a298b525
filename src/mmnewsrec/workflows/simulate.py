"""`mmnewsrec simulate`: a trained run serving the synthetic world's readers, day after day.

Offline replay scores logged impressions again; what a reader would have clicked on a feed they
never saw is unknown there. The synthetic generator knows it: its click model is the truth. A
simulated day (world days after the logs end; see :mod:`mmnewsrec.data.synthetic.live`):

1. fresh news are published hour by hour (the world's own rate, drawn from its distributions) and
   posted to the service; news older than the world's candidate window are retired;
2. readers arrive through the day in proportion to their activity; each asks the service for a
   feed of ``k`` (the pipeline chosen), looks at it with position bias and clicks with the true
   probabilities: ``examination(rank) * p(user, news, time)``, ``examination(r) = 1 / log2(1 + r)``;
3. the feed and its clicks are posted back as an impression, so real-time user vectors,
   popularity counters and cold start run exactly as in production.

Before day 0 the service gets every news of the dataset (those older than the window retired at
once) and every reader's history as the dev and test logs show it. With ``online=False`` (static
user vectors) the impressions are posted under a shadow user id (``USER~sim``): counters count
them the same, but a reader's own history, hence their vector, never grows; the simulator then
drops from a static reader's feed what they already clicked, as the service does for online ones.

Measured per day: clicks, expected clicks of the feeds against the oracle's best feed of the same
size from the same candidates (regret), category entropy of what was shown and clicked, coverage,
the share of impressions and clicks going to news under a day old, the drifted readers' expected
clicks as a share of the oracle's (how fast a feed follows a moved reader), and request latency.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time as clock
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_write_text
from mmnewsrec.config.pipeline import PipelineConfig
from mmnewsrec.data.synthetic.live import END_OF_LOGS, LiveWorld, load_world, news_id, news_row, unix_time
from mmnewsrec.data.synthetic.world import HISTORY_DAYS, SPLIT_DAYS
from mmnewsrec.errors import ConfigError, MmnewsrecError
from mmnewsrec.runs.hub import locate_run
from mmnewsrec.serving.pipeline import TOP_K
from mmnewsrec.serving.predictor import Predictor, torch_threads
from mmnewsrec.serving.service import RecommenderService
from mmnewsrec.serving.state import SQLiteStore
from mmnewsrec.workflows.serve import load_pipelines, read_token

logger = logging.getLogger(__name__)

SIMULATION_FILE = "simulation.json"
#: The shadow id static readers' impressions are posted under (their own history never grows).
SHADOW_SUFFIX = "~sim"
#: Most news per POST /news, and most shown news per impression, that the API takes.
_NEWS_PER_POST, _SHOWN_PER_POST = 5000, 1000


class Feed(Protocol):
    """What the simulator asks of a recommender service (in process or over HTTP)."""

    def add_news(self, records: list[dict[str, Any]], time: int, preload: bool = False) -> None:
        """``preload``: the dataset's own news before day 0 (a service may read them from its feature cache)."""

    def retire(self, news_ids: list[str], time: int) -> None: ...

    def recommend(self, user_id: str, k: int, time: int) -> list[str]: ...

    def impression(self, user_id: str, shown: list[str], clicked: list[str], time: int) -> None: ...


class ServiceFeed:
    """A :class:`RecommenderService` in this process; its clock is the simulation's."""

    def __init__(self, service: RecommenderService, pipeline: str | None = None):
        self.service, self.pipeline = service, pipeline
        self.time = 0
        service.now = lambda: self.time

    def add_news(self, records: list[dict[str, Any]], time: int, preload: bool = False) -> None:
        self.time = max(self.time, time)
        # The dataset's news as `serve --news` preloads them (features from the run's cache); the
        # news of the simulated days as POST /news adds them (encoded, durable in the store's log).
        self.service.add_news(records, time=time, durable=not preload, cache=preload)

    def retire(self, news_ids: list[str], time: int) -> None:
        self.time = max(self.time, time)
        self.service.retire_news(news_ids)

    def recommend(self, user_id: str, k: int, time: int) -> list[str]:
        self.time = max(self.time, time)
        return [r.news_id for r in self.service.recommend(user_id, k, time=time, pipeline=self.pipeline)]

    def impression(self, user_id: str, shown: list[str], clicked: list[str], time: int) -> None:
        self.time = max(self.time, time)
        self.service.impression(user_id, shown, clicked, time)


class HttpFeed:
    """A running ``mmnewsrec serve`` (its HTTP API); ``token``: its write token."""

    def __init__(self, url: str, pipeline: str | None = None, token: str | None = None, timeout: float = 60.0):
        self.url, self.pipeline, self.token, self.timeout = url.rstrip("/"), pipeline, token, timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", "")
            except (ValueError, AttributeError):
                detail = ""
            raise MmnewsrecError(f"{method} {self.url}{path}: HTTP {exc.code} {detail}".rstrip()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MmnewsrecError(f"{method} {self.url}{path}: {reason}") from None

    def add_news(self, records: list[dict[str, Any]], time: int, preload: bool = False) -> None:
        fields = ("news_id", "category", "subcategory", "title", "abstract")  # the API takes no image files
        for start in range(0, len(records), _NEWS_PER_POST):
            chunk = [{key: r[key] for key in fields} for r in records[start : start + _NEWS_PER_POST]]
            self._call("POST", "/news", {"news": chunk, "time": time})

    def retire(self, news_ids: list[str], time: int) -> None:
        for news in news_ids:
            self._call("DELETE", f"/news/{urllib.parse.quote(news, safe='')}")

    def recommend(self, user_id: str, k: int, time: int) -> list[str]:
        query = {"k": k, "time": time, **({"pipeline": self.pipeline} if self.pipeline else {})}
        path = f"/users/{urllib.parse.quote(user_id, safe='')}/recommendations?{urllib.parse.urlencode(query)}"
        return [r["news_id"] for r in self._call("GET", path)["recommendations"]]

    def impression(self, user_id: str, shown: list[str], clicked: list[str], time: int) -> None:
        user = urllib.parse.quote(user_id, safe="")
        for start in range(0, len(shown), _SHOWN_PER_POST):
            part = shown[start : start + _SHOWN_PER_POST]
            listed = set(part)
            picked = [c for c in clicked if c in listed]
            self._call("POST", f"/users/{user}/impressions", {"shown": part, "clicked": picked, "time": time})


@dataclass(frozen=True)
class SimulationConfig:
    """How a simulation runs.

    Attributes:
        days: simulated days after the logs.
        users: reader arrivals per day (drawn by activity: an active reader comes several times).
        k: cards per feed.
        seed: the simulation's random stream (news, arrivals, clicks); the world is the dataset's.
        online: post impressions under the reader's own id (real-time user vectors) or a shadow id.
        interest_drift: share of readers whose interests move at the start of day 0, beyond the
            moves the dataset's logs made.
        news_per_day: news published per day (default: the world's own rate).
    """

    days: int = 7
    users: int = 1000
    k: int = 10
    seed: int = 0
    online: bool = True
    interest_drift: float = 0.0
    news_per_day: int | None = None

    def __post_init__(self) -> None:
        for name in ("days", "users", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed: must be an integer >= 0, got {self.seed!r}")
        if not 0.0 <= self.interest_drift <= 1.0:
            raise ConfigError(f"interest_drift: must be between 0 and 1, got {self.interest_drift}")
        if self.news_per_day is not None and self.news_per_day < 1:
            raise ConfigError(f"news_per_day: must be >= 1, got {self.news_per_day}")
        if self.k > 1000:
            raise ConfigError(f"k: at most 1000, got {self.k}")


def entropy_bits(counts: Sequence[int] | np.ndarray) -> float:
    """Shannon entropy (bits) of a distribution given by counts (0 for none)."""
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts > 0]
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


class _Day:
    """What one simulated day measured."""

    def __init__(self, day: int):
        self.day = day
        self.impressions = self.clicks = 0
        self.expected = self.oracle = 0.0
        self.feed_entropy: list[float] = []
        self.clicked_categories: Counter[int] = Counter()
        self.shown: set[int] = set()
        self.candidates: set[int] = set()
        self.fresh_shown = self.cards = self.fresh_clicks = 0
        self.moved = [0.0, 0.0, 0]  # drifted readers: expected, oracle, impressions
        self.others = [0.0, 0.0, 0]
        self.latency: list[float] = []
        self.published = 0

    def record(self) -> dict[str, Any]:
        latency = np.asarray(self.latency) * 1000
        return {
            "day": self.day,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "clicks_per_impression": self.clicks / max(self.impressions, 1),
            "expected_clicks": self.expected,
            "oracle_expected_clicks": self.oracle,
            "regret": 1.0 - self.expected / self.oracle if self.oracle > 0 else None,
            "category_entropy_shown": float(np.mean(self.feed_entropy)) if self.feed_entropy else 0.0,
            "category_entropy_clicked": entropy_bits(list(self.clicked_categories.values())),
            "coverage": len(self.shown) / max(len(self.candidates), 1),
            "fresh_share_shown": self.fresh_shown / max(self.cards, 1),
            "fresh_share_clicked": self.fresh_clicks / max(self.clicks, 1),
            "drifted_expected_share": _share([self.moved]),
            "others_expected_share": _share([self.others]),
            "drifted_impressions": self.moved[2],
            "news_published": self.published,
            "candidates": len(self.candidates),
            "latency_ms_p50": float(np.percentile(latency, 50)) if latency.size else None,
            "latency_ms_p95": float(np.percentile(latency, 95)) if latency.size else None,
        }


def days_to_follow(days: list[dict[str, Any]], within: float = 0.95) -> int | None:
    """The first day (1-based count of days) whose drifted readers get at least ``within`` of the
    other readers' share of the oracle's expected clicks; None when no day does (or none drifted)."""
    for record in days:
        moved, others = record.get("drifted_expected_share"), record.get("others_expected_share")
        if moved is not None and others:
            if moved >= within * others:
                return int(record["day"]) + 1
    return None


def simulate(
    world: LiveWorld, feed: Feed, config: SimulationConfig = SimulationConfig(), progress: bool = False
) -> dict[str, Any]:
    """Runs the simulation (see the module docstring); returns the per-day records and a summary."""
    rng = np.random.default_rng([config.seed, 0x51A7])
    if config.interest_drift:
        world.move_interests(config.interest_drift, rng)
    w = world.world
    window = world.draw.params.fresh_window_days
    moved = np.zeros(len(w.user_interest), dtype=bool)
    moved[world.draw.movers] = True
    world_days = HISTORY_DAYS + SPLIT_DAYS["test"][1]
    per_day = config.news_per_day or max(1, round(world.news_count / world_days))
    start = END_OF_LOGS

    # Before day 0: every news of the dataset (the old ones retired), every reader's history.
    started = clock.perf_counter()
    old = np.flatnonzero(w.publish_day < start - window)
    feed.add_news([world.record(int(i)) for i in old], unix_time(start - window), preload=True)
    feed.retire([news_id(int(i)) for i in old], unix_time(start - window))
    live = np.zeros(world.news_count, dtype=bool)
    recent = np.flatnonzero(w.publish_day >= start - window)
    for hour, rows in _by_hour(w.publish_day[recent], recent):
        feed.add_news([world.record(int(i)) for i in rows], unix_time(hour / 24), preload=True)
    live[recent] = True
    history = world.draw.latest_history
    seen: list[set[int]] = [set(h.tolist()) for h in history]
    seed_time = unix_time(start - window)  # before every live news: no candidate's counters move
    for user in tqdm(range(len(history)), desc="histories", unit="user", disable=not progress):
        ids = [news_id(int(i)) for i in history[user]]
        if ids:
            feed.impression(f"U{user + 1}", ids, ids, seed_time)
    logger.info(
        "service primed in %.1f s: %d news, %d readers", clock.perf_counter() - started, len(live), len(history)
    )

    records, measured_days = [], []
    for day in range(config.days):
        measured = _Day(day)
        first = start + day
        new = world.publish(per_day, (first, first + 1), rng)
        measured.published = len(new)
        live = np.concatenate([live, np.zeros(len(new), dtype=bool)])
        arrivals = rng.choice(len(w.user_activity), size=config.users, p=w.user_activity)
        times = np.sort(rng.uniform(first, first + 1, size=config.users))
        measured.candidates.update(np.flatnonzero(live).tolist())
        hours = dict(_by_hour(w.publish_day[new], new))
        bar = tqdm(total=config.users, desc=f"day {day + 1}/{config.days}", unit="imp", disable=not progress)
        for hour in range(int(round(first * 24)), int(round((first + 1) * 24))):
            at = hour / 24
            rows = hours.get(hour, np.zeros(0, dtype=np.int64))
            if len(rows):
                feed.add_news([world.record(int(i), rng=rng) for i in rows], unix_time(at))
                live[rows] = True
                measured.candidates.update(rows.tolist())
            expired = np.flatnonzero(live & (w.publish_day < at - window))
            if len(expired):
                feed.retire([news_id(int(i)) for i in expired], unix_time(at))
                live[expired] = False
            within = np.flatnonzero((times >= at) & (times < (hour + 1) / 24))
            for position in within:
                _serve(
                    world,
                    feed,
                    config,
                    int(arrivals[position]),
                    float(times[position]),
                    live,
                    seen,
                    moved,
                    measured,
                    rng,
                )
                bar.update()
        bar.close()
        records.append(measured.record())
        measured_days.append(measured)
        logger.info(
            "day %d: %d impressions, %d clicks, regret %.3f, fresh clicks %.1f%%",
            day + 1,
            measured.impressions,
            measured.clicks,
            records[-1]["regret"] or 0.0,
            100 * records[-1]["fresh_share_clicked"],
        )
    latency = 1000 * np.asarray([t for m in measured_days for t in m.latency])
    total_impressions = sum(r["impressions"] for r in records)
    expected = sum(r["expected_clicks"] for r in records)
    oracle = sum(r["oracle_expected_clicks"] for r in records)
    summary = {
        "impressions": total_impressions,
        "clicks": sum(r["clicks"] for r in records),
        "clicks_per_impression": sum(r["clicks"] for r in records) / max(total_impressions, 1),
        "expected_clicks_per_impression": expected / max(total_impressions, 1),
        "regret": 1.0 - expected / oracle if oracle > 0 else None,
        "category_entropy_shown": float(np.mean([r["category_entropy_shown"] for r in records])),
        "category_entropy_clicked": float(np.mean([r["category_entropy_clicked"] for r in records])),
        "coverage": float(np.mean([r["coverage"] for r in records])),
        "fresh_share_shown": float(np.mean([r["fresh_share_shown"] for r in records])),
        "fresh_share_clicked": float(np.mean([r["fresh_share_clicked"] for r in records])),
        "fresh_clicks": int(round(sum(r["fresh_share_clicked"] * r["clicks"] for r in records))),
        "drifted_expected_share": _share([m.moved for m in measured_days]),
        "others_expected_share": _share([m.others for m in measured_days]),
        "days_to_follow": days_to_follow(records),
        "latency_ms_p50": float(np.percentile(latency, 50)) if latency.size else None,
        "latency_ms_p95": float(np.percentile(latency, 95)) if latency.size else None,
        "drifted_readers": int(moved.sum()),
    }
    return {
        "config": asdict(config),
        "click_model": "P(click) = examination(rank) * p(user, news, time), examination(r) = 1 / log2(1 + r)",
        "news_per_day": per_day,
        "window_days": window,
        "days": records,
        "summary": summary,
    }


def _share(groups: list[list]) -> float | None:
    """Expected clicks as a share of the oracle's, over several days' [expected, oracle, n] sums."""
    oracle = sum(g[1] for g in groups)
    return sum(g[0] for g in groups) / oracle if oracle > 0 else None


def _by_hour(days: np.ndarray, rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``rows`` grouped by the hour they are published in: (hour index since day 0, rows)."""
    hours = np.floor(np.asarray(days) * 24).astype(np.int64)
    return [(int(h), rows[hours == h]) for h in np.unique(hours)]


def _serve(
    world: LiveWorld,
    feed: Feed,
    config: SimulationConfig,
    user: int,
    day: float,
    live: np.ndarray,
    seen: list[set[int]],
    moved: np.ndarray,
    measured: _Day,
    rng: np.random.Generator,
) -> None:
    """One reader's visit: a feed asked for, looked at, clicked, posted back, measured."""
    w = world.world
    user_id = f"U{user + 1}"
    at = unix_time(day)
    extra = 0 if config.online else min(len(seen[user]), 1000 - config.k)
    started = clock.perf_counter()
    ids = feed.recommend(user_id, config.k + extra, at)
    measured.latency.append(clock.perf_counter() - started)
    rows = [news_row(i) for i in ids]
    if any(r is None or r >= world.news_count for r in rows):
        raise MmnewsrecError(f"the service recommended a news the world does not have: {ids}")
    shown = np.array([r for r in rows if r not in seen[user]][: config.k], dtype=np.int64)
    probs = world.feed_probability(user, shown, day)  # (k,)
    clicked = shown[rng.random(len(shown)) < probs]
    candidates = np.flatnonzero(live & (w.publish_day <= day))
    candidates = candidates[~np.isin(candidates, np.fromiter(seen[user], dtype=np.int64, count=len(seen[user])))]
    best = world.best_feed_clicks(user, candidates, config.k, day)
    if len(shown):
        poster = user_id if config.online else user_id + SHADOW_SUFFIX
        feed.impression(poster, [news_id(int(i)) for i in shown], [news_id(int(i)) for i in clicked], at)
    seen[user].update(clicked.tolist())
    measured.impressions += 1
    measured.clicks += len(clicked)
    measured.expected += float(probs.sum())
    measured.oracle += best
    group = measured.moved if moved[user] else measured.others
    group[0] += float(probs.sum())
    group[1] += best
    group[2] += 1
    measured.feed_entropy.append(entropy_bits(np.bincount(w.category[shown])) if len(shown) else 0.0)
    measured.clicked_categories.update(w.category[clicked].tolist())
    measured.shown.update(shown.tolist())
    fresh = (day - w.publish_day[shown]) < 1.0
    measured.cards += len(shown)
    measured.fresh_shown += int(fresh.sum())
    measured.fresh_clicks += int(fresh[np.isin(shown, clicked)].sum())


def run_simulation(
    run: str | Path,
    data: str | Path,
    out: str | Path,
    days: int = 7,
    pipeline: str | Path | None = None,
    seed: int = 0,
    users: int = 1000,
    k: int = 10,
    static: bool = False,
    interest_drift: float = 0.0,
    news_per_day: int | None = None,
    http: str | None = None,
    token_file: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Simulates ``days`` days of the run serving the world of ``data`` (a folder written by
    ``mmnewsrec synth``) through ``pipeline`` (a YAML file; default: the model's top k); in process,
    or against the server at ``http`` (its write token in ``token_file``, else ``$MMNEWSREC_TOKEN``).
    The other arguments are :class:`SimulationConfig`'s (``static``: not ``online``). Writes
    ``OUT/simulation.json`` and returns it.

    Raises:
        ConfigError: ``data`` was not written by ``synth``, a bad pipeline file or setting.
    """
    config = SimulationConfig(days, users, k, seed, not static, interest_drift, news_per_day)
    token = read_token(token_file) if http else None
    world = load_world(data)  # refuses a folder synth did not write, before anything loads
    feeds: list[PipelineConfig] = load_pipelines([pipeline]) if pipeline is not None else []
    # A sampler without a seed of its own draws from the simulation's, so a rerun is the same run.
    feeds = [feed if feed.seed is not None else replace(feed, seed=seed) for feed in feeds]
    name = feeds[0].name if feeds else TOP_K.name
    out = Path(out)
    started = clock.perf_counter()
    if http:
        feed: Feed = HttpFeed(http, feeds[0].name if feeds else None, token)
        result = simulate(world, feed, config, progress)
    else:
        predictor = Predictor.load(locate_run(run), cache_dir=cache_dir)
        with tempfile.TemporaryDirectory(prefix="mmnewsrec-simulate-") as folder:
            store = SQLiteStore(Path(folder) / "state.db", synchronous="OFF")  # a measurement, not live state
            service = RecommenderService(predictor, store, sync_seconds=0.0, pipelines=feeds)
            try:
                with torch_threads(1):  # one reader at a time, as replay
                    result = simulate(world, ServiceFeed(service), config, progress)
            finally:
                store.close()
    result = {
        "run": str(run),
        "data": str(data),
        "pipeline": name,
        "pipeline_config": asdict(feeds[0]) if feeds else None,
        "http": http,
        **result,
        "seconds": round(clock.perf_counter() - started, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SIMULATION_FILE, json.dumps(result, indent=1) + "\n")
    return result


#: The columns of :func:`simulation_table`: (record key, heading, format).
TABLE_COLUMNS = (
    ("impressions", "impressions", "{:d}"),
    ("clicks_per_impression", "clicks/imp", "{:.3f}"),
    ("regret", "regret", "{:.3f}"),
    ("category_entropy_shown", "entropy shown", "{:.2f}"),
    ("category_entropy_clicked", "entropy clicked", "{:.2f}"),
    ("coverage", "coverage", "{:.2f}"),
    ("fresh_share_shown", "fresh shown", "{:.2f}"),
    ("fresh_share_clicked", "fresh clicked", "{:.2f}"),
    ("drifted_expected_share", "drifted/oracle", "{:.2f}"),
    ("latency_ms_p50", "p50 ms", "{:.1f}"),
)


def simulation_table(result: dict[str, Any]) -> str:
    """A simulation's days as a Markdown table, with the whole run's line last."""
    heading = ["day", *(title for _, title, _ in TABLE_COLUMNS)]

    def cells(record: dict[str, Any]) -> list[str]:
        out = []
        for key, _, form in TABLE_COLUMNS:
            value = record.get(key)
            out.append("-" if value is None else form.format(value))
        return out

    lines = [
        f"simulation: {result.get('pipeline', '?')}, {'online' if result['config']['online'] else 'static'} "
        f"user vectors, {len(result['days'])} days",
        "| " + " | ".join(heading) + " |",
        "|" + "---|" * len(heading),
    ]
    lines += ["| " + " | ".join([str(r["day"] + 1), *cells(r)]) + " |" for r in result["days"]]
    lines.append("| all | " + " | ".join(cells(result["summary"])) + " |")
    follow = result["summary"].get("days_to_follow")
    lines.append(
        f"drifted readers: {result['summary']['drifted_readers']}; their feeds follow them "
        + (f"by day {follow}" if follow else "not within these days")
        + " (95% of the other readers' share of the oracle's expected clicks)"
    )
    return "\n".join(lines)
