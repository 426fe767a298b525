"""Knowledge entities in the model: the entity profile scores the candidate's entities by the
smoothed share of the user's clicks that name them; the branch and the profile start silent."""

from __future__ import annotations

import pyarrow as pa
import torch

from mmnewsrec.config import EntityConfig, UserEncoderConfig
from mmnewsrec.features.entities import EntityBuilder, entity_bucket
from mmnewsrec.models.entities import EntityNewsEncoder, EntityUserEncoder
from mmnewsrec.models.user_encoders import NRMSUserEncoder

from .test_profile import Fixed


def test_entity_ids_are_stable_hashed_buckets_padded_to_a_fixed_width() -> None:
    news = pa.table(
        {
            "title_entities": ['[{"WikidataId": "Q1"}, {"WikidataId": "Q2", "Confidence": 0.5}]', "", "[]"],
            "abstract_entities": ['[{"WikidataId": "Q2"}, {"WikidataId": "Q3"}]', '[{"WikidataId": "Q9"}]', ""],
        }
    )
    builder = EntityBuilder(max_entities=2, buckets=64)
    arrays = builder.compute(news, __import__("numpy").arange(3))
    assert arrays["entity_ids"].tolist() == [
        [entity_bucket("Q1", 64), entity_bucket("Q2", 64)],
        [entity_bucket("Q9", 64), 0],
        [0, 0],
    ]
    assert arrays["entity_mask"].tolist() == [[True, True], [True, False], [False, False]]
    assert arrays["entity_confidence"].tolist() == [[1.0, 0.5], [1.0, 0.0], [0.0, 0.0]]
    assert entity_bucket("Q910409", 4096) == entity_bucket("Q910409", 4096) and 1 <= entity_bucket("Q1", 3) <= 3
    assert len(set(builder.row_hashes(news))) == 3 and builder.spec().key() != EntityBuilder(2, 32).spec().key()


def test_the_entity_profile_adds_the_mean_log_smoothed_share_of_the_candidates_entities() -> None:
    torch.manual_seed(0)
    content = torch.randn(4, 8)
    config = EntityConfig(branch=False, buckets=16, profile_buckets=8)
    news = EntityNewsEncoder(Fixed(content), config)
    inner_user = NRMSUserEncoder(8, UserEncoderConfig(heads=2, query_dim=4, dropout=0.0)).eval()
    user = EntityUserEncoder(inner_user, 8, 8)
    with torch.no_grad():
        user.scale.fill_(0.7)
        user.offset.fill_(-0.3)
        user.prior_logits.copy_(torch.randn(8))
        user.concentration.fill_(0.4)
    # Buckets 1..16 map to profile buckets (b - 1) % 8: ids 1 and 9 share profile bucket 0.
    ids = torch.tensor([[1, 2, 0], [2, 0, 0], [3, 9, 0], [0, 0, 0]])  # news 3 names no entity
    inputs = {"row": torch.arange(4), "entity_ids": ids, "entity_mask": ids > 0}
    vectors = news(inputs)
    assert vectors.shape == (4, 8 + 2 * 8 + 1) and news.dim == 25
    history, mask = torch.tensor([[0, 1, 0]]), torch.tensor([[True, True, False]])  # clicks on news 0 and 1
    user_vec = user(vectors[history], mask)[0]
    base = inner_user(content[history], mask)[0]
    alpha = torch.nn.functional.softplus(torch.tensor(0.4)) + 1e-3
    prior = torch.softmax(user.prior_logits.detach(), 0)
    counts = torch.zeros(8)
    counts[0], counts[1] = 1, 2  # profile bucket 0: news 0; bucket 1: news 0 and 1

    def share(bucket: int) -> torch.Tensor:
        return torch.log(counts[bucket] + alpha * prior[bucket]) - torch.log(torch.tensor(2.0) + alpha)

    expected = {
        0: base @ content[0] + 0.7 * (share(0) + share(1)) / 2 - 0.3,
        2: base @ content[2] + 0.7 * (share(2) + share(0)) / 2 - 0.3,
        3: base @ content[3],  # no entity: no profile term, no offset
    }
    for candidate, value in expected.items():
        torch.testing.assert_close(user_vec @ vectors[candidate], value)
    empty = user(vectors[history], torch.zeros_like(mask))[0]
    assert torch.isfinite(empty).all()


def test_entities_start_silent_so_the_first_ranking_is_the_models_without_them() -> None:
    content = torch.randn(4, 8)
    inner_user = NRMSUserEncoder(8, UserEncoderConfig(heads=2, query_dim=4, dropout=0.0)).eval()
    news = EntityNewsEncoder(Fixed(content), EntityConfig(buckets=16, profile_buckets=8, dim=6)).eval()
    user = EntityUserEncoder(inner_user, 8, 8)
    ids = torch.tensor([[1, 2], [2, 0], [3, 9], [0, 0]])
    vectors = news({"row": torch.arange(4), "entity_ids": ids, "entity_mask": ids > 0})
    torch.testing.assert_close(vectors[:, :8], content)  # the branch adds nothing yet
    mask = torch.tensor([[True, True, False]])
    scores = user(vectors[torch.tensor([[0, 1, 2]])], mask)[0] @ vectors.T
    torch.testing.assert_close(scores, inner_user(content[torch.tensor([[0, 1, 2]])], mask)[0] @ content.T)


def test_the_branch_adds_to_the_content_and_leaves_a_category_profiles_codes_alone() -> None:
    """With model.user.profile the news vector ends with the codes its user side counts: the entity
    branch must not move them (it did, and the counts went negative, the log shares NaN)."""
    from mmnewsrec.config import ModelConfig, PrecomputedEncoderConfig
    from mmnewsrec.models.build import build_model
    from mmnewsrec.models.news_encoders import ModelContext

    config = ModelConfig(
        news=PrecomputedEncoderConfig(feature="txt", dim=8),
        user=UserEncoderConfig(heads=2, query_dim=4, profile=True, profile_posterior=True),
        entities=EntityConfig(buckets=16, profile_buckets=8, dim=6),
    )
    context = ModelContext(num_categories=3, num_subcategories=5, feature_dims={"frozen:txt": 12})
    model = build_model(config, context).eval()
    with torch.no_grad():
        for parameter in model.news_encoder.project.parameters():
            parameter.normal_()  # a branch that has learned something
    ids = torch.tensor([[1, 2], [0, 0]])
    inputs = {"frozen:txt": torch.randn(2, 12), "category": torch.tensor([0, 2]), "subcategory": torch.tensor([1, 4])}
    vectors = model.news_encoder({**inputs, "entity_ids": ids, "entity_mask": ids > 0})
    codes = model.news_encoder.inner(inputs)[:, 8:]  # the category profile's part, without entities
    torch.testing.assert_close(vectors[:, 8 : 8 + codes.shape[1]], codes)
    assert not torch.allclose(vectors[0, :8], model.news_encoder.inner(inputs)[0, :8])  # the branch moved this
