"""The candidate index's filters: the age mask read from its publication times agrees with the
metadata, through additions, replacements, retirements and compaction."""

from __future__ import annotations

import numpy as np

from mmnewsrec.serving.index import NewsIndex, NewsMeta


def test_the_age_mask_follows_adds_replacements_retirements_and_compaction() -> None:
    rng = np.random.default_rng(0)
    index = NewsIndex(dim=4)
    ids = [f"N{i}" for i in range(3000)]
    times = rng.integers(0, 10_000, size=len(ids))
    index.add(ids, rng.normal(size=(len(ids), 4)).astype(np.float32), [NewsMeta(published=int(t)) for t in times])
    index.add(ids[:10], np.zeros((10, 4), np.float32), [NewsMeta(published=9_999)] * 10)  # replaced: newer
    index.retire(ids[100:1000])  # over a quarter: the index compacts
    for after in (0, 5_000, 9_999, 10_001):
        expected = index.mask(lambda meta, after=after: meta.published >= after)
        np.testing.assert_array_equal(index.published_mask(after), expected)
    kept = index.published_mask(9_999)
    _, snapshot_ids, _, rows = index.snapshot()
    assert set(ids[:10]) <= {snapshot_ids[list(rows).index(r)] for r in np.flatnonzero(kept)}
