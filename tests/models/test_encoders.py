"""One contract table that every registered news encoder (and the recommender around it) must pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmnewsrec.batching.batch import Batch
from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import (
    BackboneConfig,
    BlipEncoderConfig,
    FeatureBranch,
    FusionEncoderConfig,
    LoraConfig,
    ModelConfig,
    NewsEncoderConfig,
    PrecomputedEncoderConfig,
    TextEncoderConfig,
    UserEncoderConfig,
    VisionEncoderConfig,
    WordEncoderConfig,
)
from mmnewsrec.models.build import build_model, load_weights, save_weights
from mmnewsrec.models.news_encoders import NEWS_ENCODERS, ModelContext
from mmnewsrec.models.user_encoders import NRMSUserEncoder

from .conftest import LENGTH, N_NEWS, VOCAB


def encoder_configs(bert: Path, vit: Path, blip: Path) -> dict[str, NewsEncoderConfig]:
    text = BackboneConfig(model=str(bert))
    vision = BackboneConfig(model=str(vit))
    return {
        "text-cls": TextEncoderConfig(dim=32, text=text, max_length=LENGTH),
        "text-top1-attention-category": TextEncoderConfig(
            dim=32,
            text=BackboneConfig(model=str(bert), train_layers=1, pooling="attention"),
            use_category=True,
        ),
        "text-cached-top1-mean": TextEncoderConfig(
            dim=32,
            text=BackboneConfig(model=str(bert), train_layers=1, cache_frozen=True, pooling="mean"),
            max_length=LENGTH,
        ),
        "text-lora": TextEncoderConfig(
            dim=32, text=BackboneConfig(model=str(bert), lora=LoraConfig(rank=4)), max_length=LENGTH
        ),
        "text-scratch-mean": TextEncoderConfig(
            dim=32, text=BackboneConfig(model=str(bert), pretrained=False, pooling="mean")
        ),
        "vision": VisionEncoderConfig(dim=32, vision=vision),
        "vision-lora": VisionEncoderConfig(
            dim=32, vision=BackboneConfig(model=str(vit), train_layers=1, lora=LoraConfig(rank=4))
        ),
        "precomputed-text": PrecomputedEncoderConfig(dim=32, feature="txt"),
        "precomputed-image": PrecomputedEncoderConfig(dim=32, feature="img"),
        "precomputed-tokens": PrecomputedEncoderConfig(dim=32, feature="tok"),
        "precomputed-mlp-category": PrecomputedEncoderConfig(
            dim=32, feature="txt", projection="mlp", use_category=True
        ),
        "word": WordEncoderConfig(dim=32, heads=4, word_dim=16),
        "fusion-hadamard": FusionEncoderConfig(dim=32, text=text, image=vision, fusion="hadamard"),
        "fusion-concat": FusionEncoderConfig(dim=32, text=text, image=vision, fusion="concat"),
        "fusion-gate-precomputed": FusionEncoderConfig(
            dim=32, text=FeatureBranch("txt"), image=FeatureBranch("img"), fusion="gate"
        ),
        "blip-trainable": BlipEncoderConfig(dim=32, backbone=BackboneConfig(model=str(blip))),
        "blip-frozen-mean": BlipEncoderConfig(
            dim=32, backbone=BackboneConfig(model=str(blip), train_layers=0, pooling="mean")
        ),
    }


CASES = [
    "text-cls",
    "text-top1-attention-category",
    "text-cached-top1-mean",
    "text-lora",
    "text-scratch-mean",
    "vision",
    "vision-lora",
    "precomputed-text",
    "precomputed-image",
    "precomputed-mlp-category",
    "precomputed-tokens",
    "word",
    "fusion-hadamard",
    "fusion-concat",
    "fusion-gate-precomputed",
    "blip-trainable",
    "blip-frozen-mean",
]


def test_every_registered_encoder_is_in_the_table() -> None:
    shipped = {name for name in NEWS_ENCODERS.names() if NEWS_ENCODERS.get(name).__module__.startswith("mmnewsrec.")}
    assert {case.split("-")[0] for case in CASES} == shipped  # (tests may register toy encoders of their own)


def make_model(case: str, features: NewsFeatures, tiny_bert: Path, tiny_vit: Path, tiny_blip: Path):
    context = ModelContext(
        num_categories=4,
        num_subcategories=6,
        feature_dims={n: features.dim(n) for n in features.names()},
        vocab_size=VOCAB,
    )
    config = ModelConfig(
        news=encoder_configs(tiny_bert, tiny_vit, tiny_blip)[case], user=UserEncoderConfig(heads=4, query_dim=16)
    )
    torch.manual_seed(0)
    return build_model(config, context).eval(), config, context


@pytest.mark.parametrize("case", CASES)
def test_encoder_contract(
    case: str, features: NewsFeatures, tiny_bert: Path, tiny_vit: Path, tiny_blip: Path, tmp_path: Path
) -> None:
    model, config, context = make_model(case, features, tiny_bert, tiny_vit, tiny_blip)
    names = model.news_encoder.inputs()
    rows = torch.arange(N_NEWS)
    with torch.no_grad():
        vectors = model.encode_news(features.gather(rows, names))
    assert vectors.shape == (N_NEWS, 32) and torch.isfinite(vectors).all()

    # Batch independence: a news item's vector does not depend on the other news in its batch.
    with torch.no_grad():
        alone = model.encode_news(features.gather(torch.tensor([5]), names))
        pair = model.encode_news(features.gather(torch.tensor([5, 0]), names))
    torch.testing.assert_close(alone[0], vectors[5], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pair[0], vectors[5], atol=1e-5, rtol=1e-4)

    # Padding invariance: what lies under a False mask (token padding, pixels of a news without an
    # image) never changes the output.
    inputs = features.gather(rows, names)
    if "title_ids" in inputs:
        inputs["title_ids"] = torch.where(
            inputs["title_mask"], inputs["title_ids"], torch.full_like(inputs["title_ids"], 7)
        )
    if "pixels" in inputs:
        noise = torch.randint(0, 256, inputs["pixels"].shape, dtype=torch.uint8)
        inputs["pixels"] = torch.where(inputs["has_image"][:, None, None, None], inputs["pixels"], noise)
    for key in ("frozen:img",):
        if key in inputs:
            inputs[key] = torch.where(inputs[f"{key}:has_image"][:, None], inputs[key], torch.ones_like(inputs[key]))
    for key in ("frozen:tok", "frozen:lower_title"):
        if key in inputs:
            padding = ~inputs[f"{key}:mask"][..., None]
            inputs[key] = torch.where(padding, torch.full_like(inputs[key], 5.0), inputs[key])
    with torch.no_grad():
        torch.testing.assert_close(model.encode_news(inputs), vectors, atol=1e-5, rtol=1e-4)

    # Save / load round trip through separate news- and user-encoder files.
    save_weights(model, tmp_path)
    assert (tmp_path / "news_encoder.safetensors").is_file() and (tmp_path / "user_encoder.safetensors").is_file()
    torch.manual_seed(123)
    other = build_model(config, context).eval()
    load_weights(other, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(other.encode_news(features.gather(rows, names)), vectors)


@pytest.mark.parametrize("case", ["text-cls", "vision", "fusion-concat"])
def test_forward_with_and_without_dedup_agree(
    case, features: NewsFeatures, tiny_bert: Path, tiny_vit: Path, tiny_blip: Path
) -> None:
    model, _, _ = make_model(case, features, tiny_bert, tiny_vit, tiny_blip)
    names = model.news_encoder.inputs()
    batch = Batch(
        hist_rows=torch.tensor([[1, 2, 3, 0], [4, 1, 0, 0], [0, 0, 0, 0]]),
        hist_mask=torch.tensor([[True, True, True, False], [True, True, False, False], [False] * 4]),
        cand_rows=torch.tensor([[5, 6, 1], [7, 8, 0], [9, 2, 3]]),
        cand_mask=torch.tensor([[True, True, True], [True, True, False], [True, True, True]]),
    )
    with torch.no_grad():
        a = model(batch, lambda r: features.gather(r, names), dedup=True)
        b = model(batch, lambda r: features.gather(r, names), dedup=False)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert a[1, 2] == torch.finfo(a.dtype).min  # a padded candidate never wins
    assert torch.isfinite(a[2]).all()  # an all-padding history still scores


def test_empty_history_gives_a_finite_learned_vector() -> None:
    encoder = NRMSUserEncoder(16, UserEncoderConfig(heads=4, query_dim=8)).eval()
    hist = torch.randn(3, 5, 16)
    mask = torch.tensor([[True, True, False, False, False], [False] * 5, [True] * 5])
    with torch.no_grad():
        users = encoder(hist, mask)
        changed = encoder(hist.masked_fill(~mask[..., None], 99.0), mask)
    assert torch.isfinite(users).all()
    torch.testing.assert_close(users[1], encoder.empty_user)
    torch.testing.assert_close(users, changed)  # padded history slots are ignored
