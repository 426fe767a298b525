"""The config reference: every key of an experiment config with its default and its help, read
from the ``Attributes:`` section of the class that holds it (the help lives next to the field).

:func:`config_reference` renders it in Markdown (``docs/configuration.md``, ``mmnewsrec config``);
:func:`field_help` is what both read.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, get_args, get_origin, get_type_hints

from mmnewsrec.config.experiment import ExperimentConfig
from mmnewsrec.config.news import NEWS_CONFIGS, NewsEncoderConfig

_ENTRY = re.compile(r"^(\w+(?:\s*/\s*\w+)*)\s*(?:\([^)]*\))?:\s*(.*)$")


def field_help(cls: type) -> dict[str, str]:
    """Field name -> its help, from the ``Attributes:`` sections of ``cls`` and its bases (the
    nearest class's wins). Continuation lines are joined with single spaces."""
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        helps.update(_attributes(inspect.getdoc(klass) or "") if klass.__doc__ else {})
    return helps


def _attributes(doc: str) -> dict[str, str]:
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    helps: dict[str, str] = {}
    names: list[str] = []
    indent = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:  # the next section
            break
        indent = depth if indent is None else indent
        entry = _ENTRY.match(line.strip()) if depth == indent else None
        if entry:
            names = [name.strip() for name in entry.group(1).split("/")]
            for name in names:
                helps[name] = entry.group(2).strip()
        elif names:
            for name in names:
                helps[name] = f"{helps[name]} {line.strip()}".strip()
    return helps


@dataclasses.dataclass(frozen=True)
class Key:
    """One config key: its dotted path, its type, its default and its help."""

    path: str
    kind: str
    default: str
    help: str


def config_keys(cls: type = ExperimentConfig, prefix: str = "", packaged: bool = False) -> Iterator[Key]:
    """Every key under dataclass ``cls`` (sections flattened, dotted), in declaration order; a
    ``model.news`` family yields each registered type's keys, under ``model.news[type]`` (with
    ``packaged``, only the types this package defines, not those a program registered)."""
    hints, helps = get_type_hints(cls), field_help(cls)
    for item in dataclasses.fields(cls):
        if not item.init or item.name.startswith("_"):
            continue
        path, hint = prefix + item.name, hints[item.name]
        if hint is NewsEncoderConfig:
            for name, config in sorted(NEWS_CONFIGS.items()):
                if not packaged or config.__module__.startswith("mmnewsrec."):
                    yield from config_keys(config, f"{path}[{name}].", packaged)
            continue
        nested = _section(hint)
        if nested is not None:
            yield Key(path, _kind(hint), _default(item), helps.get(item.name, ""))
            yield from config_keys(nested, f"{path}{'[]' if _is_list(hint) else ''}.", packaged)
            continue
        yield Key(path, _kind(hint), _default(item), helps.get(item.name, ""))


def _section(hint: Any) -> type | None:
    """The dataclass a field holds (itself, optional, or a list of them), if it holds exactly one."""
    if dataclasses.is_dataclass(hint):
        return hint
    args = [arg for arg in get_args(hint) if arg not in (type(None), Ellipsis)]
    classes = [arg for arg in args if dataclasses.is_dataclass(arg)]
    return classes[0] if len(classes) == 1 and len(args) == 1 else None


def _is_list(hint: Any) -> bool:
    return get_origin(hint) in (list, tuple)


def _kind(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return " | ".join(repr(value) for value in get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_kind(arg) for arg in get_args(hint))
    if origin in (list, tuple):
        args = [arg for arg in get_args(hint) if arg is not Ellipsis]
        return f"list of {_kind(args[0])}" if args else "list"
    if hint is type(None):
        return "null"
    if dataclasses.is_dataclass(hint):
        return "mapping"
    return getattr(hint, "__name__", str(hint))


def _default(item: dataclasses.Field) -> str:
    if item.default is not dataclasses.MISSING:
        value = item.default
    elif item.default_factory is not dataclasses.MISSING:
        value = item.default_factory()
        if dataclasses.is_dataclass(value):
            return "(section)"
    else:
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def config_reference(prefix: str = "", packaged: bool = False) -> str:
    """The Markdown reference of every experiment-config key under ``prefix`` (all by default;
    ``packaged``: only the news encoder types this package defines)."""
    keys = [key for key in config_keys(packaged=packaged) if key.path.startswith(prefix)]
    lines = [
        "# Configuration reference",
        "",
        "Every key of an experiment config (`configs/*.yaml`), its type, its default and what it does.",
        "`model.news[TYPE].key` is `model.news.key` in a section of `type: TYPE`; `[]` marks a list of",
        "sections. Written by `mmnewsrec config` from the help beside each field of `mmnewsrec.config`.",
        "",
        "| key | type | default | help |",
        "| --- | --- | --- | --- |",
    ]
    for key in keys:
        help_text = key.help.replace("``", "`").replace("|", "\\|")
        lines.append(f"| `{key.path}` | {key.kind.replace('|', 'or')} | `{key.default}` | {help_text} |")
    return "\n".join(lines) + "\n"
