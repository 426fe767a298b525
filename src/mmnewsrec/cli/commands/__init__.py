"""The subcommands: each one options object (its flags, spelled once) and a handler of a few lines
that calls the library function the options describe and prints its result.

An options class's docstring is the command's help: its first paragraph the description, its
``Attributes:`` the options' help. Heavy modules are imported inside the handlers.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from mmnewsrec.cli.commands.data import (
    BaselineOptions,
    ConfigOptions,
    DownloadOptions,
    InspectOptions,
    ScoreOptions,
    SynthOptions,
    _baseline,
    _config,
    _download,
    _inspect,
    _score,
    _synth,
)
from mmnewsrec.cli.commands.runs import (
    DemoOptions,
    EvaluateOptions,
    FeaturizeOptions,
    PushOptions,
    ReplayOptions,
    ReportOptions,
    ServeOptions,
    SimulateOptions,
    TrainOptions,
    _demo,
    _evaluate,
    _featurize,
    _push,
    _replay,
    _report,
    _serve,
    _simulate,
    _train,
)
from mmnewsrec.cli.options import Options

#: Every subcommand, in ``--help`` order: its options and its handler.
COMMANDS: dict[str, tuple[type[Options], Callable[[Any], int]]] = {
    "synth": (SynthOptions, _synth),
    "inspect": (InspectOptions, _inspect),
    "score": (ScoreOptions, _score),
    "baseline": (BaselineOptions, _baseline),
    "download": (DownloadOptions, _download),
    "config": (ConfigOptions, _config),
    "featurize": (FeaturizeOptions, _featurize),
    "train": (TrainOptions, _train),
    "evaluate": (EvaluateOptions, _evaluate),
    "demo": (DemoOptions, _demo),
    "report": (ReportOptions, _report),
    "push": (PushOptions, _push),
    "serve": (ServeOptions, _serve),
    "replay": (ReplayOptions, _replay),
    "simulate": (SimulateOptions, _simulate),
}


def handler(options: type[Options], run: Callable[[Any], int]) -> Callable[[argparse.Namespace], int]:
    """The parsed arguments -> the options object -> the command."""
    return lambda args: run(options.from_args(args))
