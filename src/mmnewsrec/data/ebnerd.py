"""EB-NeRD (the Ekstra Bladet News Recommendation Dataset, RecSys Challenge 2024) read onto the
tables MIND is read onto, so every command takes either.

A bundle (``ebnerd_demo``, ``ebnerd_small``, ``ebnerd_large``; the test set ``ebnerd_testset``) is
a folder with ``articles.parquet`` and one folder per split (``train/``, ``validation/``,
``test/``), each with ``behaviors.parquet`` (one row per impression) and ``history.parquet`` (each
user's clicks in the 21 days before the split, fixed for the split). The mapping:

* **articles -> news**: ``article_id`` is the news id (as text), ``title`` the title,
  ``subtitle`` the abstract, ``category_str`` the category, the first of ``subcategory`` (ids) the
  subcategory, ``url`` the URL; kept beside them where present: ``published_time``,
  ``article_type``, ``premium``, ``sentiment_label``, ``sentiment_score`` and ``image_count``
  (``len(image_ids)``). EB-NeRD's named entities are names, not Wikidata ids: the entity columns
  stay empty.
* **behaviors -> impressions**: ``article_ids_inview`` are the candidates (in file order),
  ``article_ids_clicked`` give the labels (the test split has none), ``impression_time`` the time,
  the user's ``article_id_fixed`` from ``history.parquet`` the history (oldest first). Kept beside
  them where present: ``read_time``, ``scroll_percentage``, ``device_type``, ``is_subscriber``,
  ``is_sso_user``, ``session_id``, ``article_id`` (the page the impression was on) and, in the
  test split, ``is_beyond_accuracy``.
* The splits are named as MIND's: ``dev`` is EB-NeRD's ``validation``.

Files are read with pyarrow a row group at a time (the columns used only), so memory is the tables
built, not the files' other columns. Every problem is a :class:`DataFormatError` naming the file,
the 1-based row and the column: a missing column, a null where a value is required, a clicked
article that is not in view, an impression without articles in view, a duplicate id, an article
unknown to ``articles.parquet`` (unless ``on_unknown_news`` drops or keeps it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mmnewsrec.config import UnknownNewsPolicy
from mmnewsrec.data.schema import BEHAVIORS_SCHEMA, NEWS_COLUMNS
from mmnewsrec.errors import DataFormatError

if TYPE_CHECKING:
    from mmnewsrec.data.mind.behaviors import BehaviorsBlock

logger = logging.getLogger(__name__)

ARTICLES_FILE = "articles.parquet"
BEHAVIORS_PARQUET = "behaviors.parquet"
HISTORY_PARQUET = "history.parquet"
#: MIND's split names -> EB-NeRD's folders.
SPLIT_FOLDERS = {"train": "train", "dev": "validation", "test": "test"}

#: Columns each file must have (the test split's behaviours have no ``article_ids_clicked``).
ARTICLE_REQUIRED = ("article_id", "title", "category_str")
BEHAVIOR_REQUIRED = ("impression_id", "user_id", "impression_time", "article_ids_inview")
HISTORY_REQUIRED = ("user_id", "article_id_fixed")
#: Columns kept beside MIND's when a file has them.
ARTICLE_EXTRAS = ("published_time", "article_type", "premium", "sentiment_label", "sentiment_score")
BEHAVIOR_EXTRAS = (
    "read_time",
    "scroll_percentage",
    "device_type",
    "is_subscriber",
    "is_sso_user",
    "session_id",
    "article_id",
    "is_beyond_accuracy",
)
#: Rows read at a time.
BATCH_ROWS = 100_000


def is_ebnerd_root(path: str | Path) -> bool:
    """Whether a folder is an EB-NeRD bundle (it has ``articles.parquet``)."""
    return (Path(path) / ARTICLES_FILE).is_file()


def split_folder(root: str | Path, split: str) -> Path:
    """The folder of a split (``dev`` -> ``validation/``)."""
    return Path(root) / SPLIT_FOLDERS.get(split, split)


def _open(path: Path, required: Sequence[str]) -> pq.ParquetFile:
    if not path.is_file():
        raise DataFormatError(path, None, "file not found")
    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFormatError(path, None, f"not a readable Parquet file ({exc})") from None
    names = set(handle.schema_arrow.names)
    missing = [name for name in required if name not in names]
    if missing:
        raise DataFormatError(path, None, f"column {missing[0]} missing (has: {', '.join(sorted(names))})")
    return handle


def _batches(
    path: Path, handle: pq.ParquetFile, columns: Sequence[str], rows: int = BATCH_ROWS
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(first row, batch) over the file, ``rows`` at a time, the given columns only."""
    first = 0
    try:
        for batch in handle.iter_batches(batch_size=rows, columns=list(columns)):
            yield first, batch
            first += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFormatError(path, None, f"truncated or damaged at row {first + 1} or after ({exc})") from None


def _fail(path: Path, row: int, column: str, reason: str) -> DataFormatError:
    return DataFormatError(path, None, f"row {row + 1}, column {column}: {reason}")


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _integers(path: Path, column: pa.Array, first: int, name: str) -> np.ndarray:
    """An integer column without nulls, as int64."""
    if not pa.types.is_integer(column.type):
        raise DataFormatError(path, None, f"column {name}: integers expected, the file has {column.type}")
    null = _first(column.is_null().to_numpy(zero_copy_only=False))
    if null is not None:
        raise _fail(path, first + null, name, "null (a value is required)")
    return column.to_numpy(zero_copy_only=False).astype(np.int64)


def _id_lists(path: Path, column: pa.Array, first: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A list-of-integers column as (offsets (R + 1,), values (V,) int64); a null list is empty."""
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)) or not pa.types.is_integer(
        column.type.value_type
    ):
        raise DataFormatError(path, None, f"column {name}: lists of integers expected, the file has {column.type}")
    column = pc.fill_null(column, pa.scalar([], column.type))
    values = pc.list_flatten(column)
    null = _first(values.is_null().to_numpy(zero_copy_only=False))
    if null is not None:
        owner = np.repeat(np.arange(len(column)), pc.list_value_length(column).to_numpy(zero_copy_only=False))
        raise _fail(path, first + int(owner[null]), name, "a null article id in the list")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets, values.to_numpy(zero_copy_only=False).astype(np.int64)


def _texts(column: pa.Array) -> pa.Array:
    return pc.fill_null(pc.cast(column, pa.string()), "")


def read_articles(path: str | Path) -> pa.Table:
    """``articles.parquet`` as a news table: :data:`NEWS_COLUMNS` (strings), then the extras the
    file has (see the module's mapping) and ``image_count``.

    Raises:
        DataFormatError: a missing column, a null id or title, a duplicate article id.
    """
    path = Path(path)
    handle = _open(path, ARTICLE_REQUIRED)
    names = handle.schema_arrow.names
    optional = ("subtitle", "subcategory", "url", "image_ids", *ARTICLE_EXTRAS)
    wanted = [c for c in (*ARTICLE_REQUIRED, *optional) if c in names]
    parts = []
    for first, batch in _batches(path, handle, wanted):
        ids = _integers(path, batch.column("article_id"), first, "article_id")
        title = batch.column("title")
        null = _first(title.is_null().to_numpy(zero_copy_only=False))
        if null is not None:
            raise _fail(path, first + null, "title", "null (every article has a title)")
        if "subcategory" in names:
            offsets, values = _id_lists(path, batch.column("subcategory"), first, "subcategory")
            firsts = np.where(np.diff(offsets) > 0, values[np.minimum(offsets[:-1], max(len(values) - 1, 0))], -1)
            subcategory = pa.array([str(v) if v >= 0 else "" for v in firsts.tolist()], pa.string())
        else:
            subcategory = pa.array([""] * batch.num_rows, pa.string())
        empty = pa.array([""] * batch.num_rows, pa.string())
        columns = {
            "news_id": pa.array(ids.astype(str).tolist(), pa.string()),
            "category": _texts(batch.column("category_str")),
            "subcategory": subcategory,
            "title": _texts(title),
            "abstract": _texts(batch.column("subtitle")) if "subtitle" in names else empty,
            "url": _texts(batch.column("url")) if "url" in names else empty,
            "title_entities": empty,
            "abstract_entities": empty,
        }
        for extra in ARTICLE_EXTRAS:
            if extra in names:
                column = batch.column(extra)
                columns[extra] = pc.cast(column, pa.timestamp("s")) if pa.types.is_timestamp(column.type) else column
        if "image_ids" in names:
            columns["image_count"] = pc.fill_null(pc.list_value_length(batch.column("image_ids")), 0)
        parts.append(pa.table(columns))
    table = pa.concat_tables(parts) if parts else pa.table({c: pa.array([], pa.string()) for c in NEWS_COLUMNS})
    ids = table["news_id"].combine_chunks()
    unique, first_rows, counts = np.unique(
        np.asarray(ids.to_numpy(zero_copy_only=False), dtype=str), return_index=True, return_counts=True
    )
    if (counts > 1).any():
        repeated = unique[counts > 1][0]
        rows = np.flatnonzero(np.asarray(ids.to_numpy(zero_copy_only=False), dtype=str) == repeated)
        raise _fail(path, int(rows[1]), "article_id", f"duplicate article id {repeated} (first at row {rows[0] + 1})")
    return table.combine_chunks()


def _read_histories(path: Path) -> tuple[dict[int, int], np.ndarray, np.ndarray]:
    """``history.parquet``: user id -> row, and the rows' clicked articles (offsets, values)."""
    handle = _open(path, HISTORY_REQUIRED)
    users, offsets, values = [], [np.zeros(1, dtype=np.int64)], []
    total = 0
    for first, batch in _batches(path, handle, HISTORY_REQUIRED):
        users.append(_integers(path, batch.column("user_id"), first, "user_id"))
        part_offsets, part_values = _id_lists(path, batch.column("article_id_fixed"), first, "article_id_fixed")
        offsets.append(part_offsets[1:] + total)
        values.append(part_values)
        total += len(part_values)
    user_ids = np.concatenate(users) if users else np.zeros(0, dtype=np.int64)
    row_of: dict[int, int] = {}
    for row, user in enumerate(user_ids.tolist()):
        if user in row_of:
            raise _fail(path, row, "user_id", f"user {user} has a second history (first at row {row_of[user] + 1})")
        row_of[user] = row
    return row_of, np.concatenate(offsets), np.concatenate(values) if values else np.zeros(0, dtype=np.int64)


def _list_array(values: np.ndarray, offsets: np.ndarray, kind: pa.DataType) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, kind))


def read_split_tables(
    directory: str | Path, known_news: pa.Array, on_unknown_news: UnknownNewsPolicy = "error"
) -> tuple[pa.Table, bool, int, int]:
    """A split folder's impressions as :data:`BEHAVIORS_SCHEMA` (then the extras the file has):
    (table, labelled, unknown article references, impressions dropped).

    Raises:
        DataFormatError: naming file, row and column of the first problem.
    """
    blocks = list(iter_split_blocks(directory, known_news, on_unknown_news))
    if not blocks:  # an empty file: whether it would carry labels is in its columns
        labelled = (
            "article_ids_clicked" in _open(Path(directory) / BEHAVIORS_PARQUET, BEHAVIOR_REQUIRED).schema_arrow.names
        )
        return BEHAVIORS_SCHEMA.empty_table(), labelled, 0, 0
    labelled = blocks[0].result.labelled
    table = pa.concat_tables([block.result.table for block in blocks]).combine_chunks()
    unknown = sum(block.result.unknown_news_refs for block in blocks)
    return table, labelled, unknown, sum(block.result.dropped_impressions for block in blocks)


def iter_split_blocks(
    directory: str | Path,
    known_news: pa.Array,
    on_unknown_news: UnknownNewsPolicy = "error",
    block_rows: int = BATCH_ROWS,
    take: Callable[[int], bool] | None = None,
) -> Iterator[BehaviorsBlock]:
    """A split folder's impressions ``block_rows`` at a time, each block checked and mapped as
    :func:`read_split_tables` maps the whole file (``first_line`` is the block's first row), so
    scoring holds one block, not the split; ``take`` picks the blocks yielded (every block is
    still checked, impression ids across all of them).

    Raises:
        DataFormatError: naming file, row and column of the first problem.
    """
    from mmnewsrec.data.mind.behaviors import BehaviorsBlock, BehaviorsReadResult

    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, None, "split folder not found")
    behaviors_path, history_path = directory / BEHAVIORS_PARQUET, directory / HISTORY_PARQUET
    row_of, hist_offsets, hist_values = _read_histories(history_path)
    handle = _open(behaviors_path, BEHAVIOR_REQUIRED)
    names = handle.schema_arrow.names
    labelled = "article_ids_clicked" in names
    extras = [c for c in BEHAVIOR_EXTRAS if c in names]
    columns = [*BEHAVIOR_REQUIRED, *(["article_ids_clicked"] if labelled else []), *extras]
    known = np.sort(np.asarray(pc.cast(known_news, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64))
    seen_impressions: set[int] = set()
    unknown_total = 0
    for index, (first, batch) in enumerate(_batches(behaviors_path, handle, columns, block_rows)):
        impression_ids = _integers(behaviors_path, batch.column("impression_id"), first, "impression_id")
        for row, value in enumerate(impression_ids.tolist()):
            if value in seen_impressions:
                raise _fail(behaviors_path, first + row, "impression_id", f"duplicate impression id {value}")
            seen_impressions.add(value)
        users = _integers(behaviors_path, batch.column("user_id"), first, "user_id")
        times = batch.column("impression_time")
        if not pa.types.is_timestamp(times.type):
            expected = f"column impression_time: timestamps expected, the file has {times.type}"
            raise DataFormatError(behaviors_path, None, expected)
        null = _first(times.is_null().to_numpy(zero_copy_only=False))
        if null is not None:
            raise _fail(behaviors_path, first + null, "impression_time", "null (a value is required)")
        inview = batch.column("article_ids_inview")
        cand_offsets, cand_values = _id_lists(behaviors_path, inview, first, "article_ids_inview")
        empty = _first(np.diff(cand_offsets) == 0)
        if empty is not None:
            raise _fail(behaviors_path, first + empty, "article_ids_inview", "no article in view")
        owner = np.repeat(np.arange(batch.num_rows), np.diff(cand_offsets))
        labels = None
        if labelled:
            clicked = batch.column("article_ids_clicked")
            click_offsets, click_values = _id_lists(behaviors_path, clicked, first, "article_ids_clicked")
            click_owner = np.repeat(np.arange(batch.num_rows), np.diff(click_offsets))
            cand_keys = owner.astype(np.int64) * (1 << 32) + cand_values
            click_keys = click_owner.astype(np.int64) * (1 << 32) + click_values
            outside = _first(~np.isin(click_keys, cand_keys))
            if outside is not None:
                raise _fail(
                    behaviors_path,
                    first + int(click_owner[outside]),
                    "article_ids_clicked",
                    f"article {int(click_values[outside])} was clicked but is not in article_ids_inview",
                )
            labels = np.isin(cand_keys, click_keys).astype(np.int8)
        # Histories: the user's row of history.parquet (a user without one has an empty history).
        rows = np.array([row_of.get(u, -1) for u in users.tolist()], dtype=np.int64)
        lengths = np.where(rows >= 0, hist_offsets[rows + 1] - hist_offsets[np.maximum(rows, 0)], 0)
        h_offsets = np.zeros(batch.num_rows + 1, dtype=np.int64)
        np.cumsum(lengths, out=h_offsets[1:])
        h_values = (
            np.concatenate([hist_values[hist_offsets[r] : hist_offsets[r + 1]] for r in rows.tolist() if r >= 0])
            if (rows >= 0).any()
            else np.zeros(0, dtype=np.int64)
        )
        # Articles unknown to articles.parquet.
        cand_known = _is_in(cand_values, known)
        hist_known = _is_in(h_values, known)
        unknown = int((~cand_known).sum() + (~hist_known).sum())
        keep = np.ones(batch.num_rows, dtype=bool)
        if unknown and on_unknown_news == "error":
            at_cand, at_hist = _first(~cand_known), _first(~hist_known)
            if at_cand is not None:
                row, column, value = int(owner[at_cand]), "article_ids_inview", int(cand_values[at_cand])
                path = behaviors_path
            else:
                h_owner = np.repeat(np.arange(batch.num_rows), np.diff(h_offsets))
                user = int(users[h_owner[at_hist]])
                row, column, path = row_of[user] - first, "article_id_fixed", history_path
                value = int(h_values[at_hist])
            raise _fail(
                path,
                first + row,
                column,
                f"article {value} is not in {ARTICLES_FILE} ({unknown} unknown references in this block; "
                "on_unknown_news=drop removes them)",
            )
        if unknown and on_unknown_news == "drop":
            cand_values, cand_offsets, labels = _keep(cand_values, cand_offsets, cand_known, labels)
            h_values, h_offsets, _ = _keep(h_values, h_offsets, hist_known, None)
            keep = np.diff(cand_offsets) > 0
        unknown_total += unknown
        table = pa.Table.from_arrays(
            [
                pa.array(impression_ids, pa.int64()),
                pa.array(users.astype(str).tolist(), pa.string()),
                pc.cast(times, pa.timestamp("s")),
                _list_array(h_values.astype(str), h_offsets, pa.string()),
                _list_array(cand_values.astype(str), cand_offsets, pa.string()),
                _list_array(labels, cand_offsets, pa.int8())
                if labels is not None
                else pa.nulls(batch.num_rows, pa.list_(pa.int8())),
            ],
            schema=BEHAVIORS_SCHEMA,
        )
        for extra in BEHAVIOR_EXTRAS:
            if extra in names:
                table = table.append_column(extra, batch.column(extra))
        dropped = int((~keep).sum())
        if dropped:
            table = table.filter(pa.array(keep))
        if take is None or take(index):
            yield BehaviorsBlock(
                index, first + 1, BehaviorsReadResult(table.combine_chunks(), labelled, unknown, dropped)
            )
    if unknown_total and on_unknown_news == "drop":
        logger.warning("%s: dropped %d references to unknown articles", behaviors_path, unknown_total)


def _is_in(values: np.ndarray, sorted_known: np.ndarray) -> np.ndarray:
    if not len(sorted_known):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_known, values), len(sorted_known) - 1)
    return sorted_known[at] == values


def _keep(
    values: np.ndarray, offsets: np.ndarray, mask: np.ndarray, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    kept = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])  # kept entries before each position
    new_offsets = kept[offsets]
    return values[mask], new_offsets, None if labels is None else labels[mask]


def display_counts(path: str | Path) -> pa.Table:
    """How often each article of a ``behaviors.parquet`` was in view and clicked, a row group at a
    time (as :func:`mmnewsrec.data.mind.display_counts` counts a ``behaviors.tsv``).

    Returns:
        a table ``news_id`` (string), ``displays`` and ``clicks`` (int64), one row per article in view.
    """
    path = Path(path)
    handle = _open(path, ("article_ids_inview",))
    labelled = "article_ids_clicked" in handle.schema_arrow.names
    displays: dict[int, int] = {}
    clicks: dict[int, int] = {}
    columns = ["article_ids_inview", *(["article_ids_clicked"] if labelled else [])]
    for first, batch in _batches(path, handle, columns):
        for counts, name in ((displays, "article_ids_inview"), (clicks, "article_ids_clicked")):
            if name not in batch.schema.names:
                continue
            _, values = _id_lists(path, batch.column(name), first, name)
            ids, found = np.unique(values, return_counts=True)
            for article, n in zip(ids.tolist(), found.tolist(), strict=True):
                counts[article] = counts.get(article, 0) + n
    articles = sorted(displays)
    return pa.table(
        {
            "news_id": pa.array([str(a) for a in articles], pa.string()),
            "displays": pa.array([displays[a] for a in articles], pa.int64()),
            "clicks": pa.array([clicks.get(a, 0) for a in articles], pa.int64()),
        }
    )
