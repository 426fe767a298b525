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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_write_bytes, atomic_write_text
from mmnewsrec.config.pipeline import PipelineConfig
from mmnewsrec.data.mind import DatasetLocation, MindSplit, display_counts, parse_entities
from mmnewsrec.data.schema import BEHAVIORS_FILE, NEWS_FILE
from mmnewsrec.errors import ConfigError, MmnewsrecError
from mmnewsrec.evaluation import comparison, rendering
from mmnewsrec.evaluation.analysis import (
    HISTORY_GROUPS,
    METRICS,
    SIZE_GROUPS,
    Resamples,
    impression_metrics,
    intervals,
)
from mmnewsrec.evaluation.comparison import RunPredictions
from mmnewsrec.evaluation.submission import read_prediction
from mmnewsrec.runs.hub import locate_run
from mmnewsrec.runs.layout import RunDir
from mmnewsrec.runs.metrics_log import read_records
from mmnewsrec.workflows.evaluate import run_evaluate, score_split
from mmnewsrec.workflows.serve import load_pipelines
from mmnewsrec.workflows.simulate import SIMULATION_FILE

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
    runs: Sequence[str | Path] = (),
    data_root: str | Path | None = None,
    split: str = "dev",
    out: str | Path | None = None,
    baseline: str | None = None,
    samples: int = 1000,
    seed: int = 0,
    vectors: bool = True,
    simulation: Sequence[str | Path] = (),
    pipeline: Sequence[str | Path] = (),
    progress: bool = False,
) -> dict[str, Any]:
    """Writes the report of ``runs`` on ``split`` and of the ``simulation`` folders (written by
    ``mmnewsrec simulate``) into ``out`` (default: ``report/`` beside the first run, else beside
    the first simulation folder). Each ``pipeline`` (a YAML file) is applied offline to the first
    run's (or ``baseline``'s) scores of the logged impressions."""
    simulations = list(simulation)
    if not runs and not simulations:
        raise ConfigError("report needs at least one run folder or --simulation folder")
    if pipeline and not runs:
        raise ConfigError("--pipeline: the pipelines are applied to a run's scores; name a run folder")
    pipelines = load_pipelines(pipeline)
    sims = [
        read_simulation(folder, name)
        for folder, name in zip(simulations, _unique_names([_simulation_folder(s) for s in simulations]), strict=True)
    ]  # every file checked before any run is read
    tables: list[comparison.Table] = []
    pngs: dict[str, bytes] = {}
    intro: list[str] = []
    result: dict[str, Any] = {}
    if runs:
        folders = [RunDir(locate_run(run)) for run in runs]  # folders, or runs pushed to the Hub
        for folder in folders:
            folder.require_run()
        out = Path(out) if out is not None else folders[0].path.parent / "report"
        result = _runs_section(folders, data_root, split, baseline, samples, seed, vectors, pipelines, progress)
        tables, pngs, intro = result.pop("tables"), result.pop("pngs"), [result.pop("intro")]
    if sims:
        sim_tables, sim_pngs, sim_intro = simulation_section(sims)
        tables, pngs, intro = [*tables, *sim_tables], {**pngs, **sim_pngs}, [*intro, sim_intro]
        result["simulations"] = {sim.name: sim.result["summary"] for sim in sims}
        result.setdefault("markdown", rendering.table_markdown(sim_tables[0]))
    out = Path(out) if out is not None else _simulation_folder(simulations[0]).parent / "report"
    out.mkdir(parents=True, exist_ok=True)
    text = " ".join(intro)
    for table in tables:
        atomic_write_text(out / f"{table.key}.csv", rendering.table_csv(table))
    for file, png in pngs.items():
        atomic_write_bytes(out / file, png)
    atomic_write_text(out / "report.md", rendering.report_markdown(text, tables, list(pngs)))
    atomic_write_text(out / "report.html", rendering.report_html(text, tables, pngs))
    return {"out": str(out), **result, "figures": sorted(pngs)}


def _runs_section(
    folders: Sequence[RunDir],
    data_root: str | Path | None,
    split: str,
    baseline: str | None,
    samples: int,
    seed: int,
    vectors: bool,
    pipelines: Sequence[PipelineConfig],
    progress: bool,
) -> dict[str, Any]:
    """The runs' tables, figures and intro on ``split``, and what :func:`run_report` returns of them."""
    from mmnewsrec.evaluation import figures

    location = DatasetLocation.resolve(folders[0].read_config().data, data_root)  # the first run's policies
    data = location.read_split(split)
    if not data.labelled:
        raise ConfigError(f"report needs a labelled split; {location.root / split} has no click labels")
    names = _unique_names([folder.path for folder in folders])
    reference = names[0] if baseline is None else baseline
    if reference not in names:
        raise ConfigError(f"--baseline {baseline}: not one of the runs ({', '.join(names)})")

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
    shown = _train_display_counts(location) if split != "train" else None  # streamed
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
    fronts = None
    if pipelines:
        at = names.index(reference)
        table, fronts = _pipelines_section(
            results[at], folders[at], data, split, location.root, facts, news_vectors[reference], pipelines,
            resamples, seed, progress,
        )  # fmt: skip
        tables.append(table)

    pngs = {
        "training_curves.png": figures.training_curves({r.name: r.curves for r in results}),
        "time_to_accuracy.png": figures.time_to_accuracy(
            {r.name: (r.train_seconds, main_intervals[r.name][0]) for r in results}
        ),
    }
    for key, (text, file) in _FIGURES.items():
        if key in bars:
            pngs[file] = figures.breakdown_bars(text, bars[key].groups, bars[key].per_run, bars[key].counts, "AUC")
    if fronts is not None:
        pngs["pipeline_fronts.png"] = fronts
    bar.update()
    intro = (
        f"Runs: {', '.join(names)}. Data: `{location.root / split}` ({num:,} impressions). Intervals: 95% percentile "
        f"bootstrap over impressions ({samples} resamples, seed {seed}); paired comparisons resample the same "
        "impressions for both runs. Subset AUCs re-rank each impression within the subset."
    )
    if evaluated:
        intro += f" Evaluated by this report (no {split} predictions before): {', '.join(evaluated)}."
    bar.update()
    bar.close()
    return {
        "tables": tables,
        "pngs": pngs,
        "intro": intro,
        "runs": names,
        "main": {name: {m: vars(i) for m, i in zip(METRICS, ivs, strict=True)} for name, ivs in main_intervals.items()},
        "markdown": rendering.table_markdown(main),
        "evaluated": evaluated,
    }


def _train_display_counts(location: DatasetLocation) -> pa.Table | None:
    """Each news's displays and clicks in the training log (MIND's TSV or EB-NeRD's Parquet), None without one."""
    from mmnewsrec.data.ebnerd import BEHAVIORS_PARQUET
    from mmnewsrec.data.ebnerd import display_counts as ebnerd_display_counts

    if location.is_ebnerd:
        log = location.split_dir("train") / BEHAVIORS_PARQUET
        return ebnerd_display_counts(log) if log.is_file() else None
    log = location.split_dir("train") / BEHAVIORS_FILE
    return display_counts(log) if log.is_file() else None


def _simulation_folder(path: str | Path) -> Path:
    path = Path(path)
    return path.parent if path.name == SIMULATION_FILE else path


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


# ------------------------------------------------------------------------------------- simulations
#: The per-day measurements the report draws and tables: (key, heading).
_DAY_PANELS = (
    ("clicks_per_impression", "clicks per feed"),
    ("regret", "regret (1 - expected / oracle's expected clicks)"),
    ("category_entropy_shown", "category entropy shown per feed (bits)"),
    ("category_entropy_clicked", "category entropy clicked (bits)"),
    ("coverage", "coverage (share of the day's candidates shown)"),
    ("fresh_share_clicked", "share of clicks on news under a day old"),
)
_SUMMARY_COLUMNS = (
    ("clicks_per_impression", "clicks/imp"),
    ("expected_clicks_per_impression", "expected/imp"),
    ("regret", "regret"),
    ("category_entropy_shown", "entropy shown"),
    ("category_entropy_clicked", "entropy clicked"),
    ("coverage", "coverage"),
    ("fresh_share_shown", "fresh shown"),
    ("fresh_share_clicked", "fresh clicked"),
    ("fresh_clicks", "fresh clicks"),
    ("drifted_expected_share", "drifted/oracle"),
    ("days_to_follow", "days to follow"),
    ("latency_ms_p50", "p50 ms"),
)
#: The stage a pipeline explores or diversifies with -> its family's label (the trade-off in brackets).
_FAMILIES = {
    "mmr": "MMR (theta)",
    "calibration": "calibration (lambda)",
    "softmax": "softmax sampler (temperature)",
    "epsilon": "epsilon-greedy (epsilon)",
    "thompson": "Thompson (prior strength)",
}


_FRONT_KEYS = ("clicks_per_impression", "category_entropy_shown", "coverage")


@dataclass(frozen=True)
class Simulation:
    """One ``simulation.json`` as the report reads it: its name, family and trade-off value."""

    name: str
    family: str
    trade_off: float | None
    result: dict[str, Any]


def read_simulation(folder: str | Path, name: str | None = None) -> Simulation:
    """A simulation folder's ``simulation.json`` (written by ``mmnewsrec simulate``).

    Raises:
        ConfigError: no such file, not JSON, or not a simulation's (naming the file and the key).
    """
    path = Path(folder)
    path = path if path.name == SIMULATION_FILE else path / SIMULATION_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (a --simulation folder is one written by mmnewsrec simulate)")
    try:
        result = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a simulation's JSON ({exc})") from exc
    if not isinstance(result, dict):
        raise ConfigError(f"{path}: not a simulation's JSON (an object is expected)")
    for key, kind in (("days", list), ("summary", dict), ("config", dict)):
        if not isinstance(result.get(key), kind):
            raise ConfigError(f"{path}: {key}: missing or not a {kind.__name__} (not written by mmnewsrec simulate)")
    for number, day in enumerate(result["days"]):
        missing = [key for key, _ in _DAY_PANELS if not isinstance(day, dict) or key not in day]
        if missing:
            raise ConfigError(f"{path}: days[{number}]: missing {', '.join(missing)}")
    settings = result.get("pipeline_config") or {}
    try:
        pipeline = PipelineConfig(**settings)
    except (TypeError, ConfigError) as exc:
        raise ConfigError(f"{path}: pipeline_config: {exc}") from exc
    family, value = pipeline_family(pipeline)
    if not result["config"].get("online", True):
        family = f"{family}, static user vectors"
    return Simulation(name or path.parent.name, family, value, result)


def simulation_section(simulations: Sequence[Simulation]) -> tuple[list[comparison.Table], dict[str, bytes], str]:
    """The simulations' tables (the whole run's line of each, and every day), figures (curves per
    day; accuracy against diversity across trade-offs) and a sentence for the report's intro."""
    from mmnewsrec.evaluation import figures

    summary_rows = []
    for sim in simulations:
        summary = sim.result["summary"]
        trade_off = "-" if sim.trade_off is None else f"{sim.trade_off:g}"
        values = [summary.get(key) for key, _ in _SUMMARY_COLUMNS]
        summary_rows.append([sim.name, sim.family, trade_off, summary.get("impressions"), *values])
    day_keys = [key for key, _ in _SUMMARY_COLUMNS if all(key in d for s in simulations for d in s.result["days"])]
    day_rows = [
        [sim.name, day["day"] + 1, day.get("impressions"), *(day.get(key) for key in day_keys)]
        for sim in simulations
        for day in sim.result["days"]
    ]
    heading = dict(_SUMMARY_COLUMNS)
    tables = [
        comparison.Table(
            "simulation",
            "Closed-loop simulation: each simulation over all its days",
            ["simulation", "family", "trade-off", "impressions", *heading.values()],
            summary_rows,
        ),
        comparison.Table(
            "simulation_days",
            "Closed-loop simulation: each day",
            ["simulation", "day", "impressions", *(heading[key] for key in day_keys)],
            day_rows,
        ),
    ]
    curves = {s.name: {key: [d.get(key) for d in s.result["days"]] for key, _ in _DAY_PANELS} for s in simulations}
    families: dict[str, list[tuple[float | None, str, dict[str, float]]]] = {}
    for sim in simulations:
        summary = sim.result["summary"]
        if all(isinstance(summary.get(k), (int, float)) for k in _FRONT_KEYS):
            families.setdefault(sim.family, []).append((sim.trade_off, sim.name, summary))
    pngs = {"simulation_days.png": figures.day_curves(_DAY_PANELS, curves)}
    if families:
        pngs["simulation_fronts.png"] = figures.tradeoff_fronts(
            [("category_entropy_shown", "category entropy shown per feed (bits)"), ("coverage", "coverage")],
            ("clicks_per_impression", "clicks per feed (over all days)"),
            families,
            "Accuracy against diversity across trade-offs (closed-loop simulation)",
        )
    first = simulations[0].result
    intro = (
        f"Simulations: {', '.join(s.name for s in simulations)} ({len(first['days'])} days of "
        f"{first['config'].get('users')} arrivals, k = {first['config'].get('k')}, click model "
        f"{first.get('click_model', '?')})."
    )
    return tables, pngs, intro


# ------------------------------------------------------------------------- pipelines, offline
def pipeline_family(pipeline: PipelineConfig) -> tuple[str, float | None]:
    """A pipeline's family (the stage it diversifies or explores with) and that stage's trade-off."""
    trade_off = pipeline.trade_off()
    if trade_off is None:
        return "top-k", None
    stage, _, value = trade_off
    return _FAMILIES[stage], value


def pipeline_scores(
    pipeline: PipelineConfig,
    scores: np.ndarray,
    offsets: np.ndarray,
    vectors: np.ndarray | None,
    category_codes: np.ndarray,
    targets: np.ndarray,
    counts: tuple[np.ndarray, np.ndarray],
    k: int = 10,
) -> np.ndarray:
    """Each logged impression's candidates ordered as the pipeline orders a pool of them, as scores
    (N,), higher first: its ``k`` chosen first, then the rest by the model's score.

    Args:
        scores: the model's logits (N,); offsets (M + 1,).
        vectors: (N, D) each candidate's news vector (None: a pipeline that needs them is refused).
        category_codes: (N,) each candidate's category; targets (M, K) each user's history
            distribution over the same categories (calibration's target).
        counts: (N,), (N,) each candidate's impressions and clicks (Thompson's posterior).
    """
    from mmnewsrec.serving.pipeline import Pipeline
    from mmnewsrec.serving.stages import fill

    if pipeline.diversifier == "mmr" and vectors is None:
        raise ConfigError(f"pipeline {pipeline.name}: MMR needs the run's news vectors (report without --no-vectors)")
    ordering = Pipeline(pipeline)
    ordered = np.empty(len(scores), dtype=np.float64)
    for i in range(len(offsets) - 1):
        a, b = int(offsets[i]), int(offsets[i + 1])
        pool = scores[a:b]
        chosen = ordering.order(
            pool,
            min(k, b - a),
            lambda a=a, b=b: vectors[a:b],  # (C, D); asked for within this iteration only
            lambda a=a, b=b, i=i: (category_codes[a:b], targets[i]),
            lambda a=a, b=b: (counts[0][a:b], counts[1][a:b]),
        )
        full = fill(chosen, pool, b - a)  # (C,) positions, best first
        ordered[a + full] = np.arange(b - a, 0, -1, dtype=np.float64)
    return ordered


def _pipelines_section(
    reference: RunPredictions,
    folder: RunDir,
    data: MindSplit,
    split: str,
    root: Path,
    facts: comparison.CandidateFacts,
    vectors: np.ndarray | None,
    pipelines: Sequence[PipelineConfig],
    resamples: Resamples,
    seed: int,
    progress: bool,
) -> tuple[comparison.Table, bytes]:
    """Each pipeline applied to the reference run's scores of the logged impressions: accuracy and
    beyond-accuracy of its top 10, and a figure of the two across the trade-offs."""
    from mmnewsrec.evaluation import figures
    from mmnewsrec.serving.stages import category_distribution

    arrays, scored = score_split(folder.path, root, split, progress=progress)
    offsets = data.candidate_offsets()
    if not np.array_equal(arrays.cand_offsets, offsets):
        raise ConfigError(f"{data.directory}: the run read other impressions than the report's")
    labels = data.flat_labels()
    names = {name: code for code, name in enumerate(facts.category_names.tolist())}
    category_of = dict(zip(data.news["news_id"].to_pylist(), data.news["category"].to_pylist(), strict=True))
    history = [category_of.get(n, "") for n in data.flat_history().to_pylist()]
    for name in history:
        names.setdefault(name, len(names))
    history_codes = np.array([names[c] for c in history], dtype=np.int64)
    history_offsets = data.history_offsets()
    # Calibration's target as the live service builds it (serving.pipeline.category_codes).
    targets = np.stack(
        [
            category_distribution(history_codes[history_offsets[i] : history_offsets[i + 1]], len(names))
            for i in range(len(offsets) - 1)
        ]
    )  # (M, K)
    counts = (facts.displays[facts.news_codes], facts.clicks[facts.news_codes])
    flat_vectors = None if vectors is None else vectors[facts.news_codes]  # (N, D)
    variants = [RunPredictions(reference.name, scored.scores, impression_metrics(scored.scores, labels, offsets))]
    settings: list[PipelineConfig | None] = [None]
    for pipeline in tqdm(pipelines, desc="pipelines", disable=not progress):
        pipeline = pipeline if pipeline.seed is not None else replace(pipeline, seed=seed)
        scores = pipeline_scores(pipeline, scored.scores, offsets, flat_vectors, facts.category_codes, targets, counts)
        variants.append(RunPredictions(pipeline.name, scores, impression_metrics(scores, labels, offsets)))
        settings.append(pipeline)
    beyond = comparison.beyond_table(variants, offsets, facts, {v.name: vectors for v in variants}, seed=seed)
    rows, families = [], {}
    for variant, pipeline, (_, *measures) in zip(variants, settings, beyond.rows, strict=True):
        found = intervals(variant.metrics, resamples.means(variant.metrics))
        family, value = pipeline_family(pipeline) if pipeline is not None else ("top-k", None)
        name = variant.name if pipeline is not None else f"{variant.name} (the model's ranking)"
        rows.append([name, family, "-" if value is None else f"{value:g}", *found, *measures])
        measured = {"ndcg10": found[3].mean, "category_diversity": measures[0], "coverage": measures[2]}
        families.setdefault(family, []).append((value, variant.name, measured))
    table = comparison.Table(
        "pipelines",
        f"Pipelines on the logged impressions ({reference.name}'s scores; each impression's candidates are "
        "the pool, filters not applied; metrics of the reordered list, beyond accuracy of its top 10)",
        ["pipeline", "family", "trade-off", *METRICS, *beyond.header[1:]],
        rows,
    )
    png = figures.tradeoff_fronts(
        [("category_diversity", "category diversity of the top 10"), ("coverage", "coverage of the top 10")],
        ("ndcg10", f"nDCG@10 on the logged {split} impressions"),
        families,
        f"Accuracy against diversity across trade-offs (pipelines on the logged {split} impressions)",
    )
    return table, png
