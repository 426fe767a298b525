from __future__ import annotations

from pathlib import Path

import pytest

from mmnewsrec.config import DataConfig, ImageConfig, apply_overrides, dump_yaml, from_dict, load_yaml
from mmnewsrec.errors import ConfigError


def test_nested_load_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("root: /data/mind\nimages:\n  missing: render_title\n  size: 64\n")
    config = load_yaml(DataConfig, path)
    assert config == DataConfig(root="/data/mind", images=ImageConfig(missing="render_title", size=64))
    dump_yaml(config, tmp_path / "back.yaml")
    assert load_yaml(DataConfig, tmp_path / "back.yaml") == config


def test_overrides_are_yaml_scalars(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("root: x\n")
    config = load_yaml(DataConfig, path, ["images.size=96", "on_unknown_news=drop"])
    assert config.images.size == 96 and config.on_unknown_news == "drop"
    assert apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]"]) == {"a": {"b": 1, "c": [1, 2]}}
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        apply_overrides({}, ["novalue"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"rot": "x"},
            r"rot: unknown key; valid keys under 'the top level' are "
            r"\['images', 'on_conflicting_news', 'on_unknown_news', 'root'\]",
        ),
        ({"images": {"sise": 3}}, r"images.sise: unknown key"),
        ({"images": {"size": "big"}}, r"images.size: expected int, got 'big'"),
        ({"images": {"size": 4}}, r"images.size: must be an integer >= 8"),
        ({"images": {"missing": "blank"}}, r"images.missing: 'blank' is not one of \['render_title', 'mask'\]"),
        ({"on_unknown_news": "ignore"}, r"data.on_unknown_news: 'ignore' is not one of"),
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
    path.write_text("images: {size: 2}\n")
    with pytest.raises(ConfigError, match=rf"{path.name}: images.size"):
        load_yaml(DataConfig, path)
