"""The framework-free service: clicks change the next recommendation at once, from any replica."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmnewsrec.data.mind import read_split
from mmnewsrec.serving.predictor import Predictor, RequestError
from mmnewsrec.serving.records import read_news_records
from mmnewsrec.serving.service import NotFound, RecommenderService
from mmnewsrec.serving.state import open_store


class Clock:
    def __init__(self, start: int = 1_700_000_000):
        self.value = start

    def __call__(self) -> float:
        return self.value


def make_service(run: Path, tiny_mind: Path, store, **options) -> RecommenderService:
    service = RecommenderService(Predictor.load(run), store, **options)
    service.add_news(read_news_records([tiny_mind / "dev"]))
    return service


@pytest.fixture()
def service(word_run: Path, tiny_mind: Path, tmp_path: Path) -> RecommenderService:
    return make_service(word_run, tiny_mind, open_store(f"sqlite:///{tmp_path / 'state.db'}"), now=Clock())


def test_a_click_is_in_the_very_next_recommendation(service: RecommenderService) -> None:
    before = service.recommend("U1", k=10)
    assert len(before) == 10 and [r.score for r in before] == sorted((r.score for r in before), reverse=True)
    clicked = before[3].news_id
    assert service.click("U1", clicked)
    assert service.history("U1")[-1][0] == clicked
    after = service.recommend("U1", k=10)
    assert clicked not in [r.news_id for r in after]  # seen news are excluded
    assert [r.news_id for r in after] != [r.news_id for r in before if r.news_id != clicked][:10]
    # The served list is the model's own ranking for the grown history.
    ranked = service.rank([clicked], [r.news_id for r in after])
    assert [news_id for news_id, _ in ranked] == [r.news_id for r in after]
    np.testing.assert_allclose([s for _, s in ranked], [r.score for r in after], rtol=1e-5)


def test_the_user_vector_is_refreshed_when_the_click_is_posted(service: RecommenderService) -> None:
    service.recommend("U1")
    news_id = service.index.snapshot()[1][0]
    service.click("U1", news_id)
    history, vector = service._users["U1"]
    assert [n for n, _ in history] == [news_id]
    np.testing.assert_allclose(vector.numpy(), service.predictor.encode_user([news_id]).numpy(), rtol=1e-6)


def test_two_replicas_share_users_through_the_store(word_run: Path, tiny_mind: Path, open_fresh_store) -> None:
    first = make_service(word_run, tiny_mind, open_fresh_store(), now=Clock())
    second = make_service(word_run, tiny_mind, open_fresh_store(), now=Clock())
    before = second.recommend("U7", k=5)
    first.click("U7", before[0].news_id)
    after = second.recommend("U7", k=5)
    assert before[0].news_id not in [r.news_id for r in after]
    assert [n for n, _ in second.history("U7")] == [before[0].news_id]


def test_fresh_news_become_candidates_and_retired_ones_leave(service: RecommenderService) -> None:
    size = len(service.index)
    service.add_news([{"news_id": "FRESH1", "category": "sports", "title": "a fresh story about the match"}])
    assert len(service.index) == size + 1
    assert "FRESH1" in [r.news_id for r in service.recommend("U1", k=size + 1)]
    assert service.retire_news(["FRESH1", "NOT-THERE"]) == 1
    assert "FRESH1" not in [r.news_id for r in service.recommend("U1", k=size + 1)]
    service.click("U2", "FRESH1")  # a retired news stays clickable and readable in histories
    assert service.history("U2")[-1][0] == "FRESH1"


def test_news_are_retired_by_age(service: RecommenderService) -> None:
    old = len(service.index)
    service.now.value += 48 * 3600
    service.add_news([{"news_id": "NEW", "category": "sports", "title": "late news"}])
    assert service.retire_older_than(24) == old
    assert len(service.index) == 1
    assert [r.news_id for r in service.recommend("U1", k=10)] == ["NEW"]


def test_filters_and_k_larger_than_the_index(service: RecommenderService) -> None:
    everything = service.recommend("U1", k=10_000)
    assert len(everything) == len(service.index)
    category = everything[0].category
    only = service.recommend("U1", k=10_000, categories=[category])
    assert only and all(r.category == category for r in only)
    assert len(only) < len(everything)


def test_requests_the_service_cannot_answer(service: RecommenderService) -> None:
    with pytest.raises(NotFound, match="news id 'NOPE' is unknown"):
        service.click("U1", "NOPE")
    with pytest.raises(RequestError, match="user id"):
        service.recommend("has space")
    with pytest.raises(RequestError, match="k must be >= 1"):
        service.recommend("U1", k=0)
    some = service.index.snapshot()[1][:2]
    with pytest.raises(RequestError, match="not among the shown"):
        service.impression("U1", some[:1], some[1:])
    with pytest.raises(RequestError, match="distinct"):
        service.rank([], [some[0], some[0]])
    with pytest.raises(RequestError, match="at least one candidate"):
        service.rank([], [])
    assert service.store.count_clicks() == 0  # nothing rejected was written


def test_an_unknown_user_gets_a_cold_start_answer(word_run: Path, tiny_mind: Path, tmp_path: Path) -> None:
    model = make_service(
        word_run, tiny_mind, open_store(f"sqlite:///{tmp_path / 'a.db'}"), now=Clock(), cold_start="model"
    )
    popular = make_service(
        word_run,
        tiny_mind,
        open_store(f"sqlite:///{tmp_path / 'b.db'}"),
        now=Clock(),
        cold_start="popularity",
        sync_seconds=0.0,
    )
    assert len(model.recommend("NEWUSER", k=5)) == 5
    top = popular.recommend("NEWUSER", k=3)[0].news_id
    other = [n for n in popular.index.snapshot()[1] if n != top][5]
    for user in ("A", "B", "C"):
        popular.click(user, other)
    assert popular.recommend("NEWUSER", k=3)[0].news_id == other  # the most clicked news leads


def test_impressions_feed_the_live_counters_of_a_popularity_model(
    popularity_run: Path, tiny_mind: Path, open_fresh_store
) -> None:
    first = make_service(popularity_run, tiny_mind, open_fresh_store(), now=Clock())
    second = make_service(popularity_run, tiny_mind, open_fresh_store(), now=Clock(), sync_seconds=0.0)
    assert first.uses_stats
    shown = first.index.snapshot()[1][:4]
    before = second.scores([], shown)
    first.impression("U1", shown, shown[:1])
    after = second.scores([], shown)  # the second replica counts the first one's click on its next read
    assert second.counters.clicks[shown[0]] == first.counters.clicks[shown[0]] >= 1
    assert second.counters.displays[shown[1]] == first.counters.displays[shown[1]] >= 1
    assert not np.allclose(before, after)


def test_static_scores_equal_evaluate(word_run: Path, tiny_mind: Path, tmp_path: Path) -> None:
    from mmnewsrec.batching.batch import ImpressionArrays
    from mmnewsrec.evaluation.evaluate import evaluate
    from mmnewsrec.runs.artifact import load_run

    loaded = load_run(word_run, splits=("dev",))
    arrays = ImpressionArrays.from_split(loaded.dataset, "dev")
    expected = evaluate(loaded.model, loaded.features, arrays, loaded.config.training.history_len).scores
    service = make_service(word_run, tiny_mind, open_store(f"sqlite:///{tmp_path / 's.db'}"), now=Clock())
    split = read_split(tiny_mind / "dev")
    for m, row in enumerate(split.behaviors.to_pylist()[:20]):
        got = service.scores(row["history"], row["candidates"])
        want = expected[arrays.cand_offsets[m] : arrays.cand_offsets[m + 1]]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_batch_of_requests_equals_the_requests_one_by_one(service: RecommenderService) -> None:
    from mmnewsrec.serving.service import RecommendRequest

    ids = service.index.snapshot()[1]
    for user, news_id in (("B1", ids[0]), ("B2", ids[3]), ("B3", ids[7])):
        service.click(user, news_id)
    requests = [
        RecommendRequest("B1", 5),
        RecommendRequest("bad user"),
        RecommendRequest("B2", 3, categories=[service.index.meta(ids[0]).category]),
        RecommendRequest("B3", 7, exclude_seen=False),
        RecommendRequest("never-clicked", 4),
    ]
    batch = service.recommend_many(requests)
    assert isinstance(batch[1], RequestError) and "user id" in str(batch[1])
    for request, got in zip(requests, batch, strict=True):
        if request.user_id != "bad user":
            alone = service.recommend(
                request.user_id, request.k, request.exclude_seen, request.categories, request.max_age_hours
            )
            assert [(r.news_id, pytest.approx(r.score)) for r in got] == [(r.news_id, r.score) for r in alone]


def test_a_scorer_with_a_news_bias_is_searched_exactly(word_run: Path, tiny_mind: Path, tmp_path: Path) -> None:
    import torch

    from mmnewsrec.models.scorers import DotBiasScorer

    predictor = Predictor.load(word_run)
    torch.manual_seed(0)
    predictor.model.scorer = DotBiasScorer(predictor.dim).eval()
    with torch.no_grad():
        predictor.model.scorer.bias.weight.mul_(5.0)  # a bias strong enough to reorder the list
    service = RecommenderService(predictor, open_store(f"sqlite:///{tmp_path / 's.db'}"), now=Clock())
    service.add_news(read_news_records([tiny_mind / "dev"]))
    assert service.exact_search
    ids = service.index.snapshot()[1]
    service.click("U1", ids[0])
    got = service.recommend("U1", k=10)
    everything = service.rank([ids[0]], [n for n in ids if n != ids[0]])[:10]
    assert [r.news_id for r in got] == [n for n, _ in everything]
    np.testing.assert_allclose([r.score for r in got], [s for _, s in everything], rtol=1e-4, atol=1e-4)


def test_a_service_that_has_seen_no_click_serves_cold_users_from_the_model(
    word_run: Path, tiny_mind: Path, tmp_path: Path
) -> None:
    fresh = make_service(word_run, tiny_mind, open_store(f"sqlite:///{tmp_path / 's.db'}"), now=Clock())
    model = make_service(
        word_run, tiny_mind, open_store(f"sqlite:///{tmp_path / 'm.db'}"), now=Clock(), cold_start="model"
    )
    assert fresh.cold_start == "popularity" and not fresh.counters.clicks  # nothing to rank by popularity yet
    assert [r.news_id for r in fresh.recommend("NEW", k=5)] == [r.news_id for r in model.recommend("NEW", k=5)]


def test_the_study_ranker_is_served_by_reranking_its_own_scores(study_run: Path, tiny_mind: Path, tmp_path: Path):
    from mmnewsrec.batching.batch import ImpressionArrays
    from mmnewsrec.evaluation.evaluate import evaluate
    from mmnewsrec.runs.artifact import load_run

    service = make_service(study_run, tiny_mind, open_store(f"sqlite:///{tmp_path / 's.db'}"), now=Clock())
    assert not service.exact_search  # the score reads the history with each candidate: no inner product
    ids = service.index.snapshot()[1]
    for news_id in ids[:3]:
        service.click("U1", news_id)
    got = service.recommend("U1", k=5)
    assert len(got) == 5 and not {r.news_id for r in got} & set(ids[:3])
    scores = [r.score for r in got]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(service.scores(ids[:3], [r.news_id for r in got]), scores, rtol=1e-5, atol=1e-6)

    # The service scores an impression as evaluate does.
    loaded = load_run(study_run, splits=("dev",))
    arrays = ImpressionArrays.from_split(loaded.dataset, "dev")
    expected = evaluate(loaded.model, loaded.features, arrays, loaded.config.training.history_len).scores
    for m, row in enumerate(read_split(tiny_mind / "dev").behaviors.to_pylist()[:10]):
        want = expected[arrays.cand_offsets[m] : arrays.cand_offsets[m + 1]]
        np.testing.assert_allclose(service.scores(row["history"], row["candidates"]), want, rtol=1e-5, atol=1e-5)


def test_the_news_log_is_shared_by_replicas_and_restores_a_restart(word_run: Path, open_fresh_store) -> None:
    first = RecommenderService(Predictor.load(word_run), open_fresh_store())
    second = RecommenderService(Predictor.load(word_run), open_fresh_store())
    first.add_news([{"news_id": "LOG-1", "category": "news", "title": "one"}, {"news_id": "LOG-2", "category": "x"}])
    assert {"LOG-1", "LOG-2"} <= {r.news_id for r in second.recommend("u", k=50)}  # applied before answering
    np.testing.assert_allclose(
        second.predictor.news_vectors(["LOG-1"]).numpy(), first.predictor.news_vectors(["LOG-1"]).numpy()
    )  # the logged vector is reused, not encoded again
    assert second.retire_news(["LOG-1", "NEVER-ADDED"]) == 1
    assert "LOG-1" not in {r.news_id for r in first.recommend("u", k=50)}
    assert first.catalogue["LOG-1"].title == "one"  # retired news stay readable in histories
    first.add_news([{"news_id": "LOG-2", "category": "y", "title": "replaced"}])
    restarted = RecommenderService(Predictor.load(word_run), open_fresh_store())
    restarted.sync_news()
    assert "LOG-1" in restarted.catalogue and "LOG-1" not in restarted.index
    assert restarted.catalogue["LOG-2"].category == "y" and "LOG-2" in restarted.index
