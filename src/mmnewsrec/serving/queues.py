"""Work the HTTP API queues beside its event loop: recommendation requests served together, and
news ingestion on a worker thread."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from mmnewsrec.serving.records import RequestError
from mmnewsrec.serving.schemas import ClientTimes, NewsBatch
from mmnewsrec.serving.service import RecommenderService, RecommendRequest

#: News waiting to be encoded (queued POST /news batches) before more are refused with 503.
MAX_PENDING_NEWS = 20_000


class Busy(RequestError):
    """More news are waiting to be encoded than the service queues (HTTP 503)."""


class Ingestion:
    """``POST /news`` off the event loop: one worker thread encodes the batches in arrival order.

    At most ``max_pending`` news wait or are being encoded; a batch beyond that is refused with 503
    (and ``Retry-After``), so a flood of posts cannot grow memory without bound.
    """

    def __init__(self, service: RecommenderService, times: ClientTimes, max_pending: int = MAX_PENDING_NEWS):
        self.service = service
        self.times = times
        self.max_pending = max_pending
        self.pending = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmnewsrec-ingest")

    async def submit(self, body: bytes) -> list[str]:
        """Parses a ``NewsBatch`` body and adds its news, on the ingestion thread."""
        # The queue is counted in bytes until parsed (about 200 bytes a news), then in news.
        size = max(1, len(body) // 200)
        if self.pending and self.pending + size > self.max_pending:
            raise Busy(f"{self.pending} news are being encoded; retry later (at most {self.max_pending} wait)")
        self.pending += size
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self._add, body)
        finally:
            self.pending -= size

    def _add(self, body: bytes) -> list[str]:
        try:
            batch = NewsBatch.model_validate_json(body or b"null")
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        published = self.times.resolve(batch.time, self.service.now())
        # A batch is taken as if its news were posted one after another: an id twice is one news,
        # its last record (as a second post of a known id replaces it).
        latest = {item.news_id: item.model_dump() for item in batch.news}
        return self.service.add_news(list(latest.values()), time=published)


class Batcher:
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
