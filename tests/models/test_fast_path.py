"""The fast evaluation path scores exactly like the full forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmnewsrec.batching.batch import ImpressionArrays, impression_batches
from mmnewsrec.config import ExperimentConfig, from_dict
from mmnewsrec.evaluation.evaluate import evaluate
from mmnewsrec.models.build import build_model
from mmnewsrec.workflows.train import prepare


@pytest.mark.parametrize("profile", [False, True])
def test_fast_path_equals_forward(profile: bool, tiny_mind: Path, tiny_bert: Path, tmp_path: Path) -> None:
    config = from_dict(
        ExperimentConfig,
        {
            "data": {"root": str(tiny_mind)},
            "features": {"cache_dir": str(tmp_path)},
            "model": {
                "news": {"type": "text", "dim": 32, "max_length": 16, "text": {"model": str(tiny_bert)}},
                "user": {"heads": 4, "query_dim": 16, "profile": profile},
            },
        },
    )
    prepared = prepare(config)
    torch.manual_seed(0)
    model = build_model(config.model, prepared.context).eval()
    arrays = ImpressionArrays.from_split(prepared.dataset, "dev").subset(np.arange(40))
    fast = evaluate(model, prepared.features, arrays, history_len=20, batch_size=16)
    names = model.news_encoder.inputs()
    slow = []
    with torch.no_grad():
        for _, batch in impression_batches(arrays, batch_size=4, history_len=20):
            logits = model(batch, lambda rows: prepared.features.gather(rows, names), dedup=False)
            slow.append(logits[batch.cand_mask].numpy())
    np.testing.assert_allclose(fast.scores, np.concatenate(slow), atol=1e-4, rtol=1e-4)
    assert fast.metrics is not None and fast.metrics.impressions + fast.metrics.skipped_impressions == 40
