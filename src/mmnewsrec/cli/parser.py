"""The command line's parser: every subcommand, its options and their help."""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path

from mmnewsrec import __version__
from mmnewsrec.cli.commands import (
    _cmd_baseline,
    _cmd_config,
    _cmd_demo,
    _cmd_download,
    _cmd_evaluate,
    _cmd_featurize,
    _cmd_inspect,
    _cmd_replay,
    _cmd_report,
    _cmd_score,
    _cmd_serve,
    _cmd_synth,
    _cmd_train,
)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {value:g}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with the project's exit status for a mistake on the command line: 1, like every
    other fixable mistake (argparse's own is 2), after the usage and one ``error:`` line."""

    def error(self, message: str) -> typing.NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _logging_options() -> argparse.ArgumentParser:
    """-v / -q, accepted before and after the subcommand (``mmnewsrec -q train`` = ``mmnewsrec train -q``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="warnings only, no progress bars"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    from mmnewsrec.data.download import DATASETS
    from mmnewsrec.data.synthetic import PRESETS, SCALES
    from mmnewsrec.evaluation.baselines import BASELINES

    common = _logging_options()
    parser = _Parser(
        prog="mmnewsrec",
        description="Multimodal neural news recommendation on MIND. 'mmnewsrec COMMAND --help' explains a command.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"mmnewsrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common])

    overrides_help = (
        "dotted.key=value config overrides, values read as YAML (training.lr=2e-5 model.news.dim=128); "
        "~dotted.key removes a key"
    )
    config_epilog = (
        "Config keys, their defaults and help: 'mmnewsrec config' (all), 'mmnewsrec config training' "
        "(one section), or docs/configuration.md."
    )

    cache_help = "feature store root (default: features.cache_dir of the config, else ~/.cache/mmnewsrec/features)"

    p = command("synth", "write a synthetic MIND-format dataset (train/ dev/ test/ images/)")
    p.add_argument("--out", required=True, type=Path, help="dataset root to create")
    p.add_argument("--scale", default="tiny", choices=sorted(SCALES), help="dataset size (default: tiny)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="random seed, >= 0 (default: 0)")
    p.add_argument(
        "--preset",
        default="default",
        choices=sorted(PRESETS),
        help="kind of world: " + "; ".join(f"{name}: {preset.description}" for name, preset in PRESETS.items()),
    )
    p.add_argument(
        "--interest-drift",
        type=_share,
        default=None,
        metavar="SHARE",
        help="share of users (0-1) whose interests move after the train period (default: the preset's, 0)",
    )
    p.add_argument("--no-images", action="store_true", help="skip writing images/")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    p.set_defaults(func=_cmd_synth)

    p = command("inspect", "validate a dataset root or split folder and print statistics")
    p.add_argument("path", help="dataset root (train/ dev/ test/) or one split folder")
    p.add_argument(
        "--on-unknown-news",
        default="keep",
        choices=["keep", "drop", "error"],
        help="behaviour references to news absent from news.tsv (always counted; default: keep)",
    )
    p.add_argument("--images", default=None, help="image folder (default: images/ in the root)")
    p.add_argument(
        "--no-check-images", dest="check_images", action="store_false", help="skip decoding every image file"
    )
    p.set_defaults(func=_cmd_inspect)

    p = command("score", "score a MIND prediction file against a truth file (the official scorer)")
    p.add_argument("--truth", required=True, type=Path, help="truth file: '<impression id> [0,1,...]' per line")
    p.add_argument(
        "--prediction", required=True, type=Path, help="prediction file: '<impression id> [rank,...]' per line"
    )
    p.set_defaults(func=_cmd_score)

    p = command("baseline", "score a split with a non-learned baseline")
    p.add_argument("--data", required=True, type=Path, help="dataset root")
    p.add_argument("--split", default="dev", help="split folder to score (default: dev)")
    p.add_argument("--method", required=True, choices=BASELINES.names(), help="the baseline")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the random baseline (default: 0)")
    p.add_argument(
        "--prediction-out", type=Path, default=None, help="write a leaderboard prediction file (folders are created)"
    )
    p.add_argument("--truth-out", type=Path, default=None, help="write the split's truth file (folders are created)")
    p.set_defaults(func=_cmd_baseline)

    p = command("download", "fetch and unpack the real MIND archives")
    p.add_argument("dataset", choices=sorted(DATASETS), help="which MIND release")
    p.add_argument("--to", required=True, type=Path, help="dataset root to create")
    p.add_argument(
        "--from-zip", action="append", default=[], type=Path, help="an archive you already have (repeatable)"
    )
    p.add_argument("--mirror", action="append", default=[], help="base URL to fetch from (repeatable)")
    p.add_argument("--sha256", action="append", default=[], help="ARCHIVE_NAME=HEX expected checksum (repeatable)")
    p.add_argument("--timeout", type=float, default=20.0, help="network timeout in seconds (default: 20)")
    p.add_argument("--force", action="store_true", help="unpack again over complete split folders")
    p.set_defaults(func=_cmd_download)

    p = command("featurize", "build or reuse the cached features an experiment config names")
    p.epilog = config_epilog
    p.add_argument("--config", required=True, type=Path, help="experiment YAML (configs/)")
    p.add_argument("--data", type=Path, default=None, help="dataset root (default: data.root of the config)")
    p.add_argument("--cache-dir", type=Path, default=None, help=cache_help)
    p.add_argument("overrides", nargs="*", help=overrides_help)
    p.set_defaults(func=_cmd_featurize)

    p = command("config", "list the experiment config's keys with their types, defaults and help")
    p.add_argument(
        "prefix",
        nargs="?",
        default="",
        help="only the keys that start with it (training, model.news[fusion], data.images.missing); default: all",
    )
    p.set_defaults(func=_cmd_config)

    p = command("train", "train an experiment (or score its baseline) into a run folder")
    p.epilog = config_epilog
    p.add_argument("--config", required=True, type=Path, help="experiment YAML (configs/)")
    p.add_argument("--data", type=Path, default=None, help="dataset root (default: data.root of the config)")
    p.add_argument(
        "--run",
        "--run-dir",
        dest="run",
        type=Path,
        default=None,
        help="run folder (default: run_dir/name of the config); --run-dir is the old spelling",
    )
    p.add_argument("--cache-dir", type=Path, default=None, help=cache_help)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume",
        action="store_true",
        help="continue the run from its last checkpoint; changes to settings that do not break it "
        "(epochs, max_steps, lr, patience, evaluation) are applied and recorded, others refused",
    )
    mode.add_argument(
        "--overwrite",
        action="store_true",
        help="start again in a run folder that holds a run: the old run is moved aside to "
        "RUN.old-TIMESTAMP, never deleted",
    )
    p.add_argument("overrides", nargs="*", help=overrides_help)
    p.set_defaults(func=_cmd_train)

    def run_options(p: argparse.ArgumentParser, split_help: str) -> None:
        """--run, --data, --split, --cache-dir: a trained run applied to a split."""
        # --run-dir too: train's name for it, and the one launchers that own a --run-path option
        # (torchrun) pass through untouched.
        p.add_argument(
            "--run",
            "--run-dir",
            dest="run",
            required=True,
            type=Path,
            help="run folder written by train (--run-dir: old spelling)",
        )
        p.add_argument("--data", type=Path, default=None, help="dataset root (default: the run's)")
        p.add_argument("--split", default="dev", help=split_help)
        p.add_argument("--cache-dir", type=Path, default=None, help="feature store root (default: the run's)")

    def cold_start_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--cold-start",
            default="popularity",
            choices=["model", "popularity"],
            help="users without clicks: the most clicked fresh news, or the model's empty-history vector "
            "(default: popularity, which ranked better in `replay` on synthetic small and the realistic preset)",
        )

    p = command(
        "evaluate",
        "score a split with a trained run, block by block (memory flat in the number of impressions); "
        "several processes: torchrun --nproc_per_node N -m mmnewsrec evaluate --run-dir RUN ... (CPU), "
        "accelerate launch --multi_gpu --num_processes N -m mmnewsrec evaluate ... (GPUs)",
    )
    run_options(p, "split folder to score: dev (labelled) or test (default: dev)")
    p.add_argument(
        "--zip", action="store_true", help="also write prediction.zip, the MIND leaderboard's upload (prediction.txt)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="prediction file to write (default: RUN/SPLIT/prediction.txt)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out even if another run wrote it (refused by default)",
    )
    p.add_argument(
        "--block-impressions",
        type=_positive_int,
        default=20_000,
        help="impressions read and scored at a time, rounded down to whole scoring batches (default: 20000)",
    )
    p.set_defaults(func=_cmd_evaluate)

    p = command("demo", "the built-in default job on synthetic data")
    p.add_argument("--workdir", type=Path, default=Path("runs/demo"), help="where data, runs and tables go")
    p.add_argument("--scale", default="tiny", choices=sorted(SCALES), help="synthetic dataset size (default: tiny)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="dataset and training seed (default: 0)")
    p.add_argument("--no-train", action="store_true", help="baselines only: skip the two models")
    p.set_defaults(func=_cmd_demo)

    p = command("report", "compare runs: tables with bootstrap intervals, paired tests, breakdowns, figures")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders written by train")
    p.add_argument("--data", type=Path, default=None, help="dataset root (default: the first run's)")
    p.add_argument("--split", default="dev", help="labelled split to compare on (default: dev)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: report/ beside the first run)")
    p.add_argument("--baseline", default=None, help="run name the others are compared with (default: the first)")
    p.add_argument(
        "--samples", type=_positive_int, default=1000, help="bootstrap resamples over impressions (default: 1000)"
    )
    p.add_argument("--no-vectors", action="store_true", help="skip encoding news for the vector diversity")
    p.set_defaults(func=_cmd_report)

    p = command("serve", "serve a trained run over HTTP: recommendations that follow each click (needs [serve])")
    p.add_argument("--run", "--run-dir", dest="run", required=True, type=Path, help="run folder written by train")
    p.add_argument(
        "--news",
        action="append",
        default=[],
        type=Path,
        help="news.tsv, a split folder or a dataset root whose news to preload (repeatable)",
    )
    p.add_argument(
        "--state",
        default=None,
        help="user-state store: sqlite:///path/state.db or redis://host:port/db (default: RUN/serve/state.db)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--token-file", type=Path, default=None, help="file holding the write token (default: $MMNEWSREC_TOKEN)"
    )
    p.add_argument("--demo", action="store_true", help="no write token, 127.0.0.1 only (for the local web page)")
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="server processes behind the port, each a replica over the shared state store (default: 1)",
    )
    p.add_argument("--cache-dir", type=Path, default=None, help="feature store root (default: the run's)")
    cold_start_option(p)
    p.add_argument(
        "--allow-volatile-store",
        action="store_true",
        help="serve even when the state store could lose acknowledged clicks in a crash "
        "(Redis without --appendonly yes); by default that is refused",
    )
    p.set_defaults(func=_cmd_serve)

    p = command("replay", "feed a split through the live service in time order: static vs online histories")
    run_options(p, "labelled split folder to replay (default: dev)")
    cold_start_option(p)
    p.set_defaults(func=_cmd_replay)
    return parser
