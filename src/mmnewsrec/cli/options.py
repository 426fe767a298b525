"""One options object per command: each field is one command-line option, spelled once.

A command's dataclass names its options (a field ``data_root`` with ``flags=("--data",)`` is
``--data``; without flags, ``--data-root``), their types, defaults and help (the ``Attributes:``
section, as for configs). :func:`add_options` builds the command's argparse parser from it, and
:meth:`Options.from_args` reads the parsed arguments back into it. The fields are the keyword
arguments of the library function the command calls (``target``), with the same defaults, so that
the command line and the Python API cannot drift apart (a test checks every command).

This module imports nothing heavy: ``mmnewsrec --help`` does not load torch.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin, get_type_hints

from mmnewsrec.config.reference import field_help


def option(default: Any = dataclasses.MISSING, *, flags: tuple[str, ...] = (), **cli: Any) -> Any:
    """A field that is a command-line option.

    Args:
        flags: its spellings (the first is its name in ``--help``); default ``--field-name``.
        cli: more of its argparse settings: ``positional`` (True: an argument, not an option),
            ``negate`` (a True-by-default bool turned off by this flag, ``--no-images``),
            ``type`` (a parsing function), ``choices`` (a callable giving them at parser time),
            ``nargs``, ``action`` (``append``), ``group`` (options of one group exclude each other),
            ``metavar``, ``help`` (added to the field's help, e.g. the default's wording).
    """
    return dataclasses.field(
        default=default if not isinstance(default, list) else dataclasses.MISSING,
        default_factory=(lambda: list(default)) if isinstance(default, list) else dataclasses.MISSING,
        metadata={"flags": flags, **cli},
    )


@dataclasses.dataclass
class Options:
    """Base of every command's options; ``progress`` comes from ``-q`` and the terminal."""

    #: Dotted path of the library function the command calls with :meth:`kwargs`.
    target: ClassVar[str] = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        return cls(**values)

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :attr:`target`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def add_options(parser: argparse.ArgumentParser, options: type[Options]) -> None:
    """Adds one argparse argument per field of ``options`` (except ``progress``)."""
    hints, helps = get_type_hints(options), field_help(options)
    groups: dict[str, Any] = {}
    for item in dataclasses.fields(options):
        if item.name == "progress":
            continue
        meta = dict(item.metadata)
        hint = hints[item.name]
        extra = meta.pop("help", "")
        extra = extra() if callable(extra) else extra
        text = " ".join(part for part in (helps.get(item.name, ""), extra) if part)
        kwargs: dict[str, Any] = {"help": text.replace("%", "%%")}  # argparse formats help with %
        flags = meta.pop("flags", ()) or (f"--{item.name.replace('_', '-')}",)
        positional = meta.pop("positional", False)
        negate = meta.pop("negate", None)
        group = meta.pop("group", None)
        required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        if item.default is not dataclasses.MISSING:
            kwargs["default"] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            kwargs["default"] = item.default_factory()
        base = _base_type(hint)
        if base is bool:
            kwargs.pop("default")
            kwargs["action"] = "store_false" if negate else "store_true"
            flags = (negate,) if negate else flags
        else:
            choices = meta.pop("choices", None)
            if callable(choices):
                kwargs["choices"] = choices()
            elif get_origin(base) is Literal:
                kwargs["choices"] = list(get_args(base))
            kwargs["type"] = meta.pop("type", None) or (base if base in (int, float, Path) else None)
            if kwargs["type"] is None:
                kwargs.pop("type")
        if base is not bool and not positional and "metavar" not in meta and "choices" not in kwargs:
            meta["metavar"] = flags[0].lstrip("-").replace("-", "_").upper()  # --data DATA, not DATA_ROOT
        kwargs.update(meta)  # nargs, action, metavar
        target = parser
        if group is not None:
            if group not in groups:
                groups[group] = parser.add_mutually_exclusive_group()
            target = groups[group]
        if positional:
            target.add_argument(item.name, **kwargs)
        else:
            if required and base is not bool:
                kwargs["required"] = True
            target.add_argument(*flags, dest=item.name, **kwargs)


def port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return int(text)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {value:g}")
    return value


def _base_type(hint: Any) -> Any:
    """``X`` of ``X``, ``X | None`` and ``list[X]``."""
    origin = get_origin(hint)
    if origin is list:
        return get_args(hint)[0]
    args = [arg for arg in get_args(hint) if arg is not type(None)]
    if origin is not None and origin is not Literal and len(args) == 1:
        return args[0]
    return hint


def resolve_target(options: type[Options]) -> Callable[..., Any]:
    """The library function an options class describes (imported on demand)."""
    import importlib

    module, _, name = options.target.partition(":")
    return getattr(importlib.import_module(module), name)
