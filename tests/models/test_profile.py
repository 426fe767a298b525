"""The profile option scores the history's subcategory and category shares with learned weights."""

from __future__ import annotations

import pytest
import torch

from mmnewsrec.config import UserEncoderConfig
from mmnewsrec.errors import ConfigError
from mmnewsrec.models.news_encoders import ModelContext, NewsEncoder
from mmnewsrec.models.profile import ProfileNewsEncoder, ProfileUserEncoder
from mmnewsrec.models.user_encoders import NRMSUserEncoder


class Fixed(NewsEncoder):
    """Content vectors looked up by news row: the profile part is what the test is about."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table, self.dim = table, table.shape[1]

    def inputs(self) -> list[str]:
        return ["row"]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.table[inputs["row"]]


def test_the_profile_adds_weighted_history_shares_to_the_score() -> None:
    torch.manual_seed(0)
    context = ModelContext(num_categories=4, num_subcategories=6)
    content = torch.randn(5, 8)  # 5 news
    news = ProfileNewsEncoder(Fixed(content), context)
    inner_user = NRMSUserEncoder(8, UserEncoderConfig(heads=2, query_dim=4, dropout=0.0)).eval()
    user = ProfileUserEncoder(inner_user, 8)
    subcategory, category = torch.tensor([2, 2, 3, 5, 2]), torch.tensor([1, 1, 1, 3, 1])
    vectors = news({"row": torch.arange(5), "subcategory": subcategory, "category": category})  # (5, 8 + 6 + 4)
    assert vectors.shape == (5, 18) and news.dim == 18
    history = torch.tensor([[0, 1, 3, 0]])  # clicks on news 0, 1 (subcategory 2), 3 (subcategory 5); one pad
    mask = torch.tensor([[True, True, True, False]])
    user_vec = user(vectors[history], mask)[0]  # (18,)
    base = inner_user(content[history], mask)[0]
    for candidate, (sub_share, cat_share) in {4: (2 / 3, 2 / 3), 2: (0.0, 2 / 3), 3: (1 / 3, 1 / 3)}.items():
        expected = base @ content[candidate]
        expected += news.subcategory_scale**2 * sub_share + news.category_scale**2 * cat_share
        torch.testing.assert_close(user_vec @ vectors[candidate], expected)
    empty = user(vectors[history], torch.zeros_like(mask))[0]
    assert torch.isfinite(empty).all() and (empty[8:] == 0).all()  # no history: no profile


def test_the_posterior_profile_adds_weighted_log_smoothed_shares() -> None:
    torch.manual_seed(0)
    context = ModelContext(num_categories=4, num_subcategories=6)
    content = torch.randn(5, 8)
    news = ProfileNewsEncoder(Fixed(content), context, posterior=True)
    inner_user = NRMSUserEncoder(8, UserEncoderConfig(heads=2, query_dim=4, dropout=0.0)).eval()
    user = ProfileUserEncoder(inner_user, 8, num_subcategories=6, num_categories=4)
    with torch.no_grad():  # a prior and concentrations away from their initial values
        user.prior_logits[0].copy_(torch.randn(6))
        user.prior_logits[1].copy_(torch.randn(4))
        user.concentration.copy_(torch.tensor([0.3, -0.5]))
        user.posterior_scale.copy_(torch.tensor([0.7, 0.2]))
    subcategory, category = torch.tensor([2, 2, 3, 5, 2]), torch.tensor([1, 1, 1, 3, 1])
    vectors = news({"row": torch.arange(5), "subcategory": subcategory, "category": category})
    assert vectors.shape == (5, 8 + 2 * (6 + 4)) and news.dim == 28
    history = torch.tensor([[0, 1, 3, 0]])  # subcategories 2, 2, 5 (categories 1, 1, 3); one pad
    mask = torch.tensor([[True, True, True, False]])
    user_vec = user(vectors[history], mask)[0]
    base = inner_user(content[history], mask)[0]
    alpha = torch.nn.functional.softplus(user.concentration) + 1e-3
    prior_sub, prior_cat = torch.softmax(user.prior_logits[0], 0), torch.softmax(user.prior_logits[1], 0)
    clicks = 3.0
    for candidate, (sub, cat, sub_count, cat_count) in {4: (2, 1, 2, 2), 2: (3, 1, 0, 2), 3: (5, 3, 1, 1)}.items():
        expected = base @ content[candidate]
        expected += news.subcategory_scale**2 * sub_count / clicks + news.category_scale**2 * cat_count / clicks
        expected += user.posterior_scale[0] * torch.log((sub_count + alpha[0] * prior_sub[sub]) / (clicks + alpha[0]))
        expected += user.posterior_scale[1] * torch.log((cat_count + alpha[1] * prior_cat[cat]) / (clicks + alpha[1]))
        torch.testing.assert_close(user_vec @ vectors[candidate], expected)
    # No history: the shares are zero and the log part is the prior's.
    empty = user(vectors[history], torch.zeros_like(mask))[0]
    assert torch.isfinite(empty).all()
    torch.testing.assert_close(empty[8 + 10 : 8 + 16], user.posterior_scale[0] * torch.log(prior_sub))
    # The smoothing shrinks: one click in a subcategory says less than ten clicks out of ten.
    one = user(vectors[torch.tensor([[0]])], torch.tensor([[True]]))[0]
    ten = user(vectors[torch.tensor([[0] * 10])], torch.ones(1, 10, dtype=torch.bool))[0]
    assert one[8 + 10 + 2] < ten[8 + 10 + 2]
    assert one[8 + 10 + 3] > ten[8 + 10 + 3]  # an unclicked subcategory: less unlikely after one click than ten


def test_the_posterior_profile_needs_the_profile() -> None:
    with pytest.raises(ConfigError, match="model.user.profile_posterior.*model.user.profile: true"):
        UserEncoderConfig(profile_posterior=True)
    assert UserEncoderConfig(profile=True, profile_posterior=True).profile_posterior


def test_content_init_zero_starts_from_the_profile_alone_and_the_content_part_still_learns() -> None:
    torch.manual_seed(0)
    context = ModelContext(num_categories=4, num_subcategories=6)
    content = torch.randn(5, 8)
    news = ProfileNewsEncoder(Fixed(content), context, posterior=True)
    inner_user = NRMSUserEncoder(8, UserEncoderConfig(heads=2, query_dim=4, dropout=0.0)).eval()
    user = ProfileUserEncoder(inner_user, 8, num_subcategories=6, num_categories=4, content_init=0.0)
    subcategory, category = torch.tensor([2, 2, 3, 5, 2]), torch.tensor([1, 1, 1, 3, 1])
    vectors = news({"row": torch.arange(5), "subcategory": subcategory, "category": category})
    history, mask = torch.tensor([[0, 1, 3]]), torch.ones(1, 3, dtype=torch.bool)
    user_vec = user(vectors[history], mask)[0]
    assert (user_vec[:8] == 0).all()  # the first ranking is the profile's alone
    (user_vec @ vectors[4]).backward(retain_graph=True)
    assert user.content_scale.grad is not None and user.content_scale.grad.abs() > 0  # it can grow
    with torch.no_grad():  # at scale 1 the same weights add NRMS's dot product of the content parts
        nrms = ProfileUserEncoder(inner_user, 8, num_subcategories=6, num_categories=4)
        base = inner_user(content[history], mask)[0]
        torch.testing.assert_close(nrms(vectors[history], mask)[0] @ vectors.T, user_vec @ vectors.T + content @ base)
    # A run saved before the scale existed loads at 1: it scores as it did.
    old = {k: v for k, v in nrms.state_dict().items() if k != "content_scale"}
    again = ProfileUserEncoder(inner_user, 8, num_subcategories=6, num_categories=4, content_init=0.0)
    again.load_state_dict(old)
    assert float(again.content_scale.detach()) == 1.0


def test_content_init_is_checked() -> None:
    with pytest.raises(ConfigError, match="model.user.content_init.*profile: true"):
        UserEncoderConfig(content_init=0.0)
    with pytest.raises(ConfigError, match="model.user.content_init: must be a number >= 0"):
        UserEncoderConfig(profile=True, content_init=-1.0)
