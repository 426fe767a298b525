"""The user-vector cache of one worker: each user's last history and the vector computed from it."""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch

History = tuple[tuple[str, int], ...]


class UserVectorCache:
    """Least-recently-used ``user_id -> (history, vector)``; a hit needs the same history.

    A user's vector is a function of their history (the clicked news' vectors, the user encoder):
    an entry is valid while the history it was computed from is the one the store returns, and
    every entry is dropped when a news vector changes (:meth:`clear`).
    """

    def __init__(self, size: int = 100_000):
        self.size = size
        self._entries: OrderedDict[str, tuple[History, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, user_id: str) -> tuple[History, torch.Tensor]:
        return self._entries[user_id]

    def get(self, user_id: str, history: History) -> torch.Tensor | None:
        """The cached vector when it was computed from ``history``, else None."""
        with self._lock:
            entry = self._entries.get(user_id)
            if entry is None or entry[0] != history:
                return None
            self._entries.move_to_end(user_id)
            return entry[1]

    def put(self, user_id: str, history: History, vector: torch.Tensor) -> None:
        with self._lock:
            self._entries[user_id] = (history, vector)
            self._entries.move_to_end(user_id)
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
