"""Shared by the model tests: per-news features of a small catalogue, as the feature store gives them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmnewsrec.batching.features import NewsFeatures

N_NEWS, LENGTH, VOCAB = 12, 10, 60


def lower_states(bert: Path, ids: np.ndarray, mask: np.ndarray, layer: int) -> np.ndarray:
    """What the feature store caches for ``cache_frozen``: token states after ``layer``, padding zeroed."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(bert).eval()
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(ids.astype(np.int64)),
            attention_mask=torch.from_numpy(mask).long(),
            output_hidden_states=True,
        )
    return (out.hidden_states[layer].numpy() * mask[..., None]).astype(np.float16)


@pytest.fixture(scope="module")
def features(tiny_bert: Path) -> NewsFeatures:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, LENGTH + 1, size=N_NEWS)
    mask = np.arange(LENGTH)[None, :] < lengths[:, None]
    ids = np.where(mask, rng.integers(5, VOCAB, size=(N_NEWS, LENGTH)), 0)
    ids[:, 0] = 2  # [CLS]
    has_image = np.arange(N_NEWS) % 3 != 0
    pixels = rng.integers(0, 256, size=(N_NEWS, 3, 32, 32), dtype=np.uint8) * has_image[:, None, None, None]
    return NewsFeatures(
        {
            "title_ids": torch.from_numpy(ids.astype(np.int32)),
            "title_mask": torch.from_numpy(mask),
            "pixels": torch.from_numpy(pixels),
            "has_image": torch.from_numpy(has_image),
            "frozen:txt": torch.from_numpy(rng.standard_normal((N_NEWS, 20)).astype(np.float16)),
            "frozen:tok": torch.from_numpy(
                (rng.standard_normal((N_NEWS, LENGTH, 20)) * mask[..., None]).astype(np.float16)
            ),
            "frozen:tok:mask": torch.from_numpy(mask),
            "frozen:img": torch.from_numpy((rng.standard_normal((N_NEWS, 24)) * has_image[:, None]).astype(np.float16)),
            "frozen:img:has_image": torch.from_numpy(has_image),
            "frozen:lower_title": torch.from_numpy(lower_states(tiny_bert, ids, mask, layer=1)),
            "frozen:lower_title:mask": torch.from_numpy(mask),
            "category": torch.from_numpy(rng.integers(0, 4, N_NEWS)),
            "subcategory": torch.from_numpy(rng.integers(0, 6, N_NEWS)),
        }
    )
