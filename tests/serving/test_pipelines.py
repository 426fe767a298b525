"""Feed pipelines in the live service: chosen per service and per request, each served card naming
its pipeline; MMR and calibration change the list the way their trade-offs say, samplers are
reproducible by seed, and a pipeline config is checked when it loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmnewsrec.config import ConfigError, load_yaml
from mmnewsrec.config.pipeline import PipelineConfig
from mmnewsrec.serving.records import RequestError
from mmnewsrec.serving.stages import category_distribution, kl_divergence
from mmnewsrec.serving.state import open_store
from tests.serving.test_service import Clock, make_service

ROOT = Path(__file__).parents[2]
PIPELINES = [
    PipelineConfig(name="mmr-low", diversifier="mmr", theta=0.2),
    PipelineConfig(name="mmr-one", diversifier="mmr", theta=1.0),
    PipelineConfig(name="calibrated", diversifier="calibration", calibration_lambda=0.95),
    PipelineConfig(name="softmax", sampler="softmax", temperature=2.0, seed=3),
    PipelineConfig(name="thompson", sampler="thompson", seed=3),
]


@pytest.fixture()
def service(word_run: Path, tiny_mind: Path, tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    service = make_service(word_run, tiny_mind, store, now=Clock(), pipelines=PIPELINES)
    for news_id in service.recommend("U1", k=6, pipeline="top-k")[:3]:
        service.click("U1", news_id.news_id)
    return service


def test_the_first_pipeline_is_the_default_and_each_card_names_its_own(service) -> None:
    assert service.default_pipeline == "mmr-low" and set(service.pipelines) == {"top-k", *(p.name for p in PIPELINES)}
    assert {r.pipeline for r in service.recommend("U1", k=5)} == {"mmr-low"}
    assert {r.pipeline for r in service.recommend("U1", k=5, pipeline="top-k")} == {"top-k"}
    with pytest.raises(RequestError, match="pipeline: 'nope' is not served here"):
        service.recommend("U1", pipeline="nope")


def test_mmr_at_one_is_the_ranking_and_lower_theta_spreads_the_list(service) -> None:
    top = service.recommend("U1", k=10, pipeline="top-k")
    assert [r.news_id for r in service.recommend("U1", k=10, pipeline="mmr-one")] == [r.news_id for r in top]
    spread = service.recommend("U1", k=10, pipeline="mmr-low")
    assert len(spread) == 10 and len({r.news_id for r in spread}) == 10

    def mean_similarity(recs) -> float:
        vectors = service.predictor.news_vectors([r.news_id for r in recs]).numpy()
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        similarity = unit @ unit.T
        return float(similarity[~np.eye(len(recs), dtype=bool)].mean())

    assert mean_similarity(spread) < mean_similarity(top)
    assert np.mean([r.score for r in spread]) <= np.mean([r.score for r in top])  # the price in score


def test_calibration_brings_the_lists_categories_towards_the_history(service) -> None:
    history = [service.catalogue[n].category for n, _ in service.history("U1")]
    names = sorted({*history, *service.catalogue.categories()})

    def kl(recs) -> float:
        target = category_distribution(np.array([names.index(c) for c in history]), len(names))
        shown = category_distribution(np.array([names.index(r.category) for r in recs]), len(names))
        return kl_divergence(target, shown)

    assert kl(service.recommend("U1", k=10, pipeline="calibrated")) < kl(
        service.recommend("U1", k=10, pipeline="top-k")
    )


def test_samplers_vary_between_requests_and_repeat_with_their_seed(service, word_run: Path, tiny_mind: Path, tmp_path):
    lists = [tuple(r.news_id for r in service.recommend("U1", k=8, pipeline="softmax")) for _ in range(5)]
    assert len(set(lists)) > 1 and all(len(set(ids)) == 8 for ids in lists)
    twin = make_service(
        word_run, tiny_mind, open_store(f"sqlite:///{tmp_path / 'twin.db'}"), now=Clock(), pipelines=PIPELINES
    )
    for news_id, _ in service.history("U1"):
        twin.click("U1", news_id)
    again = [tuple(r.news_id for r in twin.recommend("U1", k=8, pipeline="softmax")) for _ in range(5)]
    assert again == lists
    assert len(service.recommend("U1", k=8, pipeline="thompson")) == 8


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"theta": 0.5}, "theta: read only with diversifier: mmr"),
        ({"diversifier": "calibration", "theta": 0.5}, "theta: read only with diversifier: mmr"),
        ({"diversifier": "mmr", "theta": 1.5}, "theta: must lie in \\[0, 1\\]"),
        ({"diversifier": "mmr", "sampler": "softmax"}, "a diversifier or a sampler, not both"),
        ({"sampler": "softmax", "temperature": 0}, "temperature: must be > 0"),
        ({"sampler": "greedy"}, "sampler.*'greedy' is not one of"),
        ({"name": "two words"}, "name: 'two words'"),
        ({"pool": 0}, "pool: must be an integer >= 1"),
    ],
)
def test_a_pipeline_config_is_checked_when_it_loads(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PipelineConfig(**values)


def test_every_shipped_pipeline_loads() -> None:
    shipped = sorted((ROOT / "configs" / "pipelines").glob("*.yaml"))
    assert len(shipped) >= 6
    loaded = [load_yaml(PipelineConfig, path) for path in shipped]
    assert len({p.name for p in loaded}) == len(loaded)
    assert {p.diversifier for p in loaded} >= {"mmr", "calibration"}
    assert {p.sampler for p in loaded} >= {"softmax", "epsilon", "thompson"}


def test_the_api_takes_a_pipeline_per_request_and_documents_the_choices(service) -> None:
    from fastapi.testclient import TestClient

    from mmnewsrec.serving.api import create_app

    client = TestClient(create_app(service, "pipeline-token"))
    answer = client.get("/users/U1/recommendations", params={"k": 5, "pipeline": "calibrated"})
    assert answer.status_code == 200 and {r["pipeline"] for r in answer.json()["recommendations"]} == {"calibrated"}
    assert {r["pipeline"] for r in client.get("/users/U1/recommendations").json()["recommendations"]} == {"mmr-low"}
    refused = client.get("/users/U1/recommendations", params={"pipeline": "nope"})
    assert refused.status_code == 422 and "pipeline: 'nope' is not served here" in refused.json()["error"]
    parameters = client.get("/openapi.json").json()["paths"]["/users/{user_id}/recommendations"]["get"]["parameters"]
    (pipeline,) = [p for p in parameters if p["name"] == "pipeline"]
    assert {"top-k", "mmr-low", "thompson"} <= set(next(b for b in pipeline["schema"]["anyOf"] if "enum" in b)["enum"])


def test_serve_refuses_a_bad_pipeline_file_before_it_starts(word_run: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsampler: softmax\ntheta: 0.3\n")
    command = [sys.executable, "-m", "mmnewsrec", "serve", "--run", str(word_run), "--demo", "--pipeline", str(bad)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"error: {bad}: theta: read only with diversifier: mmr" in done.stderr
