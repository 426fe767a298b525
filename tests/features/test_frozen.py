from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmnewsrec.config import FrozenEncoderConfig
from mmnewsrec.data.mind import load_mind
from mmnewsrec.features.build import frozen_builder
from mmnewsrec.features.frozen import masked_mean
from mmnewsrec.features.store import FeatureStore


@pytest.fixture(scope="module")
def dev_news(tiny_mind: Path):
    return load_mind(tiny_mind, splits=("dev",)).news.slice(0, 48)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_text_vectors_match_a_direct_forward(dev_news, tmp_path: Path, tiny_bert: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    store = FeatureStore(tmp_path)
    config = FrozenEncoderConfig(name="bert_cls", model=str(tiny_bert), max_length=16, batch_size=8, device="cpu")
    features = store.features(frozen_builder(config, store, "mask"), dev_news)
    vectors = features["vectors"][:]
    assert vectors.shape == (48, 32) and vectors.dtype == np.float16 and np.isfinite(vectors).all()

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModel.from_pretrained(tiny_bert).eval()
    titles = dev_news["title"].to_pylist()
    for row in (0, 17, 47):  # batches were length-sorted and cut: rows must still line up
        encoded = tokenizer(titles[row], max_length=16, truncation=True, return_tensors="pt")
        with torch.no_grad():
            expected = model(**encoded).last_hidden_state[0, 0].numpy()
        np.testing.assert_allclose(vectors[row].astype(np.float32), expected, atol=2e-2, rtol=1e-2)

    mean = FrozenEncoderConfig(name="bert_mean", model=str(tiny_bert), max_length=16, pooling="mean", device="cpu")
    mean_features = store.features(frozen_builder(mean, store, "mask"), dev_news)
    assert mean_features.path != features.path
    assert not np.allclose(mean_features["vectors"][:], vectors)


def test_masked_mean_ignores_padding_and_survives_empty_rows() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 5.0], [7.0, 7.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = masked_mean(hidden, mask)
    assert out.tolist() == [[2.0, 3.0], [0.0, 0.0]]


def test_image_vectors_zero_and_flagged_without_image(dev_news, tmp_path: Path, tiny_vit: Path) -> None:
    store = FeatureStore(tmp_path)
    config = FrozenEncoderConfig(name="vit", model=str(tiny_vit), modality="image", batch_size=16, device="cpu")
    features = store.features(frozen_builder(config, store, "mask"), dev_news)
    vectors, has_image = features["vectors"][:], features["has_image"][:]
    assert vectors.shape == (48, 32) and has_image.dtype == bool
    assert (vectors[~has_image] == 0).all()
    assert (np.abs(vectors[has_image]).sum(1) > 0).all()
    pooled = FrozenEncoderConfig(name="vit_pool", model=str(tiny_vit), modality="image", pooling="pooler", device="cpu")
    assert store.features(frozen_builder(pooled, store, "mask"), dev_news)["vectors"].shape == (48, 32)

    rendered = store.features(frozen_builder(config, store, "render_title"), dev_news)
    assert (np.abs(rendered["vectors"][:][~has_image]).sum(1) > 0).all()  # the canvas is encoded


def test_blip_fuses_image_and_text(dev_news, tmp_path: Path, tiny_blip: Path) -> None:
    store = FeatureStore(tmp_path)
    config = FrozenEncoderConfig(name="blip", model=str(tiny_blip), modality="blip", max_length=16, device="cpu")
    features = store.features(frozen_builder(config, store, "mask"), dev_news)
    vectors, has_image = features["vectors"][:].astype(np.float32), features["has_image"][:]
    assert vectors.shape == (48, 32) and np.isfinite(vectors).all()
    assert has_image.any() and (~has_image).any()

    # Rows without an image are the text encoder alone; rows with one attend to it, so the same
    # text with the rendered-title canvas instead of the real image gives another vector.
    rendered = store.features(frozen_builder(config, store, "render_title"), dev_news)["vectors"][:].astype(np.float32)
    np.testing.assert_allclose(rendered[has_image], vectors[has_image], atol=1e-3)
    assert not np.allclose(rendered[~has_image], vectors[~has_image], atol=1e-3)


def test_frozen_build_resumes_after_a_crash(dev_news, tmp_path: Path, tiny_bert: Path, monkeypatch) -> None:
    from mmnewsrec.features.frozen import FrozenBuilder

    store = FeatureStore(tmp_path, checkpoint_seconds=0.0)
    config = FrozenEncoderConfig(name="bert", model=str(tiny_bert), max_length=16, batch_size=8, device="cpu")
    calls = {"n": 0}
    original = FrozenBuilder.compute

    def crash_on_third(self, news, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return original(self, news, rows)

    monkeypatch.setattr(FrozenBuilder, "compute", crash_on_third)
    with pytest.raises(RuntimeError, match="power cut"):
        store.features(frozen_builder(config, store, "mask"), dev_news)
    builder = frozen_builder(config, store, "mask")
    assert store.lookup(builder, dev_news) is None
    calls["n"] = -100  # no more crashes; count the batches computed on resume
    resumed = store.features(builder, dev_news)
    assert calls["n"] == -100 + 4  # 6 batches of 8, 2 done before the crash
    fresh_store = FeatureStore(tmp_path / "fresh")
    fresh = fresh_store.features(frozen_builder(config, fresh_store, "mask"), dev_news)
    np.testing.assert_array_equal(resumed["vectors"][:], fresh["vectors"][:])


def test_token_states_keep_every_real_token(dev_news, tmp_path: Path, tiny_bert: Path) -> None:
    store = FeatureStore(tmp_path)
    config = FrozenEncoderConfig(
        name="bert_tokens", model=str(tiny_bert), max_length=16, pooling="tokens", device="cpu"
    )
    features = store.features(frozen_builder(config, store, "mask"), dev_news)
    states, mask = features["vectors"][:].astype(np.float32), features["mask"][:]
    assert states.shape == (48, 16, 32) and mask.shape == (48, 16) and mask.dtype == bool
    assert (states[~mask] == 0).all() and (np.abs(states[mask]).sum(-1) > 0).all()
    cls = FrozenEncoderConfig(name="bert_cls", model=str(tiny_bert), max_length=16, device="cpu")
    np.testing.assert_allclose(store.features(frozen_builder(cls, store, "mask"), dev_news)["vectors"][:], states[:, 0])


def test_lower_layer_states_match_the_models_hidden_states(dev_news, tmp_path: Path, tiny_bert: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    store = FeatureStore(tmp_path)
    lower = FrozenEncoderConfig(
        name="lower_title", model=str(tiny_bert), max_length=16, pooling="tokens", layer=1, device="cpu"
    )
    features = store.features(frozen_builder(lower, store, "mask"), dev_news)
    last = FrozenEncoderConfig(name="last", model=str(tiny_bert), max_length=16, pooling="tokens", device="cpu")
    assert store.features(frozen_builder(last, store, "mask"), dev_news).path != features.path  # layer is in the key
    states = features["vectors"][:].astype(np.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModel.from_pretrained(tiny_bert).eval()
    titles = dev_news["title"].to_pylist()
    for row in (0, 30):
        encoded = tokenizer(titles[row], max_length=16, truncation=True, return_tensors="pt")
        with torch.no_grad():
            expected = model(**encoded, output_hidden_states=True).hidden_states[1][0].numpy()  # after layer 1
        length = expected.shape[0]
        np.testing.assert_allclose(states[row, :length], expected, atol=2e-2, rtol=1e-2)
        assert (states[row, length:] == 0).all()


def test_layer_needs_token_pooling() -> None:
    from mmnewsrec.errors import ConfigError

    with pytest.raises(ConfigError, match="features.frozen.layer"):
        FrozenEncoderConfig(name="x", model="m", pooling="cls", layer=1)
