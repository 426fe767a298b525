"""The subcommands' handlers: each reads its parsed arguments and calls one library function."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from mmnewsrec.errors import MmnewsrecError


def _cmd_synth(args: argparse.Namespace) -> int:
    from mmnewsrec.data.synthetic import generate_mind

    out = Path(args.out)
    if not args.overwrite and (out.is_file() or (out.is_dir() and any(out.iterdir()))):
        raise MmnewsrecError(f"--out {out} already exists and is not empty: choose another folder, or --overwrite")
    summary = generate_mind(
        args.out,
        scale=args.scale,
        seed=args.seed,
        images=not args.no_images,
        preset=args.preset,
        overwrite=args.overwrite,
        progress=args.progress,
        interest_drift=args.interest_drift,
    )
    print(
        json.dumps(
            {
                "out": str(args.out),
                "scale": summary.scale,
                "preset": summary.preset,
                "seed": summary.seed,
                "impressions": summary.impressions,
                "click_rate": summary.click_rate,
            }
        )
    )
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    import pyarrow as pa

    from mmnewsrec.config import DataConfig, ImageConfig
    from mmnewsrec.data.mind import (
        check_news_agree,
        dataset_image_dir,
        find_image_dir,
        is_split_dir,
        load_mind,
        read_split,
    )
    from mmnewsrec.data.schema import SPLITS
    from mmnewsrec.data.stats import split_stats

    path = Path(args.path)
    if is_split_dir(path):
        image_dir = Path(args.images) if args.images else find_image_dir(path)
        split = read_split(path, on_unknown_news=args.on_unknown_news, image_dir=image_dir)
        print(json.dumps(split_stats(split, check_images=args.check_images, progress=args.progress)))
        return 0
    # A dataset root: one split in memory at a time (MIND-large's test split alone is 2.37M
    # impressions); the news of each are kept to check that splits agree on shared news.
    config = DataConfig(root=str(path), on_unknown_news=args.on_unknown_news, images=ImageConfig(directory=args.images))
    names = [name for name in SPLITS if (path / name).is_dir()]
    if not names:
        load_mind(path, config)  # names what is missing, as train and evaluate would
    image_dir = dataset_image_dir(path, config)
    seen, lines = [], []
    for name in names:
        split = read_split(path / name, name, config.on_unknown_news, image_dir)
        lines.append(json.dumps(split_stats(split, check_images=args.check_images, progress=args.progress)))
        seen.append(replace(split, behaviors=split.behaviors.slice(0, 0)))
        del split
        pa.default_memory_pool().release_unused()  # hand the split's buffers back before the next
        check_news_agree(seen, config.on_conflicting_news)
    print("\n".join(lines))  # all splits valid, or nothing but the error
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    import mmnewsrec.models.news_encoders  # noqa: F401  (registers every encoder type's config)
    from mmnewsrec.config.reference import config_keys, config_reference

    if args.prefix and not any(key.path.startswith(args.prefix) for key in config_keys()):
        sections = sorted({key.path.split(".")[0] for key in config_keys()})
        raise MmnewsrecError(f"no config key starts with {args.prefix!r}; the sections are {sections}")
    print(config_reference(args.prefix), end="")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from mmnewsrec.evaluation.submission import score_files

    print(json.dumps(score_files(args.truth, args.prediction).to_dict()))
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from mmnewsrec.data.mind import load_mind
    from mmnewsrec.evaluation.baselines import run_baseline

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
    records = run_featurize(config, data_root=args.data, cache_dir=args.cache_dir, progress=args.progress)
    for record in records or []:  # printed by the main process of a multi-process launch
        print(json.dumps(record))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from mmnewsrec.models.build import load_experiment
    from mmnewsrec.workflows.train import run_train

    config = load_experiment(args.config, args.overrides)  # checked whole before any data is read
    record = run_train(
        config,
        data_root=args.data,
        run_dir=args.run,
        cache_dir=args.cache_dir,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    print(json.dumps(record))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from mmnewsrec.workflows.evaluate import run_evaluate

    record = run_evaluate(
        args.run,
        args.data,
        args.split,
        args.cache_dir,
        args.progress,
        args.zip,
        args.out,
        args.overwrite,
        args.block_impressions,
    )
    if record is not None:  # one line from the main process of a multi-process launch
        print(json.dumps(record))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from mmnewsrec.workflows.demo import run_demo

    result = run_demo(
        args.workdir, scale=args.scale, seed=args.seed, progress=args.progress, train_models=not args.no_train
    )
    print(result["table"])
    print(f"\n(results in {Path(args.workdir) / 'results.json'})")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from mmnewsrec.workflows.serve import serve

    serve(
        args.run,
        news=args.news,
        state=args.state,
        host=args.host,
        port=args.port,
        token_file=args.token_file,
        demo=args.demo,
        cache_dir=args.cache_dir,
        cold_start=args.cold_start,
        workers=args.workers,
        progress=args.progress,
        allow_volatile_store=args.allow_volatile_store,
    )
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from mmnewsrec.workflows.replay import run_replay

    result = run_replay(
        args.run, args.data, args.split, cache_dir=args.cache_dir, cold_start=args.cold_start, progress=args.progress
    )
    print(result["table"])
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mmnewsrec.workflows.report import run_report

    result = run_report(
        args.runs,
        data_root=args.data,
        split=args.split,
        out=args.out,
        baseline=args.baseline,
        samples=args.samples,
        vectors=not args.no_vectors,
        progress=args.progress,
    )
    print(result["markdown"])
    print(f"\n(report in {Path(result['out']) / 'report.md'} and report.html)")
    return 0
