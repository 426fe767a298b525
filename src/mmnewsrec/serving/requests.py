"""The values the live service takes and gives: recommendation requests, their plans, the
recommendations, and the service's request errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from mmnewsrec.serving.records import RequestError, check_id

#: How a user without clicks is served: the most clicked fresh news, or the model's empty-history
#: vector. ``mmnewsrec replay`` measures both on impressions of users without clicks: popularity
#: ranks better (AUC 0.624 vs 0.599 on synthetic small, 0.656 vs 0.498 on the realistic preset).
COLD_START = ("popularity", "model")


class Conflict(RequestError):
    """A request that reuses an idempotency key for something else (HTTP 409)."""


@dataclass(frozen=True)
class RecommendRequest:
    """What :meth:`RecommenderService.recommend` takes, as one value (for batches)."""

    user_id: str
    k: int = 10
    exclude_seen: bool = True
    categories: Sequence[str] | None = None
    max_age_hours: float | None = None
    time: int | None = None
    pipeline: str | None = None  # a feed pipeline's name (the service's default when None)


#: How a request is served (see :meth:`RecommenderService.recommend_many`).
Route = Literal["search", "rerank", "popular", "staged"]


@dataclass(frozen=True)
class Plan:
    """One recommendation request, planned: everything its route needs.

    Attributes:
        now: the request's time (Unix seconds).
        user: the user's state (the user encoder's output for the current history).
        history: the user's clicked news ids, oldest first.
        exclude: news left out (the history, unless ``exclude_seen`` is off).
        allowed: a (rows,) bool mask of the index's rows the filters allow, or None for all.
        route: ``search``, ``rerank``, ``popular`` or ``staged`` (a pipeline's stages after the scores).
        pipeline: the feed pipeline's name.
    """

    request: RecommendRequest
    now: int
    user: torch.Tensor
    history: list[str]
    exclude: frozenset[str]
    allowed: np.ndarray | None
    route: Route
    pipeline: str = "top-k"


@dataclass(frozen=True)
class Recommendation:
    news_id: str
    score: float
    category: str
    subcategory: str
    title: str
    abstract: str  # the first 240 characters
    has_image: bool
    pipeline: str = "top-k"  # the feed pipeline that served it


def check_user(user_id: str) -> None:
    check_id(user_id, "user id")
