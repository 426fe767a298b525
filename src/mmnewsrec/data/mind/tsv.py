"""Header-less, quote-less TSV read by Arrow's C++ reader, with errors that name the file's line:
a wrong column count, an empty line, text that is not UTF-8, a line longer than the reader takes."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from mmnewsrec.errors import DataFormatError

logger = logging.getLogger(__name__)


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

    block_size = BLOCK_BYTES
    while True:
        # Arrow decodes a bad row's text to hand it over; bytes that are not UTF-8 make that fail
        # inside the reader, which reports it as "Exception ignored" on stderr: caught here instead.
        undecodable: list[object] = []
        hook, sys.unraisablehook = sys.unraisablehook, undecodable.append
        try:
            table = pcsv.read_csv(
                path if block is None else pa.BufferReader(block),
                read_options=pcsv.ReadOptions(column_names=list(columns), block_size=block_size),
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
            longest = _longest_line(path, block) if "straddl" in str(exc) else 0
            if block_size < longest < MAX_LINE_BYTES:  # one line longer than a block: read with bigger ones
                block_size = 2 * longest
                invalid.clear()
                continue
            _raise_first_unreadable_line(path, block, first_line, len(columns))
            raise DataFormatError(path, None, f"cannot be parsed as TSV ({_printable(str(exc))})") from None
        finally:
            sys.unraisablehook = hook
        break
    if undecodable:
        _raise_first_unreadable_line(path, block, first_line, len(columns))
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


#: Bytes Arrow's reader parses at a time; a line longer than this is read with larger blocks.
BLOCK_BYTES = 1 << 24
#: The longest line read at all (1 GiB): no news or impression line is anywhere near it.
MAX_LINE_BYTES = 1 << 30


_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, as surrogateescape keeps them


def _numbered_lines(path: Path, block: bytes | None, first_line: int = 1) -> Iterator[tuple[int, str]]:
    """The lines of the file (or ``block``) as Arrow's reader counts them (``\\n``, ``\\r\\n`` and a
    bare ``\\r`` each end one), numbered from ``first_line``, without their line ends; bytes that
    are not UTF-8 are kept as surrogates (``errors="surrogateescape"``)."""
    opened = path.open("rb") if block is None else io.BytesIO(block)
    with io.TextIOWrapper(opened, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        for number, line in enumerate(handle, start=first_line):
            yield number, line.rstrip("\r\n")


def _longest_line(path: Path, block: bytes | None) -> int:
    return max((len(line.encode("utf-8", "surrogateescape")) for _, line in _numbered_lines(path, block)), default=0)


def _raise_first_unreadable_line(path: Path, block: bytes | None, first_line: int, expected: int) -> None:
    """Raises :class:`DataFormatError` at the first line that is not UTF-8 text, is too long, or has
    another number of columns than ``expected``; returns when every line reads."""
    for number, text in _numbered_lines(path, block, first_line):
        bad = _UNDECODABLE.search(text)
        if bad:
            column = len(text[: bad.start()].encode("utf-8")) + 1
            byte = ord(bad.group()) - 0xDC00
            raise DataFormatError(
                path, number, f"not UTF-8 text (byte 0x{byte:02x} at column {column}); MIND files are UTF-8"
            )
        size = len(text.encode("utf-8"))
        if size >= MAX_LINE_BYTES:
            raise DataFormatError(
                path, number, f"a line of {size / 2**20:.0f} MiB; at most {MAX_LINE_BYTES >> 20} MiB are read"
            )
        if len(text.split("\t")) != expected:
            raise DataFormatError(
                path, number, f"expected {expected} tab-separated columns, found {len(text.split(chr(9)))}"
            )


def _printable(text: str, limit: int = 200) -> str:
    """``text`` safe for a terminal: control and undecodable characters escaped, at most ``limit``."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[:limit] + " ..."


def _raise_first_invalid_row(
    path: Path, invalid: list[pcsv.InvalidRow], expected: int, block: bytes | None = None, first_line: int = 1
) -> None:
    # Arrow's multi-threaded reader does not know line numbers: find the first bad row by its text.
    bad_texts = {row.text: row.actual_columns for row in invalid}
    for number, text in _numbered_lines(path, block, first_line):
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
