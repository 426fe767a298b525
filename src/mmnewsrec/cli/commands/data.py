"""The commands that read or write datasets and prediction files: synth, inspect, score, baseline,
download, and config (the config reference)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmnewsrec.cli.options import Options, non_negative_int, option, resolve_target, share
from mmnewsrec.errors import MmnewsrecError


def _formats() -> tuple[str, ...]:
    from mmnewsrec.data.synthetic import FORMATS

    return FORMATS


def _scales() -> list[str]:
    from mmnewsrec.data.synthetic import SCALES

    return sorted(SCALES)


def _presets() -> list[str]:
    from mmnewsrec.data.synthetic import PRESETS

    return sorted(PRESETS)


def _preset_help() -> str:
    from mmnewsrec.data.synthetic import PRESETS

    return "; ".join(f"{name}: {preset.description}" for name, preset in PRESETS.items())


def _baselines() -> list[str]:
    from mmnewsrec.evaluation.baselines import BASELINES

    return BASELINES.names()


def _datasets() -> list[str]:
    from mmnewsrec.data.download import DATASETS_ALL

    return sorted(DATASETS_ALL)


@dataclass
class SynthOptions(Options):
    """write a synthetic dataset: MIND's files (train/ dev/ test/ images/) or EB-NeRD's

    Attributes:
        out: dataset root to create.
        format: mind (news.tsv, behaviors.tsv, images/) or ebnerd (articles.parquet, train/
            validation/ test/ behaviors.parquet and history.parquet, artifacts/ with text and
            image embeddings): the same world, impressions and clicks (default: mind).
        scale: dataset size (default: tiny).
        seed: random seed, >= 0 (default: 0).
        preset: kind of world:
        interest_drift: share of users (0-1) whose interests move after the train period (default: the preset's, 0).
        images: skip writing images/.
        overwrite: replace an existing non-empty --out.
    """

    target = "mmnewsrec.data.synthetic:generate"
    out: Path = option()
    format: str = option("mind", choices=_formats)
    scale: str = option("tiny", choices=_scales)
    seed: int = option(0, type=non_negative_int)
    preset: str = option("default", choices=_presets, help=_preset_help)
    interest_drift: float | None = option(None, type=share, metavar="SHARE")
    images: bool = option(True, negate="--no-images")
    overwrite: bool = option(False)
    progress: bool = False


def _synth(options: SynthOptions) -> int:
    out = options.out
    if not options.overwrite and (out.is_file() or (out.is_dir() and any(out.iterdir()))):
        raise MmnewsrecError(f"--out {out} already exists and is not empty: choose another folder, or --overwrite")
    summary = resolve_target(SynthOptions)(**options.kwargs())
    fields = ("scale", "preset", "seed", "impressions", "click_rate")
    print(json.dumps({"out": str(out), **{name: getattr(summary, name) for name in fields}}))
    return 0


@dataclass
class InspectOptions(Options):
    """validate a dataset root or split folder and print statistics

    Attributes:
        path: dataset root (train/ dev/ test/) or one split folder.
        on_unknown_news: behaviour references to news absent from news.tsv (always counted; default: keep).
        images: image folder (default: images/ in the root).
        check_images: skip decoding every image file.
    """

    target = "mmnewsrec.workflows.inspect:run_inspect"
    path: Path = option(positional=True)
    on_unknown_news: str = option("keep", choices=lambda: ["keep", "drop", "error"])
    images: Path | None = option(None)
    check_images: bool = option(True, negate="--no-check-images")
    progress: bool = False


def _inspect(options: InspectOptions) -> int:
    stats = resolve_target(InspectOptions)(**options.kwargs())
    print("\n".join(json.dumps(split) for split in stats))  # all splits valid, or nothing but the error
    return 0


@dataclass
class ScoreOptions(Options):
    """score a MIND prediction file against a truth file (the official scorer)

    Attributes:
        truth_path: truth file: '<impression id> [0,1,...]' per line.
        prediction_path: prediction file: '<impression id> [rank,...]' per line.
    """

    target = "mmnewsrec.evaluation.submission:score_files"
    truth_path: Path = option(flags=("--truth",))
    prediction_path: Path = option(flags=("--prediction",))


def _score(options: ScoreOptions) -> int:
    print(json.dumps(resolve_target(ScoreOptions)(**options.kwargs()).to_dict()))
    return 0


@dataclass
class BaselineOptions(Options):
    """score a split with a non-learned baseline

    Attributes:
        data_root: dataset root.
        method: the baseline.
        split: split folder to score (default: dev).
        seed: seed of the random baseline (default: 0).
        prediction_out: write a leaderboard prediction file (folders are created).
        truth_out: write the split's truth file (folders are created).
    """

    target = "mmnewsrec.workflows.baseline:run_baseline_split"
    data_root: Path = option(flags=("--data",))
    method: str = option(choices=_baselines)
    split: str = option("dev")
    seed: int = option(0, type=non_negative_int)
    prediction_out: Path | None = option(None)
    truth_out: Path | None = option(None)


def _baseline(options: BaselineOptions) -> int:
    print(json.dumps(resolve_target(BaselineOptions)(**options.kwargs())))
    return 0


@dataclass
class DownloadOptions(Options):
    """fetch and unpack the real MIND or EB-NeRD archives

    Attributes:
        dataset: which MIND or EB-NeRD release (ebnerd-artifacts: the embedding archives, unpacked
            into TO/artifacts/).
        to: dataset root to create.
        from_zips: an archive you already have (repeatable).
        mirrors: source to fetch from, hf://datasets/OWNER/NAME[@REVISION] or a base URL (repeatable;
            default for MIND: the official Hugging Face dataset yjw1029/MIND, then the older hosts;
            for EB-NeRD: its official bucket).
        sha256: ARCHIVE_NAME=HEX expected checksum (repeatable).
        timeout: network timeout in seconds (default: 20).
        force: unpack again over complete split folders.
    """

    target = "mmnewsrec.data.download:download"
    dataset: str = option(positional=True, choices=_datasets)
    to: Path = option()
    from_zips: list[Path] = option([], flags=("--from-zip",), action="append")
    mirrors: list[str] = option([], flags=("--mirror",), action="append")
    sha256: list[str] = option([], action="append")
    timeout: float = option(20.0)
    force: bool = option(False)
    progress: bool = True

    def kwargs(self) -> dict[str, Any]:
        sha256 = {}
        for item in self.sha256:
            name, sep, digest = item.partition("=")
            if not sep:
                raise MmnewsrecError(f"--sha256 {item!r}: expected ARCHIVE_NAME=HEX")
            sha256[name] = digest
        return {**super().kwargs(), "mirrors": self.mirrors or None, "sha256": sha256}


def _download(options: DownloadOptions) -> int:
    root = resolve_target(DownloadOptions)(**options.kwargs())
    print(json.dumps({"dataset": options.dataset, "root": str(root)}))
    return 0


@dataclass
class ConfigOptions(Options):
    """list the experiment config's keys with their types, defaults and help

    Attributes:
        prefix: only the keys that start with it (training, model.news[fusion], data.images.missing); default: all.
    """

    prefix: str = option("", positional=True, nargs="?")


def _config(options: ConfigOptions) -> int:
    import mmnewsrec.models.news_encoders  # noqa: F401  (registers every encoder type's config)
    from mmnewsrec.config.reference import config_keys, config_reference

    if options.prefix and not any(key.path.startswith(options.prefix) for key in config_keys()):
        sections = sorted({key.path.split(".")[0] for key in config_keys()})
        raise MmnewsrecError(f"no config key starts with {options.prefix!r}; the sections are {sections}")
    print(config_reference(options.prefix), end="")
    return 0
