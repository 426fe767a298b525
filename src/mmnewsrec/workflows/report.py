"""`mmnewsrec report`: compare runs with confidence intervals, breakdowns and figures.

Reads each run's predictions for a split (``RUN/SPLIT/prediction.txt``; evaluated first when
missing), its training logs and ``metrics.json``, and the split's labels, histories, categories
and images. Writes ``report.md``, a self-contained ``report.html`` (figures embedded), one CSV per
table and the figures as PNG files.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_write_bytes, atomic_write_text
from mmnewsrec.data.mind import DatasetLocation, MindSplit, display_counts
from mmnewsrec.errors import ConfigError, MmnewsrecError
from mmnewsrec.evaluation.analysis import (
    HISTORY_GROUPS,
    METRICS,
    SIZE_GROUPS,
    Interval,
    PairedDifference,
    Resamples,
    beyond_accuracy,
    group_of,
    impression_metrics,
    intervals,
    paired_differences,
    subset_metrics,
)
from mmnewsrec.evaluation.submission import read_prediction
from mmnewsrec.runs.layout import RunDir
from mmnewsrec.runs.metrics_log import read_records
from mmnewsrec.workflows.evaluate import run_evaluate

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """One run's predictions and logs, as the report reads them."""

    name: str
    folder: RunDir
    scores: np.ndarray  # (N,) higher = better (minus the predicted rank)
    metrics: np.ndarray  # (M, 4) per impression, NaN where not scorable
    info: dict[str, Any]  # metrics.json of the training run
    curves: dict[str, list[tuple[float, float, float]]]  # "loss" / "auc": (step, elapsed_s, value)
    samples_per_s: float | None  # mean training throughput over the log


def _unique_names(runs: Sequence[Path]) -> list[str]:
    names = [Path(run).name for run in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{Path(run).parent.name}/{Path(run).name}" for run in runs]


def _load_runs(runs: Sequence[Path], data: MindSplit, split: str, root: Path, progress: bool) -> list[RunResult]:
    labels = data.flat_labels()
    offsets = data.candidate_offsets()
    impression_ids = data.behaviors["impression_id"].cast(pa.int64()).to_numpy()
    out = []
    for name, path in zip(_unique_names(runs), runs, strict=True):
        folder = RunDir(path)
        folder.require_run()
        prediction_path = folder.prediction_path(split)
        if not prediction_path.is_file():
            logger.info("%s has no %s predictions: evaluating it first", name, split)
            run_evaluate(folder.path, root, split, progress=progress)
        prediction = read_prediction(prediction_path)
        if len(prediction.impression_ids) != len(impression_ids) or not np.array_equal(
            prediction.impression_ids, impression_ids
        ):
            raise ConfigError(
                f"{prediction_path}: its impressions are not those of {data.directory}; "
                f"evaluate the run on this data again (delete the file and rerun the report)"
            )
        if not np.array_equal(prediction.offsets, offsets):
            raise ConfigError(f"{prediction_path}: its impression sizes differ from {data.directory}")
        scores = -prediction.values.astype(np.float64)
        info = json.loads(folder.metrics_path.read_text()) if folder.metrics_path.is_file() else {}
        curves, samples_per_s = _read_log(folder)
        metrics = impression_metrics(scores, labels, offsets)
        out.append(RunResult(name, folder, scores, metrics, info, curves, samples_per_s))
    return out


def _read_log(folder: RunDir) -> tuple[dict[str, list[tuple[float, float, float]]], float | None]:
    """The run's training curves and mean samples/s, from one pass over its metric log."""
    curves: dict[str, list[tuple[float, float, float]]] = {"loss": [], "auc": []}
    rates = []
    for record in read_records(folder.path):
        elapsed = float(record.get("elapsed_s", float("nan")))
        if record.get("kind") == "train":
            curves["loss"].append((record["step"], elapsed, record["loss"]))
            if record.get("samples_per_s") is not None:
                rates.append(record["samples_per_s"])
        elif record.get("kind") == "eval":
            curves["auc"].append((record["step"], elapsed, record["auc"]))
    return curves, float(np.mean(rates)) if rates else None


def _training_seconds(result: RunResult) -> float | None:
    if "train_seconds" in result.info:
        return float(result.info["train_seconds"])
    times = [p[1] for series in result.curves.values() for p in series if p[1] == p[1]]
    return max(times) if times else None


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, Interval):
        return value.text(digits)
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _paired_text(d: PairedDifference, samples: int) -> str:
    # A bootstrap p-value of 0 means "below the resolution of the resamples".
    p_value = f"p<{1 / samples:.2g}" if d.p_value == 0 else f"p={d.p_value:.3g}"
    return f"{d.diff:+.4f} [{d.low:+.4f}, {d.high:+.4f}] {p_value}"


class Tables:
    """The report's tables: each a header and rows of cells, kept as values for CSV and text for Markdown."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[str, list[str], list[list[Any]]]] = {}

    def add(self, key: str, title: str, header: list[str], rows: list[list[Any]]) -> None:
        self.tables[key] = (title, header, rows)

    def csv(self, key: str) -> str:
        _, header, rows = self.tables[key]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        flat_header: list[str] = []
        for name in header:
            flat_header += [name, f"{name}_low", f"{name}_high"] if name in METRICS or name.endswith(" AUC") else [name]
        writer.writerow(flat_header)
        for row in rows:
            cells: list[Any] = []
            for cell in row:
                cells += [cell.mean, cell.low, cell.high] if isinstance(cell, Interval) else [cell]
            writer.writerow(cells)
        return buffer.getvalue()

    def markdown(self, key: str) -> str:
        title, header, rows = self.tables[key]
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
        return "\n".join(lines)

    def html(self, key: str) -> str:
        title, header, rows = self.tables[key]
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f"<h3>{html.escape(title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def run_report(
    runs: Sequence[str | Path],
    data_root: str | Path | None = None,
    split: str = "dev",
    out: str | Path | None = None,
    baseline: str | None = None,
    samples: int = 1000,
    seed: int = 0,
    vectors: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Writes the report of ``runs`` on ``split`` into ``out`` (default: ``report/`` beside the first run)."""
    from mmnewsrec.evaluation import figures

    if not runs:
        raise ConfigError("report needs at least one run folder")
    paths = [Path(run) for run in runs]
    for path in paths:
        RunDir(path).require_run()
    location = DatasetLocation.resolve(RunDir(paths[0]).read_config().data, data_root)  # the first run's policies
    root = location.root
    data = location.read_split(split)
    if not data.labelled:
        raise ConfigError(f"report needs a labelled split; {root / split} has no click labels")
    results = _load_runs(paths, data, split, root, progress)
    names = [r.name for r in results]
    reference = names[0] if baseline is None else baseline
    if reference not in names:
        raise ConfigError(f"--baseline {baseline}: not one of the runs ({', '.join(names)})")
    out = Path(out) if out is not None else paths[0].parent / "report"
    out.mkdir(parents=True, exist_ok=True)

    labels, offsets = data.flat_labels(), data.candidate_offsets()
    num = len(offsets) - 1
    resamples = Resamples(num, samples, seed)
    tables = Tables()
    pngs: dict[str, bytes] = {}
    bar = tqdm(total=7, desc="report", disable=not progress)

    # Main table.
    rows = []
    main_intervals: dict[str, list[Interval]] = {}
    for result in results:
        main_intervals[result.name] = intervals(result.metrics, resamples.means(result.metrics))
        rows.append(
            [
                result.name,
                *main_intervals[result.name],
                _training_seconds(result),
                result.samples_per_s,
                result.info.get("trainable_parameters"),
                int((~np.isnan(result.metrics).any(axis=1)).sum()),
            ]
        )
    tables.add(
        "main",
        f"Main table ({split}, {num:,} impressions; 95% bootstrap intervals over impressions, {samples} resamples)",
        ["run", *METRICS, "training s", "samples/s", "trainable params", "impressions"],
        rows,
    )
    bar.update()

    # Paired comparison with the reference run.
    base = next(r for r in results if r.name == reference)
    rows = []
    for result in results:
        boot = resamples.means(result.metrics - base.metrics)
        diffs = paired_differences(result.metrics, base.metrics, boot)
        rows.append([result.name] + [_paired_text(d, samples) for d in diffs])
    tables.add("paired", f"Paired differences against {reference} (run - {reference})", ["run", *METRICS], rows)
    bar.update()

    # Breakdowns by impression: history length and impression size.
    history_lengths = np.diff(data.history_offsets())
    sizes = np.diff(offsets)
    bars: dict[str, tuple[list[str], dict[str, list[Interval]], list[int]]] = {}
    for key, title, values, groups in (
        ("history", "By history length (clicks)", history_lengths, HISTORY_GROUPS),
        ("size", "By impression size (candidates)", sizes, SIZE_GROUPS),
    ):
        membership = group_of(values, groups)
        labels_present = [label for label, _, _ in groups if (membership == label).any()]
        per_run: dict[str, list[Interval]] = {r.name: [] for r in results}
        counts = []
        rows = []
        for label in labels_present:
            rows_in = np.flatnonzero(membership == label)
            counts.append(len(rows_in))
            for result in results:
                auc = result.metrics[rows_in, :1]
                per_run[result.name].append(intervals(auc, resamples.means(auc, rows_in))[0])
            rows.append([label, len(rows_in), *(per_run[r.name][-1] for r in results)])
        tables.add(key, title + ": AUC", ["group", "impressions", *(f"{n} AUC" for n in names)], rows)
        bars[key] = (labels_present, per_run, counts)
    bar.update()

    # Breakdowns by candidate: cold news, images, category (each impression re-ranked within the subset).
    flat_candidates = data.flat_candidates()
    candidate_ids, news_codes = np.unique(
        np.asarray(flat_candidates.to_numpy(zero_copy_only=False), dtype=str), return_inverse=True
    )
    subsets: dict[str, dict[str, np.ndarray]] = {}
    train_dir = root / "train"
    clicks = np.zeros(len(candidate_ids))
    if split != "train" and (train_dir / "behaviors.tsv").is_file():
        shown = display_counts(train_dir / "behaviors.tsv")  # streamed: the training log never sits in memory
        seen = pc.is_in(flat_candidates, value_set=shown["news_id"]).to_numpy(zero_copy_only=False)
        subsets["cold"] = {"shown in training": seen, "never shown in training (cold)": ~seen}
        where = pc.index_in(pa.array(candidate_ids), value_set=shown["news_id"])
        where = where.to_numpy(zero_copy_only=False).astype(np.float64)  # NaN: never shown in training
        known = ~np.isnan(where)
        clicks[known] = shown["clicks"].to_numpy()[where[known].astype(np.int64)]
    else:
        clicks = np.bincount(news_codes[labels == 1], minlength=len(candidate_ids)).astype(np.float64)
    news = data.news
    if "image_path" in news.column_names:
        with_image = news.filter(news["image_path"].is_valid())["news_id"]
        has = pc.is_in(flat_candidates, value_set=with_image).to_numpy(zero_copy_only=False)
        subsets["image"] = {"with image": has, "without image": ~has}
    category_of = dict(zip(news["news_id"].to_pylist(), news["category"].to_pylist(), strict=True))
    category_names, category_codes = np.unique(
        np.array([category_of.get(n, "") for n in candidate_ids], dtype=str)[news_codes], return_inverse=True
    )
    top_categories = np.argsort(-np.bincount(category_codes), kind="stable")[:10]
    subsets["category"] = {str(category_names[c]): category_codes == c for c in top_categories}
    titles = {
        "cold": "By candidate news: shown as a training candidate or not",
        "image": "By candidate news: image present or missing",
        "category": "By candidate category (top 10 by candidates)",
    }
    for key, parts in subsets.items():
        per_run = {r.name: [] for r in results}
        counts, rows = [], []
        for label, keep in parts.items():
            counts.append(int(keep.sum()))
            for result in results:
                auc, _ = subset_metrics(result.scores, labels, offsets, keep)
                per_run[result.name].append(intervals(auc[:, :1], resamples.means(auc[:, :1]))[0])
            rows.append([label, int(keep.sum()), *(per_run[r.name][-1] for r in results)])
        header = ["candidates", "count", *(f"{n} AUC" for n in names)]
        tables.add(key, titles[key] + ": AUC within the subset", header, rows)
        if key != "category":
            bars[key] = (list(parts), per_run, counts)
    bar.update()

    # Beyond accuracy: popularity is each news's share of the training log's clicks (half a click
    # for a news never clicked, so that -log2 stays finite).
    popularity = np.maximum(clicks, 0.5) / max(1.0, clicks.sum())
    rows = []
    for result in results:
        news_vectors = _news_vectors(result.folder, data, candidate_ids) if vectors else None
        beyond = beyond_accuracy(
            result.scores, offsets, news_codes, category_codes, popularity, news_vectors, seed=seed
        )
        rows.append(
            [
                result.name,
                beyond["category_diversity"],
                beyond.get("vector_diversity"),
                beyond["coverage"],
                beyond["novelty"],
                beyond["personalisation"],
            ]
        )
    tables.add(
        "beyond",
        "Beyond accuracy at k = 10 (each impression's top 10)",
        ["run", "category diversity", "vector diversity", "coverage", "novelty (bits)", "personalisation"],
        rows,
    )
    bar.update()

    # Figures.
    pngs["training_curves.png"] = figures.training_curves({r.name: r.curves for r in results})
    pngs["time_to_accuracy.png"] = figures.time_to_accuracy(
        {r.name: (_training_seconds(r), main_intervals[r.name][0]) for r in results}
    )
    figure_titles = {
        "history": ("AUC by the user's history length (clicks)", "history_length.png"),
        "cold": ("AUC on news shown in training vs cold news", "cold_news.png"),
        "image": ("AUC on news with and without an image", "images.png"),
    }
    for key, (title, file) in figure_titles.items():
        if key in bars:
            groups, per_run, counts = bars[key]
            pngs[file] = figures.breakdown_bars(title, groups, per_run, counts, "AUC")
    bar.update()

    # Files.
    for key in tables.tables:
        atomic_write_text(out / f"{key}.csv", tables.csv(key))
    for file, png in pngs.items():
        atomic_write_bytes(out / file, png)
    intro = (
        f"Runs: {', '.join(names)}. Data: `{root / split}` ({num:,} impressions). Intervals: 95% percentile "
        f"bootstrap over impressions ({samples} resamples, seed {seed}); paired comparisons resample the same "
        "impressions for both runs. Subset AUCs re-rank each impression within the subset."
    )
    markdown = ["# mmnewsrec report", "", intro, ""]
    for key in tables.tables:
        markdown += [tables.markdown(key), ""]
    markdown += ["## Figures", ""] + [f"![{file}]({file})" for file in pngs]
    atomic_write_text(out / "report.md", "\n".join(markdown) + "\n")
    embedded = "".join(
        f'<figure><img alt="{file}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'
        for file, png in pngs.items()
    )
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>mmnewsrec report</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin-bottom:1.5em;font-size:.9em}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child,th:first-child{text-align:left}"
        "img{max-width:100%}</style></head><body><h1>mmnewsrec report</h1>"
        f"<p>{html.escape(intro)}</p>"
        + "".join(tables.html(key) for key in tables.tables)
        + embedded
        + "</body></html>"
    )
    atomic_write_text(out / "report.html", page)
    bar.update()
    bar.close()
    return {
        "out": str(out),
        "runs": names,
        "main": {name: {m: vars(i) for m, i in zip(METRICS, ivs, strict=True)} for name, ivs in main_intervals.items()},
        "markdown": tables.markdown("main"),
        "figures": sorted(pngs),
    }


def _news_vectors(folder: RunDir, data: MindSplit, news_ids: np.ndarray) -> np.ndarray | None:
    """The run's vectors (V, D) of ``news_ids`` (news of the split), None when the run cannot encode them here."""
    from mmnewsrec.serving.predictor import Predictor
    from mmnewsrec.serving.records import NewsRecord

    wanted = data.news.filter(pc.is_in(data.news["news_id"], value_set=pa.array(news_ids.tolist())))
    try:
        predictor = Predictor.load(folder.path)
        records = [
            NewsRecord(r["news_id"], r["category"], r["subcategory"], r["title"], r["abstract"], r.get("image_path"))
            for r in wanted.to_pylist()
        ]
        predictor.encode_news(records, cache=True)
        return predictor.news_vectors(news_ids.tolist()).numpy()
    except (MmnewsrecError, OSError) as exc:  # e.g. a backbone not available offline: the table says "-"
        logger.warning("no news vectors for %s (%s): vector diversity left out", folder.path.name, exc)
        return None
