"""EB-NeRD's Parquet files read onto MIND's tables: the synthetic bundle, every error, the commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmnewsrec.cli.main import main
from mmnewsrec.config import DataConfig
from mmnewsrec.data.ebnerd import ARTICLES_FILE, read_articles
from mmnewsrec.data.mind import DatasetLocation, load_mind
from mmnewsrec.data.synthetic import generate_ebnerd
from mmnewsrec.errors import DataFormatError
from tests.run_fixtures import word_config, write_config


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ebnerd") / "tiny"
    generate_ebnerd(root, "tiny", seed=0)
    return root


@pytest.fixture()
def copy(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(bundle, target)
    return target


def test_the_synthetic_bundle_is_the_mind_worlds_impressions(bundle: Path, tiny_mind: Path) -> None:
    ebnerd, mind = load_mind(bundle), load_mind(tiny_mind)
    assert sorted(ebnerd.splits) == ["dev", "test", "train"] and ebnerd.splits["dev"].directory.name == "validation"
    for split in ("train", "dev", "test"):
        a, b = ebnerd[split], mind[split]
        assert a.labelled == b.labelled and a.num_impressions == b.num_impressions
        # Article i is news N{i}; the same candidates in the same order, the same clicks, the same histories.
        assert a.flat_candidates().to_pylist() == [n[1:] for n in b.flat_candidates().to_pylist()]
        assert a.flat_history().to_pylist() == [n[1:] for n in b.flat_history().to_pylist()]
        assert np.array_equal(a.history_offsets(), b.history_offsets())
        if a.labelled:
            assert np.array_equal(a.flat_labels(), b.flat_labels())
    assert set(ebnerd.vocabs.categories.tokens) == set(mind.vocabs.categories.tokens)
    news = ebnerd.news.to_pylist()
    assert {"published_time", "sentiment_label", "image_count", "premium"} <= set(ebnerd.news.column_names)
    mind_news = {r["news_id"][1:]: r for r in mind.news.to_pylist()}
    first = news[0]
    assert first["title"] == mind_news[first["news_id"]]["title"]
    assert first["category"] == mind_news[first["news_id"]]["category"]
    extras = ebnerd["dev"].behaviors.column_names
    assert {"read_time", "device_type", "is_subscriber", "session_id"} <= set(extras)
    assert "is_beyond_accuracy" in ebnerd["test"].behaviors.column_names
    artifacts = pq.read_table(bundle / "artifacts" / "Ekstra_Bladet_image_embeddings" / "image_embeddings.parquet")
    with_image = {r["news_id"] for r in news if r["image_count"]}
    assert {str(i) for i in artifacts["article_id"].to_pylist()} == with_image  # an embedding per image


def _rewrite(path: Path, change) -> None:
    table = pq.read_table(path)
    pq.write_table(change(table), path)


def _set(table: pa.Table, column: str, row: int, value) -> pa.Table:
    values = table[column].to_pylist()
    values[row] = value
    return table.set_column(table.column_names.index(column), column, pa.array(values, table.schema.field(column).type))


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (ARTICLES_FILE, lambda t: t.drop_columns(["category_str"]), "articles.parquet: column category_str missing"),
        (ARTICLES_FILE, lambda t: _set(t, "title", 4, None), "articles.parquet: row 5, column title: null"),
        (
            ARTICLES_FILE,
            lambda t: _set(t, "article_id", 7, 1),
            "articles.parquet: row 8, column article_id: duplicate article id 1 (first at row 1)",
        ),
        (
            "validation/behaviors.parquet",
            lambda t: _set(t, "article_ids_clicked", 2, [999_999]),
            "behaviors.parquet: row 3, column article_ids_clicked: article 999999 was clicked but is not in "
            "article_ids_inview",
        ),
        (
            "validation/behaviors.parquet",
            lambda t: _set(t, "article_ids_inview", 9, []),
            "behaviors.parquet: row 10, column article_ids_inview: no article in view",
        ),
        (
            "validation/behaviors.parquet",
            lambda t: _set(t, "impression_id", 11, 1),
            "behaviors.parquet: row 12, column impression_id: duplicate impression id 1",
        ),
        (
            "validation/behaviors.parquet",
            lambda t: _set(t, "user_id", 6, None),
            "behaviors.parquet: row 7, column user_id: null",
        ),
        (
            "validation/history.parquet",
            lambda t: _set(t, "article_id_fixed", 3, [5, None]),
            "history.parquet: row 4, column article_id_fixed: a null article id in the list",
        ),
    ],
)
def test_every_malformed_file_is_an_error_naming_file_row_and_column(copy: Path, file: str, change, message: str):
    _rewrite(copy / file, change)
    with pytest.raises(DataFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_mind(copy)


def test_unknown_articles_are_refused_dropped_or_kept_as_the_policy_says(copy: Path) -> None:
    path = copy / "validation" / "behaviors.parquet"
    table = pq.read_table(path)
    inview = table["article_ids_inview"].to_pylist()
    clicked = table["article_ids_clicked"].to_pylist()
    unclicked = next(a for a in inview[4] if a not in clicked[4])
    inview[4] = [777_777 if a == unclicked else a for a in inview[4]]
    table = table.set_column(table.column_names.index("article_ids_inview"), "article_ids_inview", pa.array(inview))
    pq.write_table(table, path)
    with pytest.raises(DataFormatError, match="row 5, column article_ids_inview: article 777777 is not in articles"):
        load_mind(copy, splits=("dev",))
    dropped = DatasetLocation(copy, DataConfig(root=str(copy), on_unknown_news="drop")).read_split("dev")
    kept = DatasetLocation(copy, DataConfig(root=str(copy), on_unknown_news="keep")).read_split("dev")
    assert dropped.unknown_news_refs == kept.unknown_news_refs == 1
    assert len(dropped.behaviors["candidates"][4].as_py()) == len(inview[4]) - 1
    assert "777777" in kept.behaviors["candidates"][4].as_py()
    assert np.array_equal(np.asarray(dropped.behaviors["labels"][4].as_py()).sum(), len(clicked[4]))


def test_a_damaged_file_is_an_error_not_a_traceback(copy: Path, capsys) -> None:
    (copy / ARTICLES_FILE).write_bytes((copy / ARTICLES_FILE).read_bytes()[:200])
    with pytest.raises(DataFormatError, match="articles.parquet: not a readable Parquet file"):
        read_articles(copy / ARTICLES_FILE)
    assert main(["inspect", str(copy)]) == 1
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_synth_inspect_train_evaluate_and_report_run_on_ebnerd_as_on_mind(
    tmp_path: Path, tiny_bert: Path, capsys
) -> None:
    root = tmp_path / "ebnerd"
    assert main(["synth", "--out", str(root), "--format", "ebnerd"]) == 0
    assert json.loads(capsys.readouterr().out)["impressions"] == {"train": 2000, "dev": 500, "test": 200}
    assert main(["inspect", str(root)]) == 0
    stats = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [s["split"] for s in stats] == ["train", "dev", "test"] and stats[1]["impressions"] == 500
    config = write_config(
        word_config(root, tiny_bert, tmp_path / "cache", max_steps=12, eval_every=6), tmp_path / "c.yaml"
    )
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--run", str(run)]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["impressions"] == 500 and 0.0 < trained["auc"] < 1.0
    assert main(["evaluate", "--run", str(run), "--split", "test"]) == 0
    lines = (run / "test" / "prediction.txt").read_text().splitlines()
    assert len(lines) == 200 and lines[0].startswith("1 [")
    ranks = json.loads(lines[0].split(" ", 1)[1])
    assert sorted(ranks) == list(range(1, len(ranks) + 1))  # the challenge's ranks, one per article in view
    # Scored block by block (a block of Parquet rows at a time), the same bytes as in one block.
    from mmnewsrec.workflows.evaluate import run_evaluate

    small = run_evaluate(run, split="dev", block_impressions=64, out=tmp_path / "blocks.txt")
    whole = run_evaluate(run, split="dev", block_impressions=10_000, out=tmp_path / "whole.txt")
    assert (tmp_path / "blocks.txt").read_bytes() == (tmp_path / "whole.txt").read_bytes()
    assert small["auc"] == pytest.approx(whole["auc"], abs=1e-12) and small["impressions"] == 500
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(tmp_path / "report"), "--samples", "50"]) == 0
    assert "| run |" in capsys.readouterr().out
    # The breakdowns read EB-NeRD's own columns: image ids for image present or missing, the
    # training log's articles in view for cold or seen.
    image = (tmp_path / "report" / "image.csv").read_text()
    cold = (tmp_path / "report" / "cold.csv").read_text()
    assert "with image," in image and "without image," in image, image
    assert "shown in training," in cold and "never shown in training (cold)," in cold, cold
    capsys.readouterr()
    assert main(["replay", "--run", str(run), "--split", "dev"]) == 0  # the live service over the split
    assert "online, 5+ earlier" in capsys.readouterr().out
    # The live service over the bundle's articles: a click moves the feed.
    from fastapi.testclient import TestClient

    from mmnewsrec.serving.api import create_app
    from mmnewsrec.workflows.serve import build_service

    service = build_service(run, [root], state=f"sqlite:///{tmp_path / 'state.db'}", progress=False)
    headers = {"Authorization": "Bearer t"}
    with TestClient(create_app(service, "t")) as client:
        feed = client.get("/users/7/recommendations", params={"k": 5}).json()["recommendations"]
        assert len(feed) == 5 and all(card["news_id"].isdigit() for card in feed)
        clicked = feed[0]["news_id"]
        assert client.post("/users/7/clicks", json={"news_id": clicked}, headers=headers).status_code == 201
        assert client.get("/users/7", headers=headers).json()["history"][-1]["news_id"] == clicked
        again = client.get("/users/7/recommendations", params={"k": 5}).json()["recommendations"]
        assert clicked not in [card["news_id"] for card in again]  # what was read is not offered again


def test_featurize_builds_the_artifacts_of_a_bundle_as_frozen_features(bundle: Path, tmp_path: Path, capsys) -> None:
    config = Path(__file__).parents[2] / "configs" / "ebnerd_multimodal.yaml"
    cache = tmp_path / "cache"
    assert main(["featurize", "--config", str(config), "--data", str(bundle), "--cache-dir", str(cache)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    by_name = {r["feature"]: r for r in records}
    assert by_name["frozen:contrastive"]["arrays"] == {"vectors": [1000, 64]}
    assert by_name["frozen:image"]["arrays"] == {"vectors": [1000, 64], "has_image": [1000]}


def test_the_service_takes_a_bundles_articles_as_its_news(bundle: Path) -> None:
    from mmnewsrec.serving.records import read_news_records

    records = read_news_records([bundle])
    articles = read_articles(bundle / ARTICLES_FILE)
    assert [r.news_id for r in records] == articles["news_id"].to_pylist()
    first = records[0]
    assert (first.title, first.category, first.image, first.entities) == (
        articles["title"][0].as_py(),
        articles["category"][0].as_py(),
        None,
        (),
    )


def test_display_counts_of_a_parquet_log_count_every_article_in_view_and_clicked(bundle: Path) -> None:
    from mmnewsrec.data.ebnerd import display_counts

    counts = display_counts(bundle / "train" / "behaviors.parquet")
    train = load_mind(bundle, splits=("train",))["train"]
    flat = np.asarray(train.flat_candidates().to_pylist())
    labels = train.flat_labels()
    by_id = {r["news_id"]: (r["displays"], r["clicks"]) for r in counts.to_pylist()}
    assert sum(d for d, _ in by_id.values()) == len(flat) and sum(c for _, c in by_id.values()) == labels.sum()
    some = flat[0]
    assert by_id[some] == ((flat == some).sum(), labels[flat == some].sum())


def test_the_challenges_scores_and_prediction_file_on_a_hand_made_bundle(tmp_path: Path) -> None:
    """Two impressions scored by hand: AUC over the articles in view, MRR, nDCG, and the ranks."""
    from mmnewsrec.evaluation.metrics import ranking_metrics
    from mmnewsrec.evaluation.submission import write_prediction

    root = tmp_path / "hand"
    (root / "validation").mkdir(parents=True)
    pq.write_table(
        pa.table({"article_id": pa.array([1, 2, 3], pa.int32()), "title": ["a", "b", "c"], "category_str": ["x"] * 3}),
        root / ARTICLES_FILE,
    )
    moment = pa.array([np.datetime64("2023-05-24T07:00:00", "us")] * 2)
    pq.write_table(
        pa.table(
            {
                "impression_id": pa.array([10, 11], pa.uint32()),
                "user_id": pa.array([5, 6], pa.uint32()),
                "impression_time": moment,
                "article_ids_inview": pa.array([[1, 2, 3], [3, 1]], pa.list_(pa.int32())),
                "article_ids_clicked": pa.array([[2], [3]], pa.list_(pa.int32())),
            }
        ),
        root / "validation" / "behaviors.parquet",
    )
    pq.write_table(
        pa.table({"user_id": pa.array([5], pa.uint32()), "article_id_fixed": pa.array([[3, 1]], pa.list_(pa.int32()))}),
        root / "validation" / "history.parquet",
    )
    dev = DatasetLocation(root, DataConfig(root=str(root))).read_split("dev")
    assert dev.flat_labels().tolist() == [0, 1, 0, 1, 0]  # in view order; the clicked ones
    assert dev.behaviors["history"].to_pylist() == [["3", "1"], []]  # user 6 has no history row
    scores = np.array([0.1, 0.9, 0.5, 0.2, 0.8])
    # Impression 10: the click ranked first (AUC 1, MRR 1); impression 11: last of two (AUC 0, MRR 1/2).
    metrics = ranking_metrics(scores, dev.flat_labels(), dev.candidate_offsets())
    assert (metrics.auc, metrics.mrr) == (0.5, 0.75)
    assert metrics.ndcg10 == pytest.approx((1.0 + 1 / np.log2(3)) / 2)
    write_prediction(tmp_path / "prediction.txt", np.array([10, 11]), scores, dev.candidate_offsets())
    assert (tmp_path / "prediction.txt").read_text() == "10 [3,1,2]\n11 [2,1]\n"
