"""``mmnewsrec`` command line: thin subcommands that parse arguments and call library functions.

Errors the user can fix (malformed data, bad arguments, unreachable downloads) are printed as one
``error: ...`` line on stderr with exit status 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mmnewsrec import __version__
from mmnewsrec.errors import MmnewsrecError

logger = logging.getLogger("mmnewsrec.cli")


def _cmd_synth(args: argparse.Namespace) -> int:
    from mmnewsrec.data.synthetic import generate_mind

    summary = generate_mind(
        args.out,
        scale=args.scale,
        seed=args.seed,
        images=not args.no_images,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    print(
        json.dumps(
            {
                "out": str(args.out),
                "scale": summary.scale,
                "seed": summary.seed,
                "impressions": summary.impressions,
                "click_rate": summary.click_rate,
            }
        )
    )
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from mmnewsrec.config import DataConfig, ImageConfig
    from mmnewsrec.data.mind import find_image_dir, is_split_dir, load_mind, read_split
    from mmnewsrec.data.stats import split_stats

    path = Path(args.path)
    if is_split_dir(path):
        image_dir = Path(args.images) if args.images else find_image_dir(path)
        splits = [read_split(path, on_unknown_news=args.on_unknown_news, image_dir=image_dir)]
    else:
        config = DataConfig(
            root=str(path), on_unknown_news=args.on_unknown_news, images=ImageConfig(directory=args.images)
        )
        splits = list(load_mind(path, config).splits.values())
    for split in splits:
        print(json.dumps(split_stats(split, check_images=args.check_images, progress=args.progress)))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from mmnewsrec.evaluation.submission import score_files

    print(json.dumps(score_files(args.truth, args.prediction).to_dict()))
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from mmnewsrec.data.mind import load_mind
    from mmnewsrec.workflows.baseline import run_baseline

    splits = tuple(dict.fromkeys(("train", args.split)))  # popularity counts train clicks
    dataset = load_mind(args.data, splits=tuple(s for s in splits if (Path(args.data) / s).is_dir()))
    metrics = run_baseline(
        dataset, args.split, args.method, seed=args.seed, prediction_out=args.prediction_out, truth_out=args.truth_out
    )
    if metrics is None:
        print(json.dumps({"split": args.split, "labelled": False, "prediction": str(args.prediction_out)}))
    else:
        print(json.dumps(metrics.to_dict()))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from mmnewsrec.data.download import MIRRORS, download_mind

    sha256 = {}
    for item in args.sha256:
        name, sep, digest = item.partition("=")
        if not sep:
            raise MmnewsrecError(f"--sha256 {item!r}: expected ARCHIVE_NAME=HEX")
        sha256[name] = digest
    root = download_mind(
        args.dataset,
        args.to,
        from_zips=args.from_zip,
        mirrors=args.mirror or MIRRORS,
        sha256=sha256,
        timeout=args.timeout,
        force=args.force,
        progress=args.progress,
    )
    print(json.dumps({"dataset": args.dataset, "root": str(root)}))
    return 0


def _cmd_featurize(args: argparse.Namespace) -> int:
    from mmnewsrec.config import ExperimentConfig, load_yaml
    from mmnewsrec.workflows.featurize import run_featurize

    config = load_yaml(ExperimentConfig, args.config, args.overrides)
    for record in run_featurize(config, data_root=args.data, cache_dir=args.cache_dir, progress=args.progress):
        print(json.dumps(record))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from mmnewsrec.config import ExperimentConfig, load_yaml
    from mmnewsrec.workflows.train import run_train

    config = load_yaml(ExperimentConfig, args.config, args.overrides)
    record = run_train(
        config,
        data_root=args.data,
        run_dir=args.run,
        cache_dir=args.cache_dir,
        resume=args.resume,
        progress=args.progress,
    )
    print(json.dumps(record))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from mmnewsrec.workflows.train import run_evaluate

    print(json.dumps(run_evaluate(args.run, args.data, args.split, args.cache_dir, args.progress)))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from mmnewsrec.workflows.demo import run_demo

    result = run_demo(
        args.workdir, scale=args.scale, seed=args.seed, progress=args.progress, train_models=not args.no_train
    )
    print(result["table"])
    print(f"\n(results in {Path(args.workdir) / 'results.json'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mmnewsrec.data.download import DATASETS
    from mmnewsrec.data.synthetic import SCALES
    from mmnewsrec.evaluation.baselines import BASELINES

    parser = argparse.ArgumentParser(prog="mmnewsrec", description="Multimodal neural news recommendation on MIND.")
    parser.add_argument("--version", action="version", version=f"mmnewsrec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write a synthetic MIND-format dataset")
    p.add_argument("--out", required=True, type=Path, help="dataset root to create")
    p.add_argument("--scale", default="tiny", choices=sorted(SCALES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-images", action="store_true", help="skip writing images/")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("inspect", help="validate a dataset root or split folder and print statistics")
    p.add_argument("path", help="dataset root (train/ dev/ test/) or one split folder")
    p.add_argument(
        "--on-unknown-news",
        default="keep",
        choices=["keep", "drop", "error"],
        help="behaviour references to news absent from news.tsv (always counted)",
    )
    p.add_argument("--images", default=None, help="image folder (default: images/ in the root)")
    p.add_argument(
        "--no-check-images", dest="check_images", action="store_false", help="skip decoding every image file"
    )
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("score", help="score a MIND prediction file against a truth file")
    p.add_argument("--truth", required=True, type=Path)
    p.add_argument("--prediction", required=True, type=Path)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("baseline", help="score a split with a non-learned baseline")
    p.add_argument("--data", required=True, type=Path, help="dataset root")
    p.add_argument("--split", default="dev")
    p.add_argument("--method", required=True, choices=BASELINES.names())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prediction-out", type=Path, default=None, help="write a leaderboard prediction file")
    p.add_argument("--truth-out", type=Path, default=None, help="write the split's truth file")
    p.set_defaults(func=_cmd_baseline)

    p = sub.add_parser("download", help="fetch and unpack the real MIND archives")
    p.add_argument("dataset", choices=sorted(DATASETS))
    p.add_argument("--to", required=True, type=Path, help="dataset root to create")
    p.add_argument("--from-zip", action="append", default=[], type=Path, help="an archive you already have")
    p.add_argument("--mirror", action="append", default=[], help="base URL to fetch from (repeatable)")
    p.add_argument("--sha256", action="append", default=[], help="ARCHIVE_NAME=HEX expected checksum")
    p.add_argument("--timeout", type=float, default=20.0, help="network timeout in seconds")
    p.add_argument("--force", action="store_true", help="unpack again over complete split folders")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("featurize", help="build or reuse the cached features an experiment config names")
    p.add_argument("--config", required=True, type=Path, help="experiment YAML (configs/)")
    p.add_argument("--data", type=Path, default=None, help="dataset root (default: data.root of the config)")
    p.add_argument("--cache-dir", type=Path, default=None, help="feature store root (default: features.cache_dir)")
    p.add_argument("overrides", nargs="*", help="dotted.key=value config overrides")
    p.set_defaults(func=_cmd_featurize)

    p = sub.add_parser("train", help="train an experiment (or score its baseline) into a run folder")
    p.add_argument("--config", required=True, type=Path, help="experiment YAML (configs/)")
    p.add_argument("--data", type=Path, default=None, help="dataset root (default: data.root of the config)")
    p.add_argument(
        "--run-dir", dest="run", type=Path, default=None, help="run folder (default: run_dir/name of the config)"
    )
    p.add_argument("--cache-dir", type=Path, default=None, help="feature store root")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("overrides", nargs="*", help="dotted.key=value config overrides")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score a split with a trained run (fast path)")
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--data", type=Path, default=None, help="dataset root (default: the run's)")
    p.add_argument("--split", default="dev")
    p.add_argument("--cache-dir", type=Path, default=None, help="feature store root")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("demo", help="the built-in default job on synthetic data")
    p.add_argument("--workdir", type=Path, default=Path("runs/demo"))
    p.add_argument("--scale", default="tiny", choices=sorted(SCALES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-train", action="store_true", help="baselines only: skip the two models")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args.progress = not args.quiet and sys.stderr.isatty()
    try:
        return args.func(args)
    except MmnewsrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
