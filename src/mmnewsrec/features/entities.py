"""The knowledge entities of each news as fixed-width arrays (what an entity-reading model gets).

Each news keeps up to ``max_entities`` of its entities (title first, then abstract), each as a
bucket id: the entity's Wikidata id hashed into ``buckets`` buckets (0 is padding), so that an
entity first seen after training (a news posted to the live service) still lands in a bucket,
and a rare one shares it with others instead of needing a row of its own. The bucket of each
entity is stable across runs and machines (a keyed BLAKE2 hash, not Python's ``hash``).

Pretrained vectors (MIND's TransE ``entity_embedding.vec``) are not stored per news: a model that
reads entities initialises each bucket's embedding with the mean vector of its entities
(:func:`bucket_vectors`), and learns from there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mmnewsrec.data.mind import ENTITY_COLUMNS, EntityVectors, parse_entities
from mmnewsrec.features.arrays import ArraySpec, CacheSpec, digest, row_batches


def entity_bucket(entity_id: str, buckets: int) -> int:
    """The bucket (1 .. ``buckets``) of an entity id; 0 is left for padding."""
    value = int.from_bytes(hashlib.blake2b(entity_id.encode("utf-8"), digest_size=8, key=b"mmnewsrec").digest())
    return 1 + value % buckets


@dataclass
class EntityBuilder:
    """Builds ``entity_ids`` (int32 bucket ids, 0 = padding) and ``entity_mask`` (bool, True = a
    real entity) of width ``max_entities``, and ``entity_confidence`` (float32, 0 at padding).

    The news table's ``path`` is not known here: entity fields were checked when the news were
    read (:func:`~mmnewsrec.data.mind.read_news`); a table built in memory is checked now.
    """

    max_entities: int = 8
    buckets: int = 4096
    batch_size: int = 4096

    def spec(self) -> CacheSpec:
        return CacheSpec("entities", {"max_entities": self.max_entities, "buckets": self.buckets, "hash": "blake2b-8"})

    def row_hashes(self, news: pa.Table) -> list[str]:
        columns = [news[c].to_pylist() if c in news.column_names else [""] * news.num_rows for c in ENTITY_COLUMNS]
        return [digest(*(value or "" for value in values)) for values in zip(*columns, strict=True)]

    def arrays(self) -> dict[str, ArraySpec]:
        width = (self.max_entities,)
        return {
            "entity_ids": ArraySpec(width, "int32"),
            "entity_mask": ArraySpec(width, "bool"),
            "entity_confidence": ArraySpec(width, "float32"),
        }

    def batches(self, news: pa.Table) -> list[np.ndarray]:
        return row_batches(news.num_rows, self.batch_size)

    def compute(self, news: pa.Table, rows: np.ndarray) -> dict[str, np.ndarray]:
        subset = news.take(pa.array(rows))
        entities = parse_entities(subset, "news")
        ids = np.zeros((len(rows), self.max_entities), dtype=np.int32)  # (B, M)
        confidence = np.zeros((len(rows), self.max_entities), dtype=np.float32)  # (B, M)
        for row, (named, scores) in enumerate(
            zip(entities.ids.to_pylist(), entities.confidence.to_pylist(), strict=True)
        ):
            kept = named[: self.max_entities]
            ids[row, : len(kept)] = [entity_bucket(entity, self.buckets) for entity in kept]
            confidence[row, : len(kept)] = scores[: self.max_entities]
        return {"entity_ids": ids, "entity_mask": ids > 0, "entity_confidence": confidence}


def bucket_vectors(vectors: EntityVectors, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean pretrained vector of the entities in each bucket, and which buckets have one.

    Shape:
        -> (buckets + 1, D) float32 (row 0, padding, is zero), (buckets + 1,) bool.
    """
    table = np.zeros((buckets + 1, vectors.dim), dtype=np.float64)
    counts = np.zeros(buckets + 1, dtype=np.int64)
    for entity_id, vector in zip(vectors.ids, vectors.vectors, strict=True):
        bucket = entity_bucket(entity_id, buckets)
        table[bucket] += vector
        counts[bucket] += 1
    has = counts > 0
    table[has] /= counts[has, None]
    return table.astype(np.float32), has
