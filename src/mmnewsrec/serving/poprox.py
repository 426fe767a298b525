"""The POPROX recommendation protocol, version 5: a run answers the platform's
``RecommendationRequestV5`` with a ``RecommendationResponseV5`` (``POST /poprox``).

The models below are written from the protocol as POPROX publishes it (``poprox-concepts``,
``api/recommendations/v5.py`` and the domain models it uses): the fields, their types and their
defaults, extra fields allowed where the protocol allows them (interest profile, candidate set).
A request's numbers, booleans and times are taken only as the JSON types its schema names (no
``false`` for an integer, no ``"1"`` for a number, no ``0`` for a time): what the schema calls
invalid is refused (422) rather than coerced.

How a request is answered:

* **Articles** (candidates and interacted ones) are encoded on the fly by the run's own news
  encoder: ``headline`` is the title; ``subhead`` the abstract (the start of ``body`` when there is
  no subhead); the ids of the mentioned entities (``external_id``, else ``entity_id``), most
  relevant first, are the entities. Image URLs are not fetched: for the model an article has no
  image (its ``images.missing`` policy). Vectors are kept by content, so the candidate pool that
  every reader's request repeats is encoded once.
* **Topics to categories.** A mention of type ``topic`` (most relevant first) gives the category:
  the topic itself when the run has it as a category (a run trained on POPROX-derived data), else
  the MIND category of :data:`TOPIC_CATEGORIES` (``Sports`` -> ``sports``, ``Business`` ->
  ``finance``, ``U.S. news`` -> ``news``/``newsus``...) when the run has it; otherwise the category
  is unknown (the vocabulary's ``<unk>``). Each impression's ``extra`` says which it was.
* **The user** is the profile's ``click_history`` (timestamp order when every click has one),
  each click looked up among the ``interacted`` articles. A click on an article that is not among
  them cannot be encoded: it is left out of the history and counted (the response header
  ``mmnewsrec-unmatched-clicks`` and the ``mmnewsrec_poprox_unmatched_clicks`` metric).
* **The list**: the ``num_recs`` best-scored unique candidates (a candidate id sent twice counts
  once, its first article); articles in ``impressed_article_ids`` (already sent to this reader)
  come only after every other candidate. One section, ``personalized`` when the history is not
  empty; ``recommender`` names the run, the library version and a hash of the run's weights and
  config. ``embeddings`` and ``article_packages`` are read and not used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Literal, TypeAlias
from uuid import UUID, uuid4

import numpy as np
import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, Strict, StrictBool, StrictInt

from mmnewsrec import __version__
from mmnewsrec.serving.predictor import Predictor, torch_threads
from mmnewsrec.serving.records import NewsRecord, RequestError, check_id
from mmnewsrec.serving.schemas import FieldRefused

Extra: TypeAlias = dict[str, JsonValue]
EntityType: TypeAlias = Literal["topic", "person", "organization", "place"]


class ProtocolVersion(Enum):
    VERSION_5_0 = "5.0-2025-11-14"


PROTOCOL_VERSION = ProtocolVersion.VERSION_5_0.value
#: The header that carries it on ``GET /poprox/warmup``.
PROTOCOL_HEADER = "poprox-protocol-version"
UNMATCHED_HEADER = "mmnewsrec-unmatched-clicks"
#: Most candidates plus interacted articles one request may carry (each is encoded).
MAX_ARTICLES = 5000
#: Characters of ``body`` taken as the abstract when an article has no subhead.
BODY_AS_ABSTRACT = 400


# ------------------------------------------------------------------------------------- the protocol
def _moment(value: object) -> object:
    """A time is RFC 3339 text (or a datetime from Python): never a number, a boolean or digits."""
    if isinstance(value, datetime) or (isinstance(value, str) and _DATE.match(value)):
        return value
    raise ValueError("a time is RFC 3339 text, e.g. 2025-11-14T09:30:00Z")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: The request's scalars as its JSON schema types them: no value is coerced from another JSON type
#: (``false`` is not an integer, ``"1"`` not a number, ``0`` not a boolean, ``0`` not a time).
Number: TypeAlias = Annotated[float, Strict()]
Moment: TypeAlias = Annotated[datetime, BeforeValidator(_moment)]


class Entity(BaseModel):
    entity_id: UUID | None = None
    external_id: str | None = None
    name: str
    entity_type: str
    source: str
    raw_data: dict[str, Any] | None = None


class Mention(BaseModel):
    article_id: UUID | None = None
    mention_id: UUID | None = None
    source: str
    relevance: Number | None = None
    entity: Entity


class Image(BaseModel):
    image_id: UUID | None = None
    url: str
    caption: str | None = None
    source: str
    external_id: str | None = None
    raw_data: dict[str, Any] | None = None


class Article(BaseModel):
    article_id: UUID = Field(default_factory=uuid4)
    headline: str
    subhead: str | None = None
    body: str | None = None
    url: str | None = None
    preview_image_id: UUID | None = None
    mentions: list[Mention] = []
    linked_articles: dict[UUID, str] = {}
    source: str | None = None
    external_id: str | None = None
    raw_data: dict[str, Any] | None = None
    images: list[Image] | None = None
    published_at: Moment = datetime(1970, 1, 1, 0, 0, tzinfo=timezone.utc)
    created_at: Moment | None = None


class ArticlePackage(BaseModel):
    package_id: UUID = Field(default_factory=uuid4)
    title: str
    source: str
    seed: Entity | None = None
    article_ids: list[UUID]
    current_as_of: Moment | None = None
    created_at: Moment | None = None


class CandidateSet(BaseModel):
    model_config = ConfigDict(extra="allow")

    pool_id: UUID | None = None
    pool_type: str | None = None
    created_at: Moment | None = None
    articles: list[Article]


class Click(BaseModel):
    article_id: UUID
    newsletter_id: UUID | None = None
    impression_id: UUID | None = None
    timestamp: Moment | None = None


class AccountInterest(BaseModel):
    account_id: UUID | None = None
    entity_id: UUID
    entity_name: str
    entity_type: EntityType
    preference: StrictInt
    frequency: StrictInt | None = None
    created_at: Moment | None = None


class InterestProfile(BaseModel):
    model_config = ConfigDict(extra="allow")

    profile_id: UUID | None = None
    entity_interests: list[AccountInterest]
    click_history: list[Click]
    click_topic_counts: dict[str, StrictInt] | None = None
    click_locality_counts: dict[str, StrictInt] | None = None
    article_feedbacks: dict[UUID, StrictBool] | None = None


class RecommendationRequestV5(BaseModel):
    protocol_version: ProtocolVersion = Field(default=ProtocolVersion.VERSION_5_0, frozen=True)
    request_id: UUID = Field(default_factory=uuid4)
    requested_at: Moment = Field(default_factory=lambda: datetime.now())
    candidates: CandidateSet
    interacted: CandidateSet
    interest_profile: InterestProfile
    num_recs: Annotated[StrictInt, Field(gt=0)]
    embeddings: dict[UUID, dict[str, list[Number]]] | None = None
    article_packages: list[ArticlePackage] = Field(default_factory=list)
    impressed_article_ids: list[UUID] = Field(default_factory=list)


class RecommenderInfo(BaseModel):
    name: str | None = None
    version: str | None = None
    hash: str | None = None


class Impression(BaseModel):
    impression_id: UUID | None = Field(default_factory=uuid4)
    newsletter_id: UUID | None = None
    position: int | None = 0
    article: Article
    created_at: datetime | None = None
    extra: dict[str, Any] | None = None
    label: str | None = None
    headline: str | None = None
    subhead: str | None = None
    preview_image_id: UUID | None = None
    feedback: bool | None = None
    position_in_section: int | None = None


class ImpressedSection(BaseModel):
    section_id: UUID | None = None
    title: str | None = None
    flavor: str | None = None
    personalized: bool = True
    seed_entity_id: UUID | None = None
    impressions: list[Impression] = Field(default_factory=list)
    position: int | None = None


class RecommendationResponseV5(BaseModel):
    protocol_version: ProtocolVersion = Field(default=ProtocolVersion.VERSION_5_0, frozen=True)
    request_id: UUID | None = None
    recommendations: list[ImpressedSection]
    recommender: RecommenderInfo | None = None


# ------------------------------------------------------------------------------------- the mapping
#: POPROX's topics (``poprox_concepts.domain.topics``) -> a MIND category and the subcategories that
#: fit it, first found in the run's vocabulary wins.
TOPIC_CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "U.S. news": ("news", ("newsus",)),
    "World news": ("news", ("newsworld",)),
    "Washington news": ("news", ("newspolitics",)),
    "Politics": ("news", ("newspolitics",)),
    "Business": ("finance", ("finance-companies", "financenews", "markets")),
    "Entertainment": ("entertainment", ("entertainment-celebrity", "celebrity")),
    "Sports": ("sports", ("more_sports",)),
    "Health": ("health", ("health-news", "medical")),
    "Science": ("news", ("newsscienceandtechnology", "science")),
    "Technology": ("news", ("newsscienceandtechnology", "technology")),
    "Oddities": ("news", ("newsoffbeat", "newsweird", "weirdnews")),
    "Lifestyle": ("lifestyle", ("lifestylebuzz",)),
    "Religion": ("news", ("newsreligion",)),
    "Climate and environment": ("news", ("newsenvironment", "newsclimate")),
    "Education": ("news", ("newseducation",)),
}


def _normalised(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", name.lower())


class TopicMap:
    """POPROX topic names -> the run's (category, subcategory), as the module docstring says."""

    def __init__(self, categories: Sequence[str], subcategories: Sequence[str]):
        self.categories = {_normalised(c): c for c in categories if not c.startswith("<")}
        self.subcategories = set(subcategories)

    def __call__(self, topics: Sequence[str]) -> tuple[str, str, str]:
        """(category, subcategory, how) for an article's topics, most relevant first."""
        for topic in topics:
            own = self.categories.get(_normalised(topic))
            if own is not None:
                return own, "", f"topic {topic!r} is a category of the run"
        for topic in topics:
            category, subcategories = TOPIC_CATEGORIES.get(topic, ("", ()))
            if category in self.categories.values():
                sub = next((s for s in subcategories if s in self.subcategories), "")
                return category, sub, f"topic {topic!r} mapped to {category}" + (f"/{sub}" if sub else "")
        return "", "", "no topic the run has a category for: unknown category"


def _topics(article: Article) -> list[str]:
    mentions = sorted(article.mentions, key=lambda m: -(m.relevance or 0.0))  # stable: ties keep order
    return list(dict.fromkeys(m.entity.name for m in mentions if m.entity.entity_type == "topic"))


def _entity_ids(article: Article) -> tuple[str, ...]:
    ids = []
    for mention in sorted(article.mentions, key=lambda m: -(m.relevance or 0.0)):
        for candidate in (mention.entity.external_id, mention.entity.entity_id):
            if candidate is None:
                continue
            try:
                ids.append(check_id(str(candidate), "entity"))
                break
            except RequestError:  # an external id with spaces: try the entity's UUID
                continue
    return tuple(dict.fromkeys(ids))


def _abstract(article: Article) -> str:
    if article.subhead:
        return article.subhead
    body = (article.body or "").strip()
    if len(body) <= BODY_AS_ABSTRACT:
        return body
    cut = body[:BODY_AS_ABSTRACT]
    return cut[: cut.rfind(" ")] if " " in cut else cut


# ------------------------------------------------------------------------------------- the answer
@dataclass
class PoproxAnswer:
    response: RecommendationResponseV5
    unmatched_clicks: int
    duplicate_candidates: int


class PoproxRecommender:
    """Answers POPROX requests with a run (thread-safe; see the module docstring)."""

    def __init__(self, predictor: Predictor, cache_size: int = 50_000, encode_threads: int | None = None):
        self.predictor = predictor
        # A request's articles are a batch worth every core (torch's setting is process-wide; the
        # service's requests are single-threaded around it, as for POST /news).
        self.encode_threads = encode_threads
        vocabs = predictor.trained.vocabs
        self.topics = TopicMap(list(vocabs.categories.tokens), list(vocabs.subcategories.tokens))
        self.name = predictor.config.name
        self.cache_size = cache_size
        self._vectors: OrderedDict[str, torch.Tensor] = OrderedDict()  # content digest -> (D,)
        self._lock = threading.Lock()
        self._hash: str | None = None

    @property
    def pipelines(self) -> list[str]:
        return [self.name]

    @property
    def run_hash(self) -> str:
        """SHA-256 over the run's config and best weights (what makes its answers what they are)."""
        if self._hash is None:
            folder = self.predictor.trained.folder
            weights = folder.best if self.predictor.trained.checkpoint == "best" else folder.last
            digest = hashlib.sha256()
            for path in [folder.config_path, *sorted(weights.glob("*.safetensors"))]:
                digest.update(path.name.encode() + b"\0")
                with open(path, "rb") as handle:  # weights in blocks, not whole in memory
                    while block := handle.read(1 << 20):
                        digest.update(block)
            self._hash = digest.hexdigest()
        return self._hash

    def record(self, article: Article) -> tuple[NewsRecord, str]:
        category, subcategory, how = self.topics(_topics(article))
        record = NewsRecord(
            news_id=str(article.article_id),
            category=category,
            subcategory=subcategory,
            title=_text(article.headline),
            abstract=_text(_abstract(article)),
            entities=_entity_ids(article),
        )
        return record, how

    def vectors(self, records: Sequence[NewsRecord]) -> torch.Tensor:
        """(N, D) news vectors, from the content cache or encoded now (one batch for the missing)."""
        keys = [_digest(r) for r in records]
        with self._lock:
            found = {k: self._vectors[k] for k in keys if k in self._vectors}
            for key in found:
                self._vectors.move_to_end(key)
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            # Keyed by content: one article sent as candidate and as interacted with other text is two.
            wanted = set(missing)
            first = {k: replace(r, news_id=f"c{k}") for k, r in zip(keys, records, strict=True) if k in wanted}
            with torch_threads(self.encode_threads) if self.encode_threads else nullcontext():
                encoded = self.predictor.encode([first[k] for k in missing])  # (M, D)
            with self._lock:
                for key, vector in zip(missing, encoded, strict=True):
                    found[key] = self._vectors[key] = vector
                while len(self._vectors) > self.cache_size:
                    self._vectors.popitem(last=False)
        if not records:
            return torch.zeros((0, self.predictor.dim))
        return torch.stack([found[k] for k in keys])

    def recommend(self, request: RecommendationRequestV5, pipeline: str | None = None) -> PoproxAnswer:
        """Raises FieldRefused naming the field (an unknown pipeline, too few candidates, too many articles)."""
        if pipeline is not None and pipeline not in self.pipelines:
            raise FieldRefused(f"pipeline: {pipeline!r} is not served here; the pipelines are {self.pipelines}")
        candidates: dict[UUID, Article] = {}
        for article in request.candidates.articles:
            candidates.setdefault(article.article_id, article)
        duplicates = len(request.candidates.articles) - len(candidates)
        if len(candidates) < request.num_recs:
            raise FieldRefused(
                f"num_recs: {request.num_recs} recommendations asked of {len(candidates)} unique candidates "
                f"(candidates.articles holds {len(request.candidates.articles)})"
            )
        interacted: dict[UUID, Article] = {}
        for article in request.interacted.articles:
            interacted.setdefault(article.article_id, article)
        if len(candidates) + len(interacted) > MAX_ARTICLES:
            raise FieldRefused(
                f"candidates.articles, interacted.articles: {len(candidates) + len(interacted)} unique articles; "
                f"at most {MAX_ARTICLES} per request"
            )
        clicks = list(request.interest_profile.click_history)
        if clicks and all(c.timestamp is not None for c in clicks):
            clicks.sort(key=lambda c: _utc(c.timestamp))
        history = list(dict.fromkeys(c.article_id for c in clicks if c.article_id in interacted))
        unmatched = sum(1 for c in clicks if c.article_id not in interacted)
        if self.predictor.history_len:
            history = history[-self.predictor.history_len :]

        cand_ids = list(candidates)
        mapped = [self.record(candidates[i]) for i in cand_ids]
        hist_records = [self.record(interacted[i])[0] for i in history]
        vectors = self.vectors([r for r, _ in mapped] + hist_records)  # (C + H, D)
        cand_vectors, hist_vectors = vectors[: len(cand_ids)], vectors[len(cand_ids) :]
        user = self.predictor.encode_user_vectors(hist_vectors)
        scores = self.predictor.score_vectors(user, cand_vectors)  # (C,)

        impressed = set(request.impressed_article_ids)
        seen = np.array([i in impressed for i in cand_ids])
        order = np.lexsort((-scores, seen))  # not yet sent first, then by score; ties keep order
        chosen = order[: request.num_recs]
        impressions = [
            Impression(
                position=rank + 1,
                article=candidates[cand_ids[i]],
                headline=candidates[cand_ids[i]].headline,
                subhead=candidates[cand_ids[i]].subhead,
                preview_image_id=candidates[cand_ids[i]].preview_image_id,
                extra={
                    "score": float(scores[i]),
                    "category": mapped[i][0].category or None,
                    "subcategory": mapped[i][0].subcategory or None,
                    "category_from": mapped[i][1],
                    "already_impressed": bool(seen[i]),
                },
            )
            for rank, i in enumerate(chosen)
        ]
        section = ImpressedSection(personalized=bool(history), impressions=impressions, position=1)
        response = RecommendationResponseV5(
            request_id=request.request_id,
            recommendations=[section],
            recommender=RecommenderInfo(name=self.name, version=f"mmnewsrec {__version__}", hash=self.run_hash),
        )
        return PoproxAnswer(response, unmatched, duplicates)


def _digest(record: NewsRecord) -> str:
    fields = [record.category, record.subcategory, record.title, record.abstract, list(record.entities)]
    return hashlib.sha1(json.dumps(fields).encode()).hexdigest()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str) -> str:
    """Text a tokenizer takes: a lone surrogate (JSON can escape one; it is no character) -> U+FFFD."""
    return _SURROGATE.sub("\ufffd", value)


#: Largest request body after base64 and gzip are undone.
MAX_DECODED_BYTES = 64 * 1024 * 1024


def decode_body(body: bytes, base64_encoded: bool, content_encoding: str) -> bytes:
    """A request body as POPROX may send it: base64 (``isBase64Encoded``, the AWS Lambda way), gzip
    (``Content-Encoding: gzip``, or the gzip magic bytes), or plain JSON.

    Raises:
        RequestError: not base64 or not gzip as declared, or over :data:`MAX_DECODED_BYTES` unpacked.
    """
    if base64_encoded:
        try:
            body = base64.b64decode(body, validate=False)
        except (binascii.Error, ValueError):
            raise RequestError("body: isBase64Encoded is set, but the body is not base64") from None
    gzipped = "gzip" in content_encoding.lower() or body[:2] == b"\x1f\x8b"
    if gzipped:
        unpack = zlib.decompressobj(wbits=31)  # gzip framing
        try:
            out = unpack.decompress(body, MAX_DECODED_BYTES + 1)
        except zlib.error:
            raise RequestError("body: Content-Encoding is gzip, but the body is not gzip data") from None
        if len(out) > MAX_DECODED_BYTES or unpack.unconsumed_tail:
            raise BodyTooLarge(f"body: over {MAX_DECODED_BYTES} bytes once unpacked")
        if not unpack.eof:
            raise RequestError("body: the gzip data is cut short")
        body = out
    return body


class BodyTooLarge(RequestError):
    """A body over the limit once unpacked (HTTP 413)."""


def parse_request(body: bytes) -> RecommendationRequestV5:
    """Raises pydantic's ValidationError naming the fields (malformed JSON included)."""
    return RecommendationRequestV5.model_validate_json(body or b"null")
