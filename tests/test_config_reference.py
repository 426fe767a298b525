"""The config reference: every key has help beside its field, and docs/configuration.md is what
``mmnewsrec config`` writes from it."""

from __future__ import annotations

from pathlib import Path

import mmnewsrec.models.news_encoders  # noqa: F401  (registers every encoder type's config)
from mmnewsrec.cli.main import main
from mmnewsrec.config import NEWS_CONFIGS
from mmnewsrec.config.reference import config_keys, config_reference, field_help

ROOT = Path(__file__).parents[1]


def test_every_config_key_has_help() -> None:
    keys = list(config_keys(packaged=True))
    assert len(keys) > 100
    assert [key.path for key in keys if not key.help] == []
    for name in ("text", "vision", "precomputed", "word", "fusion", "blip"):
        assert f"model.news[{name}].type" in {key.path for key in keys}
    assert set(NEWS_CONFIGS) >= {"text", "vision", "precomputed", "word", "fusion", "blip"}


def test_help_continues_over_lines_and_comes_from_the_nearest_class() -> None:
    from mmnewsrec.config import TextEncoderConfig, TrainingConfig

    helps = field_help(TrainingConfig)
    assert helps["batch_size"] == (
        "samples per step and process; the effective batch is batch_size x grad_accum x processes."
    )
    text = field_help(TextEncoderConfig)
    assert text["dim"].startswith("size of the news vectors") and text["text"] == "the backbone."


def test_the_docs_reference_is_current() -> None:
    written = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    stale = "docs/configuration.md is stale: mmnewsrec config > docs/configuration.md"
    assert written == config_reference(packaged=True), stale


def test_config_lists_one_section_and_refuses_an_unknown_prefix(capsys) -> None:
    assert main(["config", "training.lr"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["training.lr"]
    assert "learning rate of new (randomly initialised) parameters" in rows[0] and "`0.0001`" in rows[0]
    assert main(["config", "trainin.lr"]) == 1
    assert "no config key starts with 'trainin.lr'" in capsys.readouterr().err
