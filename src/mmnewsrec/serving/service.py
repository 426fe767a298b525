"""The live recommender service, framework-free: the HTTP API, the CLI's replay and tests all call it.

A loaded run (:class:`Predictor`) encodes news once; their vectors go to the news catalogue
(:class:`~mmnewsrec.serving.catalogue.NewsCatalogue`, with the candidate index). News posted to the
service are written to the state store's news log first and then applied from it, so every replica
serves the same news and a restart restores them; encoding runs outside the service's lock, so
requests keep being answered while a batch of news is encoded. Users live in the same state store
(:mod:`mmnewsrec.serving.state`), shared by every replica. A click is written to the store first
(acknowledged only once committed), then the user's vector is recomputed from cached news vectors
at once: the next recommendation, from any replica, reads the grown history. Popularity and
recency counters (what a ``popularity`` scorer reads) follow the store's event log, so every
replica counts the same clicks.

Recommendation = retrieval + re-ranking: the index's exact inner-product top ``pool`` for the
user's vector, joined by the news most clicked in the last day when the scorer reads log counters,
re-scored with the model's own ``score`` (the same function training and evaluation use).
"""

from __future__ import annotations

import logging
import os
import threading
import time as clock
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from mmnewsrec.config.pipeline import PipelineConfig
from mmnewsrec.data.popularity import LiveCounters
from mmnewsrec.serving.catalogue import NewsEvent, NotFound, meta_of
from mmnewsrec.serving.index import NewsIndex
from mmnewsrec.serving.pipeline import TOP_K, Pipeline, category_codes
from mmnewsrec.serving.popular import PopularOrder
from mmnewsrec.serving.predictor import Predictor, torch_threads
from mmnewsrec.serving.records import NewsRecord, RequestError
from mmnewsrec.serving.requests import (
    COLD_START,
    Conflict,
    Plan,
    Recommendation,
    RecommendRequest,
    Route,
    check_user,
)
from mmnewsrec.serving.state import Event, IdempotencyConflict, StateStore
from mmnewsrec.serving.users import UserVectorCache

logger = logging.getLogger(__name__)

__all__ = ["COLD_START", "Conflict", "NotFound", "Recommendation", "RecommendRequest", "RecommenderService"]


class RecommenderService:
    """Serves a trained run: fresh news in, clicks in, recommendations out (see the module docstring).

    Args:
        predictor: the loaded run.
        store: where user state lives (shared by replicas).
        pool: news retrieved by inner product before the model re-scores them.
        cold_start: ``model`` or ``popularity`` (see :data:`COLD_START`).
        sync_seconds: how stale this replica's popularity counters may be before a read refreshes them
            from the store's event log (its own writes refresh them at once).
        now: the clock (Unix seconds), replaceable for replays and tests.
    """

    def __init__(
        self,
        predictor: Predictor,
        store: StateStore,
        pool: int = 200,
        cold_start: str = "popularity",
        sync_seconds: float = 1.0,
        user_cache_size: int = 100_000,
        now: Callable[[], float] = clock.time,
        encode_threads: int | None = None,
        pipelines: Sequence[PipelineConfig] = (),
    ):
        if cold_start not in COLD_START:
            raise ValueError(f"cold_start must be one of {COLD_START}, got {cold_start!r}")
        self.predictor = predictor
        self.store = store
        self.pool = pool
        self.cold_start = cold_start
        self.sync_seconds = sync_seconds
        self.now = now
        self.encode_threads = encode_threads or os.cpu_count() or 1
        self.history_len = predictor.history_len
        self.catalogue = predictor.catalogue  # every news ever added (retired ones too), with the index
        capabilities = predictor.model.scorer.capabilities
        self.uses_stats = capabilities.reads_log_counters
        # Scorers of the form q(user) . c + o: the index's inner-product search is exact for them.
        self.exact_search = capabilities.inner_product
        self.counters = LiveCounters(predictor.trained.log_counters() if self.uses_stats else None)
        self._cursor = ""
        self._synced = 0.0
        self._lock = threading.RLock()
        self._ingest = threading.Lock()  # one batch of news encoded at a time, beside the requests
        self._users = UserVectorCache(user_cache_size)
        self.popular = PopularOrder(self.counters, self.catalogue.index, self.sync_seconds)
        # The feed pipelines requests choose from; the first is the default (none: the model's top k).
        names = [config.name for config in pipelines]
        if len(set(names)) < len(names):
            raise ValueError(f"pipeline names must be distinct, got {names}")
        self.pipelines = {TOP_K.name: Pipeline(TOP_K), **{config.name: Pipeline(config) for config in pipelines}}
        self.default_pipeline = names[0] if names else TOP_K.name
        # Clicks are counted now; the news log is applied at the first request or sync_news(), so
        # that news preloaded from files come first and the logged posts and retirements override them.
        self._sync_counters(force=True)

    @property
    def index(self) -> NewsIndex:
        """The candidates: news added and not retired."""
        return self.catalogue.index

    # ----------------------------------------------------------------------------------- news
    def add_news(
        self,
        records: Iterable[NewsRecord | Mapping[str, object]],
        time: int | None = None,
        progress: bool = False,
        durable: bool = True,
        cache: bool = False,
    ) -> list[str]:
        """Encodes fresh news (batched, with the run's own encoder) and makes them candidates.

        With ``durable`` (the API's way) the news are written to the state store's news log, with
        their vectors, before they are applied: when this returns, every replica serves them and a
        restart restores them. Without it (news preloaded from files at start-up) they are this
        process's alone. Encoding holds no lock that requests wait on. A known id is re-encoded and
        replaced. Returns the ids in order.

        Raises:
            RequestError: a malformed record, a duplicate id, a missing image file.
        """
        checked = [NewsRecord.of(record, i) for i, record in enumerate(records)]
        published = int(self.now()) if time is None else int(time)
        metas = [meta_of(r, published) for r in checked]
        ids = [r.news_id for r in checked]
        # A batch is worth every core, unlike a request (requests still get their turns: see MemoryStore).
        with self._ingest, torch_threads(self.encode_threads):
            vectors = self.predictor.encode(checked, progress=progress, cache=cache).numpy()  # (N, D)
        if durable:
            model = self.predictor.identity
            self.store.record_news(
                [
                    NewsEvent("add", i, published, m, v, model).encode()
                    for i, m, v in zip(ids, metas, vectors, strict=True)
                ]
            )
            self.sync_news()
        else:
            with self._lock:
                self.catalogue.add(ids, vectors, metas)
                self._users.clear()  # a replaced news vector changes the users who clicked it
        return ids

    def retire_news(self, news_ids: Sequence[str]) -> int:
        """Stops recommending these news on every replica (they stay readable in histories).
        Returns how many were candidates."""
        self.sync_news()
        present = [news_id for news_id in dict.fromkeys(news_ids) if news_id in self.index]
        if present:
            at = int(self.now())
            self.store.record_news([NewsEvent("retire", news_id, at).encode() for news_id in present])
            self.sync_news()
        return len(present)

    def retire_older_than(self, hours: float, now: int | None = None) -> int:
        """Stops recommending news published more than ``hours`` before ``now``."""
        now = int(self.now()) if now is None else now
        self.sync_news()
        return self.retire_news(self.catalogue.older_than(now - int(hours * 3600)))

    def sync_news(self, wait: bool = True) -> None:
        """Applies the news log's events this replica has not applied yet (every replica's posts).
        Never call it while holding ``self._lock`` (the thread applying the log takes it per chunk).

        ``wait=False``: return at once when another thread of this replica is applying the log.
        """
        changed = self.catalogue.follow(
            self.store, self.predictor.identity, self._encode_logged, guard=lambda: self._lock, wait=wait
        )
        if changed:
            self._users.clear()  # a replaced news vector changes the users who clicked it

    def _encode_logged(self, records: list[NewsRecord]) -> np.ndarray:
        with torch_threads(self.encode_threads):
            return self.predictor.encode(records).numpy()

    def _require_news(self, news_ids: Iterable[str]) -> None:
        self.catalogue.require(list(news_ids))

    # ----------------------------------------------------------------------------------- events
    def click(self, user_id: str, news_id: str, time: int | None = None, event_id: str | None = None) -> bool:
        """Records a click and refreshes the user's vector; False when ``event_id`` was already recorded.

        Raises:
            Conflict: the user already used ``event_id`` for a click on another news.
        """
        return self.impression(user_id, [news_id], [news_id], time, event_id, kind="click") > 0

    def impression(
        self,
        user_id: str,
        shown: Sequence[str],
        clicked: Sequence[str],
        time: int | None = None,
        event_id: str | None = None,
        kind: str = "impression",
    ) -> int:
        """Records one impression: every shown news is a display, the clicked ones (a subset) clicks.

        Returns how many events were new (0 when ``event_id`` was already recorded). Event ids are
        the user's own, and clicks and impressions have separate ones (``kind``).

        Raises:
            Conflict: the user already used ``event_id`` for another impression.
        """
        check_user(user_id)
        shown = list(dict.fromkeys(shown))
        missing = set(clicked) - set(shown)
        if missing:
            raise RequestError(f"clicked news {sorted(missing)[0]!r} is not among the shown news")
        if not shown:
            raise RequestError("an impression needs at least one shown news")
        self.sync_news()
        self._require_news(shown)
        at = int(self.now()) if time is None else int(time)
        picked = set(clicked)
        # Stored ids: "ID:0" for a click, "ID:i0", "ID:i1", ... for an impression's news.
        tag = "" if kind == "click" else "i"
        events = [
            Event(user_id, news_id, at, news_id in picked, f"{event_id}:{tag}{i}" if event_id else None)
            for i, news_id in enumerate(shown)
        ]
        try:
            new = self.store.record(events)
        except IdempotencyConflict as exc:
            raise Conflict(f"{kind}_id {event_id!r} was already used by this user for another {kind}") from exc
        self.sync_news()  # never under self._lock: a thread applying the log takes it
        with self._lock:
            self._sync_counters(force=True)
            if picked and new:
                self._user_vector(user_id)  # refreshed now, not at the next request
        return new

    def sync(self, force: bool = False) -> None:
        """Applies the news log (always), and counts the store's click events this replica has not
        counted yet (every replica's; at most every ``sync_seconds`` unless ``force``)."""
        self.sync_news()
        self._sync_counters(force)

    def _sync_counters(self, force: bool) -> None:
        if not force and clock.monotonic() - self._synced < self.sync_seconds:
            return
        with self._lock:
            while True:
                events, self._cursor = self.store.events_since(self._cursor)
                for event in events:
                    self.counters.observe(event.news_id, event.time, event.clicked)
                if not events:
                    break
                self.popular.counted()
            self._synced = clock.monotonic()

    # ----------------------------------------------------------------------------------- users
    def history(self, user_id: str) -> list[tuple[str, int]]:
        """The user's clicks (news_id, time), oldest first, as many as the model reads."""
        check_user(user_id)
        return self.store.history(user_id, self.history_len)

    def _user_vector(self, user_id: str) -> tuple[torch.Tensor, list[str]]:
        history = tuple(self.store.history(user_id, self.history_len))
        vector = self._users.get(user_id, history)
        if vector is None:
            clicked = [news_id for news_id, _ in history if self.predictor.knows(news_id)]
            vector = self.predictor.encode_user(clicked)
            self._users.put(user_id, history, vector)
        return vector, [news_id for news_id, _ in history]

    def explain(self, user_id: str, news_id: str, top: int = 5) -> list[dict[str, object]]:
        """The clicked news that weigh most in the user's vector, with their similarity to ``news_id``."""
        check_user(user_id)
        self.sync_news()
        self._require_news([news_id])
        history = [n for n, _ in self.store.history(user_id, self.history_len) if self.predictor.knows(n)]
        with self._lock:
            rows = self.predictor.explain(history, news_id)[:top]
        return [
            {"news_id": n, "title": self._title(n), "weight": weight, "similarity": similarity}
            for n, weight, similarity in rows
        ]

    def _title(self, news_id: str) -> str:
        meta = self.catalogue.get(news_id)
        return meta.title if meta else ""

    def stats(self) -> dict[str, int]:
        """What this replica holds: candidates, news known (retired included), cached user vectors,
        clicks counted from the store's log."""
        return {
            "candidates": len(self.index),
            "news": len(self.catalogue),
            "cached_users": len(self._users),
            "clicks_counted": int(sum(self.counters.clicks.values())),
        }

    # ----------------------------------------------------------------------------------- ranking
    def _scores(self, user: torch.Tensor, news_ids: list[str], now: int) -> np.ndarray:
        stats = None
        if self.uses_stats:
            stats = torch.from_numpy(self.counters.stats(news_ids, now))[None]  # (1, C, F)
        return self.predictor.score(user, news_ids, stats)

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        exclude_seen: bool = True,
        categories: Sequence[str] | None = None,
        max_age_hours: float | None = None,
        time: int | None = None,
        pipeline: str | None = None,
    ) -> list[Recommendation]:
        """The user's top-k candidates, best first (fewer when the index holds fewer), as the feed
        pipeline ``pipeline`` makes the list (default: the service's default pipeline)."""
        request = RecommendRequest(user_id, k, exclude_seen, categories, max_age_hours, time, pipeline)
        result = self.recommend_many([request])[0]
        if isinstance(result, RequestError):
            raise result
        return result

    def recommend_many(self, requests: Sequence[RecommendRequest]) -> list[list[Recommendation] | RequestError]:
        """:meth:`recommend` for several requests at once (the API batches concurrent requests):
        their index searches share one pass over the news vectors. A request that cannot be
        answered gets its :class:`RequestError` in its place; the others are served.

        Each request is planned (:class:`Plan`: the user's vector and history, what is excluded and
        allowed, its route), then served by its route: ``search`` (the index's exact inner-product
        search is the model's own ranking), ``rerank`` (retrieve a pool, join popular news, score
        with the model) or ``popular`` (a cold user: the most clicked fresh news).
        """
        self.sync()
        with self._lock:
            plans: list[Plan | RequestError] = []
            for request in requests:
                try:
                    plans.append(self._plan(request))
                except RequestError as exc:
                    plans.append(exc)
            searched = self._search([plan for plan in plans if isinstance(plan, Plan) and plan.route == "search"])
            out: list[list[Recommendation] | RequestError] = []
            for plan in plans:
                if isinstance(plan, RequestError):
                    out.append(plan)
                elif plan.route == "search":
                    out.append(searched[id(plan)])
                else:
                    out.append(self._rerank(plan))
            return out

    def _search(self, plans: list[Plan]) -> dict[int, list[Recommendation]]:
        """The ``search`` route for several plans: one index pass, the scorer's own query and offset."""
        if not plans:
            return {}
        query, offset = self.predictor.model.scorer.as_inner_product(torch.stack([plan.user for plan in plans]))
        found = self.index.search_many(
            query.detach().numpy(),
            [plan.request.k for plan in plans],
            [tuple(plan.exclude) for plan in plans],
            [plan.allowed for plan in plans],
        )
        return {
            id(plan): [self._recommendation(news_id, score + offset, plan.pipeline) for news_id, score in hits]
            for plan, hits in zip(plans, found, strict=True)
        }

    def _plan(self, request: RecommendRequest) -> Plan:
        check_user(request.user_id)
        if request.k < 1:
            raise RequestError(f"k must be >= 1, got {request.k}")
        name = request.pipeline or self.default_pipeline
        if name not in self.pipelines:
            raise RequestError(f"pipeline: {name!r} is not served here; the pipelines are {sorted(self.pipelines)}")
        config = self.pipelines[name].config
        now = int(self.now()) if request.time is None else int(request.time)
        user, history = self._user_vector(request.user_id)
        exclude = frozenset(history) if request.exclude_seen else frozenset()
        ages = [a for a in (request.max_age_hours, config.max_age_hours) if a is not None]
        allowed = self._allowed(request.categories, min(ages) if ages else None, now)
        route: Route = (
            "popular"
            if self._by_popularity(history)
            else "staged"
            if config.diversifier or config.sampler
            else "search"
            if self.exact_search
            else "rerank"
        )
        return Plan(request, now, user, history, exclude, allowed, route, name)

    def _rerank(self, plan: Plan) -> list[Recommendation]:
        """The ``rerank``, ``popular`` and ``staged`` routes: a pool of candidates, scored, the top k
        kept (``staged``: the list the pipeline's stages make of the pool)."""
        k, exclude, allowed = plan.request.k, set(plan.exclude), plan.allowed
        cold = plan.route == "popular"
        size = self.pipelines[plan.pipeline].config.pool if plan.route == "staged" else self.pool
        if cold:
            pool = self.popular.top(self.catalogue.version, exclude, allowed, max(k, size))
        else:
            query = self.predictor.retrieval_query(plan.user)
            pool = [i for i, _ in self.index.search(query, max(k, size), tuple(exclude), allowed)]
            pool = list(dict.fromkeys(pool + self.popular.top(self.catalogue.version, exclude, allowed, size // 4)))
        if not pool:
            return []
        scores = self.popular.scores(pool) if cold else self._scores(plan.user, pool, plan.now)
        if plan.route == "staged":
            order = self._stages(plan, pool, scores)
        else:
            order = np.argsort(-scores, kind="stable")[:k]
        return [self._recommendation(pool[i], float(scores[i]), plan.pipeline) for i in order]

    def _stages(self, plan: Plan, pool: list[str], scores: np.ndarray) -> np.ndarray:
        """The pipeline's stages over the scored pool: positions of the list, best first."""
        pipeline = self.pipelines[plan.pipeline]

        def vectors() -> np.ndarray:
            return self.predictor.news_vectors(pool).numpy()  # (P, D)

        def categories() -> tuple[np.ndarray, np.ndarray]:
            history = [meta.category for meta in map(self.catalogue.get, plan.history) if meta is not None]
            return category_codes([self.index.meta(n).category for n in pool], history)

        def counts() -> tuple[np.ndarray, np.ndarray]:
            shown = np.array([self.counters.displays.get(n, 0) for n in pool], dtype=np.float64)
            clicked = np.array([self.counters.clicks.get(n, 0) for n in pool], dtype=np.float64)
            return shown, clicked

        return pipeline.order(scores, plan.request.k, vectors, categories, counts)

    def _recommendation(self, news_id: str, score: float, pipeline: str) -> Recommendation:
        meta = self.index.meta(news_id)
        abstract = meta.abstract if len(meta.abstract) <= 240 else meta.abstract[:239] + "…"
        return Recommendation(
            news_id, score, meta.category, meta.subcategory, meta.title, abstract, meta.image is not None, pipeline
        )

    def _by_popularity(self, history: list[str]) -> bool:
        """Whether a user is served by popularity: no clicks of theirs, the policy says so, and the
        counters know of clicks at all (a service that has seen none falls back to the model)."""
        return not history and self.cold_start == "popularity" and bool(self.counters.clicks)

    def _allowed(self, categories: Sequence[str] | None, max_age_hours: float | None, now: int) -> np.ndarray | None:
        if not categories and max_age_hours is None:
            return None
        wanted = set(categories or ())
        after = now - max_age_hours * 3600 if max_age_hours is not None else None
        if not wanted:  # an age filter alone: one comparison over the index's publication times
            return self.index.published_mask(after)
        return self.index.mask(lambda meta: meta.category in wanted and (after is None or meta.published >= after))

    def scores(self, history: Sequence[str], candidates: Sequence[str], time: int | None = None) -> np.ndarray:
        """Stateless: the model's logits of the candidates (in their order) for a click history.

        Shape:
            history (H,) ids oldest first, candidates (C,) distinct ids -> (C,) float64.
        """
        if not candidates:
            raise RequestError("rank needs at least one candidate")
        if len(set(candidates)) != len(candidates):
            raise RequestError("candidates must be distinct news ids")
        self.sync()
        self._require_news(list(history) + list(candidates))
        now = int(self.now()) if time is None else int(time)
        with self._lock:
            user = self.predictor.encode_user(list(history))
            return self._scores(user, list(candidates), now)

    def rank(
        self, history: Sequence[str], candidates: Sequence[str], time: int | None = None
    ) -> list[tuple[str, float]]:
        """Stateless: the candidates ordered by the model's score for a click history (oldest first)."""
        scores = self.scores(history, candidates, time)
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i], float(scores[i])) for i in order]

    def popularity_scores(self, candidates: Sequence[str], time: int | None = None) -> np.ndarray:
        """What a cold user is ranked by under ``cold_start="popularity"``. Shape: (C,) ids -> (C,)."""
        self.sync()
        with self._lock:
            self.counters.stats([], int(self.now()) if time is None else int(time))  # moves the recent window
            return self.popular.scores(list(candidates))
