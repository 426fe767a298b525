"""What the feature store holds and hands out: specs, array specs, builders, and the arrays of a
feature set (memory-mapped segments read as one array)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa

from mmnewsrec.errors import MmnewsrecError

#: Bumped whenever the on-disk layout or the meaning of an array changes: old caches become misses.
SCHEMA_VERSION = 1


class FeatureStoreError(MmnewsrecError):
    """A cache that cannot be read or built."""


def digest(*parts: str | bytes, length: int = 16) -> str:
    """Hex SHA-256 of the parts (joined unambiguously), truncated to ``length`` characters."""
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()[:length]


@dataclass(frozen=True)
class CacheSpec:
    """What a cache holds, apart from which news: ``kind`` plus every parameter that changes content."""

    kind: str
    params: Mapping[str, Any]

    def key(self) -> str:
        payload = json.dumps(
            {"kind": self.kind, "schema_version": SCHEMA_VERSION, "params": self.params}, sort_keys=True, default=str
        )
        return digest(payload)

    @property
    def dirname(self) -> str:
        return f"{self.kind}-{self.key()}"


@dataclass(frozen=True)
class ArraySpec:
    """Per-row shape and dtype of one stored array."""

    row_shape: tuple[int, ...]
    dtype: str


def row_batches(order: int | np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive batches of ``batch_size`` rows: of ``range(order)`` for a row count, else of
    the given row order (the builders' :meth:`Builder.batches`)."""
    rows = np.arange(order) if isinstance(order, (int, np.integer)) else np.asarray(order)
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]


class Builder(Protocol):
    """Computes one kind of feature for a table of news (rows in the table's order)."""

    def spec(self) -> CacheSpec: ...

    def row_hashes(self, news: pa.Table) -> list[str]:
        """One digest per news row of everything this feature reads for that news."""
        ...

    def arrays(self) -> dict[str, ArraySpec]: ...

    def batches(self, news: pa.Table) -> list[np.ndarray]:
        """Deterministic row-index batches covering every row once (the order of computation)."""
        ...

    def compute(self, news: pa.Table, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Values of every array for ``rows`` of ``news``, each of shape (len(rows), *row_shape)."""
        ...


class FeatureArray:
    """One feature array for a requested list of news, gathered from one or more segments.

    Indexing with row positions of the request returns a NumPy array; with a single segment in the
    request's order it is a plain memory map (no copy until rows are taken).

    Shape:
        (N, *row_shape) where N is the number of requested news.
    """

    def __init__(self, parts: Sequence[np.ndarray], segment_of: np.ndarray, row_in: np.ndarray):
        self._parts = list(parts)
        self._segment_of = segment_of
        self._row_in = row_in
        self.shape = (len(row_in), *self._parts[0].shape[1:])
        self.dtype = self._parts[0].dtype
        identity = len(self._parts) == 1 and np.array_equal(row_in, np.arange(len(self._parts[0])))
        self._direct = self._parts[0] if identity else None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        if self._direct is not None:
            return np.asarray(self._direct[rows])
        index = np.arange(self.shape[0])[rows]
        scalar = np.ndim(index) == 0
        index = np.atleast_1d(index)
        out = np.empty((len(index), *self.shape[1:]), dtype=self.dtype)
        segments = self._segment_of[index]
        for s, part in enumerate(self._parts):
            hit = segments == s
            if hit.any():
                out[hit] = part[self._row_in[index[hit]]]
        return out[0] if scalar else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        full = self[:]
        return full.astype(dtype) if dtype is not None else full


@dataclass
class FeatureSet:
    """Every array of one spec for a requested list of news, plus where it came from."""

    spec: CacheSpec
    path: Path
    news_ids: list[str]
    arrays: dict[str, FeatureArray]
    status: Literal["reused", "built", "extended"]
    segments: list[Path] = field(default_factory=list)

    def __getitem__(self, name: str) -> FeatureArray:
        try:
            return self.arrays[name]
        except KeyError:
            raise KeyError(f"{self.spec.kind} cache has no array {name!r}; it has {sorted(self.arrays)}") from None
