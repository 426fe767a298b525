from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mmnewsrec.features.store import MANIFEST, PARTIAL, ArraySpec, CacheSpec, FeatureStore, digest


class LengthBuilder:
    """A deterministic toy feature: title length and a per-row vector; counts computed rows."""

    def __init__(self, scale: int = 1, fail_at_batch: int | None = None, batch_size: int = 2):
        self.scale = scale
        self.fail_at_batch = fail_at_batch
        self.batch_size = batch_size
        self.computed: list[str] = []
        self.calls = 0

    def spec(self) -> CacheSpec:
        return CacheSpec("toy", {"scale": self.scale})

    def row_hashes(self, news: pa.Table) -> list[str]:
        return [digest(t) for t in news["title"].to_pylist()]

    def arrays(self) -> dict[str, ArraySpec]:
        return {"length": ArraySpec((), "int32"), "vector": ArraySpec((3,), "float16")}

    def batches(self, news: pa.Table) -> list[np.ndarray]:
        rows = np.arange(news.num_rows)
        return [rows[i : i + self.batch_size] for i in range(0, len(rows), self.batch_size)]

    def compute(self, news: pa.Table, rows: np.ndarray) -> dict[str, np.ndarray]:
        if self.fail_at_batch is not None and self.calls == self.fail_at_batch:
            raise KeyboardInterrupt("killed mid-build")
        self.calls += 1
        titles = news["title"].take(pa.array(rows)).to_pylist()
        self.computed += news["news_id"].take(pa.array(rows)).to_pylist()
        length = np.array([len(t) * self.scale for t in titles], np.int32)
        return {"length": length, "vector": np.stack([length, -length, length * 0.5], axis=1).astype(np.float16)}


def news_table(ids: list[str], titles: list[str] | None = None) -> pa.Table:
    titles = titles or [f"title of {i}" + "!" * k for k, i in enumerate(ids)]
    return pa.table({"news_id": ids, "title": titles})


def expected_lengths(table: pa.Table, scale: int = 1) -> list[int]:
    return [len(t) * scale for t in table["title"].to_pylist()]


def test_build_then_reuse_in_request_order(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    news = news_table([f"N{i}" for i in range(7)])
    built = store.features(LengthBuilder(), news)
    assert built.status == "built"
    assert built["length"][:].tolist() == expected_lengths(news)
    assert built["vector"].shape == (7, 3) and built["vector"].dtype == np.float16

    again = LengthBuilder()
    reused = store.features(again, news)
    assert reused.status == "reused" and again.computed == []
    permuted = news.take(pa.array([6, 0, 3]))
    subset = store.features(LengthBuilder(), permuted)
    assert subset.status == "reused" and subset["length"][:].tolist() == expected_lengths(permuted)
    assert subset["length"][1] == expected_lengths(news)[0]  # scalar indexing
    assert np.asarray(subset["vector"]).shape == (3, 3)


def test_changed_setting_is_a_new_key(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    news = news_table(["N1", "N2"])
    a = store.features(LengthBuilder(scale=1), news)
    b = store.features(LengthBuilder(scale=2), news)
    assert a.path != b.path and b.status == "built"
    assert b["length"][:].tolist() == expected_lengths(news, 2)
    assert CacheSpec("toy", {"scale": 1}).key() != CacheSpec("toy", {"scale": 2}).key()
    assert CacheSpec("toy", {"a": 1, "b": 2}).key() == CacheSpec("toy", {"b": 2, "a": 1}).key()


def test_appends_new_and_recomputes_only_changed_news(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    base = news_table(["N1", "N2", "N3"])
    store.features(LengthBuilder(), base)
    grown = news_table(["N1", "N2", "N3", "N4"], base["title"].to_pylist() + ["a brand new title"])
    builder = LengthBuilder()
    extended = store.features(builder, grown)
    assert extended.status == "extended" and builder.computed == ["N4"]
    assert extended["length"][:].tolist() == expected_lengths(grown)
    assert len(extended.segments) == 2

    edited = news_table(["N1", "N2", "N3", "N4"], ["edited title", *grown["title"].to_pylist()[1:]])
    builder = LengthBuilder()
    result = store.features(builder, edited)
    assert builder.computed == ["N1"]  # a changed title is never served from the old row
    assert result["length"][:].tolist() == expected_lengths(edited)


def test_interrupted_build_leaves_no_valid_cache_and_resumes(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, checkpoint_seconds=0.0)  # save progress after every batch
    news = news_table([f"N{i}" for i in range(9)])  # 5 batches of 2
    crashing = LengthBuilder(fail_at_batch=3)
    with pytest.raises(KeyboardInterrupt):
        store.features(crashing, news)
    assert store.lookup(LengthBuilder(), news) is None
    spec_dir = store.spec_dir(LengthBuilder().spec())
    (partial,) = [p for p in spec_dir.iterdir() if p.is_dir()]
    assert partial.name.endswith(PARTIAL) and not (partial / MANIFEST).exists()
    assert json.loads((partial / "progress.json").read_text())["done_batches"] == 3

    resumed = LengthBuilder()
    result = store.features(resumed, news)
    assert resumed.computed == ["N6", "N7", "N8"]  # only the batches not done before the crash
    assert result.status == "built" and result["length"][:].tolist() == expected_lengths(news)
    assert [p.name.endswith(PARTIAL) for p in spec_dir.iterdir() if p.is_dir()] == [False]


def test_partial_with_mismatched_arrays_restarts(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, checkpoint_seconds=0.0)
    news = news_table([f"N{i}" for i in range(4)])
    with pytest.raises(KeyboardInterrupt):
        store.features(LengthBuilder(fail_at_batch=1), news)
    (partial,) = [p for p in store.spec_dir(LengthBuilder().spec()).iterdir() if p.is_dir()]
    np.save(partial / "vector.npy", np.zeros((4, 5), np.float16))  # wrong shape: not resumable
    builder = LengthBuilder()
    store.features(builder, news)
    assert builder.computed == ["N0", "N1", "N2", "N3"]


def test_segments_of_another_schema_are_ignored(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    news = news_table(["N1"])
    built = store.features(LengthBuilder(), news)
    manifest_path = built.segments[0] / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["schema_version"] = -1
    manifest_path.write_text(json.dumps(manifest))
    assert store.lookup(LengthBuilder(), news) is None
    assert store.features(LengthBuilder(), news).status == "built"
