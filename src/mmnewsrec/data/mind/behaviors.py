"""``behaviors.tsv``: the file reader (whole, or in blocks of lines for MIND-large in bounded
memory) and the block parser (impressions, histories, labels), validated line by line."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from mmnewsrec.config import UnknownNewsPolicy
from mmnewsrec.data.mind.tsv import _check_unique, _filter_tokens, _first_true, _list_array, _read_tsv, _split_tokens
from mmnewsrec.data.schema import (
    BEHAVIOR_COLUMNS,
    BEHAVIORS_SCHEMA,
    NEWS_FILE,
    TIME_FORMAT,
)
from mmnewsrec.errors import DataFormatError

logger = logging.getLogger(__name__)


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
