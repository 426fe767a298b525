"""The POPROX endpoint: requests in the format of the POPROX protocol 5.0 (tests/fixtures/poprox,
written by make_fixtures.py there) answered with responses that validate against the protocol's
models, scored exactly as the run's own /rank path scores, and bad requests refused with a 4xx
naming the field."""

from __future__ import annotations

import base64
import collections
import gzip
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, note, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
)

from mmnewsrec.serving.api import create_app
from mmnewsrec.serving.poprox import PROTOCOL_VERSION, RecommendationRequestV5, RecommendationResponseV5
from mmnewsrec.serving.predictor import Predictor
from mmnewsrec.serving.records import read_news_records
from mmnewsrec.serving.service import RecommenderService
from mmnewsrec.serving.state import open_store

FIXTURES = Path(__file__).parents[1] / "fixtures" / "poprox"
NAMES = ("minimal", "images_mentions", "many_candidates", "duplicates")
load_all_checks()
ALL_CHECKS = CHECKS.get_all()


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def client(word_run: Path, tiny_mind: Path, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    folder = tmp_path_factory.mktemp("poprox")
    service = RecommenderService(Predictor.load(word_run), open_store(f"sqlite:///{folder / 'state.db'}"))
    service.add_news(read_news_records([tiny_mind / "dev"]))
    return TestClient(create_app(service, "poprox-token"), raise_server_exceptions=False)


def check_response(request: dict, answer) -> RecommendationResponseV5:
    assert answer.status_code == 200, answer.text
    response = RecommendationResponseV5.model_validate(answer.json())  # the protocol's response model
    assert response.protocol_version.value == PROTOCOL_VERSION == answer.headers["poprox-protocol-version"]
    parsed = RecommendationRequestV5.model_validate(request)
    if "request_id" in request:  # echoed (without one, the protocol's default gives the request one)
        assert response.request_id == parsed.request_id
    (section,) = response.recommendations
    ids = [i.article.article_id for i in section.impressions]
    candidates = {a.article_id for a in parsed.candidates.articles}
    assert len(ids) == parsed.num_recs and len(set(ids)) == len(ids) and set(ids) <= candidates
    assert [i.position for i in section.impressions] == list(range(1, parsed.num_recs + 1))
    assert response.recommender.name == "word" and len(response.recommender.hash) == 64
    return response


@pytest.mark.parametrize("name", NAMES)
def test_each_fixture_is_answered_as_the_protocol_says(client: TestClient, name: str) -> None:
    request = fixture(name)
    check_response(request, client.post("/poprox", json=request))


def test_the_ranking_is_the_runs_own_for_the_same_articles(client: TestClient, word_run: Path) -> None:
    request = fixture("many_candidates")
    answer = client.post("/poprox", json={**request, "num_recs": 120})
    response = check_response({**request, "num_recs": 120}, answer)
    got = [(str(i.article.article_id), i.extra["score"]) for i in response.recommendations[0].impressions]

    # The same articles through the Predictor's catalogue path (what POST /rank scores with).
    predictor = Predictor.load(word_run)
    records = []
    for article in request["candidates"]["articles"] + request["interacted"]["articles"]:
        topic = next(m["entity"]["name"] for m in article["mentions"] if m["entity"]["entity_type"] == "topic")
        category = {"Sports": "sports", "Business": "finance", "Health": "health", "Entertainment": "entertainment"}
        records.append(
            {
                "news_id": article["article_id"],
                "category": category.get(topic, "news"),
                "subcategory": "",
                "title": article["headline"],
                "abstract": article["subhead"],
                "entities": ("Q100001",),  # the word model reads no entities: any value scores alike
            }
        )
    predictor.encode_news(records)
    clicks = sorted(request["interest_profile"]["click_history"], key=lambda c: c["timestamp"])  # time order
    history = [c["article_id"] for c in clicks]
    expected = predictor.rank(history, [a["article_id"] for a in request["candidates"]["articles"]])
    assert [i for i, _ in got] == [i for i, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-5, atol=1e-6)


def test_gzip_and_base64_bodies_are_taken_as_poprox_sends_them(client: TestClient) -> None:
    request = fixture("images_mentions")
    plain = client.post("/poprox", json=request).json()
    packed = gzip.compress(json.dumps(request).encode())
    for body, headers in (
        (packed, {"Content-Encoding": "gzip", "Content-Type": "application/json"}),
        (base64.encodebytes(packed), {"Content-Encoding": "gzip", "isBase64Encoded": "true"}),
        (base64.b64encode(json.dumps(request).encode()), {"isBase64Encoded": "True"}),
    ):
        answer = client.post("/poprox", content=body, headers=headers)
        response = check_response(request, answer)
        got = [(str(i.article.article_id), i.extra["score"]) for i in response.recommendations[0].impressions]
        assert got == [
            (i["article"]["article_id"], i["extra"]["score"]) for i in plain["recommendations"][0]["impressions"]
        ]


def test_history_mapping_impressed_and_duplicates(client: TestClient) -> None:
    rich = fixture("images_mentions")
    answer = client.post("/poprox", json={**rich, "num_recs": 12})
    response = check_response({**rich, "num_recs": 12}, answer)
    # One click names an article that is not among the interacted ones: left out and counted.
    assert answer.headers["mmnewsrec-unmatched-clicks"] == "1"
    impressions = response.recommendations[0].impressions
    assert response.recommendations[0].personalized
    # The article already sent to this reader comes after every other candidate.
    assert impressions[-1].article.article_id == RecommendationRequestV5.model_validate(rich).impressed_article_ids[0]
    assert impressions[-1].extra["already_impressed"] and not impressions[0].extra["already_impressed"]
    by_topic = {}
    for impression in impressions:
        topic = next(m.entity.name for m in impression.article.mentions if m.entity.entity_type == "topic")
        by_topic[topic] = impression.extra["category"]
    assert by_topic.get("Sports") == "sports" and by_topic.get("Business", "finance") == "finance"
    assert by_topic.get("Health", "health") == "health"
    metrics = client.get("/metrics").text
    assert "mmnewsrec_poprox_unmatched_clicks_total" in metrics

    dup = fixture("duplicates")
    response = check_response(dup, client.post("/poprox", json=dup))
    first = {a["article_id"]: a["headline"] for a in reversed(dup["candidates"]["articles"])}  # first wins
    for impression in response.recommendations[0].impressions:
        assert impression.article.headline == first[str(impression.article.article_id)]
    refused = client.post("/poprox", json={**dup, "num_recs": 5})
    assert refused.status_code == 422 and "num_recs: 5 recommendations asked of 4 unique candidates" in refused.text


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        (lambda r: r["candidates"]["articles"][1].pop("headline"), 422, "candidates.articles.1.headline"),
        (
            lambda r: r["candidates"]["articles"][0].update(article_id="not-a-uuid"),
            422,
            "candidates.articles.0.article_id",
        ),
        (lambda r: r.update(num_recs=0), 422, "num_recs"),
        (lambda r: r["interest_profile"].pop("click_history"), 422, "interest_profile.click_history"),
        (lambda r: r["interest_profile"]["click_history"].append({"article_id": 5}), 422, "click_history.0.article_id"),
        (lambda r: r["candidates"]["articles"][0].update(mentions=[{"entity": {}}]), 422, "mentions.0.source"),
        (lambda r: r.update(protocol_version="4.0-2025-10-20"), 422, "protocol_version"),
        # A value of another JSON type is not coerced to the one the schema names.
        (lambda r: r["interest_profile"].update(click_locality_counts={"k": False}), 422, "click_locality_counts.k"),
        (lambda r: r["interest_profile"].update(click_topic_counts={"Sports": "3"}), 422, "click_topic_counts.Sports"),
        (lambda r: r.update(num_recs=True), 422, "num_recs"),
        (lambda r: r.update(num_recs=2.0), 422, "num_recs"),
        (lambda r: r.update(requested_at=0), 422, "requested_at"),
        (lambda r: r.update(requested_at="1700000000"), 422, "requested_at"),
        (lambda r: r["candidates"]["articles"][0].update(published_at=True), 422, "articles.0.published_at"),
        (lambda r: r["interest_profile"].update(article_feedbacks={str(uuid.uuid4()): 1}), 422, "article_feedbacks"),
        (lambda r: r.update(embeddings={str(uuid.uuid4()): {"text": ["0.5"]}}), 422, "embeddings"),
    ],
)
def test_a_malformed_request_is_a_4xx_naming_the_field(client: TestClient, change, status: int, field: str) -> None:
    request = fixture("minimal")
    change(request)
    answer = client.post("/poprox", json=request)
    assert answer.status_code == status and field in answer.json()["error"], answer.text


def test_bodies_that_are_not_what_they_say_are_refused(client: TestClient) -> None:
    assert client.post("/poprox", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 422
    answer = client.post("/poprox", content=b"plain text", headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400 and "not gzip" in answer.json()["error"]
    answer = client.post("/poprox", content=b"%%%", headers={"isBase64Encoded": "true"})
    assert answer.status_code in (400, 422)
    cut = gzip.compress(json.dumps(fixture("minimal")).encode())[:-12]
    answer = client.post("/poprox", content=cut, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400 and "cut short" in answer.json()["error"]
    bomb = gzip.compress(b" " * (65 * 1024 * 1024))
    answer = client.post("/poprox", content=bomb, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 413
    answer = client.post("/poprox?pipeline=other", json=fixture("minimal"))
    assert answer.status_code == 422 and "pipeline: 'other' is not served here" in answer.json()["error"]
    assert client.post("/poprox?pipeline=word", json=fixture("minimal")).status_code == 200


def test_warmup_names_the_pipeline_and_the_protocol(client: TestClient) -> None:
    answer = client.get("/poprox/warmup")
    assert answer.status_code == 200 and answer.json() == ["word"]
    assert answer.headers["poprox-protocol-version"] == "5.0-2025-11-14"


#: A request valid by the schema may still ask for more recommendations than it has unique
#: candidates: refused with 422 naming num_recs, the one status added to what schemathesis expects.
FUZZ_CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "413", "422"]
            },
            "negative_data_rejection": {"expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]},
        }
    }
)


def answerable(case: schemathesis.Case) -> schemathesis.Case:
    """Most schema-valid requests ask for more recommendations than they carry candidates: bring
    num_recs within the unique candidates (still schema-valid) where there is one, so answers are
    fuzzed as much as refusals."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("candidates"), dict):
        articles = body["candidates"].get("articles")
        if isinstance(articles, list) and articles:
            unique = {a.get("article_id", i) if isinstance(a, dict) else i for i, a in enumerate(articles)}
            if isinstance(body.get("num_recs"), int) and body["num_recs"] > len(unique):
                case.body = {**body, "num_recs": len(unique)}
    return case


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_fuzzing_the_request_schema_finds_no_5xx(client: TestClient, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app, config=FUZZ_CONFIG)
    operations = [result.ok() for result in schema.include(path_regex="^/poprox").get_all_operations()]
    assert {(o.method.upper(), o.path) for o in operations} == {("POST", "/poprox"), ("GET", "/poprox/warmup")}
    statuses: collections.Counter[int] = collections.Counter()
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=mode)
        if mode is GenerationMode.POSITIVE and operation.path == "/poprox":
            strategy = strategy.map(answerable)

        @given(case=strategy)
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            note(f"{case.method} {case.path}")
            status = case.call_and_validate(checks=ALL_CHECKS).status_code
            if case.path == "/poprox":
                statuses[status // 100] += 1

        try:
            run()
        except Unsatisfiable:  # GET /poprox/warmup has nothing to make invalid
            assert mode is GenerationMode.NEGATIVE and operation.path == "/poprox/warmup"
    # Both kinds of answer were exercised: requests answered, and requests refused.
    assert statuses[2 if mode is GenerationMode.POSITIVE else 4] > 0 and not statuses[5], statuses
