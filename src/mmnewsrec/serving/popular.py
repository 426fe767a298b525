"""What a cold user is served: the candidates ordered by clicks in the last day, then all clicks."""

from __future__ import annotations

import time as clock

import numpy as np

from mmnewsrec.data.popularity import LiveCounters
from mmnewsrec.serving.index import NewsIndex


class PopularOrder:
    """The index's candidates ordered by popularity, kept for the service's cold users.

    The order is recomputed when news are added or retired (``news_version`` changes), and when
    clicks were counted (:meth:`counted`) at most every ``refresh_seconds``: an order a second old
    serves a cold user as well. Not thread-safe on its own: the service calls it under its lock.
    """

    def __init__(self, counters: LiveCounters, index: NewsIndex, refresh_seconds: float):
        self.counters, self.index, self.refresh_seconds = counters, index, refresh_seconds
        self._version = 0  # bumped whenever news or counters change
        self._news_version = -1
        self._order: tuple[int, list[str], np.ndarray] | None = None
        self._at, self._news_changed = 0.0, False

    def counted(self) -> None:
        """Clicks were counted: the order may be stale."""
        self._version += 1

    def scores(self, news_ids: list[str]) -> np.ndarray:
        """Shape: (N,) ids -> (N,) float64: recent clicks, with all-time clicks as the tie-break."""
        recent = np.array([self.counters.recent.get(i, 0) for i in news_ids], dtype=np.float64)
        total = np.array([self.counters.clicks.get(i, 0) for i in news_ids], dtype=np.float64)
        return recent + total / (1.0 + total.max(initial=0.0))

    def top(self, news_version: int, exclude: set[str], allowed: np.ndarray | None, n: int) -> list[str]:
        """The ``n`` most popular candidates outside ``exclude`` (and inside the ``allowed`` rows)."""
        if self._news_version != news_version:  # news added or retired
            self._news_version, self._news_changed = news_version, True
            self._version += 1
        stale = self._order is None or (
            self._order[0] != self._version
            and (self._news_changed or clock.monotonic() - self._at >= self.refresh_seconds)
        )
        if stale:
            self._at, self._news_changed = clock.monotonic(), False
            _, ids, _, rows = self.index.snapshot()
            order = np.argsort(-self.scores(ids), kind="stable")
            self._order = (self._version, [ids[i] for i in order], rows[order])
        out = []
        for news_id, row in zip(self._order[1], self._order[2], strict=True):
            if news_id not in exclude and (allowed is None or allowed[row]):
                out.append(news_id)
                if len(out) == n:
                    break
        return out
