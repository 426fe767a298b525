"""Content-keyed, memory-mapped, crash-safe feature caches.

Layout under the store root::

    {kind}-{spec_key}/                 one folder per feature spec (everything that changes content
                                       except which news: model, revision, lengths, image size, ...)
        seg-{segment_key}/             an immutable segment: some news, their rows of every array
            manifest.json              spec, schema version, arrays (dtype, shape), news and row hashes
            {array}.npy                memory-mappable arrays, one row per news of the segment
        seg-{segment_key}.partial/     a segment being built: never read as a cache

A request names a spec and a list of news with a *row hash* each (a digest of the inputs that
feature depends on: the title text, the image file's size and mtime, ...). Rows whose (news id,
row hash) exist in a complete segment are reused; the others are computed into one new segment.
So changing a setting gives a new spec folder, editing a news item recomputes only that row, and
news added later (dev/test candidates, fresh articles) are appended without rebuilding the rest.

A segment is written inside its ``.partial`` folder and renamed into place only after its manifest,
so a crash never leaves a half-written cache that looks valid. The builder's batches are
deterministic; ``progress.json`` in the partial folder records how many are done, and a rerun
continues from there (the arrays are reopened in place, never re-initialised).

Several processes (``accelerate launch --num_processes N -m mmnewsrec featurize ...``) build one
segment together when the store is given their :class:`Shard`: process ``r`` computes batches
``r, r + N, r + 2N, ...`` into the shared partial arrays (disjoint rows, positional writes), and the
first process seals the segment once all are done. The batches are the same as one process's, so
the arrays are too. A segment built this way starts over if interrupted.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pyarrow as pa
from numpy.lib.format import open_memmap
from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_write_text, free_space
from mmnewsrec.features.arrays import (
    SCHEMA_VERSION,
    ArraySpec,
    Builder,
    CacheSpec,
    FeatureArray,
    FeatureSet,
    FeatureStoreError,
    digest,
    row_batches,
)

logger = logging.getLogger(__name__)


MANIFEST = "manifest.json"


PROGRESS = "progress.json"


PARTIAL = ".partial"


@dataclass(frozen=True)
class _Segment:
    path: Path
    news_ids: list[str]
    row_hashes: list[str]
    arrays: dict[str, np.ndarray]


def _write_json_atomic(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True))


class _Planned(NamedTuple):
    """A segment about to be built: its news, their row hashes, its key and its two folders."""

    hashes: list[str]
    ids: list[str]
    segment_key: str
    final: Path
    partial: Path


def _manifest(
    spec: CacheSpec,
    segment_key: str,
    ids: list[str],
    hashes: list[str],
    array_specs: Mapping[str, ArraySpec],
    **extra: Any,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": spec.kind,
        "spec_key": spec.key(),
        "params": spec.params,
        "segment_key": segment_key,
        "rows": len(ids),
        "arrays": {name: {"dtype": a.dtype, "row_shape": list(a.row_shape)} for name, a in array_specs.items()},
        "news_ids": ids,
        "row_hashes": hashes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def _seal(partial: Path, final: Path, manifest: dict[str, Any]) -> None:
    """The manifest last, then the rename: a segment is either complete or not there."""
    _write_json_atomic(partial / MANIFEST, manifest)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)


class _NpyRowWriter:
    """Writes rows of a ``.npy`` file in place with positional writes.

    Rows go straight to the file (no memory map), so building a cache larger than RAM keeps only
    one batch in memory. The file is created at full size up front (sparse where the filesystem
    allows) with a standard header, so it is memory-mappable as soon as it is complete.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: str, create: bool):
        self.dtype = np.dtype(dtype)
        self.shape = shape
        if create:
            open_memmap(path, mode="w+", dtype=self.dtype, shape=shape)  # header + full-size file
        header = np.load(path, mmap_mode="r")  # reads the header; .offset is where row 0 starts
        found_shape, found_dtype, self._offset = header.shape, header.dtype, header.offset
        del header
        if found_shape != shape or found_dtype != self.dtype:
            raise FeatureStoreError(f"{path}: holds {found_dtype}{found_shape}, expected {self.dtype}{shape}")
        self.path = path
        self._fd = os.open(path, os.O_RDWR)
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def write(self, rows: np.ndarray, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype).reshape(len(rows), -1)
        rows = np.asarray(rows, dtype=np.int64)
        # Consecutive rows go out in one write; length-sorted batches fall into several runs.
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for run in np.split(np.arange(len(rows)), breaks):
            if run.size:
                position = self._offset + int(rows[run[0]]) * self._row_bytes
                self._write_all(memoryview(values[run].tobytes()), position)

    def _write_all(self, data: memoryview, position: int) -> None:
        """``pwrite`` until every byte is out: a write may be short (a full disk, a signal)."""
        while data:
            written = os.pwrite(self._fd, data, position)
            if written <= 0:  # no progress: the file system has no room left
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            data, position = data[written:], position + written

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True)
class Shard:
    """This process's part when several processes build features together: its index ``rank`` of
    ``world``, and ``barrier``, which returns once every process has called it."""

    rank: int
    world: int
    barrier: Callable[[], None]


class FeatureStore:
    """Content-keyed feature caches under one root folder (see the module docstring)."""

    def __init__(
        self,
        root: str | Path,
        progress: bool = False,
        checkpoint_seconds: float = 30.0,
        shard: Shard | None = None,
    ):
        self.root = Path(root).expanduser()
        self.progress = progress
        self.checkpoint_seconds = checkpoint_seconds
        self.shard = shard if shard is not None and shard.world > 1 else None

    def spec_dir(self, spec: CacheSpec) -> Path:
        return self.root / spec.dirname

    # ---------------------------------------------------------------------------------- reading
    def _segments(self, spec: CacheSpec) -> list[_Segment]:
        folder = self.spec_dir(spec)
        if not folder.is_dir():
            return []
        segments = []
        for path in sorted(folder.glob("seg-*")):
            if path.name.endswith(PARTIAL) or not (path / MANIFEST).is_file():
                continue
            manifest = json.loads((path / MANIFEST).read_text())
            if manifest.get("schema_version") != SCHEMA_VERSION or manifest.get("spec_key") != spec.key():
                logger.warning("ignoring %s: written for another spec or schema version", path)
                continue
            arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in manifest["arrays"]}
            for name, array in arrays.items():
                if array.shape[0] != manifest["rows"]:
                    raise FeatureStoreError(
                        f"{path / (name + '.npy')}: {array.shape[0]} rows, manifest says {manifest['rows']}"
                    )
            segments.append(_Segment(path, manifest["news_ids"], manifest["row_hashes"], arrays))
        return segments

    def lookup(self, builder: Builder, news: pa.Table) -> FeatureSet | None:
        """The cached features of ``news``, or None if any row is missing or stale."""
        return self._assemble(builder, news, self._segments(builder.spec()), "reused")

    # ---------------------------------------------------------------------------------- building
    def features(self, builder: Builder, news: pa.Table) -> FeatureSet:
        """Features of every row of ``news`` (in its order): reused where cached, computed otherwise."""
        spec = builder.spec()
        segments = self._segments(spec)
        hashes = builder.row_hashes(news)
        ids = news["news_id"].to_pylist()
        cached = {(nid, h) for seg in segments for nid, h in zip(seg.news_ids, seg.row_hashes, strict=True)}
        missing = [i for i, key in enumerate(zip(ids, hashes, strict=True)) if key not in cached]
        status: Literal["reused", "built", "extended"] = "reused"
        if missing:
            status = "extended" if segments else "built"
            subset = news.take(pa.array(missing, pa.int64()))
            segments.append(self._build_segment(builder, subset, [hashes[i] for i in missing]))
        result = self._assemble(builder, news, segments, status, hashes)
        assert result is not None  # every row is now in a segment
        logger.info("%s %s (%d news) in %s", status, spec.kind, len(ids), self.spec_dir(spec))
        return result

    def _assemble(
        self,
        builder: Builder,
        news: pa.Table,
        segments: list[_Segment],
        status: Literal["reused", "built", "extended"],
        hashes: list[str] | None = None,
    ) -> FeatureSet | None:
        spec = builder.spec()
        hashes = hashes if hashes is not None else builder.row_hashes(news)
        ids = news["news_id"].to_pylist()
        where: dict[tuple[str, str], tuple[int, int]] = {}
        for s, seg in enumerate(segments):
            for r, key in enumerate(zip(seg.news_ids, seg.row_hashes, strict=True)):
                where[key] = (s, r)  # a later segment wins (it is newer)
        try:
            located = np.array([where[key] for key in zip(ids, hashes, strict=True)], dtype=np.int64).reshape(-1, 2)
        except KeyError:
            return None
        used = sorted(set(located[:, 0].tolist()))
        remap = {s: k for k, s in enumerate(used)}
        segment_of = np.array([remap[s] for s in located[:, 0]], dtype=np.int64)
        arrays = {
            name: FeatureArray([segments[s].arrays[name] for s in used], segment_of, located[:, 1])
            for name in builder.arrays()
        }
        return FeatureSet(spec, self.spec_dir(spec), ids, arrays, status, [segments[s].path for s in used])

    def _build_segment(self, builder: Builder, news: pa.Table, hashes: list[str]) -> _Segment:
        spec = builder.spec()
        ids = news["news_id"].to_pylist()
        segment_key = digest(spec.key(), *(f"{i}\t{h}" for i, h in zip(ids, hashes, strict=True)))
        folder = self.spec_dir(spec)
        final = folder / f"seg-{segment_key}"
        partial = folder / f"seg-{segment_key}{PARTIAL}"
        folder.mkdir(parents=True, exist_ok=True)
        if self.shard is not None:
            return self._build_sharded(builder, news, _Planned(hashes, ids, segment_key, final, partial))
        with open(folder / f"seg-{segment_key}.lock", "w") as lock:
            # One builder per segment at a time (several training processes may ask at once);
            # whoever waited finds the finished segment and reads it.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (final / MANIFEST).is_file():
                loaded = {name: np.load(final / f"{name}.npy", mmap_mode="r") for name in builder.arrays()}
                return _Segment(final, ids, hashes, loaded)
            return self._build_locked(builder, news, _Planned(hashes, ids, segment_key, final, partial))

    def _build_locked(self, builder: Builder, news: pa.Table, plan: _Planned) -> _Segment:
        hashes, ids, segment_key, final, partial = plan
        spec = builder.spec()
        batches = builder.batches(news)
        array_specs = builder.arrays()
        done = self._resumable_batches(partial, segment_key, len(ids), array_specs)
        if done == 0:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            _write_json_atomic(partial / "spec.json", {"kind": spec.kind, "params": spec.params})
        else:
            logger.info("resuming %s at batch %d of %d", partial, done, len(batches))
        try:
            writers = {
                name: _NpyRowWriter(partial / f"{name}.npy", (len(ids), *a.row_shape), a.dtype, create=done == 0)
                for name, a in array_specs.items()
            }
            self._write_batches(builder, news, batches, done, writers, partial, segment_key)
            (partial / PROGRESS).unlink(missing_ok=True)
            _seal(partial, final, _manifest(spec, segment_key, ids, hashes, array_specs))
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            shutil.rmtree(partial, ignore_errors=True)  # cannot be finished on this disk; it only holds space
            raise FeatureStoreError(
                f"{partial}: the disk is full while building the {spec.kind} features "
                f"({free_space(self.root)[1]}); the unfinished segment was removed. Free some space and run again"
            ) from None
        loaded = {name: np.load(final / f"{name}.npy", mmap_mode="r") for name in array_specs}
        return _Segment(final, ids, hashes, loaded)

    def _write_batches(
        self,
        builder: Builder,
        news: pa.Table,
        batches: list[np.ndarray],
        done: int,
        writers: dict[str, _NpyRowWriter],
        partial: Path,
        segment_key: str,
    ) -> None:
        """Computes batches ``done`` onwards into the partial segment, saving progress now and then."""
        last_save = time.monotonic()
        kind = builder.spec().kind
        try:
            with tqdm(total=news.num_rows, desc=f"featurize {kind}", unit="news", disable=not self.progress) as bar:
                bar.update(sum(len(b) for b in batches[:done]))
                for k in range(done, len(batches)):
                    rows = batches[k]
                    values = builder.compute(news, rows)
                    for name, writer in writers.items():
                        writer.write(rows, values[name])
                    bar.update(len(rows))
                    if time.monotonic() - last_save >= self.checkpoint_seconds or k == len(batches) - 1:
                        self._save_progress(partial, writers, segment_key, k + 1)
                        last_save = time.monotonic()
        finally:
            for writer in writers.values():
                writer.close()

    def _build_sharded(self, builder: Builder, news: pa.Table, plan: _Planned) -> _Segment:
        hashes, ids, segment_key, final, partial = plan
        shard = self.shard
        assert shard is not None
        spec = builder.spec()
        batches = builder.batches(news)  # the same on every process (upstream caches are built together)
        array_specs = builder.arrays()
        sealed = (final / MANIFEST).is_file()
        if shard.rank == 0 and not sealed:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            _write_json_atomic(partial / "spec.json", {"kind": spec.kind, "params": spec.params})
            for name, a in array_specs.items():
                _NpyRowWriter(partial / f"{name}.npy", (len(ids), *a.row_shape), a.dtype, create=True).close()
        shard.barrier()
        if not sealed:
            writers = {
                name: _NpyRowWriter(partial / f"{name}.npy", (len(ids), *a.row_shape), a.dtype, create=False)
                for name, a in array_specs.items()
            }
            mine = batches[shard.rank :: shard.world]
            show = self.progress and shard.rank == 0
            try:
                with tqdm(total=len(ids), desc=f"featurize {spec.kind}", unit="news", disable=not show) as bar:
                    for rows in mine:
                        values = builder.compute(news, rows)
                        for name, writer in writers.items():
                            writer.write(rows, values[name])
                        bar.update(len(rows) * shard.world)
                for writer in writers.values():
                    writer.sync()
            finally:
                for writer in writers.values():
                    writer.close()
        shard.barrier()
        if shard.rank == 0 and not sealed:
            _seal(partial, final, _manifest(spec, segment_key, ids, hashes, array_specs, processes=shard.world))
        shard.barrier()
        loaded = {name: np.load(final / f"{name}.npy", mmap_mode="r") for name in array_specs}
        return _Segment(final, ids, hashes, loaded)

    @staticmethod
    def _save_progress(partial: Path, writers: dict[str, _NpyRowWriter], segment_key: str, done: int) -> None:
        for writer in writers.values():
            writer.sync()  # rows on disk before the progress that claims them
        _write_json_atomic(partial / PROGRESS, {"segment_key": segment_key, "done_batches": done})

    @staticmethod
    def _resumable_batches(partial: Path, segment_key: str, rows: int, specs: dict[str, ArraySpec]) -> int:
        progress = partial / PROGRESS
        if not progress.is_file():
            return 0
        try:
            state = json.loads(progress.read_text())
            for name, spec in specs.items():
                array = np.load(partial / f"{name}.npy", mmap_mode="r")
                if array.shape != (rows, *spec.row_shape) or array.dtype != np.dtype(spec.dtype):
                    return 0
        except (OSError, ValueError):
            return 0
        return int(state["done_batches"]) if state.get("segment_key") == segment_key else 0


__all__ = [
    "ArraySpec",
    "Builder",
    "CacheSpec",
    "FeatureArray",
    "FeatureSet",
    "FeatureStoreError",
    "digest",
    "row_batches",
    "FeatureStore",
    "Shard",
    "MANIFEST",
    "PARTIAL",
    "PROGRESS",
    "SCHEMA_VERSION",
]
