from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from mmnewsrec.cli.main import main
from mmnewsrec.data.mind import load_mind
from mmnewsrec.features.store import FeatureStore
from mmnewsrec.features.text import TokenBuilder


def write_config(path: Path, data: Path, bert: Path, vit: Path, blip: Path, cache: Path) -> Path:
    config = {
        "data": {"root": str(data), "images": {"missing": "mask"}},
        "features": {
            "cache_dir": str(cache),
            "tokens": {"tokenizer": str(bert), "title_len": 16, "abstract_len": 24},
            "pixels": {"processor": str(vit)},
            "frozen": [
                {"name": "bert_cls", "model": str(bert), "max_length": 16, "device": "cpu"},
                {"name": "vit_cls", "model": str(vit), "modality": "image", "device": "cpu"},
                {"name": "blip", "model": str(blip), "modality": "blip", "max_length": 16, "device": "cpu"},
            ],
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_featurize_cli_builds_then_reuses(capsys, tiny_mind: Path, tmp_path: Path, tiny_bert, tiny_vit, tiny_blip):
    config = write_config(tmp_path / "exp.yaml", tiny_mind, tiny_bert, tiny_vit, tiny_blip, tmp_path / "cache")
    assert main(["-q", "featurize", "--config", str(config)]) == 0
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["feature"] for r in first] == ["tokens", "pixels", "frozen:bert_cls", "frozen:vit_cls", "frozen:blip"]
    assert all(r["status"] == "built" for r in first)
    catalogue = load_mind(tiny_mind).news
    assert all(r["rows"] == catalogue.num_rows for r in first)  # dev/test-only news included
    assert first[0]["arrays"]["title_ids"] == [catalogue.num_rows, 16]
    assert first[0]["arrays"]["abstract_ids"] == [catalogue.num_rows, 24]
    assert first[1]["arrays"]["pixels"] == [catalogue.num_rows, 3, 32, 32]
    assert first[4]["arrays"]["vectors"] == [catalogue.num_rows, 32]

    assert main(["-q", "featurize", "--config", str(config)]) == 0
    second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(r["status"] == "reused" for r in second)
    assert [r["path"] for r in second] == [r["path"] for r in first]

    # An override is a new setting: a new cache beside the old one.
    assert main(["-q", "featurize", "--config", str(config), "features.tokens.title_len=20"]) == 0
    third = json.loads(capsys.readouterr().out.splitlines()[0])
    assert third["status"] == "built" and third["path"] != first[0]["path"]


def test_featurize_reads_tokens_back_in_catalogue_order(tiny_mind: Path, tmp_path: Path, tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    news = load_mind(tiny_mind).news
    features = FeatureStore(tmp_path).features(TokenBuilder(str(tiny_bert), {"title": 16}), news)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    rows = np.array([0, 500, news.num_rows - 1])
    for row in rows:
        expected = tokenizer(news["title"][int(row)].as_py(), max_length=16, truncation=True, padding="max_length")
        assert features["title_ids"][int(row)].tolist() == expected["input_ids"]


def test_featurize_config_errors_name_the_field(capsys, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("features:\n  frozen:\n    - name: x\n      model: m\n      pooling: max\n")
    assert main(["-q", "featurize", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml: features.frozen[0].pooling: 'max' is not one of ['cls', 'mean', 'pooler', 'tokens']" in err
