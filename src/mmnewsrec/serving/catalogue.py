"""The live news catalogue: every news the service was given, its vector and metadata, and which
are candidates; durable in the state store and followed by every worker.

One :class:`NewsCatalogue` is shared by the predictor (user vectors read clicked news' vectors from
it), the candidate index (:class:`~mmnewsrec.serving.index.NewsIndex`, its active part) and the
service (titles of histories, filters). Retired news leave the index but keep their vector and
metadata: they stay readable in histories.

News posted to the service are events in the state store's news log, beside clicks
(:class:`NewsEvent`: an article added with its vector, or retired). Each worker applies the log in
order (:meth:`NewsCatalogue.follow`), so a news posted to one worker is served by all, and a
restarted service gets back every acknowledged article and retirement without encoding again.
News preloaded from files (``serve --news``) are not logged: each start reads them again (their
features are cached in the run's feature store), then follows the log.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass

import numpy as np

from mmnewsrec.serving.index import NewsIndex, NewsMeta
from mmnewsrec.serving.records import NewsRecord, RequestError
from mmnewsrec.serving.state import StateStore

logger = logging.getLogger(__name__)


class NotFound(RequestError):
    """A request names a news id the service does not hold."""


@dataclass(frozen=True)
class NewsEvent:
    """One change to the catalogue, as the state store logs it.

    ``kind`` is ``add`` (``meta`` and ``vector`` set; ``model`` names the run that encoded it, so a
    service of another run re-encodes instead of trusting the vector) or ``retire``.
    """

    kind: str
    news_id: str
    time: int
    meta: NewsMeta | None = None
    vector: np.ndarray | None = None  # (D,) float32
    model: str = ""

    def encode(self) -> tuple[str, str, int, str, bytes, str]:
        """The stored fields: kind, news id, time, metadata JSON, vector bytes, model."""
        meta = json.dumps(asdict(self.meta), ensure_ascii=False) if self.meta is not None else ""
        vector = np.asarray(self.vector, dtype="<f4").tobytes() if self.vector is not None else b""
        return self.kind, self.news_id, int(self.time), meta, vector, self.model

    @classmethod
    def decode(cls, kind: str, news_id: str, time: int, meta: str, vector: bytes, model: str) -> NewsEvent:
        parsed = None
        if meta:  # entities: a list in JSON; absent from events logged before they were kept
            values = json.loads(meta)
            parsed = NewsMeta(**{**values, "entities": tuple(values.get("entities", ()))})
        values = np.frombuffer(vector, dtype="<f4").astype(np.float32) if vector else None
        return cls(kind, news_id, int(time), parsed, values, model)


def meta_of(record: NewsRecord, published: int) -> NewsMeta:
    return NewsMeta(
        record.category, record.subcategory, record.title, record.abstract, record.image, published, record.entities
    )


def record_of(news_id: str, meta: NewsMeta) -> NewsRecord:
    return NewsRecord(news_id, meta.category, meta.subcategory, meta.title, meta.abstract, meta.image, meta.entities)


class NewsCatalogue(Mapping[str, NewsMeta]):
    """Every news ever added (id -> metadata, retired ones included), their vectors, and the index of
    candidates. Thread-safe. As a mapping it reads metadata by id.

    Args:
        dim: the news vectors' size.
    """

    def __init__(self, dim: int):
        self.dim = dim
        self.index = NewsIndex(dim)
        self._rows: dict[str, int] = {}
        self._meta: list[NewsMeta] = []
        self._categories: set[str] = set()  # of every news ever added
        self._vectors = np.zeros((1024, dim), dtype=np.float32)
        self._lock = threading.RLock()
        self._cursor = ""
        self._follow = threading.Lock()  # one thread reads the log at a time
        self.version = 0  # bumped by every change (what caches of derived orders compare)

    # ------------------------------------------------------------------------------ reading
    def __getitem__(self, news_id: str) -> NewsMeta:
        with self._lock:
            return self._meta[self._rows[news_id]]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._rows))

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, news_id: object) -> bool:
        return news_id in self._rows

    def categories(self) -> frozenset[str]:
        """The categories of every news ever added (what a category filter may name): a copy, read
        under the lock, since the ingestion thread adds to them."""
        with self._lock:
            return frozenset(self._categories)

    def knows(self, news_id: str) -> bool:
        """Whether the news was ever added (a retired news is still known: histories read it)."""
        return news_id in self._rows

    def vectors(self, news_ids: Sequence[str], hint: str = "add it with POST /news first") -> np.ndarray:
        """Shape: (N,) ids -> (N, D) float32 (a copy). Raises :class:`NotFound` naming the first unknown id."""
        with self._lock:
            try:
                rows = [self._rows[i] for i in news_ids]
            except KeyError as exc:
                raise NotFound(f"news id {exc.args[0]!r} is unknown: {hint}") from None
            return self._vectors[rows]

    def require(self, news_ids: Sequence[str]) -> None:
        for news_id in news_ids:
            if news_id not in self._rows:
                raise NotFound(f"news id {news_id!r} is unknown: add it with POST /news first")

    # ------------------------------------------------------------------------------ changing
    def add(self, news_ids: Sequence[str], vectors: np.ndarray, metas: Sequence[NewsMeta]) -> None:
        """Adds or replaces news and makes them candidates. Shape: (N,) ids, (N, D) vectors, (N,) metadata."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(news_ids), self.dim):
            raise ValueError(f"vectors of shape {vectors.shape}, expected ({len(news_ids)}, {self.dim})")
        with self._lock:
            fresh = [i for i in dict.fromkeys(news_ids) if i not in self._rows]
            need = len(self._rows) + len(fresh)
            if need > len(self._vectors):
                grown = np.zeros((max(need, 2 * len(self._vectors)), self.dim), dtype=np.float32)
                grown[: len(self._rows)] = self._vectors[: len(self._rows)]
                self._vectors = grown
            for news_id in fresh:
                self._rows[news_id] = len(self._meta)
                self._meta.append(NewsMeta())
            for i, news_id in enumerate(news_ids):
                row = self._rows[news_id]
                self._vectors[row] = vectors[i]
                self._meta[row] = metas[i]
            self._categories.update(meta.category for meta in metas)
            self.index.add(news_ids, vectors, metas)
            self.version += 1

    def retire(self, news_ids: Sequence[str]) -> int:
        """Stops recommending these news (they stay readable in histories); returns how many were candidates."""
        with self._lock:
            removed = self.index.retire(news_ids)
            self.version += 1
            return removed

    def older_than(self, time: int) -> list[str]:
        """The candidates published before ``time`` (Unix seconds)."""
        _, ids, metas, _ = self.index.snapshot()
        return [news_id for news_id, meta in zip(ids, metas, strict=True) if meta.published < time]

    # ------------------------------------------------------------------------------ the log
    def follow(
        self,
        store: StateStore,
        model: str,
        encode: Callable[[list[NewsRecord]], np.ndarray],
        guard: Callable[[], AbstractContextManager] = nullcontext,
        wait: bool = True,
        chunk: int = 500,
    ) -> list[str]:
        """Applies the news log's events after this catalogue's cursor, in order; returns the ids
        whose vectors were added or replaced (cached user vectors that read them are stale).

        Events are read and decoded outside ``guard`` (the service's lock) and applied under it
        ``chunk`` at a time, so requests wait at most for one chunk's index update, not for a whole
        batch of thousands of news.

        Args:
            store: the state store whose news log is followed.
            model: this service's run identity; an event encoded by another run is encoded again.
            encode: records -> (N, D) vectors, for those events.
            guard: held while each chunk is applied.
            wait: when another thread is following already, wait for it (else return at once: it
                applies what this call would have).
        """
        if not self._follow.acquire(blocking=wait):
            return []
        try:
            changed: list[str] = []
            while True:
                rows, cursor = store.news_since(self._cursor, limit=chunk)
                if not rows:
                    return changed
                steps = self._prepare([NewsEvent.decode(*row) for row in rows], model, encode)
                with guard():
                    for kind, ids, vectors, metas in steps:
                        if kind == "add":
                            self.add(ids, vectors, metas)
                            changed.extend(ids)
                        else:
                            self.retire(ids)
                self._cursor = cursor
        finally:
            self._follow.release()

    def _prepare(self, events: list[NewsEvent], model: str, encode) -> list[tuple]:
        """Runs of consecutive events of one kind, as (kind, ids, vectors, metadata) to apply."""
        steps: list[tuple] = []
        start = 0
        while start < len(events):
            end = start
            while end < len(events) and events[end].kind == events[start].kind:
                end += 1
            run = events[start:end]
            if run[0].kind == "add":
                latest = {event.news_id: event for event in run}  # a news added twice: the later wins
                ids = list(latest)
                vectors = np.zeros((len(ids), self.dim), dtype=np.float32)
                stale = [i for i, news_id in enumerate(ids) if not self._usable(latest[news_id], model)]
                for i, news_id in enumerate(ids):
                    if i not in stale:
                        vectors[i] = latest[news_id].vector
                if stale:
                    logger.info("news log: encoding %d news written by another run", len(stale))
                    vectors[stale] = encode([record_of(ids[i], latest[ids[i]].meta) for i in stale])
                steps.append(("add", ids, vectors, [latest[news_id].meta for news_id in ids]))
            elif run[0].kind == "retire":
                steps.append(("retire", [event.news_id for event in run], None, None))
            else:
                logger.warning("news log: skipping %d events of unknown kind %r", len(run), run[0].kind)
            start = end
        return steps

    def _usable(self, event: NewsEvent, model: str) -> bool:
        return event.model == model and event.vector is not None and event.vector.shape == (self.dim,)
