"""The command line's parser, built from each command's options object (:mod:`mmnewsrec.cli.commands`)."""

from __future__ import annotations

import argparse
import inspect
import sys
import typing

from mmnewsrec import __version__
from mmnewsrec.cli.commands import COMMANDS, handler
from mmnewsrec.cli.options import add_options

CONFIG_EPILOG = (
    "Config keys, their defaults and help: 'mmnewsrec config' (all), 'mmnewsrec config training' "
    "(one section), or docs/configuration.md."
)


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
    common = _logging_options()
    parser = _Parser(
        prog="mmnewsrec",
        description="Multimodal neural news recommendation on MIND. 'mmnewsrec COMMAND --help' explains a command.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"mmnewsrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (options, run) in COMMANDS.items():
        description = inspect.getdoc(options).split("\n\n")[0].replace("\n", " ")
        epilog = CONFIG_EPILOG if name in ("train", "featurize") else None
        p = sub.add_parser(name, help=description, description=description, epilog=epilog, parents=[common])
        add_options(p, options)
        p.set_defaults(func=handler(options, run))
    return parser
