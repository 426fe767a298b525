"""MIND's knowledge entities: the ``title_entities`` / ``abstract_entities`` columns of ``news.tsv``
and the ``entity_embedding.vec`` file of TransE vectors that every MIND archive ships.

An entity column holds a JSON list, one object per entity found in the text::

    [{"Label": "PGA Tour", "Type": "O", "WikidataId": "Q910409", "Confidence": 1.0,
      "OccurrenceOffsets": [0], "SurfaceForms": ["PGA Tour"]}]

Only ``WikidataId`` is required; ``Confidence`` (0-1), when given, is kept. An empty field is no
entities. ``entity_embedding.vec`` has one line per entity: its Wikidata id, then its vector's
values, separated by tabs (100 values in MIND; a trailing tab is allowed).

Every problem is a :class:`~mmnewsrec.errors.DataFormatError` naming the file, the line and, for
JSON, the column of the line where it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mmnewsrec.data.schema import NEWS_COLUMNS
from mmnewsrec.errors import DataFormatError

ENTITY_COLUMNS = ("title_entities", "abstract_entities")
ENTITY_EMBEDDING_FILE = "entity_embedding.vec"


@dataclass(frozen=True)
class NewsEntities:
    """The entities of each news, in the news table's row order.

    Attributes:
        ids: per news, the Wikidata ids of its title's entities, then those of its abstract not
            already in its title (list<string>).
        confidence: aligned with ``ids``: each entity's confidence (1.0 where the file gives none).
    """

    ids: pa.ListArray
    confidence: pa.ListArray

    def distinct(self) -> list[str]:
        """Every entity id, each once, in order of first appearance."""
        return list(dict.fromkeys(self.ids.flatten().to_pylist()))


def parse_entities(news: pa.Table, path: str | Path, first_line: int = 1) -> NewsEntities:
    """Parses the entity columns of a news table read from ``path`` (line ``first_line`` is its
    first row).

    Raises:
        DataFormatError: a field that is not a JSON list of entity objects, an entity without a
            ``WikidataId`` or with a confidence outside 0-1; naming file, line and column.
    """
    path = Path(path)
    columns = {name: news[name].to_pylist() for name in ENTITY_COLUMNS if name in news.column_names}
    if not columns:
        empty = pa.array([[]] * news.num_rows, pa.list_(pa.string()))
        return NewsEntities(empty, pa.array([[]] * news.num_rows, pa.list_(pa.float32())))
    ids: list[list[str]] = []
    confidence: list[list[float]] = []
    for row in range(news.num_rows):
        seen: dict[str, float] = {}
        for name, values in columns.items():
            text = values[row] or ""
            if not text.strip():
                continue
            for entity_id, score in _parse_field(text, name, news, row, path, first_line + row):
                seen.setdefault(entity_id, score)
        ids.append(list(seen))
        confidence.append(list(seen.values()))
    return NewsEntities(pa.array(ids, pa.list_(pa.string())), pa.array(confidence, pa.list_(pa.float32())))


def _parse_field(text: str, name: str, news: pa.Table, row: int, path: Path, line: int) -> list[tuple[str, float]]:
    def fail(reason: str, position: int = 0) -> DataFormatError:
        return DataFormatError(path, line, f"{name} (column {_column(news, row, name) + position}): {reason}")

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"not valid JSON ({exc.msg})", exc.pos) from None
    if not isinstance(value, list):
        raise fail(f"expected a JSON list of entities, got {type(value).__name__}")
    found = []
    for index, entity in enumerate(value):
        if not isinstance(entity, dict):
            raise fail(f"entity {index}: expected an object, got {type(entity).__name__}")
        entity_id = entity.get("WikidataId")
        if not isinstance(entity_id, str) or not entity_id or any(c.isspace() for c in entity_id):
            raise fail(f"entity {index}: WikidataId must be an id without spaces (e.g. 'Q910409'), got {entity_id!r}")
        score = entity.get("Confidence", 1.0)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
            raise fail(f"entity {index} ({entity_id}): Confidence must be a number in [0, 1], got {score!r}")
        found.append((entity_id, float(score)))
    return found


def _column(news: pa.Table, row: int, name: str) -> int:
    """The 1-based column of the line where field ``name`` of ``row`` starts (tabs between fields)."""
    before = NEWS_COLUMNS[: NEWS_COLUMNS.index(name)]
    return sum(len(news[column][row].as_py() or "") + 1 for column in before) + 1


@dataclass(frozen=True)
class EntityVectors:
    """Pretrained entity vectors (MIND's TransE ``entity_embedding.vec``).

    Attributes:
        ids: the entities' Wikidata ids, in file order.
        vectors: (E, D) float32.
    """

    ids: list[str]
    vectors: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def rows(self, entity_ids: list[str]) -> np.ndarray:
        """(len(entity_ids),) int64 row of each id in :attr:`vectors`, -1 for an id without one."""
        index = {entity_id: row for row, entity_id in enumerate(self.ids)}
        return np.array([index.get(entity_id, -1) for entity_id in entity_ids], dtype=np.int64)


def read_entity_vectors(path: str | Path) -> EntityVectors:
    """Reads an ``entity_embedding.vec`` file.

    Raises:
        DataFormatError: a line without a vector, a value that is not a number, a vector of another
            size than the first line's, or an id listed twice (file:line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "file not found")
    ids: list[str] = []
    rows: list[np.ndarray] = []
    where: dict[str, int] = {}
    dim = None
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataFormatError(path, number, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
            parts = line.rstrip("\r\n").rstrip("\t ").split("\t")
            if parts == [""]:
                continue  # a blank line
            entity_id, values = parts[0].strip(), parts[1:]
            if not entity_id or not values:
                raise DataFormatError(path, number, "expected an entity id, then its vector's values, tab-separated")
            try:
                vector = np.array([float(value) for value in values], dtype=np.float32)
            except ValueError:
                bad = next(value for value in values if not _is_number(value))
                raise DataFormatError(path, number, f"{entity_id}: {bad!r} is not a number") from None
            if not np.isfinite(vector).all():
                raise DataFormatError(path, number, f"{entity_id}: the vector holds a value that is not finite")
            if dim is None:
                dim = len(vector)
            elif len(vector) != dim:
                raise DataFormatError(path, number, f"{entity_id}: {len(vector)} values, where line 1 has {dim}")
            if entity_id in where:
                raise DataFormatError(
                    path, number, f"entity {entity_id!r} is listed twice (first at line {where[entity_id]})"
                )
            where[entity_id] = number
            ids.append(entity_id)
            rows.append(vector)
    vectors = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    return EntityVectors(ids, vectors)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
