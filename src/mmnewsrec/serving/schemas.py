"""The HTTP API's request and response bodies (pydantic): bad input is refused naming the field."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

#: Largest k, news per POST /news, candidates per /rank.
MAX_K, MAX_NEWS_PER_REQUEST, MAX_CANDIDATES = 1000, 5000, 1000

Id = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^\S+$")]
Text = Annotated[str, Field(max_length=20_000)]
#: An id in a URL path (user or news).
PathId = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^\S+$")]
Time = Annotated[int, Field(ge=0, le=2**40, description="Unix seconds; default: now")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewsIn(Strict):
    news_id: Id
    category: Annotated[str, Field(min_length=1, max_length=256)]
    subcategory: Annotated[str, Field(max_length=256)] = ""
    title: Text = ""
    abstract: Text = ""


class NewsBatch(Strict):
    news: Annotated[list[NewsIn], Field(min_length=1, max_length=MAX_NEWS_PER_REQUEST)]
    time: Time | None = None


class ClickIn(Strict):
    news_id: Id
    time: Time | None = None
    click_id: Id | None = Field(None, description="idempotency key: a click posted twice with one id counts once")


class ImpressionIn(Strict):
    shown: Annotated[list[Id], Field(min_length=1, max_length=MAX_CANDIDATES)]
    clicked: Annotated[list[Id], Field(max_length=MAX_CANDIDATES)] = []
    time: Time | None = None
    impression_id: Id | None = Field(None, description="idempotency key")


class RankIn(Strict):
    history: Annotated[list[Id], Field(max_length=1000)] = []
    candidates: Annotated[list[Id], Field(min_length=1, max_length=MAX_CANDIDATES)]
    time: Time | None = None


class Scored(BaseModel):
    news_id: str
    score: float


class RecommendationOut(Scored):
    category: str
    subcategory: str
    title: str
    abstract: str
    has_image: bool = Field(description="the image is at GET /news/{news_id}/image")


class Recommendations(BaseModel):
    user_id: str
    recommendations: list[RecommendationOut]


class HistoryItem(BaseModel):
    news_id: str
    time: int
    title: str = ""
    category: str = ""


class Explanation(BaseModel):
    news_id: str
    title: str
    weight: float = Field(description="share of the user vector's attention on this clicked news")
    similarity: float = Field(description="cosine similarity of this clicked news to the recommended one")


class Explanations(BaseModel):
    user_id: str
    news_id: str
    history: list[Explanation]


class UserOut(BaseModel):
    user_id: str
    history: list[HistoryItem]


class NewsOut(BaseModel):
    news_id: str
    category: str
    subcategory: str
    title: str
    abstract: str
    has_image: bool
    published: int = Field(description="Unix seconds the service first got the news")
    candidate: bool = Field(description="recommended (false once retired)")


class Ranking(BaseModel):
    ranking: list[Scored]
