"""The training speed-ups change the cost of a step, not what the model computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmnewsrec.batching.batch import Batch
from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import (
    BackboneConfig,
    LoraConfig,
    ModelConfig,
    TextEncoderConfig,
    TrainingConfig,
    UserEncoderConfig,
)
from mmnewsrec.errors import ConfigError
from mmnewsrec.models.build import build_model, load_weights, save_weights
from mmnewsrec.models.news_encoders import ModelContext
from mmnewsrec.models.recommender import NewsVectorCache
from mmnewsrec.training.loop import build_optimizer

from .conftest import LENGTH, N_NEWS, VOCAB


def model_for(features: NewsFeatures, backbone: BackboneConfig, seed: int = 0):
    context = ModelContext(feature_dims={n: features.dim(n) for n in features.names()}, vocab_size=VOCAB)
    config = ModelConfig(
        news=TextEncoderConfig(dim=32, text=backbone, max_length=LENGTH),
        user=UserEncoderConfig(heads=4, query_dim=16),
    )
    torch.manual_seed(seed)
    return build_model(config, context).eval()


def encode(model, features: NewsFeatures, rows: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.encode_news(features.gather(rows, model.news_encoder.inputs()))


def test_cached_lower_layers_give_the_full_backbones_vectors(
    features: NewsFeatures,
    tiny_bert: Path,
    tmp_path: Path,
) -> None:
    full = model_for(features, BackboneConfig(model=str(tiny_bert), train_layers=1, pooling="mean"))
    backbone = BackboneConfig(model=str(tiny_bert), train_layers=1, cache_frozen=True, pooling="mean")
    cached = model_for(features, backbone)
    assert "title_ids" in full.news_encoder.inputs() and "title_ids" not in cached.news_encoder.inputs()
    # Same weight files either way: what one trains, the other loads.
    save_weights(full, tmp_path)
    load_weights(cached, tmp_path)
    rows = torch.arange(N_NEWS)
    torch.testing.assert_close(encode(cached, features, rows), encode(full, features, rows), atol=5e-3, rtol=5e-3)


def test_cache_frozen_needs_trained_top_layers_of_pretrained_weights() -> None:
    with pytest.raises(ConfigError, match="cache_frozen"):
        BackboneConfig(model="m", cache_frozen=True)  # train_layers -1: nothing is frozen
    with pytest.raises(ConfigError, match="cache_frozen"):
        BackboneConfig(model="m", train_layers=2, cache_frozen=True, pretrained=False)


def test_lora_starts_at_the_backbone_and_trains_only_adapters(
    features: NewsFeatures,
    tiny_bert: Path,
) -> None:
    plain = model_for(features, BackboneConfig(model=str(tiny_bert)))
    lora = model_for(features, BackboneConfig(model=str(tiny_bert), train_layers=1, lora=LoraConfig(rank=4)))
    lora.news_encoder.project.load_state_dict(plain.news_encoder.project.state_dict())
    rows = torch.arange(N_NEWS)
    # Adapters start as a zero update (B = 0): the same vectors as the untouched backbone.
    torch.testing.assert_close(encode(lora, features, rows), encode(plain, features, rows))
    trainable = [name for name, p in lora.news_encoder.backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name and "layer.1." in name for name in trainable)  # top layer only
    # Adapters are new weights: they take training.lr, not the pretrained learning rate.
    optimizer = build_optimizer(lora, TrainingConfig(lr=1e-3, pretrained_lr=1e-5))
    new_group = {id(p) for p in optimizer.param_groups[0]["params"]}
    assert all(id(p) in new_group for p in lora.news_encoder.backbone.parameters() if p.requires_grad)
    assert len(optimizer.param_groups) == 1  # no trainable pretrained weight is left


def test_lora_with_unknown_targets_names_the_field(features: NewsFeatures, tiny_bert: Path) -> None:
    with pytest.raises(ConfigError, match="backbone.lora.targets"):
        model_for(features, BackboneConfig(model=str(tiny_bert), lora=LoraConfig(targets=("no_such_module",))))


BATCH = Batch(
    hist_rows=torch.tensor([[1, 2, 3, 0], [4, 1, 0, 0], [0, 0, 0, 0]]),
    hist_mask=torch.tensor([[True, True, True, False], [True, True, False, False], [False] * 4]),
    cand_rows=torch.tensor([[5, 6, 1], [7, 8, 0], [9, 2, 3]]),
    cand_mask=torch.tensor([[True, True, True], [True, True, False], [True, True, True]]),
    targets=torch.zeros(3, dtype=torch.long),
)


def test_history_cache_scores_like_the_full_forward_when_fresh(
    features: NewsFeatures,
    tiny_bert: Path,
) -> None:
    model = model_for(features, BackboneConfig(model=str(tiny_bert), train_layers=1, cache_frozen=True))
    names = model.news_encoder.inputs()
    cache = NewsVectorCache(N_NEWS, model.news_encoder.body_dim, max_age=1)
    with torch.no_grad():
        plain = model(BATCH, lambda r, only=None: features.gather(r, names if only is None else only))
        cached = model(
            BATCH, lambda r, only=None: features.gather(r, names if only is None else only), history_cache=cache
        )
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=1e-4)
    assert cache.recomputed == 1  # history news 1..4: only 4 was not a candidate of this batch


def test_history_cache_reuses_vectors_until_they_are_max_age_steps_old(
    features: NewsFeatures,
    tiny_bert: Path,
) -> None:
    model = model_for(features, BackboneConfig(model=str(tiny_bert), train_layers=1, cache_frozen=True)).train()
    names = model.news_encoder.inputs()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    cache = NewsVectorCache(N_NEWS, model.news_encoder.body_dim, max_age=2)
    history_only = torch.tensor([4])  # in a history, never a candidate

    def step() -> None:
        logits = model(
            BATCH, lambda r, only=None: features.gather(r, names if only is None else only), history_cache=cache
        )
        loss = torch.nn.functional.cross_entropy(logits, BATCH.targets)
        loss.backward()
        # The encoder's head gets gradients (from candidates and, over cached bodies, histories).
        assert model.news_encoder.project[1].weight.grad.abs().sum() > 0
        optimizer.step()
        optimizer.zero_grad()
        cache.tick()

    step()
    first = cache.vectors[history_only].clone()
    assert cache.stamps[history_only].item() == 0
    step()  # one step old: reused, not recomputed
    torch.testing.assert_close(cache.vectors[history_only], first)
    assert cache.stamps[history_only].item() == 0
    step()  # two steps old: recomputed with the updated weights
    assert cache.stamps[history_only].item() == 2
    assert not torch.allclose(cache.vectors[history_only], first)


def test_history_cache_rejects_a_zero_age() -> None:
    with pytest.raises(ValueError, match="max_age"):
        NewsVectorCache(4, 8, max_age=0)
    with pytest.raises(ConfigError, match="history_cache_steps"):
        TrainingConfig(history_cache_steps=-1)


def test_optimisations_are_config_switches() -> None:
    values = np.array([TrainingConfig().history_cache_steps, int(TrainingConfig().dedup_news)])
    assert values.tolist() == [0, 1]  # history cache off, dedup on, by default


@pytest.mark.parametrize("cache_frozen", [False, True])
def test_length_sorted_chunks_give_the_same_vectors(
    features: NewsFeatures, tiny_bert: Path, cache_frozen: bool
) -> None:
    backbone = BackboneConfig(model=str(tiny_bert), train_layers=1, cache_frozen=cache_frozen, pooling="mean")
    model = model_for(features, backbone)
    rows = torch.arange(N_NEWS)
    whole = encode(model, features, rows)  # one call: N_NEWS <= chunk_size
    model.news_encoder.chunk_size = 5  # three chunks of different widths
    torch.testing.assert_close(encode(model, features, rows), whole, atol=1e-5, rtol=1e-4)


def test_history_cache_stores_dropout_free_vectors(features: NewsFeatures, tiny_bert: Path) -> None:
    model = model_for(features, BackboneConfig(model=str(tiny_bert), train_layers=1, cache_frozen=True))
    names = model.news_encoder.inputs()
    reference = model.news_encoder.body(features.gather(torch.tensor([4]), names)).detach()  # eval mode
    model.train()  # dropout on
    cache = NewsVectorCache(N_NEWS, model.news_encoder.body_dim, max_age=1)
    model(BATCH, lambda r, only=None: features.gather(r, names if only is None else only), history_cache=cache)
    torch.testing.assert_close(cache.vectors[4], reference[0])
    assert model.training and model.news_encoder.training  # the mode is restored
