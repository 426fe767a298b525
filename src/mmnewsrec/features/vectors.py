"""Precomputed news vectors read from a Parquet file (``features.frozen`` with ``vectors:``):
EB-NeRD's artifacts (``contrastive_vector.parquet``, ``image_embeddings.parquet``, the BERT and
XLM-RoBERTa ones), or any table of an id column and a vector column, become frozen features with
no backbone to run.

The file's id column is ``article_id`` (else ``news_id``, else its first column), integers or
text, matched to the news ids as text; the vector column is its last list column. A news without
a row gets zeros, and for an ``image`` feature ``has_image`` False: it is masked exactly as a MIND
news without an image is.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mmnewsrec.errors import DataFormatError
from mmnewsrec.features.arrays import ArraySpec, CacheSpec, digest, row_batches

logger = logging.getLogger(__name__)

#: Bytes hashed at each end of the file for its fingerprint (Parquet keeps its metadata at the end).
_FINGERPRINT_BYTES = 1 << 20


def file_fingerprint(path: Path) -> str:
    """The file's size and the SHA-256 of its first and last MiB: a new or rewritten file gets a
    new cache entry without hashing gigabytes at every start."""
    size = path.stat().st_size
    sha = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        sha.update(handle.read(_FINGERPRINT_BYTES))
        handle.seek(max(0, size - _FINGERPRINT_BYTES))
        sha.update(handle.read(_FINGERPRINT_BYTES))
    return sha.hexdigest()[:32]


@dataclass
class VectorFileBuilder:
    """Builds ``vectors`` (float16, (D,)) and, for ``image``, ``has_image`` (bool) from a file."""

    path: Path
    modality: str = "text"
    batch_size: int = 8192
    _ids: dict[str, int] | None = field(default=None, init=False, repr=False)
    _vectors: np.ndarray | None = field(default=None, init=False, repr=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_file():
            raise DataFormatError(self.path, None, "file not found (features.frozen.vectors)")

    def _load(self) -> None:
        if self._vectors is not None:
            return
        try:
            schema = pq.read_schema(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataFormatError(self.path, None, f"not a readable Parquet file ({exc})") from None
        names = schema.names
        id_column = next((c for c in ("article_id", "news_id") if c in names), names[0] if names else None)
        lists = [f.name for f in schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)]
        lists += [f.name for f in schema if pa.types.is_fixed_size_list(f.type)]
        if id_column is None or not lists:
            raise DataFormatError(self.path, None, "expected an id column and a vector (list) column")
        vector_column = [c for c in names if c in lists][-1]
        table = pq.read_table(self.path, columns=[id_column, vector_column])
        ids, values = table[id_column].combine_chunks(), table[vector_column].combine_chunks()
        for name, column in ((id_column, ids), (vector_column, values)):
            null = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
            if null.size:
                raise DataFormatError(self.path, None, f"row {null[0] + 1}, column {name}: null")
        lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != lengths[0]).any():
            row = int(np.flatnonzero(lengths != lengths[0])[0])
            raise DataFormatError(
                self.path, None, f"row {row + 1}, column {vector_column}: {lengths[row]} values, row 1 has {lengths[0]}"
            )
        flat = pc.list_flatten(values)
        if not (pa.types.is_floating(flat.type) or pa.types.is_integer(flat.type)):
            raise DataFormatError(
                self.path, None, f"column {vector_column}: numbers expected, the file has {flat.type}"
            )
        width = int(lengths[0]) if len(lengths) else 0
        self._vectors = flat.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(lengths), width)
        keys = [str(v) for v in ids.to_pylist()]
        self._ids = {key: row for row, key in enumerate(keys)}
        if len(self._ids) != len(keys):
            seen: set[str] = set()
            row = next(r for r, key in enumerate(keys) if key in seen or seen.add(key))
            raise DataFormatError(self.path, None, f"row {row + 1}, column {id_column}: duplicate id {keys[row]}")

    def spec(self) -> CacheSpec:
        if self._fingerprint is None:  # asked for at every lookup of the cache: the file is read once
            self._fingerprint = file_fingerprint(self.path)
        return CacheSpec("vectors", {"file": self._fingerprint, "modality": self.modality, "dtype": "float16"})

    def row_hashes(self, news: pa.Table) -> list[str]:
        return [digest(news_id) for news_id in news["news_id"].to_pylist()]

    def hidden_size(self) -> int:
        self._load()
        return int(self._vectors.shape[1])

    def arrays(self) -> dict[str, ArraySpec]:
        specs = {"vectors": ArraySpec((self.hidden_size(),), "float16")}
        if self.modality == "image":
            specs["has_image"] = ArraySpec((), "bool")
        return specs

    def batches(self, news: pa.Table) -> list[np.ndarray]:
        self._load()
        return row_batches(news.num_rows, self.batch_size)

    def compute(self, news: pa.Table, rows: np.ndarray) -> dict[str, np.ndarray]:
        self._load()
        wanted = news["news_id"].take(pa.array(rows)).to_pylist()
        found = np.array([self._ids.get(n, -1) for n in wanted], dtype=np.int64)  # (B,) row in the file, -1 none
        vectors = np.zeros((len(rows), self._vectors.shape[1]), dtype=np.float32)  # (B, D)
        vectors[found >= 0] = self._vectors[found[found >= 0]]
        out = {"vectors": vectors.astype(np.float16)}
        if self.modality == "image":
            out["has_image"] = found >= 0
        return out
