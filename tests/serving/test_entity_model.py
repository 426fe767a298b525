"""A model that reads knowledge entities loads and scores through evaluate, the Predictor and the
live service alike, with the entities a news names in news.tsv or in a POST /news body."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from mmnewsrec.batching.batch import ImpressionArrays
from mmnewsrec.config import EntityConfig
from mmnewsrec.data.mind import parse_entities
from mmnewsrec.evaluation.evaluate import evaluate
from mmnewsrec.runs.artifact import load_run
from mmnewsrec.serving import NewsRecord, Predictor
from mmnewsrec.serving.api import create_app
from mmnewsrec.serving.records import read_news_records
from mmnewsrec.serving.service import RecommenderService
from mmnewsrec.serving.state import open_store
from mmnewsrec.workflows.evaluate import run_evaluate
from mmnewsrec.workflows.train import run_train
from tests.run_fixtures import word_config

TOKEN = "entity-test-token"


@pytest.fixture(scope="module")
def entity_run(tiny_mind: Path, tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("entity-run")
    config = word_config(tiny_mind, tiny_bert, folder / "cache", max_steps=8, eval_impressions=100)
    entities = EntityConfig(buckets=256, profile_buckets=32, max_per_news=6)  # pretrained: TransE-sized, 100
    config = replace(config, model=replace(config.model, entities=entities))
    run_train(config, run_dir=folder / "run")
    return folder / "run"


def dev_records(loaded, with_entities: bool = True) -> list[NewsRecord]:
    news = loaded.dataset.news
    named = parse_entities(news, "news.tsv").ids.to_pylist()
    return [
        NewsRecord(
            r["news_id"],
            r["category"],
            r["subcategory"],
            r["title"],
            r["abstract"],
            r["image_path"],
            tuple(e) if with_entities else (),
        )
        for r, e in zip(news.to_pylist(), named, strict=True)
    ]


def test_an_entity_model_scores_alike_in_evaluate_the_predictor_and_the_service(entity_run: Path, tiny_mind: Path):
    loaded = load_run(entity_run, splits=("dev",))
    model = loaded.model
    assert model.news_encoder.embedding is not None and float(model.user_encoder.scale.detach()) != 0.0  # it learned
    arrays = ImpressionArrays.from_split(loaded.dataset, "dev")
    expected = evaluate(model, loaded.features, arrays, loaded.config.training.history_len).scores
    assert run_evaluate(entity_run, split="dev")["auc"] > 0.5

    predictor = Predictor.load(entity_run)
    vectors = predictor.encode_news(dev_records(loaded))
    behaviors = loaded.dataset["dev"].behaviors.to_pylist()
    for m in range(0, len(behaviors), 9):
        user = predictor.encode_user(behaviors[m]["history"])
        scores = predictor.score(user, behaviors[m]["candidates"])
        start, end = arrays.cand_offsets[m], arrays.cand_offsets[m + 1]
        np.testing.assert_allclose(scores, expected[start:end], rtol=1e-5, atol=1e-5)
    without = Predictor.load(entity_run).encode_news(dev_records(loaded, with_entities=False))
    assert not torch.allclose(vectors, without)  # the entities are read, not dropped

    # The service: news from news.tsv keep their entities, and a posted news brings its own.
    store = open_store(f"sqlite:///{entity_run.parent / 'state.db'}")
    service = RecommenderService(Predictor.load(entity_run), store)
    service.add_news(read_news_records([tiny_mind / "dev"]))
    ids = loaded.dataset.news["news_id"].to_pylist()
    torch.testing.assert_close(service.predictor.news_vectors(ids[:20]), vectors[:20])
    client = TestClient(create_app(service, TOKEN), raise_server_exceptions=False)
    record = dev_records(loaded)[0]
    body = {
        "news": [
            {
                "news_id": "posted-1",
                "category": record.category,
                "subcategory": record.subcategory,
                "title": record.title,
                "abstract": record.abstract,
                "entities": list(record.entities),
            }
        ]
    }
    assert client.post("/news", json=body, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 201
    assert client.get("/news/posted-1").json()["entities"] == list(record.entities)
    reference = Predictor.load(entity_run).encode_news([replace(record, news_id="posted-1", image=None)])
    torch.testing.assert_close(service.predictor.news_vectors(["posted-1"]), reference)
    bad = {"news": [{"news_id": "posted-2", "category": record.category, "entities": ["Q 1"]}]}
    refused = client.post("/news", json=bad, headers={"Authorization": f"Bearer {TOKEN}"})
    assert refused.status_code == 422


def test_poprox_mentions_reach_an_entity_model(entity_run: Path, tiny_mind: Path) -> None:
    """The entities a POPROX article mentions are the entities the model reads: the same request
    with and without mentions scores differently, and the same way twice (the vectors kept by content)."""
    import uuid

    loaded = load_run(entity_run, splits=("dev",))
    records = dev_records(loaded)[:12]
    store = open_store(f"sqlite:///{entity_run.parent / 'poprox-state.db'}")
    client = TestClient(create_app(RecommenderService(Predictor.load(entity_run), store), TOKEN))

    def article(record: NewsRecord, mentions: bool) -> dict:
        named = [
            {
                "source": "test",
                "relevance": 1.0,
                "entity": {"name": e, "entity_type": "person", "source": "wikidata", "external_id": e},
            }
            for e in record.entities
        ]
        return {
            "article_id": str(uuid.uuid5(uuid.NAMESPACE_URL, record.news_id)),
            "headline": record.title,
            "subhead": record.abstract,
            "mentions": named if mentions else [],
        }

    def scores(mentions: bool) -> dict[str, float]:
        body = {
            "candidates": {"articles": [article(r, mentions) for r in records[:8]]},
            "interacted": {"articles": [article(r, mentions) for r in records[8:]]},
            "interest_profile": {
                "click_history": [{"article_id": article(r, False)["article_id"]} for r in records[8:]],
                "entity_interests": [],
            },
            "num_recs": 8,
        }
        answer = client.post("/poprox", json=body)
        assert answer.status_code == 200, answer.text
        return {
            i["article"]["article_id"]: i["extra"]["score"] for i in answer.json()["recommendations"][0]["impressions"]
        }

    assert any(r.entities for r in records[:8])
    with_entities = scores(True)
    assert with_entities == scores(True)
    assert with_entities != scores(False)
