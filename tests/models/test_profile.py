"""The profile option scores the history's subcategory and category shares with learned weights."""

from __future__ import annotations

import torch

from mmnewsrec.config import UserEncoderConfig
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
