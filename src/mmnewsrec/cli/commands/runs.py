"""The commands that build, train, evaluate, compare, share and serve runs: featurize, train,
evaluate, demo, report, push, serve, replay, simulate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmnewsrec.cli.commands.data import _scales
from mmnewsrec.cli.options import Options, non_negative_int, option, port, positive_int, resolve_target, share


@dataclass
class FeaturizeOptions(Options):
    """build or reuse the cached features an experiment config names

    Attributes:
        config: experiment YAML (configs/).
        data_root: dataset root (default: data.root of the config).
        cache_dir: feature store root (default: features.cache_dir of the config, else ~/.cache/mmnewsrec/features).
        overrides: dotted.key=value config overrides, values read as YAML (training.lr=2e-5
            model.news.dim=128); ~dotted.key removes a key.
    """

    target = "mmnewsrec.workflows.featurize:run_featurize"
    config: Path = option()
    data_root: Path | None = option(None, flags=("--data",))
    cache_dir: Path | None = option(None)
    overrides: list[str] = option([], positional=True, nargs="*")
    progress: bool = False

    def kwargs(self) -> dict[str, Any]:
        from mmnewsrec.config import ExperimentConfig, load_yaml

        values = {**super().kwargs(), "config": load_yaml(ExperimentConfig, self.config, self.overrides)}
        del values["overrides"]
        return values


def _featurize(options: FeaturizeOptions) -> int:
    for record in resolve_target(FeaturizeOptions)(**options.kwargs()) or []:  # main process only
        print(json.dumps(record))
    return 0


@dataclass
class TrainOptions(Options):
    """train an experiment (or score its baseline) into a run folder

    Attributes:
        config: experiment YAML (configs/).
        data_root: dataset root (default: data.root of the config).
        run_dir: run folder (default: run_dir/name of the config); --run-dir is the old spelling.
        cache_dir: feature store root (default: features.cache_dir of the config, else ~/.cache/mmnewsrec/features).
        resume: continue the run from its last checkpoint; changes to settings that do not break it
            (epochs, max_steps, lr, patience, evaluation) are applied and recorded, others refused.
        overwrite: start again in a run folder that holds a run: the old run is moved aside to
            RUN.old-TIMESTAMP, never deleted.
        overrides: dotted.key=value config overrides, values read as YAML (training.lr=2e-5
            model.news.dim=128); ~dotted.key removes a key.
    """

    target = "mmnewsrec.workflows.train:run_train"
    config: Path = option()
    data_root: Path | None = option(None, flags=("--data",))
    run_dir: Path | None = option(None, flags=("--run", "--run-dir"))
    cache_dir: Path | None = option(None)
    resume: bool = option(False, group="mode")
    overwrite: bool = option(False, group="mode")
    overrides: list[str] = option([], positional=True, nargs="*")
    progress: bool = False

    def kwargs(self) -> dict[str, Any]:
        from mmnewsrec.models.build import load_experiment

        values = {**super().kwargs(), "config": load_experiment(self.config, self.overrides)}  # checked whole
        del values["overrides"]
        return values


def _train(options: TrainOptions) -> int:
    print(json.dumps(resolve_target(TrainOptions)(**options.kwargs())))
    return 0


@dataclass
class RunSplitOptions(Options):
    """A trained run applied to a split of a dataset (what evaluate and replay share).

    Attributes:
        run: run folder written by train, or a run pushed to the Hugging Face Hub, ORG/NAME[@REVISION]
            (--run-dir: the old spelling).
        data_root: dataset root (default: the run's).
        split: split folder (default: dev).
        cache_dir: feature store root (default: the run's).
    """

    # --run-dir too: train's old name for it, and the one launchers that own a --run-path option
    # (torchrun) pass through untouched.
    run: Path = option(flags=("--run", "--run-dir"))
    data_root: Path | None = option(None, flags=("--data",))
    split: str = option("dev")
    cache_dir: Path | None = option(None)


#: Serve's and replay's ``--cold-start``.
COLD_START_HELP = (
    "users without clicks: the most clicked fresh news, or the model's empty-history vector (default: "
    "popularity, which ranked better in `replay` on synthetic small and the realistic preset)."
)


def cold_start_option() -> Any:
    return option("popularity", choices=lambda: ["model", "popularity"], help=COLD_START_HELP)


@dataclass
class EvaluateOptions(RunSplitOptions):
    """score a split with a trained run, block by block (memory flat in the number of impressions);
    several processes: torchrun --nproc_per_node N -m mmnewsrec evaluate --run RUN ... (CPU),
    accelerate launch --multi_gpu --num_processes N -m mmnewsrec evaluate ... (GPUs)

    Attributes:
        split: split folder to score: dev (labelled) or test (default: dev).
        zip_file: also write prediction.zip, the MIND leaderboard's upload (prediction.txt).
        out: prediction file to write (default: RUN/SPLIT/prediction.txt).
        overwrite: replace --out even if another run wrote it (refused by default).
        block_impressions: impressions read and scored at a time, rounded down to whole scoring
            batches (default: 20000).
    """

    target = "mmnewsrec.workflows.evaluate:run_evaluate"
    zip_file: bool = option(False, flags=("--zip",))
    out: Path | None = option(None)
    overwrite: bool = option(False)
    block_impressions: int = option(20_000, type=positive_int)
    progress: bool = False


def _evaluate(options: EvaluateOptions) -> int:
    record = resolve_target(EvaluateOptions)(**options.kwargs())
    if record is not None:  # one line from the main process of a multi-process launch
        print(json.dumps(record))
    return 0


@dataclass
class DemoOptions(Options):
    """the built-in default job on synthetic data

    Attributes:
        workdir: where data, runs and tables go.
        scale: synthetic dataset size (default: tiny).
        seed: dataset and training seed (default: 0).
        train_models: baselines only: skip the two models.
    """

    target = "mmnewsrec.workflows.demo:run_demo"
    workdir: Path = option(Path("runs/demo"))
    scale: str = option("tiny", choices=_scales)
    seed: int = option(0, type=non_negative_int)
    train_models: bool = option(True, negate="--no-train")
    progress: bool = False


def _demo(options: DemoOptions) -> int:
    result = resolve_target(DemoOptions)(**options.kwargs())
    print(result["table"])
    print(f"\n(results in {options.workdir / 'results.json'})")
    return 0


@dataclass
class ReportOptions(Options):
    """compare runs: tables with bootstrap intervals, paired tests, breakdowns, figures

    Attributes:
        runs: run folders written by train (or runs pushed to the Hugging Face Hub, ORG/NAME[@REVISION]).
        simulation: folders written by simulate: their days as curves, accuracy against diversity
            across the pipelines' trade-offs (with or without runs).
        pipeline: a feed pipeline's YAML (repeatable): applied to the first run's (or the
            baseline's) scores of the logged impressions, its accuracy and beyond-accuracy tabled.
        data_root: dataset root (default: the first run's).
        split: labelled split to compare on (default: dev).
        out: report folder (default: report/ beside the first run).
        baseline: run name the others are compared with (default: the first).
        samples: bootstrap resamples over impressions (default: 1000).
        vectors: skip encoding news for the vector diversity.
    """

    target = "mmnewsrec.workflows.report:run_report"
    runs: list[Path] = option([], positional=True, nargs="*", metavar="RUN")
    simulation: list[Path] = option([], nargs="+", action="extend", metavar="DIR")
    pipeline: list[Path] = option([], action="append", metavar="FILE")
    data_root: Path | None = option(None, flags=("--data",))
    split: str = option("dev")
    out: Path | None = option(None)
    baseline: str | None = option(None)
    samples: int = option(1000, type=positive_int)
    vectors: bool = option(True, negate="--no-vectors")
    progress: bool = False


def _report(options: ReportOptions) -> int:
    result = resolve_target(ReportOptions)(**options.kwargs())
    print(result["markdown"])
    print(f"\n(report in {Path(result['out']) / 'report.md'} and report.html)")
    return 0


@dataclass
class PushOptions(Options):
    """upload a trained run to the Hugging Face Hub as a model repository, with a model card

    Attributes:
        run: run folder written by train.
        repo_id: the model repository, ORG/NAME (created if needed; HF_TOKEN or `hf auth login`).
        revision: branch to push to (default: main).
        private: create the repository private.
        commit_message: the commit's message (default: "mmnewsrec run NAME").
    """

    target = "mmnewsrec.runs.hub:push_run"
    run: Path = option(positional=True)
    repo_id: str = option(positional=True, metavar="ORG/NAME")
    revision: str | None = option(None)
    private: bool = option(False)
    commit_message: str | None = option(None, flags=("--message",))


def _push(options: PushOptions) -> int:
    print(json.dumps(resolve_target(PushOptions)(**options.kwargs())))
    return 0


@dataclass
class ServeOptions(Options):
    """serve a trained run over HTTP: recommendations that follow each click (needs [serve])

    Attributes:
        run: run folder written by train, or a run pushed to the Hugging Face Hub, ORG/NAME[@REVISION]
            (--run-dir: the old spelling).
        news: news.tsv, a split folder or a dataset root whose news to preload (repeatable).
        state: user-state store: sqlite:///path/state.db or redis://host:port/db (default: RUN/serve/state.db).
        host: address to bind (default: 127.0.0.1).
        port: port (default: 8000).
        token_file: file holding the write token (default: $MMNEWSREC_TOKEN).
        demo: no write token, 127.0.0.1 only (for the local web page).
        workers: server processes behind the port, each a replica over the shared state store (default: 1).
        cache_dir: feature store root (default: the run's).
        allow_volatile_store: serve even when the state store could lose acknowledged clicks in a
            crash (Redis without --appendonly yes); by default that is refused.
        pipelines: a feed pipeline YAML (configs/pipelines/; repeatable): requests choose one with
            ?pipeline=NAME, the first is the default (none: the model's top k).
    """

    target = "mmnewsrec.workflows.serve:serve"
    run: Path = option(flags=("--run", "--run-dir"))
    news: list[Path] = option([], action="append")
    state: str | None = option(None)
    host: str = option("127.0.0.1")
    port: int = option(8000, type=port)
    token_file: Path | None = option(None)
    demo: bool = option(False)
    workers: int = option(1, type=positive_int)
    cache_dir: Path | None = option(None)
    cold_start: str = cold_start_option()
    allow_volatile_store: bool = option(False)
    pipelines: list[Path] = option([], flags=("--pipeline",), action="append")
    progress: bool = True


def _serve(options: ServeOptions) -> int:
    resolve_target(ServeOptions)(**options.kwargs())
    return 0


@dataclass
class ReplayOptions(RunSplitOptions):
    """feed a split through the live service in time order: static vs online histories

    Attributes:
        split: labelled split folder to replay (default: dev).
    """

    target = "mmnewsrec.workflows.replay:run_replay"
    cold_start: str = cold_start_option()
    progress: bool = False


def _replay(options: ReplayOptions) -> int:
    print(resolve_target(ReplayOptions)(**options.kwargs())["table"])
    return 0


@dataclass
class SimulateOptions(Options):
    """serve a synthetic world's readers day after day (clicks drawn from its true click model) and
    measure the feeds: clicks, regret against the oracle, diversity, coverage, freshness

    Attributes:
        run: run folder written by train, or a run pushed to the Hugging Face Hub, ORG/NAME[@REVISION].
        data: dataset root written by `mmnewsrec synth` (its synthetic.json holds the click model).
        days: simulated days after the logs (default: 7).
        pipeline: a feed pipeline YAML (configs/pipelines/; default: the model's top k).
        out: folder to write simulation.json to.
        seed: the simulation's random seed, >= 0 (default: 0).
        users: reader arrivals per day, drawn by activity (default: 1000).
        k: cards per feed (default: 10).
        static: static user vectors: impressions counted but readers' histories never grow.
        interest_drift: share of readers (0-1) whose interests move at the start of day 0, beyond the
            dataset's own moves (default: 0).
        news_per_day: news published per day (default: the world's own rate).
        http: drive a running `mmnewsrec serve` at this URL (started on the run, without --news, on
            an empty state store, serving --pipeline) instead of a service in this process.
        token_file: file holding the server's write token (default: $MMNEWSREC_TOKEN).
        cache_dir: feature store root (default: the run's).
    """

    target = "mmnewsrec.workflows.simulate:run_simulation"
    run: Path = option(flags=("--run",))
    data: Path = option()
    out: Path = option()
    days: int = option(7, type=positive_int)
    pipeline: Path | None = option(None)
    seed: int = option(0, type=non_negative_int)
    users: int = option(1000, type=positive_int)
    k: int = option(10, type=positive_int)
    static: bool = option(False)
    interest_drift: float = option(0.0, type=share, metavar="SHARE")
    news_per_day: int | None = option(None, type=positive_int)
    http: str | None = option(None, metavar="URL")
    token_file: Path | None = option(None)
    cache_dir: Path | None = option(None)
    progress: bool = False


def _simulate(options: SimulateOptions) -> int:
    result = resolve_target(SimulateOptions)(**options.kwargs())
    from mmnewsrec.workflows.simulate import simulation_table

    print(simulation_table(result))
    print(f"wrote {Path(options.out) / 'simulation.json'}")
    return 0
