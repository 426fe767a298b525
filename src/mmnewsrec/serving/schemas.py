"""The HTTP API's request and response bodies (pydantic): bad input is refused naming the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from mmnewsrec.serving.records import ID_PATTERN, RequestError

#: Largest k, news per POST /news, candidates per /rank.
MAX_K, MAX_NEWS_PER_REQUEST, MAX_CANDIDATES = 1000, 5000, 1000
#: The largest time a request may carry, before the server's clock (:class:`ClientTimes`) is asked.
TIME_LIMIT = 2**40

#: A user or news id: the one rule the service checks too (:data:`ID_PATTERN`).
Id = Annotated[str, Field(min_length=1, max_length=256, pattern=ID_PATTERN)]
Text = Annotated[str, Field(max_length=20_000)]
#: An id in a URL path (user or news); undecodable ``%XX`` bytes become U+FFFD, which it refuses.
PathId = Annotated[str, Path(min_length=1, max_length=256, pattern=ID_PATTERN)]


def _seconds(value: object) -> object:
    """A number of seconds stays one: ``true`` and ``"5"`` are refused (JSON Schema's integer takes
    ``5.0``, so an integral float is taken; ``5.5`` is still refused)."""
    if isinstance(value, (bool, str)):
        raise ValueError("should be a number of Unix seconds, not text or true/false")
    return value


Time = Annotated[
    int,
    Field(
        ge=0,
        le=TIME_LIMIT,
        description="Unix seconds; default: the server's clock. Never more than a minute ahead of "
        "it: the document's maximum is the server's clock when it was fetched",
    ),
    BeforeValidator(_seconds),  # after the bounds, so that they stay the schema's minimum and maximum
]


@dataclass(frozen=True)
class ClientTimes:
    """Which times a client may give for its clicks, impressions, news and rankings.

    Without one, an event happens at the server's clock. A client time is taken when it is at most
    ``ahead`` seconds past the server's clock (clocks differ a little); a later one is refused (422),
    since it would hold the "last 24 hours" popularity window open for every user. Earlier times are
    taken (a backfill of clicks, a replay), and a click dated more than a day back never counts as a
    recent click.
    """

    ahead: int = 60

    def resolve(self, time: int | None, now: float, field: str = "time") -> int:
        """``time`` checked against the server's clock ``now``, or ``now`` when it is None."""
        now = int(now)
        if time is None:
            return now
        if time > now + self.ahead:
            raise FieldRefused(
                f"{field}: {time} is {time - now} s ahead of the server's clock; at most {self.ahead} s "
                "ahead is taken (leave it out to use the server's time)"
            )
        return time


class FieldRefused(RequestError):
    """A field of the right type that the service cannot take now (HTTP 422): a time ahead of its
    clock, a category no news has."""


class Strict(BaseModel):
    """A request body: unknown fields refused. Strings are never coerced from other types, and times
    never from text or booleans (:func:`_seconds`)."""

    model_config = ConfigDict(extra="forbid")


class NewsIn(Strict):
    news_id: Id
    category: Annotated[str, Field(min_length=1, max_length=256)]
    subcategory: Annotated[str, Field(max_length=256)] = ""
    title: Text = ""
    abstract: Text = ""
    entities: Annotated[
        list[Id],
        Field(max_length=64, description="Wikidata ids of the knowledge entities it names (news.tsv's), title first"),
    ] = []


class NewsBatch(Strict):
    news: Annotated[list[NewsIn], Field(min_length=1, max_length=MAX_NEWS_PER_REQUEST)]
    time: Time | None = None


class ClickIn(Strict):
    news_id: Id
    time: Time | None = None
    click_id: Id | None = Field(None, description="idempotency key: a click posted twice with one id counts once")


class ImpressionIn(Strict):
    shown: Annotated[list[Id], Field(min_length=1, max_length=MAX_CANDIDATES, description="the news displayed")]
    clicked: Annotated[
        list[Id],
        Field(max_length=MAX_CANDIDATES, description="the news clicked; one not listed in shown was shown too"),
    ] = []
    time: Time | None = None
    impression_id: Id | None = Field(None, description="idempotency key")

    def displayed(self) -> list[str]:
        """The shown news, and any clicked news the client left out of them (it was on screen)."""
        listed = set(self.shown)
        return [*self.shown, *dict.fromkeys(c for c in self.clicked if c not in listed)]


class RankIn(Strict):
    history: Annotated[list[Id], Field(max_length=1000)] = []
    candidates: Annotated[
        list[Id], Field(min_length=1, max_length=MAX_CANDIDATES, json_schema_extra={"uniqueItems": True})
    ]  # distinct: the service refuses a repeated one (400)
    time: Time | None = None


class ErrorOut(BaseModel):
    """Every error the API answers: 4xx for a bad request, 503 while a part is unavailable."""

    error: str = Field(description="what was wrong, naming the field, id or part")


class Scored(BaseModel):
    news_id: str
    score: float


class RecommendationOut(Scored):
    category: str
    subcategory: str
    title: str
    abstract: str
    has_image: bool = Field(description="the image is at GET /news/{news_id}/image")
    pipeline: str = Field(description="the feed pipeline that made the list (serve --pipeline, ?pipeline=)")


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
    entities: list[str] = Field(default_factory=list, description="Wikidata ids of the knowledge entities it names")
    published: int = Field(description="Unix seconds the service first got the news")
    candidate: bool = Field(description="recommended (false once retired)")


class Ranking(BaseModel):
    ranking: list[Scored]
