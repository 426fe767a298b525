"""The fast evaluation path scores exactly like the full forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmnewsrec.batching.batch import ImpressionArrays, impression_batches
from mmnewsrec.config import ExperimentConfig, from_dict
from mmnewsrec.data.popularity import LogCounters
from mmnewsrec.evaluation.evaluate import evaluate, with_log_counters
from mmnewsrec.models.build import build_model
from mmnewsrec.workflows.train import prepare


@pytest.mark.parametrize(
    ("profile", "scorer"),
    [
        (False, "dot"),
        (True, "dot"),
        ("posterior", "dot"),
        (False, "popularity"),
        (False, "dot_bias"),
        (False, "transformer"),
    ],
)
def test_fast_path_equals_forward(
    profile: bool | str, scorer: str, tiny_mind: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    config = from_dict(
        ExperimentConfig,
        {
            "data": {"root": str(tiny_mind)},
            "features": {"cache_dir": str(tmp_path)},
            "model": {
                "news": {"type": "text", "dim": 32, "max_length": 16, "text": {"model": str(tiny_bert)}},
                "user": {
                    "type": "sequence" if scorer == "transformer" else "nrms",
                    "heads": 4,
                    "query_dim": 16,
                    "profile": bool(profile),
                    "profile_posterior": profile == "posterior",
                },
                "scorer": scorer,
                "transformer": {"d_model": 16, "heads": 4, "layers": 2, "feedforward": 32},
            },
        },
    )
    prepared = prepare(config)
    torch.manual_seed(0)
    model = build_model(config.model, prepared.context).eval()
    dev = prepared.dataset["dev"]
    arrays = ImpressionArrays.from_split(prepared.dataset, "dev")
    arrays = with_log_counters(config, arrays, dev, LogCounters.of_split(prepared.dataset["train"])).subset(
        np.arange(40)
    )
    assert (arrays.cand_stats is not None) == (scorer == "popularity")
    fast = evaluate(model, prepared.features, arrays, history_len=20, batch_size=16)
    names = model.news_encoder.inputs()
    slow = []
    with torch.no_grad():
        for _, batch in impression_batches(arrays, batch_size=4, history_len=20):
            logits = model(batch, lambda rows: prepared.features.gather(rows, names), dedup=False)
            slow.append(logits[batch.cand_mask].numpy())
    np.testing.assert_allclose(fast.scores, np.concatenate(slow), atol=1e-4, rtol=1e-4)
    assert fast.metrics is not None and fast.metrics.impressions + fast.metrics.skipped_impressions == 40


def test_the_popularity_scorer_scores_missing_counters_as_never_shown() -> None:
    from mmnewsrec.data.popularity import NEVER_SHOWN
    from mmnewsrec.models.scorers import PopularityScorer

    torch.manual_seed(0)
    scorer = PopularityScorer(8)
    user, cands = torch.randn(2, 8), torch.randn(2, 3, 8)
    fresh = torch.tensor(NEVER_SHOWN).expand(2, 3, -1)
    # Before the first step the learned popularity score is 0: the dot product plus the recent term.
    recent = fresh.clone()
    recent[:, :, 2] = torch.tensor([0.0, 1.0, 2.5])  # log1p(clicks in the last day)
    torch.testing.assert_close(scorer(user, cands, recent), torch.einsum("bd,bcd->bc", user, cands) + recent[..., 2])
    torch.nn.init.normal_(scorer.popularity[-1].weight)  # weights as training leaves them
    torch.testing.assert_close(scorer(user, cands), scorer(user, cands, fresh))
    shown = fresh.clone()
    shown[:, :, 0] = 3.0  # log1p(clicks): popular news score differently
    assert not torch.allclose(scorer(user, cands, shown), scorer(user, cands))
