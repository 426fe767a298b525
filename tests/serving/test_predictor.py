"""The public Python API: a run loaded from its folder alone scores like ``evaluate``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mmnewsrec.batching.batch import ImpressionArrays
from mmnewsrec.evaluation.evaluate import evaluate
from mmnewsrec.runs.artifact import load_run
from mmnewsrec.serving import NewsRecord, Predictor
from mmnewsrec.serving.predictor import RequestError

README = Path(__file__).resolve().parents[2] / "README.md"


def dev_records(loaded) -> list[dict]:
    return [
        {k: row[k] for k in ("news_id", "category", "subcategory", "title", "abstract")} | {"image": row["image_path"]}
        for row in loaded.dataset.news.to_pylist()
    ]


def test_scores_of_dev_impressions_equal_evaluate(word_run: Path) -> None:
    loaded = load_run(word_run, splits=("dev",))
    arrays = ImpressionArrays.from_split(loaded.dataset, "dev")
    expected = evaluate(loaded.model, loaded.features, arrays, loaded.config.training.history_len).scores

    predictor = Predictor.load(word_run)
    predictor.encode_news(dev_records(loaded))
    behaviors = loaded.dataset["dev"].behaviors.to_pylist()
    for m in range(0, len(behaviors), 7):  # every 7th impression: short, long and empty histories
        impression = behaviors[m]
        user = predictor.encode_user(impression["history"])
        scores = predictor.score(user, impression["candidates"])
        start, end = arrays.cand_offsets[m], arrays.cand_offsets[m + 1]
        np.testing.assert_allclose(scores, expected[start:end], rtol=1e-5, atol=1e-5)


def test_news_encoded_from_records_equal_the_training_features(word_run: Path) -> None:
    from mmnewsrec.evaluation.evaluate import encode_all_news

    loaded = load_run(word_run, splits=("dev",))
    reference = encode_all_news(loaded.model, loaded.features)  # (N, D) in catalogue order
    predictor = Predictor.load(word_run)
    vectors = predictor.encode_news(dev_records(loaded))
    torch.testing.assert_close(vectors, reference)
    ids = loaded.dataset.news["news_id"].to_pylist()
    torch.testing.assert_close(predictor.news_vectors(ids[3:5]), reference[3:5])


def test_requests_it_cannot_answer_are_named(word_run: Path, tmp_path: Path) -> None:
    predictor = Predictor.load(word_run)
    record = {"news_id": "X1", "category": "sports", "title": "a title"}
    predictor.encode_news([record])
    with pytest.raises(RequestError, match="news id 'X9' is unknown: encode it with encode_news first"):
        predictor.encode_user(["X1", "X9"])
    with pytest.raises(RequestError, match="appears twice"):
        predictor.encode_news([record, record])
    with pytest.raises(RequestError, match="news record 0: unknown field 'headline'"):
        predictor.encode_news([{"news_id": "X2", "category": "a", "headline": "h"}])
    with pytest.raises(RequestError, match="must be 1-256 characters without spaces"):
        predictor.encode_news([NewsRecord("X 2", "a")])
    with pytest.raises(RequestError, match="image file .* not found"):
        predictor.encode_news([NewsRecord("X3", "a", image=str(tmp_path / "missing.jpg"))])
    empty = predictor.encode_user([])
    assert empty.shape == (predictor.dim,) and torch.isfinite(empty).all()


def test_the_readme_example_runs(word_run: Path, monkeypatch, capsys) -> None:
    text = README.read_text()
    match = re.search(r"<!-- python-api-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md has no Python API example"
    code = match.group(1).replace('"runs/demo/runs/text_minilm"', repr(str(word_run)))
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"\[\('N\d', -?\d", printed), printed


def test_encoding_500_single_news_loads_the_tokenizer_once_and_writes_no_segment(
    word_run: Path, tokenizer_loads
) -> None:
    loads = tokenizer_loads
    predictor = Predictor.load(word_run)
    cache = Path(predictor.config.features.cache_dir)
    segments = sorted(p.name for p in cache.rglob("seg-*"))
    for i in range(500):
        predictor.encode_news([NewsRecord(f"ONE-{i}", "news", "", f"a story number {i}", "")])
    assert loads["n"] == 1
    assert len(predictor.news_ids) == 500 and predictor.news_vectors(["ONE-499"]).shape == (1, predictor.dim)
    assert sorted(p.name for p in cache.rglob("seg-*")) == segments  # nothing left behind per call
