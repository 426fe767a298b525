"""The HTTP API over :class:`RecommenderService` (FastAPI; OpenAPI at ``/docs``).

Reads (recommendations, rank, health, metrics) are open; writes (news, clicks, impressions) and a
user's click history need ``Authorization: Bearer TOKEN``. Bad input is a 4xx with
``{"error": "..."}`` naming the field; bodies are size-limited before they are parsed. Nothing
here logs request bodies, click histories or tokens.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from mmnewsrec.serving.records import RequestError
from mmnewsrec.serving.service import NotFound, RecommenderService, RecommendRequest

logger = logging.getLogger(__name__)

#: Largest request body accepted (bytes); POST /news of a few thousand articles fits.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Largest k, news per POST /news, candidates per /rank.
MAX_K, MAX_NEWS_PER_REQUEST, MAX_CANDIDATES = 1000, 5000, 1000
#: News waiting to be encoded (queued POST /news batches) before more are refused with 503.
MAX_PENDING_NEWS = 20_000

Id = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^\S+$")]
Text = Annotated[str, Field(max_length=20_000)]
#: An id in a URL path (user or news).
PathId = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^\S+$")]
Time = Annotated[int, Field(ge=0, le=2**40, description="Unix seconds; default: now")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewsIn(Strict):
    news_id: Id
    category: Annotated[str, Field(min_length=1, max_length=256)]
    subcategory: Annotated[str, Field(max_length=256)] = ""
    title: Text = ""
    abstract: Text = ""


class NewsBatch(Strict):
    news: Annotated[list[NewsIn], Field(min_length=1, max_length=MAX_NEWS_PER_REQUEST)]
    time: Time | None = None


class ClickIn(Strict):
    news_id: Id
    time: Time | None = None
    click_id: Id | None = Field(None, description="idempotency key: a click posted twice with one id counts once")


class ImpressionIn(Strict):
    shown: Annotated[list[Id], Field(min_length=1, max_length=MAX_CANDIDATES)]
    clicked: Annotated[list[Id], Field(max_length=MAX_CANDIDATES)] = []
    time: Time | None = None
    impression_id: Id | None = Field(None, description="idempotency key")


class RankIn(Strict):
    history: Annotated[list[Id], Field(max_length=1000)] = []
    candidates: Annotated[list[Id], Field(min_length=1, max_length=MAX_CANDIDATES)]
    time: Time | None = None


class Scored(BaseModel):
    news_id: str
    score: float


class RecommendationOut(Scored):
    category: str
    subcategory: str
    title: str
    abstract: str
    has_image: bool = Field(description="the image is at GET /news/{news_id}/image")


class Recommendations(BaseModel):
    user_id: str
    recommendations: list[RecommendationOut]


class HistoryItem(BaseModel):
    news_id: str
    time: int
    title: str = ""
    category: str = ""


class Explanation(BaseModel):
    news_id: str
    title: str
    weight: float = Field(description="share of the user vector's attention on this clicked news")
    similarity: float = Field(description="cosine similarity of this clicked news to the recommended one")


class Explanations(BaseModel):
    user_id: str
    news_id: str
    history: list[Explanation]


class UserOut(BaseModel):
    user_id: str
    history: list[HistoryItem]


class Ranking(BaseModel):
    ranking: list[Scored]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(service: RecommenderService, token: str | None, max_body: int = MAX_BODY_BYTES) -> FastAPI:
    """The API for a service. ``token=None`` leaves writes open (``serve --demo``, bound to 127.0.0.1).

    Endpoints are ``async`` and call the service on the event loop: the work is CPU-bound and
    short (milliseconds), so one request at a time per process beats a thread pool contending for
    the GIL. ``serve --workers N`` adds processes to use more cores.
    """
    app = FastAPI(
        title="mmnewsrec",
        summary="News recommendations that follow each click",
        version="1",
    )
    registry = CollectorRegistry()
    latency = Histogram(
        "mmnewsrec_request_seconds",
        "request latency by route",
        ["method", "route", "status"],
        registry=registry,
        buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    clicks = Counter("mmnewsrec_clicks", "clicks recorded by this replica", registry=registry)
    Gauge("mmnewsrec_index_news", "news in the candidate index", registry=registry).set_function(
        lambda: len(service.index)
    )
    Gauge("mmnewsrec_cached_users", "user vectors in this replica's cache", registry=registry).set_function(
        lambda: service.stats()["cached_users"]
    )

    app.add_middleware(_LimitAndTime, max_body=max_body, latency=latency)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _describe(exc))

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(Busy)
    async def busy(_: Request, exc: Busy) -> JSONResponse:
        response = _error(503, str(exc))
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(RequestError)
    async def bad_request(_: Request, exc: RequestError) -> JSONResponse:
        return _error(400, str(exc))

    async def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise _Unauthorised()

    @app.exception_handler(_Unauthorised)
    async def unauthorised(_: Request, __: _Unauthorised) -> JSONResponse:
        response = _error(401, "this endpoint needs Authorization: Bearer TOKEN (the service's write token)")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    write = [Depends(authorised)]
    batcher = _Batcher(service)

    web = resources.files("mmnewsrec.serving") / "web"
    web_types = {"index.html": "text/html", "style.css": "text/css", "app.js": "text/javascript"}

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        """The live feed page (plain HTML, CSS and JavaScript shipped in the package)."""
        return Response((web / "index.html").read_bytes(), media_type="text/html; charset=utf-8")

    @app.get("/web/config", include_in_schema=False)
    async def web_config() -> dict[str, Any]:
        # Sampled user ids only in demo mode: elsewhere they are not the page's to show.
        return {"demo": token is None, "users": service.store.recent_users(6) if token is None else []}

    @app.get("/web/{name}", include_in_schema=False)
    async def web_file(name: str) -> Response:
        if name not in web_types:
            raise NotFound(f"no page file {name!r}")
        return Response((web / name).read_bytes(), media_type=f"{web_types[name]}; charset=utf-8")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        service.sync_news()  # the news other replicas posted count here too
        return {
            "status": "ok",
            "news": len(service.index),
            "model": service.predictor.config.name,
            "worker": os.getpid(),  # which replica answered (serve --workers N)
        }

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    ingestion = _Ingestion(service)

    @app.post("/news", dependencies=write, status_code=201)
    async def add_news(body: NewsBatch) -> dict[str, Any]:
        """Answers 201 once the news are durable (in the state store's news log) and served by every
        replica. They are encoded on a worker thread, so other requests keep being answered."""
        ids = await ingestion.submit([item.model_dump() for item in body.news], body.time)
        return {"added": len(ids), "news": len(service.index)}

    @app.delete("/news/{news_id}", dependencies=write)
    async def retire_news(news_id: PathId) -> dict[str, Any]:
        if not service.retire_news([news_id]):
            raise NotFound(f"news id {news_id!r} is not a candidate")
        return {"retired": news_id, "news": len(service.index)}

    @app.post("/users/{user_id}/clicks", dependencies=write, status_code=201)
    async def click(user_id: PathId, body: ClickIn) -> dict[str, Any]:
        new = service.click(user_id, body.news_id, body.time, body.click_id)
        if new:
            clicks.inc()
        return {"user_id": user_id, "recorded": new}

    @app.post("/users/{user_id}/impressions", dependencies=write, status_code=201)
    async def impression(user_id: PathId, body: ImpressionIn) -> dict[str, Any]:
        new = service.impression(user_id, body.shown, body.clicked, body.time, body.impression_id)
        if new:
            clicks.inc(len(set(body.clicked)))
        return {"user_id": user_id, "recorded": new}

    @app.get("/users/{user_id}/recommendations", response_model=Recommendations)
    async def recommendations(
        user_id: PathId,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        exclude_seen: bool = True,
        category: Annotated[list[str] | None, Query(max_length=100)] = None,
        max_age_hours: Annotated[float | None, Query(gt=0, le=24 * 365 * 10)] = None,
    ) -> Response:
        recs = await batcher.submit(RecommendRequest(user_id, k, exclude_seen, category, max_age_hours))
        # Built as JSON directly: the hot path skips a second validation of what the service made.
        return JSONResponse({"user_id": user_id, "recommendations": [vars(r) for r in recs]})

    @app.get("/users/{user_id}", dependencies=write)
    async def user(user_id: PathId) -> UserOut:
        history = []
        for n, t in service.history(user_id):
            meta = service.catalogue.get(n)
            history.append(
                HistoryItem(news_id=n, time=t, title=meta.title if meta else "", category=meta.category if meta else "")
            )
        return UserOut(user_id=user_id, history=history)

    @app.get("/users/{user_id}/explanations", dependencies=write)
    async def explanations(
        user_id: PathId, news_id: Annotated[str, Query(min_length=1, max_length=256)]
    ) -> Explanations:
        """Why ``news_id`` suits the user: their clicks that weigh most in the user vector."""
        rows = service.explain(user_id, news_id)
        return Explanations(user_id=user_id, news_id=news_id, history=[Explanation(**row) for row in rows])

    @app.get("/news/{news_id}/image", include_in_schema=True)
    async def image(news_id: PathId) -> Response:
        meta = service.catalogue.get(news_id)
        if meta is None or meta.image is None:
            raise NotFound(f"news id {news_id!r} has no image")
        return FileResponse(meta.image)

    @app.post("/rank", response_model=Ranking)
    async def rank(body: RankIn) -> Response:
        ranked = service.rank(body.history, body.candidates, body.time)
        return JSONResponse({"ranking": [{"news_id": n, "score": s} for n, s in ranked]})

    return app


class _Unauthorised(Exception):
    pass


class Busy(RequestError):
    """More news are waiting to be encoded than the service queues (HTTP 503)."""


class _Ingestion:
    """``POST /news`` off the event loop: one worker thread encodes the batches in arrival order.

    At most ``max_pending`` news wait or are being encoded; a batch beyond that is refused with 503
    (and ``Retry-After``), so a flood of posts cannot grow memory without bound.
    """

    def __init__(self, service: RecommenderService, max_pending: int = MAX_PENDING_NEWS):
        self.service = service
        self.max_pending = max_pending
        self.pending = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmnewsrec-ingest")

    async def submit(self, records: list[dict[str, Any]], time: int | None) -> list[str]:
        if self.pending and self.pending + len(records) > self.max_pending:
            raise Busy(f"{self.pending} news are being encoded; retry later (at most {self.max_pending} wait)")
        self.pending += len(records)
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, lambda: self.service.add_news(records, time=time))
        finally:
            self.pending -= len(records)


class _Batcher:
    """Recommendation requests that arrive together are served together.

    A request parks in the queue and the first one schedules a drain. The drain lets the event loop
    go round again (reading other connections) for as long as the queue keeps growing, at most
    ``rounds`` times, then serves the whole queue at once: the index searches share one pass over the
    news vectors (bound by memory bandwidth, so a batch of 32 costs little more than one query).
    A request alone waits one round of the loop (microseconds).
    """

    def __init__(self, service: RecommenderService, rounds: int = 4):
        self.service = service
        self.rounds = rounds
        self.queue: list[tuple[RecommendRequest, asyncio.Future]] = []

    async def submit(self, request: RecommendRequest) -> list:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((request, future))
        if len(self.queue) == 1:
            asyncio.get_running_loop().call_soon(self._drain, 1, 1)
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    def _drain(self, seen: int, round_: int) -> None:
        if len(self.queue) > seen and round_ < self.rounds:  # still arriving: one more round
            asyncio.get_running_loop().call_soon(self._drain, len(self.queue), round_ + 1)
            return
        if round_ < 2 and len(self.queue) == seen:  # nothing new yet: give other connections one round
            asyncio.get_running_loop().call_soon(self._drain, seen, round_ + 1)
            return
        batch, self.queue = self.queue, []
        try:
            results = self.service.recommend_many([request for request, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, which re-raises it
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


class _LimitAndTime:
    """ASGI middleware: refuses bodies over ``max_body`` bytes (413) before the app parses them, and
    times every request into the latency histogram by route template (never by raw path)."""

    def __init__(self, app: Any, max_body: int, latency: Histogram):
        self.app, self.max_body, self.latency = app, max_body, latency

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length")
        too_large = _error(413, f"request body over {self.max_body} bytes")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await too_large(scope, receive, send_status)
        elif declared is None and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            # A chunked body: read it whole (up to the limit) before the app sees it.
            body = await self._read_body(receive)
            if body is None:
                await too_large(scope, receive, send_status)
            else:
                await self.app(scope, _replay(body, receive), send_status)
        else:
            await self.app(scope, receive, send_status)
        route = getattr(scope.get("route"), "path", "other")
        self.latency.labels(scope["method"], route, str(status[0])).observe(time.perf_counter() - start)

    async def _read_body(self, receive: Any) -> bytes | None:
        """The whole body, or None when it is over the limit (or the client left)."""
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > self.max_body:
                return None
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    delivered = False

    async def replay() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
