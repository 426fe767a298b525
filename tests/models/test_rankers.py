"""The ranker contract: every user encoder + scorer pair, the study's Transformer ranker included,
scores candidates with the right shape, ignores history padding, scores a user the same whatever
else is in the batch, and survives a save / load round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import ConfigError, ModelConfig, from_dict
from mmnewsrec.models.build import build_model, load_weights, save_weights
from mmnewsrec.models.news_encoders import ModelContext
from mmnewsrec.models.scorers import SCORERS
from mmnewsrec.models.study_ranker import TransformerRanker, sinusoidal_positions

DIM = 24
SMALL_TRANSFORMER = {"d_model": 16, "heads": 4, "layers": 2, "feedforward": 32, "dropout": 0.1, "hidden": [8, 4]}
CASES = {
    "nrms-dot": {"user": {"heads": 4, "query_dim": 8}, "scorer": "dot"},
    "nrms-dot_bias": {"user": {"heads": 4, "query_dim": 8}, "scorer": "dot_bias"},
    "nrms-popularity": {"user": {"heads": 4, "query_dim": 8}, "scorer": "popularity"},
    "profile-dot": {"user": {"heads": 4, "query_dim": 8, "profile": True}, "scorer": "dot"},
    "posterior_profile-dot": {
        "user": {"heads": 4, "query_dim": 8, "profile": True, "profile_posterior": True},
        "scorer": "dot",
    },
    "sequence-transformer": {"user": {"type": "sequence"}, "scorer": "transformer", "transformer": SMALL_TRANSFORMER},
    "sequence-transformer-same-width": {
        "user": {"type": "sequence"},
        "scorer": "transformer",
        "transformer": {**SMALL_TRANSFORMER, "d_model": DIM},
    },
}


def test_every_registered_scorer_is_in_the_table() -> None:
    shipped = {name for name in SCORERS.names() if SCORERS.get(name).__module__.startswith("mmnewsrec.")}
    assert {case.split("-")[1] for case in CASES} == shipped


def make(case: str, features: NewsFeatures):
    values = {"news": {"type": "precomputed", "feature": "txt", "dim": DIM}, **CASES[case]}
    config = from_dict(ModelConfig, values)
    context = ModelContext(
        num_categories=4, num_subcategories=6, feature_dims={n: features.dim(n) for n in features.names()}
    )
    torch.manual_seed(0)
    return build_model(config, context).eval(), config, context


def scores_of(model, features: NewsFeatures, hist: torch.Tensor, mask: torch.Tensor, cands: torch.Tensor):
    """Shape: hist rows (B, H), mask (B, H), candidate rows (B, C) -> (B, C)."""
    names = model.news_encoder.inputs()
    with torch.no_grad():
        vectors = model.encode_news(features.gather(torch.arange(features.num_news), names))  # (N, D')
        state = model.encode_user(vectors[hist], mask)
        return model.score(state, vectors[cands]), state, vectors


@pytest.mark.parametrize("case", list(CASES))
def test_ranker_contract(case: str, features: NewsFeatures, tmp_path: Path) -> None:
    model, config, context = make(case, features)
    hist = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [0, 0, 0, 0, 0]])
    mask = torch.tensor([[True, True, True, False, False], [True] * 5, [False] * 5])
    cands = torch.tensor([[9, 10, 11], [1, 9, 2], [3, 4, 5]])
    scores, state, vectors = scores_of(model, features, hist, mask, cands)
    assert scores.shape == (3, 3) and torch.isfinite(scores).all()
    assert model.retrieval_query(state).shape == (3, vectors.shape[1])

    # Padding invariance: what lies in padded history slots, and how many there are, never matters.
    other_rows = torch.where(mask, hist, torch.full_like(hist, 11))
    torch.testing.assert_close(scores_of(model, features, other_rows, mask, cands)[0], scores)
    wider, wider_mask = torch.cat([hist, hist[:, :2]], 1), torch.cat([mask, torch.zeros(3, 2, dtype=torch.bool)], 1)
    torch.testing.assert_close(scores_of(model, features, wider, wider_mask, cands)[0], scores, atol=1e-5, rtol=1e-4)

    # Batch independence: a user's scores do not depend on the other users of the batch.
    for i in range(3):
        alone = scores_of(model, features, hist[i : i + 1], mask[i : i + 1], cands[i : i + 1])[0]
        torch.testing.assert_close(alone[0], scores[i], atol=1e-5, rtol=1e-4)
    # ... nor a candidate's on the other candidates.
    single = scores_of(model, features, hist, mask, cands[:, 1:2])[0]
    torch.testing.assert_close(single[:, 0], scores[:, 1], atol=1e-5, rtol=1e-4)

    # Save / load round trip.
    save_weights(model, tmp_path)
    torch.manual_seed(123)
    other = build_model(config, context).eval()
    load_weights(other, tmp_path)
    torch.testing.assert_close(scores_of(other, features, hist, mask, cands)[0], scores)


def test_the_study_ranker_has_the_studys_shape() -> None:
    ranker = TransformerRanker(768, from_dict(ModelConfig, {"user": {"type": "sequence"}, "scorer": "transformer"}))
    layers = ranker.encoder.layers
    assert len(layers) == 6 and isinstance(ranker.input, torch.nn.Identity)
    assert layers[0].self_attn.num_heads == 8 and layers[0].linear1.out_features == 2048
    assert layers[0].dropout.p == 0.1
    assert [(m.in_features, m.out_features) for m in ranker.head] == [(768, 256), (256, 16), (16, 2)]
    assert all(isinstance(m, torch.nn.Linear) for m in ranker.head)  # no activations between them


def test_the_candidate_follows_the_last_click_and_chunks_do_not_change_scores() -> None:
    torch.manual_seed(0)
    config = from_dict(
        ModelConfig, {"user": {"type": "sequence"}, "scorer": "transformer", "transformer": SMALL_TRANSFORMER}
    )
    ranker = TransformerRanker(12, config).eval()
    hist, cands = torch.randn(2, 4, 12), torch.randn(2, 5, 12)
    mask = torch.tensor([[True, True, False, False], [True] * 4])
    state = torch.cat([hist * mask[..., None], mask[..., None].float()], -1)
    with torch.no_grad():
        whole = ranker(state, cands)
        ranker.chunk_tokens = 5  # one (user, candidate) sequence at a time
        torch.testing.assert_close(ranker(state, cands), whole, atol=1e-5, rtol=1e-4)
        # The same two clicks left-padded: positions count real tokens, so the score is the same.
        left = torch.cat([torch.zeros(1, 2, 12), hist[:1, :2]], 1)
        left_state = torch.cat([left, torch.tensor([[[0.0], [0.0], [1.0], [1.0]]])], -1)
        torch.testing.assert_close(ranker(left_state, cands[:1]), whole[:1], atol=1e-5, rtol=1e-4)
    table = sinusoidal_positions(5, 16)
    assert torch.allclose(table[0, 0::2], torch.zeros(8)) and torch.allclose(table[0, 1::2], torch.ones(8))


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"scorer": "transformer"}, "model.scorer"),
        ({"user": {"type": "sequence"}}, "model.scorer"),
        ({"user": {"type": "sequence", "profile": True}, "scorer": "transformer"}, "model.user.profile"),
        (
            {"user": {"type": "sequence"}, "scorer": "transformer", "transformer": {"heads": 5}},
            "model.transformer.heads",
        ),
        (
            {"user": {"type": "sequence"}, "scorer": "transformer", "transformer": {"hidden": [0]}},
            "model.transformer.hidden",
        ),
    ],
)
def test_ranker_config_errors_name_the_field(values: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        from_dict(ModelConfig, values)


def test_projection_none_keeps_the_frozen_vector(features: NewsFeatures) -> None:
    context = ModelContext(num_categories=4, num_subcategories=6, feature_dims={"frozen:txt": 20})
    values = {
        "news": {"type": "precomputed", "feature": "txt", "dim": 20, "projection": "none"},
        "user": {"heads": 4},
    }
    model = build_model(from_dict(ModelConfig, values), context).eval()
    inputs = features.gather(torch.arange(4), ["frozen:txt"])
    torch.testing.assert_close(model.encode_news(inputs), inputs["frozen:txt"].float())
    with pytest.raises(ConfigError, match="model.news.dim: projection none"):
        build_model(from_dict(ModelConfig, {**values, "news": {**values["news"], "dim": 32}}), context)


def test_the_popularity_scorer_starts_from_the_recent_popularity_ranking_and_old_runs_score_as_before() -> None:
    from mmnewsrec.data.popularity import STAT_NAMES
    from mmnewsrec.models.scorers import PopularityScorer

    torch.manual_seed(0)
    scorer = PopularityScorer(8)
    user, cands = torch.zeros(1, 8), torch.zeros(1, 4, 8)  # no personal signal at all
    stats = torch.zeros(1, 4, len(STAT_NAMES))
    stats[0, :, STAT_NAMES.index("recent_clicks")] = torch.log1p(torch.tensor([0.0, 40.0, 3.0, 9.0]))
    scores = scorer(user, cands, stats)[0]
    assert scores.argsort(descending=True).tolist() == [1, 3, 2, 0]  # the baseline's ranking, first step
    old = {k: v for k, v in scorer.state_dict().items() if k != "recent"}  # saved before the term existed
    loaded = PopularityScorer(8)
    loaded.load_state_dict(old, strict=True)
    assert float(loaded.recent.detach()) == 0.0
    without = scores - torch.log1p(torch.tensor([0.0, 40.0, 3.0, 9.0]))
    torch.testing.assert_close(loaded(user, cands, stats)[0], without)
