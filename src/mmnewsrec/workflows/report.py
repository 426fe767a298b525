"""`mmnewsrec report`: compare runs with confidence intervals, breakdowns and figures.

Reads each run's predictions for a split (``RUN/SPLIT/prediction.txt``; a run without them is
evaluated first, and the report says so), its training logs and ``metrics.json``, and the split's
labels, histories, categories and images. The analyses are :mod:`mmnewsrec.evaluation.comparison`,
the files :mod:`mmnewsrec.evaluation.rendering`: ``report.md``, a self-contained ``report.html``
(figures embedded), one CSV per table and the figures as PNG files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_write_bytes, atomic_write_text
from mmnewsrec.data.mind import DatasetLocation, MindSplit, display_counts, parse_entities
from mmnewsrec.data.schema import NEWS_FILE
from mmnewsrec.errors import ConfigError, MmnewsrecError
from mmnewsrec.evaluation import comparison, rendering
from mmnewsrec.evaluation.analysis import HISTORY_GROUPS, METRICS, SIZE_GROUPS, Resamples, impression_metrics
from mmnewsrec.evaluation.comparison import RunPredictions
from mmnewsrec.evaluation.submission import read_prediction
from mmnewsrec.runs.hub import locate_run
from mmnewsrec.runs.layout import RunDir
from mmnewsrec.runs.metrics_log import read_records
from mmnewsrec.workflows.evaluate import run_evaluate

logger = logging.getLogger(__name__)

_SUBSET_TITLES = {
    "cold": "By candidate news: shown as a training candidate or not",
    "image": "By candidate news: image present or missing",
    "category": "By candidate category (top 10 by candidates)",
}
_FIGURES = {  # breakdown -> (title, file)
    "history": ("AUC by the user's history length (clicks)", "history_length.png"),
    "cold": ("AUC on news shown in training vs cold news", "cold_news.png"),
    "image": ("AUC on news with and without an image", "images.png"),
}


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
    folders = [RunDir(locate_run(run)) for run in runs]  # folders, or runs pushed to the Hub
    for folder in folders:
        folder.require_run()
    location = DatasetLocation.resolve(folders[0].read_config().data, data_root)  # the first run's policies
    data = location.read_split(split)
    if not data.labelled:
        raise ConfigError(f"report needs a labelled split; {location.root / split} has no click labels")
    names = _unique_names([folder.path for folder in folders])
    reference = names[0] if baseline is None else baseline
    if reference not in names:
        raise ConfigError(f"--baseline {baseline}: not one of the runs ({', '.join(names)})")
    out = Path(out) if out is not None else folders[0].path.parent / "report"
    out.mkdir(parents=True, exist_ok=True)

    bar = tqdm(total=7, desc="report", disable=not progress)
    evaluated = [
        name for name, folder in zip(names, folders, strict=True) if not folder.prediction_path(split).is_file()
    ]
    labels, offsets = data.flat_labels(), data.candidate_offsets()
    layout = (data.behaviors["impression_id"].cast(pa.int64()).to_numpy(), labels, offsets)  # read once
    results = [
        _load_run(name, folder, data, split, location.root, progress, layout)
        for name, folder in zip(names, folders, strict=True)
    ]
    num = len(offsets) - 1
    resamples = Resamples(num, samples, seed)
    title = f"Main table ({split}, {num:,} impressions; 95% bootstrap intervals over impressions, {samples} resamples)"
    main, main_intervals = comparison.main_table(results, resamples, title)
    tables = [main, comparison.paired_table(results, results[names.index(reference)], resamples)]
    bar.update(2)
    bars = {}
    for key, text, values, groups in (
        ("history", "By history length (clicks)", np.diff(data.history_offsets()), HISTORY_GROUPS),
        ("size", "By impression size (candidates)", np.diff(offsets), SIZE_GROUPS),
    ):
        table, bars[key] = comparison.impression_breakdown(key, text, results, values, groups, resamples)
        tables.append(table)
    bar.update()
    train_log = location.root / "train" / "behaviors.tsv"
    shown = display_counts(train_log) if split != "train" and train_log.is_file() else None  # streamed
    facts = comparison.candidate_facts(data, shown)
    for key, parts in comparison.candidate_subsets(facts).items():
        table, found = comparison.subset_breakdown(key, _SUBSET_TITLES[key], results, parts, labels, offsets, resamples)
        tables.append(table)
        if key != "category":
            bars[key] = found
    bar.update()
    news_vectors = {
        r.name: _news_vectors(f, data, facts.news_ids) if vectors else None
        for r, f in zip(results, folders, strict=True)
    }
    tables.append(comparison.beyond_table(results, offsets, facts, news_vectors, seed=seed))
    bar.update()

    pngs = {
        "training_curves.png": figures.training_curves({r.name: r.curves for r in results}),
        "time_to_accuracy.png": figures.time_to_accuracy(
            {r.name: (r.train_seconds, main_intervals[r.name][0]) for r in results}
        ),
    }
    for key, (text, file) in _FIGURES.items():
        if key in bars:
            pngs[file] = figures.breakdown_bars(text, bars[key].groups, bars[key].per_run, bars[key].counts, "AUC")
    bar.update()
    intro = (
        f"Runs: {', '.join(names)}. Data: `{location.root / split}` ({num:,} impressions). Intervals: 95% percentile "
        f"bootstrap over impressions ({samples} resamples, seed {seed}); paired comparisons resample the same "
        "impressions for both runs. Subset AUCs re-rank each impression within the subset."
    )
    if evaluated:
        intro += f" Evaluated by this report (no {split} predictions before): {', '.join(evaluated)}."
    for table in tables:
        atomic_write_text(out / f"{table.key}.csv", rendering.table_csv(table))
    for file, png in pngs.items():
        atomic_write_bytes(out / file, png)
    atomic_write_text(out / "report.md", rendering.report_markdown(intro, tables, list(pngs)))
    atomic_write_text(out / "report.html", rendering.report_html(intro, tables, pngs))
    bar.update()
    bar.close()
    return {
        "out": str(out),
        "runs": names,
        "main": {name: {m: vars(i) for m, i in zip(METRICS, ivs, strict=True)} for name, ivs in main_intervals.items()},
        "markdown": rendering.table_markdown(main),
        "figures": sorted(pngs),
        "evaluated": evaluated,
    }


def _unique_names(runs: Sequence[Path]) -> list[str]:
    names = [Path(run).name for run in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{Path(run).parent.name}/{Path(run).name}" for run in runs]


def _load_run(
    name: str,
    folder: RunDir,
    data: MindSplit,
    split: str,
    root: Path,
    progress: bool,
    layout: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> RunPredictions:
    """A run's predictions on ``data`` (evaluated first when it has none) and its training logs;
    ``layout`` is the split's impression ids, flat labels and candidate offsets, read once."""
    impression_ids, labels, offsets = layout
    prediction_path = folder.prediction_path(split)
    if not prediction_path.is_file():
        logger.warning("%s has no %s predictions (%s): evaluating it first", name, split, prediction_path)
        run_evaluate(folder.path, root, split, progress=progress)
    prediction = read_prediction(prediction_path)
    if not np.array_equal(prediction.impression_ids, impression_ids):
        raise ConfigError(
            f"{prediction_path}: its impressions are not those of {data.directory}; "
            f"evaluate the run on this data again (delete the file and rerun the report)"
        )
    if not np.array_equal(prediction.offsets, offsets):
        raise ConfigError(f"{prediction_path}: its impression sizes differ from {data.directory}")
    scores = -prediction.values.astype(np.float64)
    info = json.loads(folder.metrics_path.read_text()) if folder.metrics_path.is_file() else {}
    curves: dict[str, list[tuple[float, float, float]]] = {"loss": [], "auc": []}
    rates = []
    for record in read_records(folder.path):  # one pass over the metric log
        elapsed = float(record.get("elapsed_s", float("nan")))
        if record.get("kind") == "train":
            curves["loss"].append((record["step"], elapsed, record["loss"]))
            if record.get("samples_per_s") is not None:
                rates.append(record["samples_per_s"])
        elif record.get("kind") == "eval":
            curves["auc"].append((record["step"], elapsed, record["auc"]))
    seconds = info.get("train_seconds")
    if seconds is None:
        times = [p[1] for series in curves.values() for p in series if p[1] == p[1]]
        seconds = max(times) if times else None
    return RunPredictions(
        name,
        scores,
        impression_metrics(scores, labels, offsets),
        train_seconds=None if seconds is None else float(seconds),
        samples_per_s=float(np.mean(rates)) if rates else None,
        trainable_parameters=info.get("trainable_parameters"),
        curves=curves,
    )


def _news_vectors(folder: RunDir, data: MindSplit, news_ids: np.ndarray) -> np.ndarray | None:
    """The run's vectors (V, D) of ``news_ids`` (news of the split), None when the run cannot encode them here."""
    from mmnewsrec.serving.predictor import Predictor
    from mmnewsrec.serving.records import NewsRecord

    wanted = data.news.filter(pc.is_in(data.news["news_id"], value_set=pa.array(news_ids.tolist())))
    try:
        predictor = Predictor.load(folder.path)
        entities = parse_entities(wanted, data.directory / NEWS_FILE).ids.to_pylist()
        records = [
            NewsRecord(
                r["news_id"], r["category"], r["subcategory"], r["title"], r["abstract"], r.get("image_path"), tuple(e)
            )
            for r, e in zip(wanted.to_pylist(), entities, strict=True)
        ]
        predictor.encode_news(records, cache=True)
        return predictor.news_vectors(news_ids.tolist()).numpy()
    except (MmnewsrecError, OSError) as exc:  # e.g. a backbone not available offline: the table says "-"
        logger.warning("no news vectors for %s (%s): vector diversity left out", folder.path.name, exc)
        return None
