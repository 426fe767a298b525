"""Readers for MIND-format splits (news.tsv + behaviors.tsv), validated line by line.

Parsing runs in Arrow's C++ CSV reader and compute kernels, so a MIND-small split (51k news, 157k
impressions, 5.8M impression tokens) parses in about a second. Every check that fails reports the
file and the 1-based line number: a wrong column count, an impression token that is not
``NEWSID-LABEL``, a label other than 0/1, a bad timestamp, a duplicate news id, an unknown news
reference (unless the policy drops or keeps them).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from mmnewsrec.config import ConflictingNewsPolicy, DataConfig, UnknownNewsPolicy
from mmnewsrec.data.images import attach_images
from mmnewsrec.data.schema import (
    BEHAVIOR_COLUMNS,
    BEHAVIORS_FILE,
    BEHAVIORS_SCHEMA,
    IMAGES_DIR,
    NEWS_COLUMNS,
    NEWS_FILE,
    SPLITS,
    TIME_FORMAT,
)
from mmnewsrec.data.vocab import Vocab
from mmnewsrec.errors import DataFormatError

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Low-level TSV reading
# --------------------------------------------------------------------------------------------------


def _read_tsv(path: Path, columns: tuple[str, ...], block: bytes | None = None, first_line: int = 1) -> pa.Table:
    """Reads a header-less, quote-less TSV with exactly ``len(columns)`` string columns: the file,
    or ``block``, whole lines of it starting at line ``first_line`` (errors name the file's line).

    Raises:
        DataFormatError: naming the first line whose column count is wrong.
    """
    if block is None and not path.is_file():
        raise DataFormatError(path, None, "file not found")
    invalid: list[pcsv.InvalidRow] = []

    def on_invalid(row: pcsv.InvalidRow) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pcsv.read_csv(
            path if block is None else pa.BufferReader(block),
            read_options=pcsv.ReadOptions(column_names=list(columns), block_size=1 << 24),
            # MIND titles contain bare quotes: no quoting, no escaping, one record per line.
            parse_options=pcsv.ParseOptions(
                delimiter="\t",
                quote_char=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise DataFormatError(path, None, f"cannot be parsed as TSV ({exc})") from None
    if invalid:
        _raise_first_invalid_row(path, invalid, len(columns), block, first_line)
    table = table.combine_chunks()
    empty = None
    for name in columns:  # Arrow reads an empty line as a row of empty strings
        blank = pc.equal(pc.utf8_length(table[name]), 0)
        empty = blank if empty is None else pc.and_(empty, blank)
    line = _first_true(empty) if table.num_rows else None
    if line is not None:
        raise DataFormatError(path, first_line + line, "empty line")
    return table


def _raise_first_invalid_row(
    path: Path, invalid: list[pcsv.InvalidRow], expected: int, block: bytes | None = None, first_line: int = 1
) -> None:
    # Arrow's multi-threaded reader does not know line numbers: find the first bad row by its text.
    bad_texts = {row.text: row.actual_columns for row in invalid}
    opened = path.open("rb") if block is None else io.BytesIO(block)
    with io.TextIOWrapper(opened, encoding="utf-8", errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=first_line):
            text = line.rstrip("\r\n")
            if text in bad_texts or len(text.split("\t")) != expected:
                actual = len(text.split("\t")) if text else 0
                raise DataFormatError(path, number, f"expected {expected} tab-separated columns, found {actual}")
    row = invalid[0]
    raise DataFormatError(path, row.number, f"expected {expected} columns, found {row.actual_columns}")


def _first_true(mask: pa.Array | np.ndarray) -> int | None:
    array = mask.to_numpy(zero_copy_only=False) if isinstance(mask, (pa.Array, pa.ChunkedArray)) else mask
    hits = np.flatnonzero(array)
    return int(hits[0]) if hits.size else None


@dataclass(frozen=True)
class _Tokens:
    """Whitespace-separated tokens of one string column: flat values and per-row offsets."""

    values: pa.StringArray
    offsets: np.ndarray  # (rows + 1,) int64

    def row_of(self, token_index: int) -> int:
        return int(np.searchsorted(self.offsets, token_index, side="right") - 1)

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def _split_tokens(column: pa.Array | pa.ChunkedArray) -> _Tokens:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    parts = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(column))  # "" -> [""]
    flat = pc.list_flatten(parts)
    parents = pc.list_parent_indices(parts).to_numpy()
    keep = pc.not_equal(flat, "")
    flat = pc.filter(flat, keep)
    parents = parents[keep.to_numpy(zero_copy_only=False)]
    counts = np.bincount(parents, minlength=len(column))
    offsets = np.zeros(len(column) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return _Tokens(flat, offsets)


def _list_array(values: pa.Array, offsets: np.ndarray) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)


# --------------------------------------------------------------------------------------------------
# news.tsv
# --------------------------------------------------------------------------------------------------


def read_news(path: str | Path) -> pa.Table:
    """Reads a MIND ``news.tsv`` into a string table with columns :data:`NEWS_COLUMNS`.

    Raises:
        DataFormatError: wrong column count, empty news id or duplicate news id (file:line).
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
    return table


# --------------------------------------------------------------------------------------------------
# behaviors.tsv
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BehaviorsReadResult:
    table: pa.Table  # BEHAVIORS_SCHEMA
    labelled: bool
    unknown_news_refs: int
    dropped_impressions: int = 0


def read_behaviors(
    path: str | Path,
    known_news: pa.Array | None = None,
    on_unknown_news: UnknownNewsPolicy = "error",
    block: bytes | None = None,
    first_line: int = 1,
) -> BehaviorsReadResult:
    """Reads a MIND ``behaviors.tsv`` into a table with :data:`BEHAVIORS_SCHEMA`.

    Args:
        path: the file.
        block: whole lines of the file, starting at line ``first_line``, to read instead of the
            whole file (see :func:`iter_behavior_blocks`); errors still name the file's line.
        known_news: news ids of the split's news.tsv; None skips the unknown-reference check.
        on_unknown_news: ``error`` raises on the first unknown reference, ``drop`` removes unknown
            references from histories and candidates (an impression left without candidates is
            dropped), ``keep`` leaves them. All three count them.

    Raises:
        DataFormatError: naming file and 1-based line of the first problem.
    """
    path = Path(path)
    if block is None:  # a whole file: parsed block by block, so parsing never holds all of it at once
        return _read_behaviors_in_blocks(path, known_news, on_unknown_news)
    raw = _read_tsv(path, BEHAVIOR_COLUMNS, block, first_line)
    num_rows = raw.num_rows

    def fail(row: int, reason: str) -> None:
        raise DataFormatError(path, first_line + row, reason)

    # impression_id: a non-negative integer.
    bad = _first_true(pc.invert(pc.match_substring_regex(raw["impression_id"], r"^\d+$")))
    if bad is not None:
        fail(bad, f"impression id {raw['impression_id'][bad].as_py()!r} is not a non-negative integer")
    impression_ids = pc.cast(raw["impression_id"], pa.int64())
    bad = _first_true(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(raw["user_id"])), 0))
    if bad is not None:
        fail(bad, "empty user id")

    times = pc.strptime(raw["time"], format=TIME_FORMAT, unit="s", error_is_null=True)
    bad = _first_true(pc.is_null(times))
    if bad is not None:
        fail(bad, f"time {raw['time'][bad].as_py()!r} does not match 'M/D/YYYY h:mm:ss AM|PM'")

    history = _split_tokens(raw["history"])
    impressions = _split_tokens(raw["impressions"])
    bad = _first_true(impressions.counts() == 0)
    if bad is not None:
        fail(bad, "impression has no candidates")

    tokens = impressions.values
    labelled = num_rows > 0 and bool(pc.any(pc.match_substring(tokens, "-")).as_py())
    if labelled:
        well_formed = pc.match_substring_regex(tokens, r"^[^\s]+-[01]$")
        bad = _first_true(pc.invert(well_formed))
        if bad is not None:
            token = tokens[bad].as_py()
            head, dash, label = token.rpartition("-")
            if dash and head:
                reason = f"impression token {token!r}: label {label!r} is not 0 or 1"
            else:
                reason = f"impression token {token!r} is not NEWSID-LABEL (label 0 or 1)"
            fail(impressions.row_of(bad), reason)
        candidates = pc.utf8_slice_codeunits(tokens, 0, -2)
        labels = pc.cast(pc.utf8_slice_codeunits(tokens, -1), pa.int8())
    else:
        candidates = tokens
        labels = None

    hist_values, hist_offsets = history.values, history.offsets
    cand_offsets = impressions.offsets
    unknown = 0
    keep_rows = None
    if known_news is not None:
        hist_known = pc.is_in(hist_values, value_set=known_news).to_numpy(zero_copy_only=False)
        cand_known = pc.is_in(candidates, value_set=known_news).to_numpy(zero_copy_only=False)
        unknown = int((~hist_known).sum() + (~cand_known).sum())
        if unknown and on_unknown_news == "error":
            first_hist = _first_true(~hist_known)
            first_cand = _first_true(~cand_known)
            rows = []
            if first_hist is not None:
                rows.append((history.row_of(first_hist), "history", hist_values[first_hist].as_py()))
            if first_cand is not None:
                rows.append((impressions.row_of(first_cand), "impressions", candidates[first_cand].as_py()))
            row, column, news_id = min(rows)
            fail(
                row,
                f"{column} references news id {news_id!r} absent from {NEWS_FILE} "
                f"({unknown} unknown references in this file; on_unknown_news=drop removes them)",
            )
        if unknown and on_unknown_news == "drop":
            hist_values, hist_offsets = _filter_tokens(hist_values, hist_offsets, hist_known)
            candidates, new_cand_offsets = _filter_tokens(candidates, cand_offsets, cand_known)
            if labels is not None:
                labels = pc.filter(labels, pa.array(cand_known))
            cand_offsets = new_cand_offsets
            keep_rows = np.diff(cand_offsets) > 0
            logger.warning("%s: dropped %d references to unknown news", path, unknown)

    table = pa.Table.from_arrays(
        [
            impression_ids,
            raw["user_id"],
            times,
            _list_array(hist_values, hist_offsets),
            _list_array(candidates, cand_offsets),
            _list_array(labels, cand_offsets) if labels is not None else pa.nulls(num_rows, pa.list_(pa.int8())),
        ],
        schema=BEHAVIORS_SCHEMA,
    )
    dropped = 0
    if keep_rows is not None and not keep_rows.all():
        dropped = int((~keep_rows).sum())
        table = table.filter(pa.array(keep_rows))
        logger.warning("%s: dropped %d impressions left without candidates", path, dropped)
    _check_unique(path, table["impression_id"], "impression id", first_line)
    return BehaviorsReadResult(table.combine_chunks(), labelled, unknown, dropped)


#: Lines parsed at a time when a whole ``behaviors.tsv`` is read: the parser's temporary columns
#: (raw text, split tokens, sliced ids) are then a block's, not MIND-large's 2.37M lines' (7 GB).
READ_BLOCK_LINES = 200_000


def _read_behaviors_in_blocks(
    path: Path, known_news: pa.Array | None, on_unknown_news: UnknownNewsPolicy
) -> BehaviorsReadResult:
    parts = list(iter_behavior_blocks(path, known_news, on_unknown_news, READ_BLOCK_LINES))
    if not parts:  # an empty file: what parsing it as one (empty) block says
        return read_behaviors(path, known_news, on_unknown_news, path.read_bytes(), 1)
    table = pa.concat_tables([part.result.table for part in parts]).combine_chunks()
    return BehaviorsReadResult(
        table,
        parts[0].result.labelled,
        sum(part.result.unknown_news_refs for part in parts),
        sum(part.result.dropped_impressions for part in parts),
    )


@dataclass(frozen=True)
class BehaviorsBlock:
    """Consecutive impressions of a ``behaviors.tsv``: ``index`` counts blocks from 0, ``first_line``
    is the file line of the block's first impression."""

    index: int
    first_line: int
    result: BehaviorsReadResult


def iter_behavior_lines(path: str | Path, block_lines: int) -> Iterator[tuple[int, int, bytes]]:
    """``(index, first_line, bytes)`` of each run of ``block_lines`` whole lines of a file, unparsed:
    what several processes read to pick their own blocks without parsing the others'."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "file not found")
    if block_lines < 1:
        raise ValueError(f"block_lines must be >= 1, got {block_lines}")
    with path.open("rb") as handle:
        index, first, lines = 0, 1, []
        for line in handle:
            lines.append(line)
            if len(lines) == block_lines:
                yield index, first, b"".join(lines)
                index, first, lines = index + 1, first + block_lines, []
        if lines:
            yield index, first, b"".join(lines)


def iter_behavior_blocks(
    path: str | Path,
    known_news: pa.Array | None = None,
    on_unknown_news: UnknownNewsPolicy = "error",
    block_lines: int = 50_000,
    take: Callable[[int], bool] | None = None,
) -> Iterator[BehaviorsBlock]:
    """Reads a ``behaviors.tsv`` block by block, each validated as :func:`read_behaviors` validates
    a file, so memory stays at one block however long the log.

    Across blocks it also checks that impression ids stay unique (a bitmap over the ids, one byte
    per id up to the largest) and that every block is labelled or every block is not.

    Args:
        take: which block indexes to parse (the others are still scanned for line numbers, not
            parsed nor checked); None parses them all.

    Raises:
        DataFormatError: naming the file's line of the first problem.
    """
    path = Path(path)
    seen = np.zeros(0, dtype=bool)
    labelled: bool | None = None
    for index, first_line, raw in iter_behavior_lines(path, block_lines):
        if take is not None and not take(index):
            continue
        result = read_behaviors(path, known_news, on_unknown_news, raw, first_line)
        if result.table.num_rows:
            if labelled is not None and result.labelled != labelled:
                mixed = "some impressions carry click labels and others do not (a split is one or the other)"
                raise DataFormatError(path, first_line, mixed)
            labelled = result.labelled
            ids = result.table["impression_id"].to_numpy()
            top = int(ids.max())
            if top < 1 << 32:  # ids from 0 up: a bitmap; beyond that the per-block check must do
                if top >= len(seen):
                    seen = np.concatenate([seen, np.zeros(max(top + 1 - len(seen), len(seen)), dtype=bool)])
                repeated = np.flatnonzero(seen[ids])
                if repeated.size:
                    row = int(repeated[0])
                    again = f"duplicate impression id {int(ids[row])} (first seen in an earlier block)"
                    raise DataFormatError(path, first_line + row, again)
                seen[ids] = True
        yield BehaviorsBlock(index, first_line, result)


def display_counts(path: str | Path, block_size: int = 1 << 22) -> pa.Table:
    """How often each news of a ``behaviors.tsv`` was shown and clicked, streamed in blocks: memory
    stays at a block however large the log (histories are never parsed). Lines are not validated
    beyond what parsing needs (read the split with :func:`read_split` to check it).

    Returns:
        a table ``news_id`` (string), ``displays`` and ``clicks`` (int64), one row per news shown.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "file not found")
    displays: dict[str, int] = {}
    clicks: dict[str, int] = {}
    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=list(BEHAVIOR_COLUMNS), block_size=block_size),
            parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False),
            convert_options=pcsv.ConvertOptions(
                include_columns=["impressions"], column_types={"impressions": pa.string()}
            ),
        )
        for batch in reader:
            tokens = _split_tokens(batch.column(0)).values
            for counts, chosen in ((displays, tokens), (clicks, pc.filter(tokens, pc.ends_with(tokens, "-1")))):
                ids = pc.replace_substring_regex(chosen, r"-[01]$", "")
                tally = pc.value_counts(ids)
                for news_id, count in zip(
                    tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True
                ):
                    counts[news_id] = counts.get(news_id, 0) + count
    except pa.ArrowInvalid as exc:
        raise DataFormatError(path, None, f"cannot be parsed as TSV ({exc})") from None
    ids = list(displays)
    return pa.table(
        {
            "news_id": pa.array(ids, pa.string()),
            "displays": pa.array([displays[i] for i in ids], pa.int64()),
            "clicks": pa.array([clicks.get(i, 0) for i in ids], pa.int64()),
        }
    )


def _filter_tokens(values: pa.Array, offsets: np.ndarray, keep: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    return pc.filter(values, pa.array(keep)), kept_before[offsets]


def _check_unique(path: Path, values: pa.ChunkedArray, what: str, first_line: int = 1) -> None:
    """Raises on the first repeated value, naming its line and the line it was first seen on."""
    if pc.count_distinct(values).as_py() == len(values):
        return
    seen: dict[object, int] = {}
    for number, value in enumerate(values.to_pylist(), start=first_line):
        if value in seen:
            raise DataFormatError(path, number, f"duplicate {what} {value!r} (first seen on line {seen[value]})")
        seen[value] = number


# --------------------------------------------------------------------------------------------------
# Splits and datasets
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MindSplit:
    """One parsed MIND split.

    Attributes:
        name: ``train``, ``dev``, ``test`` or the folder name.
        directory: the split folder.
        news: news.tsv as a string table (:data:`NEWS_COLUMNS`, plus ``image_path`` when an image
            folder was attached: the file path, or null for news without an image).
        behaviors: one row per impression (:data:`BEHAVIORS_SCHEMA`).
        labelled: False for a test split whose impressions carry no labels.
        unknown_news_refs: behaviour references to news absent from this split's news.tsv.
    """

    name: str
    directory: Path
    news: pa.Table
    behaviors: pa.Table
    labelled: bool
    unknown_news_refs: int = 0
    dropped_impressions: int = 0

    @property
    def num_impressions(self) -> int:
        return self.behaviors.num_rows

    def candidate_offsets(self) -> np.ndarray:
        """(impressions + 1,) int64 offsets of each impression's candidates in the flat arrays."""
        return list_offsets(self.behaviors["candidates"])

    def flat_candidates(self) -> pa.Array:
        """(candidates,) news ids of all impressions, concatenated in impression order."""
        return pc.list_flatten(self.behaviors["candidates"].combine_chunks())

    def flat_labels(self) -> np.ndarray:
        """(candidates,) int8 labels aligned with :meth:`flat_candidates`.

        Raises:
            DataFormatError: for an unlabelled (test) split.
        """
        if not self.labelled:
            raise DataFormatError(self.directory / BEHAVIORS_FILE, None, "this split has no click labels")
        return pc.list_flatten(self.behaviors["labels"].combine_chunks()).to_numpy().astype(np.int8)

    def history_offsets(self) -> np.ndarray:
        return list_offsets(self.behaviors["history"])

    def flat_history(self) -> pa.Array:
        return pc.list_flatten(self.behaviors["history"].combine_chunks())


def entry_owner(offsets: np.ndarray) -> np.ndarray:
    """Shape: (M + 1,) offsets of a flat layout -> (N,) impression index of each flat entry."""
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def list_offsets(column: pa.ChunkedArray) -> np.ndarray:
    """Shape: a list column of M rows -> (M + 1,) int64 offsets of its items in the flat layout."""
    lengths = pc.list_value_length(column.combine_chunks()).to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def read_split(
    directory: str | Path,
    name: str | None = None,
    on_unknown_news: UnknownNewsPolicy = "error",
    image_dir: str | Path | None = None,
) -> MindSplit:
    """Reads one split folder (``news.tsv`` + ``behaviors.tsv``), attaching images if given."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, None, "split folder not found")
    news = read_news(directory / NEWS_FILE)
    result = read_behaviors(directory / BEHAVIORS_FILE, news["news_id"].combine_chunks(), on_unknown_news)
    if image_dir is not None:
        news = attach_images(news, image_dir)
    return MindSplit(
        name=name or directory.name,
        directory=directory,
        news=news,
        behaviors=result.table,
        labelled=result.labelled,
        unknown_news_refs=result.unknown_news_refs,
        dropped_impressions=result.dropped_impressions,
    )


def read_split_news(directory: str | Path, image_dir: str | Path | None = None) -> pa.Table:
    """A split folder's ``news.tsv`` alone (with images attached if given): the catalogue that
    block-by-block scoring needs, without reading ``behaviors.tsv`` into memory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, None, "split folder not found")
    news = read_news(directory / NEWS_FILE)
    return attach_images(news, image_dir) if image_dir is not None else news


@dataclass(frozen=True)
class Vocabs:
    """Id maps fitted on the training split only (dev/test values unseen in train map to UNK)."""

    users: Vocab
    categories: Vocab
    subcategories: Vocab


@dataclass(frozen=True)
class MindDataset:
    """A MIND-format dataset root: its splits, the news catalogue and train-fitted vocabularies.

    Attributes:
        news: every news of every split once, in a stable row order (train news.tsv order, then news
            first seen in dev, then in test); later layers address news by row in this table.
        vocabs: users, categories, subcategories fitted on ``train``.
    """

    root: Path
    splits: dict[str, MindSplit]
    news: pa.Table
    vocabs: Vocabs | None
    image_dir: Path | None = None

    def __getitem__(self, split: str) -> MindSplit:
        try:
            return self.splits[split]
        except KeyError:
            raise DataFormatError(
                self.root / split, None, f"split {split!r} not loaded; have {sorted(self.splits)}"
            ) from None

    def news_rows(self, news_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Catalogue row of each news id (int64); every id read through this dataset is present."""
        return catalogue_rows(self.news, news_ids, self.root)


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


def dataset_image_dir(root: Path, config: DataConfig) -> Path | None:
    """The image folder of a dataset root: ``data.images.directory``, else the one found beside it."""
    return Path(config.images.directory) if config.images.directory else find_image_dir(root)


def find_image_dir(path: Path) -> Path | None:
    """The IM-MIND style ``images/`` folder inside ``path`` or its parent, if any."""
    for candidate in (path / IMAGES_DIR, path.parent / IMAGES_DIR):
        if candidate.is_dir():
            return candidate
    return None


def is_split_dir(path: str | Path) -> bool:
    path = Path(path)
    return (path / NEWS_FILE).is_file() or (path / BEHAVIORS_FILE).is_file()


def load_mind(
    root: str | Path,
    config: DataConfig | None = None,
    splits: tuple[str, ...] | None = None,
) -> MindDataset:
    """Loads a MIND-format dataset root (``train/``, ``dev/``, optionally ``test/``).

    Args:
        root: the dataset root; splits that are absent are skipped unless named in ``splits``.
        config: reading policy (unknown news references, image folder); defaults to DataConfig().
        splits: which splits to read; None reads whichever of train/dev/test exist.

    Raises:
        DataFormatError: a named split is missing, or any file is malformed.
    """
    root = Path(root)
    config = config or DataConfig(root=str(root))
    if not root.is_dir():
        raise DataFormatError(root, None, "dataset folder not found")
    names = splits if splits is not None else tuple(s for s in SPLITS if (root / s).is_dir())
    if not names:
        raise DataFormatError(root, None, f"no split folders found (expected some of {list(SPLITS)})")
    image_dir = dataset_image_dir(root, config)
    loaded = {name: read_split(root / name, name, config.on_unknown_news, image_dir) for name in names}
    check_news_agree(list(loaded.values()), config.on_conflicting_news)
    news = build_catalogue([split.news for split in loaded.values()])
    vocabs = None
    if "train" in loaded:
        train = loaded["train"]
        vocabs = Vocabs(
            users=Vocab.fit(train.behaviors["user_id"]),
            categories=Vocab.fit(train.news["category"]),
            subcategories=Vocab.fit(train.news["subcategory"]),
        )
    return MindDataset(root=root, splits=loaded, news=news, vocabs=vocabs, image_dir=image_dir)


def load_news_catalogue(root: str | Path, config: DataConfig | None = None) -> pa.Table:
    """Every split's ``news.tsv`` of a dataset root as one catalogue (first occurrence of each id,
    images attached), checked like :func:`load_mind` checks it, without reading any
    ``behaviors.tsv``: what featurising needs, at the memory of the news alone."""
    root = Path(root)
    config = config or DataConfig(root=str(root))
    if not root.is_dir():
        raise DataFormatError(root, None, "dataset folder not found")
    names = tuple(s for s in SPLITS if (root / s).is_dir())
    if not names:
        raise DataFormatError(root, None, f"no split folders found (expected some of {list(SPLITS)})")
    image_dir = dataset_image_dir(root, config)
    splits = [
        MindSplit(name, root / name, read_split_news(root / name, image_dir), BEHAVIORS_SCHEMA.empty_table(), False)
        for name in names
    ]
    check_news_agree(splits, config.on_conflicting_news)
    return build_catalogue([split.news for split in splits])


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
