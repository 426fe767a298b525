"""News records as plain values: what the service, the predictor and replay take in, and MIND
files read into them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import pyarrow as pa

from mmnewsrec.data.ebnerd import ARTICLES_FILE, read_articles
from mmnewsrec.data.images import attach_images
from mmnewsrec.data.mind import build_catalogue, find_image_dir, parse_entities, read_news
from mmnewsrec.data.schema import NEWS_COLUMNS, NEWS_FILE
from mmnewsrec.errors import ConfigError, MmnewsrecError


class RequestError(MmnewsrecError, ValueError):
    """A request the predictor cannot answer: an unknown news id, a malformed record."""


#: What a user or news id may hold: 1-256 characters, none of them whitespace (what Python's
#: ``str.isspace`` calls space, the separators U+001C-U+001F included), a control character or
#: U+FFFD (what undecodable bytes in a URL become, so ``%FF`` and ``%FE`` are refused, not one id).
#: The API's schema and :func:`check_id` use this one pattern; it reads the same to Python's ``re``
#: and to the Rust regex engine pydantic validates with.
ID_PATTERN = r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufffd]{1,256}$"
#: The rule in words, for every message that refuses an id.
ID_RULE = "1-256 characters without spaces, control characters or U+FFFD"
_ID = re.compile(ID_PATTERN)
_SURROGATE = re.compile("[\ud800-\udfff]")  # not text (no UTF-8 for them); pydantic refuses them too


def check_id(value: object, what: str) -> str:
    """``value`` when it is a valid id (:data:`ID_PATTERN`); else a :class:`RequestError` naming ``what``."""
    if not isinstance(value, str) or _ID.fullmatch(value) is None or _SURROGATE.search(value):
        raise RequestError(f"{what} {value!r} must be {ID_RULE}")
    return value


@dataclass(frozen=True)
class NewsRecord:
    """One news article as plain values (a row of MIND's news.tsv, plus an optional image file).

    ``entities`` are the Wikidata ids of the knowledge entities it names (news.tsv's title and
    abstract entities, the title's first), for a model that reads them.
    """

    news_id: str
    category: str
    subcategory: str = ""
    title: str = ""
    abstract: str = ""
    image: str | None = None
    entities: tuple[str, ...] = ()

    @classmethod
    def of(cls, value: NewsRecord | Mapping[str, object], position: int = 0) -> NewsRecord:
        """A record from a mapping with these keys (``image`` optional), checked."""
        if isinstance(value, NewsRecord):
            record = value
        else:
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise RequestError(f"news record {position}: unknown field {unknown[0]!r}; fields are {sorted(known)}")
            try:
                record = cls(**value)  # type: ignore[arg-type]
            except TypeError as exc:
                raise RequestError(f"news record {position}: {exc}") from None
        for name in ("news_id", "category", "subcategory", "title", "abstract"):
            if not isinstance(getattr(record, name), str):
                raise RequestError(f"news record {position}: {name} must be a string")
        check_id(record.news_id, f"news record {position}: news_id")
        if not isinstance(record.entities, (list, tuple)):
            raise RequestError(f"news record {position}: entities must be a list of entity ids")
        for entity in record.entities:
            check_id(entity, f"news record {position}: entity")
        record = replace(record, entities=tuple(record.entities))
        if record.image is not None and not Path(record.image).is_file():
            raise RequestError(f"news record {position} ({record.news_id}): image file {record.image} not found")
        return record


def records_table(records: Sequence[NewsRecord]) -> pa.Table:
    """The news table (news.tsv columns + ``image_path``) the feature code reads."""
    columns = {name: [getattr(r, name, "") for r in records] for name in NEWS_COLUMNS}
    columns["title_entities"] = [json.dumps([{"WikidataId": e} for e in r.entities]) for r in records]
    columns["image_path"] = [r.image for r in records]
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def news_files(paths: Sequence[str | Path]) -> list[Path]:
    """``news.tsv`` files from files, split folders (``dev/``) or dataset roots (``train/ dev/ ...``);
    an EB-NeRD bundle gives its ``articles.parquet``."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            found.append(path)
        elif (path / ARTICLES_FILE).is_file():
            found.append(path / ARTICLES_FILE)
        elif (path / NEWS_FILE).is_file():
            found.append(path / NEWS_FILE)
        elif path.is_dir():
            inside = sorted(path.glob(f"*/{NEWS_FILE}"))
            if not inside:
                raise ConfigError(f"--news {path}: no {NEWS_FILE} in it or in its sub-folders")
            found.extend(inside)
        else:
            raise ConfigError(f"--news {path}: no such file or folder")
    return found


def read_news_records(paths: Sequence[str | Path]) -> list[NewsRecord]:
    """The news of MIND-format files or EB-NeRD article tables (first occurrence of each id), with
    their images where a folder has them (EB-NeRD's: none, its images are embeddings)."""
    tables = []
    for path in news_files(paths):
        if path.suffix == ".parquet":
            table = read_articles(path).select(["news_id", "category", "subcategory", "title", "abstract"])
            table = table.append_column("image_path", pa.nulls(table.num_rows, pa.string()))
            tables.append(table.append_column("entities", pa.array([[]] * table.num_rows, pa.list_(pa.string()))))
            continue
        table = read_news(path)
        image_dir = find_image_dir(path.parent)
        if image_dir is not None:
            table = attach_images(table, image_dir)
        else:
            table = table.append_column("image_path", pa.nulls(table.num_rows, pa.string()))
        entities = parse_entities(table, path).ids
        table = table.select(["news_id", "category", "subcategory", "title", "abstract", "image_path"])
        tables.append(table.append_column("entities", entities))
    if not tables:
        return []
    catalogue = build_catalogue(tables)
    columns = catalogue.to_pydict()
    return [
        NewsRecord(n, c, s, t, a, i, tuple(e))
        for n, c, s, t, a, i, e in zip(
            columns["news_id"],
            columns["category"],
            columns["subcategory"],
            columns["title"],
            columns["abstract"],
            columns["image_path"],
            columns["entities"],
            strict=True,
        )
    ]
