"""Frozen features from a Parquet file of precomputed vectors (EB-NeRD's artifacts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmnewsrec.config import ExperimentConfig, FrozenEncoderConfig, load_yaml
from mmnewsrec.data.mind import load_mind
from mmnewsrec.errors import ConfigError, DataFormatError
from mmnewsrec.features.build import default_store, frozen_builder
from mmnewsrec.features.vectors import VectorFileBuilder


def _news(ids: list[str]) -> pa.Table:
    return pa.table({"news_id": pa.array(ids, pa.string())})


def _write(path: Path, ids, vectors, column: str = "image_embedding") -> Path:
    pq.write_table(pa.table({"article_id": pa.array(ids), column: pa.array(vectors, pa.list_(pa.float32()))}), path)
    return path


def test_each_news_gets_its_vector_and_one_without_is_masked(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.parquet", [3, 1], [[1.0, 2.0], [3.0, 4.0]])
    builder = VectorFileBuilder(path, "image")
    assert builder.arrays()["vectors"].row_shape == (2,) and "has_image" in builder.arrays()
    out = builder.compute(_news(["1", "2", "3"]), np.array([0, 1, 2]))
    assert out["vectors"].tolist() == [[3.0, 4.0], [0.0, 0.0], [1.0, 2.0]]
    assert out["has_image"].tolist() == [True, False, True]
    text = VectorFileBuilder(_write(tmp_path / "t.parquet", [1], [[5.0]], "contrastive_vector"), "text")
    assert "has_image" not in text.arrays() and text.compute(_news(["1"]), np.array([0]))["vectors"].tolist() == [[5.0]]


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        ([1, 1], [[1.0], [2.0]], "row 2, column article_id: duplicate id 1"),
        ([1, 2], [[1.0], [2.0, 3.0]], "row 2, column image_embedding: 2 values, row 1 has 1"),
        ([1, 2], [[1.0], None], "row 2, column image_embedding: null"),
    ],
)
def test_a_malformed_file_is_an_error_naming_row_and_column(tmp_path: Path, ids, vectors, message: str) -> None:
    builder = VectorFileBuilder(_write(tmp_path / "v.parquet", ids, vectors), "image")
    with pytest.raises(DataFormatError, match=message):
        builder.arrays()
    with pytest.raises(DataFormatError, match="file not found"):
        VectorFileBuilder(tmp_path / "absent.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataFormatError, match="not a readable Parquet file"):
        VectorFileBuilder(tmp_path / "bad.parquet").arrays()


def test_a_frozen_entry_names_a_backbone_or_a_file_not_both() -> None:
    with pytest.raises(ConfigError, match="give a backbone .* or a file of vectors"):
        FrozenEncoderConfig(name="x", model="bert-base-uncased", vectors="v.parquet")
    with pytest.raises(ConfigError, match="give a backbone"):
        FrozenEncoderConfig(name="x")
    with pytest.raises(ConfigError, match="a vectors file is text or image"):
        FrozenEncoderConfig(name="x", vectors="v.parquet", modality="blip")


def test_the_artifacts_of_a_bundle_are_read_under_its_root_and_cached(tiny_ebnerd: Path, tmp_path: Path) -> None:
    config = load_yaml(ExperimentConfig, Path(__file__).parents[2] / "configs" / "ebnerd_multimodal.yaml")
    store = default_store(config.features, tmp_path / "cache")
    image = frozen_builder(config.features.frozen[1], store, "mask", str(tiny_ebnerd))
    news = load_mind(tiny_ebnerd, splits=("dev",)).news
    features = store.features(image, news)
    has_image = np.asarray(features["has_image"])
    assert has_image.tolist() == [count > 0 for count in news["image_count"].to_pylist()]  # no image, no vector
    assert not np.asarray(features["vectors"])[~has_image].any() and np.asarray(features["vectors"])[has_image].any()
    assert store.features(image, news).status == "reused"
