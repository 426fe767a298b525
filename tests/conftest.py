"""Shared fixtures: the hand-written MIND sample and one tiny synthetic dataset per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mmnewsrec.data.synthetic import generate_ebnerd, generate_mind

FIXTURES = Path(__file__).parent / "fixtures"

pytest_plugins = [
    "tests.tiny_models",  # tiny random transformers models: tiny_bert, tiny_vit, tiny_blip
    "tests.run_fixtures",  # word_run: a trained tiny run
]


@pytest.fixture()
def mind_sample(tmp_path: Path) -> Path:
    """A writable copy of tests/fixtures/mind_sample (train/dev/test, 6 news, 6 impressions)."""
    target = tmp_path / "mind_sample"
    shutil.copytree(FIXTURES / "mind_sample", target)
    return target


@pytest.fixture(scope="session")
def tiny_mind(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic ``tiny`` dataset (seed 0) shared by the whole session: treat it as read-only."""
    root = tmp_path_factory.mktemp("synthetic") / "tiny"
    generate_mind(root, scale="tiny", seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_ebnerd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same synthetic world as :func:`tiny_mind`, written as an EB-NeRD bundle with its
    embedding artifacts: treat it as read-only."""
    root = tmp_path_factory.mktemp("synthetic-ebnerd") / "tiny"
    generate_ebnerd(root, scale="tiny", seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_xmind(tiny_mind: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An xMIND-style translations folder for :func:`tiny_mind` (``xMINDsmall_{split}/news.tsv``:
    news id, title, abstract), each text written backwards: treat it as read-only."""
    root = tmp_path_factory.mktemp("xmind") / "rev"
    for split in ("train", "dev", "test"):
        lines = []
        for line in (tiny_mind / split / "news.tsv").read_text(encoding="utf-8").splitlines():
            news_id, _, _, title, abstract, *_ = line.split("\t")
            lines.append(f"{news_id}\t{title[::-1]}\t{abstract[::-1]}\n")
        (root / f"xMINDsmall_{split}").mkdir(parents=True)
        (root / f"xMINDsmall_{split}" / "news.tsv").write_text("".join(lines), encoding="utf-8")
    return root


@pytest.fixture()
def tokenizer_loads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the tokenizers the feature code loads (``{"n": count}``) from now on."""
    import mmnewsrec.features.text as text

    loads = {"n": 0}
    real = text.load_tokenizer

    def counted(*args, **kwargs):
        loads["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(text, "load_tokenizer", counted)
    return loads
