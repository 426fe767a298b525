"""The report's tables and figures as files: Markdown, a self-contained HTML page, CSV."""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Sequence
from typing import Any

from mmnewsrec.evaluation.analysis import METRICS, Interval
from mmnewsrec.evaluation.comparison import Paired, Table

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin-bottom:1.5em;font-size:.9em}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child,th:first-child{text-align:left}"
    "img{max-width:100%}"
)


def cell_text(value: Any, digits: int = 4) -> str:
    """A cell as the Markdown and HTML tables show it ("-" for a missing value)."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, Interval):
        return value.text(digits)
    if isinstance(value, Paired):
        return value.text()
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table_csv(table: Table) -> str:
    """The table as CSV: an interval column becomes three (value, ``_low``, ``_high``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header: list[str] = []
    for name in table.header:
        header += [name, f"{name}_low", f"{name}_high"] if name in METRICS or name.endswith(" AUC") else [name]
    writer.writerow(header)
    for row in table.rows:
        cells: list[Any] = []
        for cell in row:
            if isinstance(cell, Interval):
                cells += [cell.mean, cell.low, cell.high]
            else:
                cells.append(cell.text() if isinstance(cell, Paired) else cell)
        writer.writerow(cells)
    return buffer.getvalue()


def table_markdown(table: Table) -> str:
    lines = [f"### {table.title}", "", "| " + " | ".join(table.header) + " |", "|" + " --- |" * len(table.header)]
    lines += ["| " + " | ".join(cell_text(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell_text(c))}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<h3>{html.escape(table.title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_markdown(intro: str, tables: Sequence[Table], figures: Sequence[str]) -> str:
    """``report.md``: the intro, every table, then the figures by file name (beside it)."""
    parts = ["# mmnewsrec report", "", intro, ""]
    for table in tables:
        parts += [table_markdown(table), ""]
    parts += ["## Figures", ""] + [f"![{file}]({file})" for file in figures]
    return "\n".join(parts) + "\n"


def report_html(intro: str, tables: Sequence[Table], figures: dict[str, bytes]) -> str:
    """``report.html``: one self-contained page, the figures embedded as PNG data."""
    embedded = "".join(
        f'<figure><img alt="{file}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'
        for file, png in figures.items()
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>mmnewsrec report</title>"
        f"<style>{_STYLE}</style></head><body><h1>mmnewsrec report</h1>"
        f"<p>{html.escape(intro)}</p>" + "".join(table_html(table) for table in tables) + embedded + "</body></html>"
    )
