"""The candidate index of the live service: news vectors by id, added and retired while serving.

Search is exact inner product over one contiguous float32 matrix (numpy's BLAS matrix-vector
product, then ``torch.topk``). ``benchmarks/serve_latency.py --index`` measures it against faiss'
``IndexIDMap2(IndexFlatIP)`` one query at a time, as requests come: see ``benchmarks/README.md``
for the numbers that chose it (exact numpy was faster at 100k news on this 2-core machine, needs no
extra dependency, and filters and removals are a boolean mask). Retired rows are masked, then
compacted once a quarter of the rows are dead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class NewsMeta:
    """What a recommendation shows next to the id, and what filters read."""

    category: str = ""
    subcategory: str = ""
    title: str = ""
    abstract: str = ""
    image: str | None = None
    published: int = 0  # Unix seconds the service first got the news
    entities: tuple[str, ...] = ()  # the knowledge entities it names (Wikidata ids)


@dataclass
class NewsIndex:
    """News vectors (N, D) float32 with their ids and metadata; thread-safe.

    Row order is insertion order; ``rows_of`` maps ids to rows. Retired news keep their row until
    compaction but are never returned by :meth:`search` or :meth:`active_rows`.
    """

    dim: int
    _vectors: np.ndarray = field(init=False)
    _ids: list[str] = field(default_factory=list, init=False)
    _meta: list[NewsMeta] = field(default_factory=list, init=False)
    _active: np.ndarray = field(init=False)
    _published: np.ndarray = field(init=False)  # (capacity,) each row's publication time, for age filters
    _rows: dict[str, int] = field(default_factory=dict, init=False)
    _size: int = field(default=0, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)

    def __post_init__(self) -> None:
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._active = np.zeros(0, dtype=bool)
        self._published = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        """Active (not retired) news."""
        return len(self._rows)

    def __contains__(self, news_id: object) -> bool:
        return news_id in self._rows

    def add(self, news_ids: Sequence[str], vectors: np.ndarray, metas: Sequence[NewsMeta]) -> None:
        """Adds or replaces news. Shape: (N,) ids, (N, D) vectors, (N,) metadata."""
        if vectors.shape != (len(news_ids), self.dim):
            raise ValueError(f"vectors of shape {vectors.shape}, expected ({len(news_ids)}, {self.dim})")
        with self._lock:
            fresh = [i for i, news_id in enumerate(news_ids) if news_id not in self._rows]
            need = self._size + len(fresh)
            if need > len(self._vectors):
                capacity = max(need, 2 * len(self._vectors), 1024)
                grown = np.zeros((capacity, self.dim), dtype=np.float32)
                grown[: self._size] = self._vectors[: self._size]
                active = np.zeros(capacity, dtype=bool)
                active[: self._size] = self._active[: self._size]
                published = np.zeros(capacity, dtype=np.int64)
                published[: self._size] = self._published[: self._size]
                self._vectors, self._active, self._published = grown, active, published
            for i, news_id in enumerate(news_ids):
                row = self._rows.get(news_id)
                if row is None:
                    row = self._size
                    self._size += 1
                    self._rows[news_id] = row
                    self._ids.append(news_id)
                    self._meta.append(metas[i])
                else:
                    self._meta[row] = metas[i]
                self._vectors[row] = vectors[i]
                self._active[row] = True
                self._published[row] = metas[i].published

    def retire(self, news_ids: Sequence[str]) -> int:
        """Removes news from the candidates; returns how many were present."""
        with self._lock:
            removed = 0
            for news_id in news_ids:
                row = self._rows.pop(news_id, None)
                if row is not None:
                    self._active[row] = False
                    removed += 1
            if self._size and self._size - len(self._rows) > self._size // 4:
                self._compact()
            return removed

    def _compact(self) -> None:
        keep = np.flatnonzero(self._active[: self._size])
        self._vectors = np.ascontiguousarray(self._vectors[keep])
        self._active = np.ones(len(keep), dtype=bool)
        self._published = np.ascontiguousarray(self._published[keep])
        self._ids = [self._ids[row] for row in keep]
        self._meta = [self._meta[row] for row in keep]
        self._rows = {news_id: row for row, news_id in enumerate(self._ids)}
        self._size = len(keep)

    def meta(self, news_id: str) -> NewsMeta:
        with self._lock:
            return self._meta[self._rows[news_id]]

    def snapshot(self) -> tuple[np.ndarray, list[str], list[NewsMeta], np.ndarray]:
        """The active rows: vectors (N, D) (a view: read only), ids, metadata, row numbers (N,)."""
        with self._lock:
            rows = np.flatnonzero(self._active[: self._size])
            if len(rows) == self._size:
                return self._vectors[: self._size], list(self._ids), list(self._meta), rows
            return self._vectors[rows], [self._ids[r] for r in rows], [self._meta[r] for r in rows], rows

    def search(
        self, query: np.ndarray, k: int, exclude: Sequence[str] = (), allowed: np.ndarray | None = None
    ) -> list[tuple[str, float]]:
        """The k active news of largest inner product with ``query`` (D,), best first.

        ``allowed``: an optional (size,) bool mask over rows (filters); ``exclude``: ids left out.
        """
        return self.search_many(query[None], [k], [exclude], [allowed])[0]

    def search_many(
        self,
        queries: np.ndarray,
        ks: Sequence[int],
        excludes: Sequence[Sequence[str]],
        alloweds: Sequence[np.ndarray | None],
    ) -> list[list[tuple[str, float]]]:
        """:meth:`search` for several queries at once: one pass over the vectors serves them all
        (the search is bound by memory bandwidth, so a batch costs little more than one query).

        Shape:
            queries (B, D) -> B lists.
        """
        with self._lock:
            size = self._size
            vectors = self._vectors[:size]
            if len(queries) == 1:
                all_scores = (vectors @ queries[0].astype(np.float32))[None]  # (1, size): BLAS matvec
            else:
                all_scores = queries.astype(np.float32) @ vectors.T  # (B, size): one BLAS matrix product
            results = []
            for scores, k, exclude, allowed in zip(all_scores, ks, excludes, alloweds, strict=True):
                keep = self._active[:size] if allowed is None else self._active[:size] & allowed[:size]
                rows = [self._rows[news_id] for news_id in exclude if news_id in self._rows]
                if rows or allowed is not None or len(self._rows) < size:
                    keep = keep.copy()
                    keep[rows] = False
                    scores = np.where(keep, scores, -np.inf)
                    available = int(keep.sum())
                else:
                    available = size
                if not available:
                    results.append([])
                    continue
                top = torch.topk(torch.from_numpy(np.ascontiguousarray(scores)), min(k, available))  # best first
                found, values = top.indices.tolist(), top.values.tolist()
                results.append([(self._ids[row], score) for row, score in zip(found, values, strict=True)])
            return results

    def published_mask(self, after: float) -> np.ndarray:
        """A (size,) bool mask of the active rows published at or after ``after`` (Unix seconds)."""
        with self._lock:
            return self._active[: self._size] & (self._published[: self._size] >= after)

    def mask(self, keep: Callable[[NewsMeta], bool]) -> np.ndarray:
        """A (size,) bool mask of the active rows whose metadata ``keep`` accepts (a filter for :meth:`search`)."""
        with self._lock:
            out = self._active[: self._size].copy()
            for row in np.flatnonzero(out):
                out[row] = keep(self._meta[row])
            return out
