"""xMIND: MIND's impressions with each news's title and abstract from a translations folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mmnewsrec.config import DataConfig
from mmnewsrec.data.mind import DatasetLocation, load_mind
from mmnewsrec.errors import DataFormatError


def _location(root: Path, translations: Path) -> DatasetLocation:
    return DatasetLocation(root, DataConfig(root=str(root), translations=str(translations)))


def test_titles_and_abstracts_come_from_the_translations_and_the_rest_from_mind(
    tiny_mind: Path, tiny_xmind: Path
) -> None:
    english, translated = load_mind(tiny_mind), load_mind(tiny_mind, DataConfig(translations=str(tiny_xmind)))
    a, b = english.news.to_pylist(), translated.news.to_pylist()
    assert [r["news_id"] for r in a] == [r["news_id"] for r in b]
    pairs = list(zip(a, b, strict=True))
    assert all(x["title"][::-1] == y["title"] and x["abstract"][::-1] == y["abstract"] for x, y in pairs)
    assert all(x["category"] == y["category"] and x["title_entities"] == y["title_entities"] for x, y in pairs)
    for split in ("train", "dev"):  # the same impressions, clicks and histories
        assert np.array_equal(english[split].flat_labels(), translated[split].flat_labels())
        assert english[split].flat_history().equals(translated[split].flat_history())
    dev = _location(tiny_mind, tiny_xmind)
    assert dev.read_split_news("dev")["title"].to_pylist() == translated["dev"].news["title"].to_pylist()


def test_a_news_without_translation_or_a_split_without_file_is_an_error(tiny_mind: Path, tmp_path: Path) -> None:
    folder = tmp_path / "xmind"
    (folder / "xMINDsmall_dev").mkdir(parents=True)
    lines = (tiny_mind / "dev" / "news.tsv").read_text(encoding="utf-8").splitlines()
    first = lines[0].split("\t")[0]
    rows = [f"{line.split(chr(9))[0]}\tT\tA\n" for line in lines[1:]]
    (folder / "xMINDsmall_dev" / "news.tsv").write_text("".join(rows), encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"xMINDsmall_dev/news.tsv: no translation of news '{first}' \(1 news"):
        _location(tiny_mind, folder).read_split("dev")
    with pytest.raises(DataFormatError, match=r"data.translations: no train/news.tsv or \*_train/news.tsv"):
        _location(tiny_mind, folder).read_split("train")
    (folder / "xMINDsmall_dev" / "news.tsv").write_text("".join(rows[:2]) + rows[0], encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"news.tsv:3: duplicate news id"):
        _location(tiny_mind, folder).read_split_news("dev")
    shutil.rmtree(folder / "xMINDsmall_dev")
    (folder / "dev").mkdir()
    (folder / "dev" / "news.tsv").write_text("x\ty\n", encoding="utf-8")  # two columns, not three
    with pytest.raises(DataFormatError, match="dev/news.tsv:1"):
        _location(tiny_mind, folder).read_split_news("dev")
