"""The HTTP API: every endpoint, the token, size limits, clear 4xx for bad input, never a 5xx."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmnewsrec.serving.api import create_app
from mmnewsrec.serving.predictor import Predictor
from mmnewsrec.serving.records import read_news_records
from mmnewsrec.serving.service import RecommenderService
from mmnewsrec.serving.state import open_store

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def app_service(word_run: Path, tiny_mind: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("api")
    service = RecommenderService(Predictor.load(word_run), open_store(f"sqlite:///{folder / 'state.db'}"))
    service.add_news(read_news_records([tiny_mind / "dev"]))
    return service


@pytest.fixture(scope="module")
def client(app_service: RecommenderService) -> TestClient:
    return TestClient(create_app(app_service, TOKEN, max_body=64 * 1024), raise_server_exceptions=False)


def some_news(service: RecommenderService, n: int) -> list[str]:
    return service.index.snapshot()[1][:n]


def test_a_click_changes_the_next_recommendation(client: TestClient, app_service: RecommenderService) -> None:
    first = client.get("/users/api-u1/recommendations", params={"k": 5})
    assert first.status_code == 200
    body = first.json()
    assert body["user_id"] == "api-u1" and len(body["recommendations"]) == 5
    assert set(body["recommendations"][0]) >= {"news_id", "score", "category", "title"}
    top = body["recommendations"][0]["news_id"]
    click = client.post("/users/api-u1/clicks", json={"news_id": top}, headers=AUTH)
    assert click.status_code == 201 and click.json() == {"user_id": "api-u1", "recorded": True}
    after = client.get("/users/api-u1/recommendations", params={"k": 5}).json()["recommendations"]
    assert top not in [r["news_id"] for r in after]
    history = client.get("/users/api-u1", headers=AUTH).json()
    assert [h["news_id"] for h in history["history"]] == [top]


def test_a_click_id_makes_a_retry_safe(client: TestClient, app_service: RecommenderService) -> None:
    news_id = some_news(app_service, 1)[0]
    backfilled = 1_700_000_000  # a client time in the past is taken as given
    body = {"news_id": news_id, "time": backfilled, "click_id": "retry-1"}
    assert client.post("/users/api-u2/clicks", json=body, headers=AUTH).json()["recorded"] is True
    assert client.post("/users/api-u2/clicks", json=body, headers=AUTH).json()["recorded"] is False
    history = client.get("/users/api-u2", headers=AUTH).json()["history"]
    assert [(h["news_id"], h["time"]) for h in history] == [(news_id, backfilled)]
    assert history[0]["title"] == app_service.catalogue[news_id].title


def test_news_impressions_rank_and_retire(client: TestClient, app_service: RecommenderService) -> None:
    fresh = {"news_id": "API-N1", "category": "sports", "title": "a new match report"}
    added = client.post("/news", json={"news": [fresh]}, headers=AUTH)
    assert added.status_code == 201 and added.json()["added"] == 1
    shown = ["API-N1", *some_news(app_service, 2)]
    imp = client.post("/users/api-u3/impressions", json={"shown": shown, "clicked": ["API-N1"]}, headers=AUTH)
    assert imp.status_code == 201 and imp.json()["recorded"] == 3
    ranked = client.post("/rank", json={"history": ["API-N1"], "candidates": shown[1:]})
    assert ranked.status_code == 200
    assert sorted(r["news_id"] for r in ranked.json()["ranking"]) == sorted(shown[1:])
    assert client.delete("/news/API-N1", headers=AUTH).status_code == 200
    assert client.delete("/news/API-N1", headers=AUTH).status_code == 404
    recs = client.get("/users/api-u4/recommendations", params={"k": 1000}).json()["recommendations"]
    assert "API-N1" not in [r["news_id"] for r in recs] and len(recs) == len(app_service.index)


def test_a_client_without_the_token_cannot_make_the_server_parse_its_body(app_service: RecommenderService) -> None:
    import time

    client = TestClient(create_app(app_service, TOKEN), raise_server_exceptions=False)  # the default 4 MiB limit
    huge = b"[" + b"1," * 1_390_000 + b"1]"  # 2.8 MB: parsing it took seconds before the 401
    started = time.perf_counter()
    response = client.post("/users/x/clicks", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert time.perf_counter() - started < 1.0
    for path in ("/users/x/clicks", "/users/x/impressions", "/news"):
        malformed = client.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
        assert malformed.status_code == 401, path  # the token first, then the body
    assert client.post("/rank", content=b"{not json").status_code == 422  # an open route parses it


def test_click_and_impression_ids_are_per_user_and_a_conflicting_reuse_is_409(
    client: TestClient, app_service: RecommenderService
) -> None:
    first, second = some_news(app_service, 2)
    post = client.post
    assert post("/users/idem-d1/clicks", json={"news_id": first, "click_id": "k1"}, headers=AUTH).json()["recorded"]
    assert post("/users/idem-d2/clicks", json={"news_id": first, "click_id": "k1"}, headers=AUTH).json()["recorded"]
    shown = {"shown": [second], "clicked": [], "impression_id": "k1"}
    assert post("/users/idem-d1/impressions", json=shown, headers=AUTH).json()["recorded"] == 1  # its own ids
    conflict = post("/users/idem-d1/clicks", json={"news_id": second, "click_id": "k1"}, headers=AUTH)
    assert conflict.status_code == 409 and "click_id 'k1' was already used" in conflict.json()["error"]
    assert [n for n, _ in app_service.history("idem-d1")] == [first]
    assert [n for n, _ in app_service.history("idem-d2")] == [first]


def test_metrics_labels_stay_few_whatever_clients_send(client: TestClient) -> None:
    before = len(client.get("/metrics").text)
    for i in range(300):
        client.request(f"M{i}X", f"/made/up/path/{i}")
    metrics = client.get("/metrics").text
    assert 'method="other",route="other"' in metrics and "M17X" not in metrics and "/made/up" not in metrics
    assert len(metrics) < before + 20_000  # one series for all of them, not 300


def test_health_metrics_and_docs(client: TestClient, app_service: RecommenderService) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["news"] == len(app_service.index)
    client.get("/users/m1/recommendations")
    metrics = client.get("/metrics").text
    assert 'mmnewsrec_request_seconds_bucket{le="0.01",method="GET",route="/users/{user_id}/recommendations"' in metrics
    assert "mmnewsrec_index_news" in metrics and "mmnewsrec_clicks_total" in metrics
    assert "/users/m1/" not in metrics  # routes are templates, never raw paths with user ids
    for page in ("/docs", "/redoc"):  # offline: every asset from this server, none from a CDN
        html = client.get(page)
        assert html.status_code == 200 and "http://" not in html.text and "https://" not in html.text
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', html.text)
        assert any(a.endswith(".js") for a in assets), assets
        for asset in assets:
            fetched = client.get(asset)
            assert fetched.status_code == 200 and len(fetched.content) > 1000, asset
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/news", "/users/{user_id}/clicks", "/users/{user_id}/recommendations", "/rank"} <= set(paths)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("post", "/users/u/clicks", {"news_id": "NOPE"}, 404, "news id 'NOPE' is unknown"),
        ("post", "/users/u/clicks", {}, 422, "news_id: Field required"),
        ("post", "/users/u/clicks", {"news_id": "N1", "extra": 1}, 422, "extra: Extra inputs are not permitted"),
        ("post", "/users/u/clicks", {"news_id": "N1", "time": -5}, 422, "time: Input should be greater than"),
        ("post", "/users/u/impressions", {"shown": [], "clicked": []}, 422, "shown: List should have at least 1"),
        ("post", "/rank", {"history": [], "candidates": ["NOPE"]}, 404, "news id 'NOPE' is unknown"),
        ("post", "/rank", {"history": ["NOPE"], "candidates": []}, 422, "candidates: List should have at least"),
        ("post", "/news", {"news": [{"news_id": "has space", "category": "x"}]}, 422, "news_id: an id is 1-256"),
        ("post", "/news", {"news": [{"news_id": "A\x1c", "category": "x"}]}, 422, "news_id: an id is 1-256"),
        ("post", "/news", {"news": [{"news_id": "A", "category": True}]}, 422, "category: Input should be a valid"),
        ("post", "/news", {"news": [{"news_id": "A", "category": "x"}], "time": "5"}, 422, "time: Value error"),
        ("post", "/users/u/clicks", {"news_id": "N1", "time": True}, 422, "time: Value error, should be a number"),
        ("post", "/users/u/clicks", {"news_id": "N1", "time": "5"}, 422, "time: Value error, should be a number"),
        ("post", "/users/u/clicks", {"news_id": "N1", "time": 5.5}, 422, "time: Input should be a valid integer"),
        ("post", "/users/u/clicks", {"news_id": "N\x1f1"}, 422, "news_id: an id is 1-256 characters"),
        ("post", "/users/u/impressions", {"shown": ["N\x1e"]}, 422, "shown.0: an id is 1-256 characters"),
        ("post", "/users/u%1C/clicks", {"news_id": "N1"}, 422, "user_id: an id is 1-256 characters"),
        ("post", "/users/u%FF/clicks", {"news_id": "N1"}, 422, "user_id: an id is 1-256 characters"),
        ("get", "/users/u%FE/recommendations", None, 422, "user_id: an id is 1-256 characters"),
        ("get", "/news/N%FF", None, 422, "news_id: an id is 1-256 characters"),
        ("get", "/users/u/recommendations?category=true", None, 422, "category: no news has category 'true'"),
        ("get", "/users/u/recommendations?k=0", None, 422, "k: Input should be greater than or equal to 1"),
        ("get", "/users/u/recommendations?k=abc", None, 422, "k: Input should be a valid integer"),
        ("get", "/users/u/recommendations?k=100000", None, 422, "k: Input should be less than or equal to 1000"),
        ("delete", "/news/NOPE", None, 404, "'NOPE' is not a candidate"),
    ],
)
def test_bad_requests_get_a_clear_4xx(client: TestClient, method, path, body, status, message) -> None:
    kwargs = {"headers": AUTH} | ({"json": body} if body is not None else {})
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_a_news_id_twice_in_one_batch_is_its_last_record(client: TestClient, app_service) -> None:
    twice = [{"news_id": "TWICE", "category": "x", "title": "first"}, {"news_id": "TWICE", "category": "y"}]
    response = client.post("/news", json={"news": twice}, headers=AUTH)
    assert response.status_code == 201 and response.json()["added"] == 1
    assert client.get("/news/TWICE").json()["category"] == "y"


def test_a_client_time_is_taken_up_to_a_minute_ahead_of_the_server_clock(
    client: TestClient, app_service: RecommenderService
) -> None:
    """A click dated far ahead would be "recent" for everyone for as long as its date is ahead:
    refused, naming the field. The server's clock is the default, and a small skew is taken; the
    OpenAPI document's maximum time is the server's clock."""
    first, second = some_news(app_service, 2)
    now = int(app_service.now())
    refused = [
        ("/users/t1/clicks", {"news_id": first, "time": 1_099_511_627_776}, "s ahead of the server's clock"),
        ("/users/t1/clicks", {"news_id": first, "time": now + 3600}, "is 3600 s ahead"),
        ("/users/t1/impressions", {"shown": [first], "time": now + 3600}, "time: "),
        ("/news", {"news": [{"news_id": "T-FUTURE", "category": "x"}], "time": now + 3600}, "time: "),
        ("/rank", {"candidates": [first], "time": now + 3600}, "time: "),
    ]
    for path, body, message in refused:
        response = client.post(path, json=body, headers=AUTH)
        assert response.status_code == 422 and message in response.json()["error"], (path, response.text)
    assert app_service.history("t1") == [] and "T-FUTURE" not in app_service.catalogue
    assert client.post("/users/t1/clicks", json={"news_id": first, "time": now + 30}, headers=AUTH).status_code == 201
    assert client.post("/users/t1/clicks", json={"news_id": second}, headers=AUTH).status_code == 201
    times = dict(app_service.history("t1"))
    assert times[first] == now + 30 and now <= times[second] <= int(app_service.now())
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    ceiling = [b["maximum"] for b in schemas["ClickIn"]["properties"]["time"]["anyOf"] if b.get("type") == "integer"]
    assert len(ceiling) == 1 and now <= ceiling[0] <= int(app_service.now())


def test_writes_and_histories_need_the_token(client: TestClient, app_service: RecommenderService) -> None:
    news_id = some_news(app_service, 1)[0]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = client.post("/users/u9/clicks", json={"news_id": news_id}, headers=headers)
        assert response.status_code == 401 and "Bearer TOKEN" in response.json()["error"]
        assert client.get("/users/u9", headers=headers).status_code == 401
        news = {"news": [{"news_id": "Z", "category": "x"}]}
        assert client.post("/news", json=news, headers=headers).status_code == 401
    assert app_service.history("u9") == [] and "Z" not in app_service.index
    assert client.get("/users/u9/recommendations").status_code == 200  # reads are open


def test_oversized_bodies_are_refused_before_parsing(client: TestClient) -> None:
    big = {"news": [{"news_id": f"B{i}", "category": "x", "title": "w" * 1000} for i in range(100)]}
    response = client.post("/news", json=big, headers=AUTH)
    assert response.status_code == 413 and "over 65536 bytes" in response.json()["error"]

    def chunks():  # no Content-Length: the body arrives chunked
        for _ in range(100):
            yield b"x" * 1024

    chunked = client.post("/news", content=chunks(), headers=AUTH | {"Content-Type": "application/json"})
    assert chunked.status_code == 413


def test_logs_hold_no_tokens_and_no_histories(client: TestClient, app_service, caplog) -> None:
    news_id = some_news(app_service, 3)[2]
    with caplog.at_level(logging.DEBUG):
        client.post("/users/private-user/clicks", json={"news_id": news_id}, headers=AUTH)
        client.get("/users/private-user", headers=AUTH)
        client.post("/rank", json={"history": [news_id], "candidates": [news_id]})
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert TOKEN not in text and news_id not in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
field_names = st.sampled_from(["news_id", "time", "click_id", "shown", "clicked", "history", "candidates", "news", "x"])
bodies = json_values | st.dictionaries(field_names, json_values, max_size=4)
paths = st.sampled_from(["/news", "/users/fz/clicks", "/users/fz/impressions", "/rank"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, body=bodies, user=st.text(min_size=1, max_size=12))
def test_fuzzed_requests_never_fail_the_server_nor_change_state_when_rejected(
    client: TestClient, app_service: RecommenderService, path: str, body, user: str
) -> None:
    clicks, news = app_service.store.count_clicks(), len(app_service.index)
    response = client.post(path, content=json.dumps(body), headers=AUTH | {"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert "error" in response.json()
        assert (app_service.store.count_clicks(), len(app_service.index)) == (clicks, news)
    odd = client.get(f"/users/{quote(user, safe='')}/recommendations")
    assert odd.status_code < 500


def test_explanations_name_the_heaviest_clicks(client: TestClient, app_service: RecommenderService) -> None:
    clicked = some_news(app_service, 6)[3:6]
    for news_id in clicked:
        client.post("/users/why-u/clicks", json={"news_id": news_id}, headers=AUTH)
    target = some_news(app_service, 8)[7]
    response = client.get("/users/why-u/explanations", params={"news_id": target}, headers=AUTH)
    assert response.status_code == 200
    rows = response.json()["history"]
    assert sorted(r["news_id"] for r in rows) == sorted(clicked)
    assert sum(r["weight"] for r in rows) == pytest.approx(1.0, abs=1e-5)
    assert [r["weight"] for r in rows] == sorted((r["weight"] for r in rows), reverse=True)
    assert all(-1.0 <= r["similarity"] <= 1.0 and r["title"] for r in rows)
    assert client.get("/users/why-u/explanations", params={"news_id": target}).status_code == 401  # private
    assert client.get("/users/nobody/explanations", params={"news_id": target}, headers=AUTH).json()["history"] == []


def test_the_page_and_its_files_are_served_and_images_by_news_id(
    client: TestClient, app_service: RecommenderService
) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/web/app.js">' in page.text and "http" not in page.text.replace("http-equiv", "")
    assert client.get("/web/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/web/style.css").status_code == 200
    assert client.get("/web/../api.py").status_code == 404
    assert client.get("/web/config").json() == {"demo": False, "users": []}  # no user ids without demo mode
    with_image = next((n for n, m in app_service.catalogue.items() if m.image), None)
    if with_image is not None:
        image = client.get(f"/news/{with_image}/image")
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
    without = next(n for n, m in app_service.catalogue.items() if not m.image)
    assert client.get(f"/news/{without}/image").status_code == 404


def test_unknown_routes_and_wrong_methods_answer_in_the_error_shape(client: TestClient) -> None:
    missing = client.get("/no/such/route")
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
    wrong = client.get("/rank")  # an open route: no token needed to learn it takes POST
    assert wrong.status_code == 405 and set(wrong.json()) == {"error"} and "POST" in wrong.headers["allow"]


@pytest.mark.slow
def test_a_redis_outage_is_a_503_and_health_says_so(word_run: Path, tiny_mind: Path, tmp_path: Path) -> None:
    from mmnewsrec.serving.state import RedisStore
    from tests.serving.conftest import RedisServer

    server = RedisServer(tmp_path)
    try:
        store = RedisStore(server.url)
        service = RecommenderService(Predictor.load(word_run), store)
        service.add_news(read_news_records([tiny_mind / "dev"]))
        client = TestClient(create_app(service, TOKEN), raise_server_exceptions=False)
        news_id = some_news(service, 1)[0]
        assert client.get("/healthz").json()["store"] == "ok"
        server.stop()
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert server.url in health.json()["store"] and health.headers["retry-after"] == "5"
        click = client.post("/users/u1/clicks", json={"news_id": news_id}, headers=AUTH)
        assert click.status_code == 503 and "state store does not answer" in click.json()["error"]
        assert click.headers["retry-after"] == "5"
    finally:
        server.stop()


def test_security_headers_head_and_the_demo_host_check(client: TestClient, app_service: RecommenderService) -> None:
    page = client.get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    for response in (page, client.get("/healthz"), client.get("/no/such/route")):
        assert response.headers["x-content-type-options"] == "nosniff" and response.headers["x-frame-options"] == "DENY"
    assert client.head("/").status_code == 200
    demo = create_app(app_service, None)  # writes open: only requests addressed to the loopback host
    assert TestClient(demo, base_url="http://127.0.0.1:8000").get("/healthz").status_code == 200
    assert TestClient(demo, base_url="http://localhost:8000").get("/healthz").status_code == 200
    rebound = TestClient(demo, base_url="http://attacker.example:8000").post("/users/u/clicks", json={"news_id": "x"})
    assert rebound.status_code == 421 and "127.0.0.1 or localhost only" in rebound.json()["error"]
