"""``news.tsv``: reading it, and one catalogue from several splits' (their shared ids must agree)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmnewsrec.config import ConflictingNewsPolicy
from mmnewsrec.data.mind.entities import parse_entities
from mmnewsrec.data.mind.tsv import _check_unique, _first_true, _read_tsv
from mmnewsrec.data.schema import (
    NEWS_COLUMNS,
    NEWS_FILE,
)
from mmnewsrec.errors import DataFormatError

if TYPE_CHECKING:
    from mmnewsrec.data.mind.dataset import MindSplit

logger = logging.getLogger(__name__)


def read_news(path: str | Path) -> pa.Table:
    """Reads a MIND ``news.tsv`` into a string table with columns :data:`NEWS_COLUMNS`.

    Raises:
        DataFormatError: wrong column count, empty news id, duplicate news id (file:line), or an
            entity field that is not a JSON list of entities (file:line, and its column).
    """
    path = Path(path)
    table = _read_tsv(path, NEWS_COLUMNS)
    ids = table["news_id"]
    empty = _first_true(pc.equal(pc.utf8_length(ids), 0))
    if empty is not None:
        raise DataFormatError(path, empty + 1, "empty news id")
    spaced = _first_true(pc.match_substring_regex(ids, r"\s"))
    if spaced is not None:
        raise DataFormatError(
            path,
            spaced + 1,
            f"news id {ids[spaced].as_py()!r} contains white space: behaviors.tsv separates news ids by spaces, "
            "so it could never be referenced",
        )
    _check_unique(path, ids, "news id")
    parse_entities(table, path)  # every entity field is checked here, like every other field
    return table


def catalogue_rows(news: pa.Table, news_ids: pa.Array | pa.ChunkedArray, where: Path) -> np.ndarray:
    """Row in the news table ``news`` of each news id (int64).

    Raises:
        KeyError: an id absent from ``news``, naming it and ``where`` the catalogue comes from.
    """
    rows = pc.index_in(news_ids, value_set=news["news_id"].combine_chunks())
    if rows.null_count:
        missing = pc.filter(news_ids, pc.is_null(rows))[0].as_py()
        raise KeyError(f"news id {missing!r} is not in the catalogue of {where}")
    return rows.to_numpy(zero_copy_only=False).astype(np.int64)


#: The news.tsv columns that must agree when one news id appears in several splits: what models read.
CONTENT_COLUMNS = ("category", "subcategory", "title", "abstract")


def check_news_agree(splits: list[MindSplit], policy: ConflictingNewsPolicy = "error") -> int:
    """Checks that a news id listed by several splits has the same content in each.

    Returns the number of conflicting news (each kept in its first split's version under ``first``).

    Raises:
        DataFormatError: under ``error``, naming the later file and line, the earlier file and line
            and the column that differs.
    """
    conflicts = 0
    for index, later in enumerate(splits):
        for earlier in splits[:index]:
            rows = pc.index_in(later.news["news_id"], value_set=earlier.news["news_id"].combine_chunks())
            shared = pc.is_valid(rows)
            if not pc.any(shared).as_py():
                continue
            later_rows = np.flatnonzero(shared.to_numpy(zero_copy_only=False))
            earlier_rows = pc.filter(rows, shared).to_numpy(zero_copy_only=False).astype(np.int64)
            differs = np.zeros(len(later_rows), dtype=bool)
            first_column: dict[int, str] = {}
            for column in CONTENT_COLUMNS:
                a = later.news[column].take(pa.array(later_rows)).combine_chunks()
                b = earlier.news[column].take(pa.array(earlier_rows)).combine_chunks()
                unequal = pc.fill_null(pc.not_equal(a, b), False).to_numpy(zero_copy_only=False)
                for position in np.flatnonzero(unequal & ~differs):
                    first_column[int(position)] = column
                differs |= unequal
            if not differs.any():
                continue
            if policy == "error":
                position = int(np.flatnonzero(differs)[0])
                line, first_line = int(later_rows[position]) + 1, int(earlier_rows[position]) + 1
                news_id = later.news["news_id"][int(later_rows[position])].as_py()
                raise DataFormatError(
                    later.directory / NEWS_FILE,
                    line,
                    f"news {news_id!r} has a different {first_column[position]} than in "
                    f"{earlier.directory / NEWS_FILE}:{first_line}; fix one of them, or set "
                    "data.on_conflicting_news=first to keep the first split's version",
                )
            conflicts += int(differs.sum())
    if conflicts:
        logger.warning("%d news differ between splits; keeping each one's first version", conflicts)
    return conflicts


def build_catalogue(tables: list[pa.Table]) -> pa.Table:
    """Concatenates news tables keeping the first occurrence of each news id, in order."""
    if len(tables) == 1:
        return tables[0]
    columns = tables[0].column_names
    combined = pa.concat_tables([t.select(columns) for t in tables]).combine_chunks()
    ids = combined["news_id"]
    unique = pc.unique(ids)  # in order of first occurrence
    first_rows = pc.index_in(unique, value_set=ids)
    return combined.take(first_rows)


#: A translation file's columns (xMIND's news.tsv: the news id, the translated title and abstract).
TRANSLATION_COLUMNS = ("news_id", "title", "abstract")


def translation_file(folder: str | Path, split: str) -> Path:
    """The translated ``news.tsv`` of ``split`` in a translations folder: ``{split}/news.tsv``, or
    the one folder named ``*_{split}`` (xMIND's ``xMINDsmall_train``, ``xMINDlarge_dev``...).

    Raises:
        DataFormatError: the folder has none for the split, or two.
    """
    folder = Path(folder)
    if (folder / split / NEWS_FILE).is_file():
        return folder / split / NEWS_FILE
    found = sorted(p for p in folder.glob(f"*_{split}/{NEWS_FILE}"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(str(p.parent.name) for p in found)})"
        raise DataFormatError(
            folder, None, f"data.translations: {what} {split}/{NEWS_FILE} or *_{split}/{NEWS_FILE} for split {split!r}"
        )
    return found[0]


def translate_news(news: pa.Table, path: str | Path) -> pa.Table:
    """``news`` with its titles and abstracts from a translation file (news id, title, abstract).

    Raises:
        DataFormatError: a malformed or duplicated line (file:line), or a news without a translation
            (naming the first, and how many).
    """
    path = Path(path)
    table = _read_tsv(path, TRANSLATION_COLUMNS)
    _check_unique(path, table["news_id"], "news id")
    where = pc.index_in(news["news_id"], value_set=table["news_id"])
    missing = np.flatnonzero(where.is_null().to_numpy(zero_copy_only=False))
    if missing.size:
        first = news["news_id"][int(missing[0])].as_py()
        raise DataFormatError(path, None, f"no translation of news {first!r} ({missing.size} news have none)")
    rows = pa.array(where.to_numpy(zero_copy_only=False).astype(np.int64))
    for column in ("title", "abstract"):
        news = news.set_column(news.column_names.index(column), column, table[column].take(rows))
    return news
