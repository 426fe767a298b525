from __future__ import annotations

from pathlib import Path

import pytest

from mmnewsrec.config import DataConfig, ImageConfig, apply_overrides, dump_yaml, from_dict, load_yaml
from mmnewsrec.errors import ConfigError


def test_nested_load_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("root: /data/mind\nimages:\n  missing: render_title\n  directory: /pictures\n")
    config = load_yaml(DataConfig, path)
    assert config == DataConfig(root="/data/mind", images=ImageConfig(missing="render_title", directory="/pictures"))
    dump_yaml(config, tmp_path / "back.yaml")
    assert load_yaml(DataConfig, tmp_path / "back.yaml") == config


def test_overrides_are_yaml_scalars(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("root: x\n")
    config = load_yaml(DataConfig, path, ["images.directory=/p", "on_unknown_news=drop"])
    assert config.images.directory == "/p" and config.on_unknown_news == "drop"
    assert apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]"]) == {"a": {"b": 1, "c": [1, 2]}}
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        apply_overrides({}, ["novalue"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"rot": "x"},
            r"rot: unknown key; valid keys under 'the top level' are "
            r"\['images', 'on_conflicting_news', 'on_unknown_news', 'root', 'translations'\]",
        ),
        ({"images": {"sise": 3}}, r"images.sise: unknown key"),
        ({"images": {"size": 224}}, r"images.size: no longer a key \(it was read by nothing\): images are resized"),
        ({"images": {"missing": "blank"}}, r"images.missing: 'blank' is not one of \['render_title', 'mask'\]"),
        ({"on_unknown_news": "ignore"}, r"^on_unknown_news: 'ignore' is not one of"),  # its key in this mapping
        ({"images": 3}, r"images: expected a mapping of ImageConfig fields"),
    ],
)
def test_invalid_values_name_the_field(values, message) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(DataConfig, values)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("root: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(DataConfig, path)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_yaml(DataConfig, path)
    path.write_text("images: {missing: 2}\n")
    with pytest.raises(ConfigError, match=rf"{path.name}: images.missing"):
        load_yaml(DataConfig, path)


@pytest.mark.parametrize("spelling", ["2e-5", "2E-5", "2.0e-5", "0.00002", "+2e-5", " 2e-5 ", "0.000_02"])
def test_every_float_spelling_is_a_float(spelling: str, tmp_path: Path) -> None:
    from mmnewsrec.config import TrainingConfig

    assert from_dict(TrainingConfig, {"lr": spelling}).lr == pytest.approx(2e-5)
    path = tmp_path / "t.yaml"
    path.write_text(f"lr: {spelling}\n")  # YAML 1.1 reads 2e-5 (no dot) as a string
    assert load_yaml(TrainingConfig, path).lr == pytest.approx(2e-5)
    assert load_yaml(TrainingConfig, path, [f"lr={spelling}"]).lr == pytest.approx(2e-5)


def test_non_numbers_are_refused_by_name() -> None:
    from mmnewsrec.config import TrainingConfig

    with pytest.raises(ConfigError, match=r"^lr: expected a number \(e.g. 1e-4 or 0.0001\), got 'fast'"):
        from_dict(TrainingConfig, {"lr": "fast"})
    with pytest.raises(ConfigError, match="not a number"):
        from_dict(TrainingConfig, {"weight_decay": ".nan"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.user.heads=0"], r"model.user.heads: must be an integer >= 1, got 0"),
        (["model.user.dropout=2"], r"model.user.dropout: a dropout probability must lie in \[0, 1\), got 2"),
        (["model.news.dropout=-0.1"], r"model.news.dropout: a dropout probability"),
        (["model.news.dim=100", "model.user.heads=16"], r"model.user.heads: 16 must divide model.news.dim 100 \(e.g"),
        (["training.eval_impressions=-5"], r"training.eval_impressions: must be >= 0"),
        (["training.max_steps=-1"], r"training.max_steps: must be >= 0"),
        (["training.patience=-1"], r"training.patience: must be >= 0"),
        (["training.epochs=0"], r"training.epochs: must be an integer >= 1"),
        (["training.lr=0"], r"training.lr: must be a number > 0"),
        (["training.warmup_ratio=1.5"], r"training.warmup_ratio: must lie in \[0, 1\]"),
        (["training.weight_decay=-1"], r"training.weight_decay: must be >= 0"),
        (["training.dev_split=''"], r"training.dev_split"),
        (["model.news.text={model: x, lora: {rank: 4, dropout: 1}}"], r"model.news.text.lora.dropout: a dropout"),
        (["data.on_conflicting_news=last"], r"data.on_conflicting_news: 'last' is not one of"),
    ],
)
def test_bounds_are_checked_when_the_config_loads(overrides: list[str], message: str, tmp_path: Path) -> None:
    from mmnewsrec.config import ExperimentConfig

    path = tmp_path / "e.yaml"
    path.write_text("name: e\n")
    with pytest.raises(ConfigError, match=message):
        load_yaml(ExperimentConfig, path, overrides)


def test_an_override_that_is_not_yaml_names_itself() -> None:
    with pytest.raises(ConfigError, match=r"override 'model.news=\{dim: \[1': the value is not valid YAML"):
        apply_overrides({}, ["model.news={dim: [1"])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda c: c.TrainingConfig(loss="hinge"), "training.loss: 'hinge' is not one of"),
        (lambda c: c.TrainingConfig(mixed_precision="fp8"), "training.mixed_precision: 'fp8' is not one of"),
        (lambda c: c.DataConfig(on_unknown_news="ignore"), "data.on_unknown_news: 'ignore' is not one of"),
        (lambda c: c.ImageConfig(missing="blank"), "images.missing: 'blank' is not one of"),
        (lambda c: c.FrozenEncoderConfig(name="f", model="m", pooling="max"), "features.frozen.pooling: 'max'"),
        (lambda c: c.BackboneConfig(model="m", pooling="max"), "backbone.pooling: 'max' is not one of"),
        (lambda c: c.FusionEncoderConfig(fusion="sum"), "model.news.fusion: 'sum' is not one of"),
        (lambda c: c.TextEncoderConfig(text_field="body"), "model.news.text_field: 'body' is not one of"),
        (lambda c: c.PrecomputedEncoderConfig(projection="relu"), "model.news.projection: 'relu' is not one of"),
    ],
)
def test_a_choice_is_checked_when_a_config_is_built_in_python_too(build, message) -> None:
    import mmnewsrec.config as config

    with pytest.raises(ConfigError, match=message):
        build(config)
