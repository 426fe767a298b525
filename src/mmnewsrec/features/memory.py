"""A feature store that computes in memory and writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from mmnewsrec.features.arrays import Builder, FeatureArray, FeatureSet
from mmnewsrec.features.store import FeatureStore


class MemoryStore(FeatureStore):
    """Computes every requested feature in memory and writes nothing.

    For news whose results are kept elsewhere: the live service's posted news (their vectors are
    durable in the state store's news log), or a notebook encoding a handful of records. Builders
    that read upstream features (frozen encoders over tokens) read them from this store too.
    """

    #: Rows per compute call: a tokenizer or model call holds the interpreter until it returns, so
    #: small calls let the other threads of a live service (its requests) run in between.
    ROWS_PER_CALL = 256

    def __init__(self, progress: bool = False):
        super().__init__(Path("/dev/null/mmnewsrec-memory-store"), progress=progress)

    def lookup(self, builder: Builder, news: pa.Table) -> FeatureSet | None:
        return None

    def features(self, builder: Builder, news: pa.Table) -> FeatureSet:
        specs = builder.arrays()
        arrays = {name: np.empty((news.num_rows, *a.row_shape), dtype=a.dtype) for name, a in specs.items()}
        if news.num_rows:
            for batch in builder.batches(news):
                for rows in np.array_split(batch, -(-len(batch) // self.ROWS_PER_CALL)):
                    for name, values in builder.compute(news, rows).items():
                        arrays[name][rows] = values
        ids = news["news_id"].to_pylist()
        segment_of, row_in = np.zeros(len(ids), dtype=np.int64), np.arange(len(ids))
        wrapped = {name: FeatureArray([array], segment_of, row_in) for name, array in arrays.items()}
        return FeatureSet(builder.spec(), Path(), ids, wrapped, "built")
