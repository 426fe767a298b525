"""Strict loading: mappings and YAML files into config dataclasses (unknown keys refused, every
Literal checked, messages naming the full key), dotted overrides, and writing configs back."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from mmnewsrec.errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], values: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Builds dataclass ``cls`` from a plain mapping, recursing into nested dataclass fields.

    Raises:
        ConfigError: on an unknown key (listing the valid ones) or a value of the wrong type.
    """
    values = dict(values or {})
    variant = getattr(cls, "variant", None)  # a family of classes, one per ``type`` (news encoders)
    if variant is not None:
        cls = variant(values, prefix)
    hints = get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(known))
    if unknown:
        explain = getattr(cls, "unknown_key", None)
        if explain is not None:
            raise ConfigError(explain(unknown[0], values, prefix))
        raise ConfigError(
            f"{prefix + unknown[0]}: unknown key; valid keys under {prefix or 'the top level'!r} are {sorted(known)}"
        )
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value, prefix + name)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # e.g. a required field missing
        raise ConfigError(f"{prefix or cls.__name__}: {exc}") from None
    except ConfigError as exc:
        # A class that can sit at several places names itself by its alias (``backbone``); loaded
        # from a file, the message names the place instead (``model.news.vision``).
        alias, message = getattr(cls, "_alias", ""), str(exc)
        if alias and prefix and message.startswith(alias):
            raise ConfigError(prefix.rstrip(".") + message[len(alias) :]) from None
        raise


def _coerce(hint: Any, value: Any, name: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: expected a mapping of {hint.__name__} fields, got {value!r}")
        return from_dict(hint, value, prefix=name + ".")
    if origin in (typing.Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, name)
            except ConfigError as exc:
                errors.append((_overlap(arg, value), str(exc)))
        # Several classes fit the place (a fusion branch: a backbone or a feature): the message is
        # the one of the class whose keys the value shares most.
        best = max(errors, key=lambda error: error[0], default=(0, f"{name}: bad value {value!r}"))
        raise ConfigError(best[1])
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{name}: {value!r} is not one of {list(get_args(hint))}")
        return value
    if origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        (item,) = get_args(hint)[:1] or (Any,)
        items = [_coerce(item, v, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        return _parse_float(value, name)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{name}: expected {hint.__name__}, got {value!r}")
    return value


def _overlap(hint: Any, value: Any) -> int:
    """How many of a mapping's keys are fields of dataclass ``hint`` (0 for anything else)."""
    if not (dataclasses.is_dataclass(hint) and isinstance(value, Mapping)):
        return 0
    return len(set(value) & {f.name for f in dataclasses.fields(hint)})


def _parse_float(text: str, name: str) -> float:
    """A float from any YAML or Python spelling: YAML 1.1 reads ``2e-5`` (no dot) and ``1_000.5`` as
    strings, and spells infinity ``.inf``."""
    spelled = text.strip().lower().replace("_", "")
    spelled = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}.get(spelled, spelled)
    try:
        number = float(spelled)
    except ValueError:
        raise ConfigError(f"{name}: expected a number (e.g. 1e-4 or 0.0001), got {text!r}") from None
    if number != number:
        raise ConfigError(f"{name}: expected a number, got {text!r} (not a number)")
    return number


def to_dict(config: Any) -> dict[str, Any]:
    """The plain-mapping form of a config dataclass (what :func:`from_dict` reads back)."""
    return dataclasses.asdict(config)


def apply_overrides(values: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Applies ``dotted.key=value`` overrides (values parsed as YAML scalars, lists or mappings) to
    a nested mapping; ``~dotted.key`` removes a key (e.g. the keys of another encoder type after
    ``model.news.type=...``)."""
    result = _deep_copy(values)
    for item in overrides:
        remove = item.startswith("~")
        key, sep, raw = item.removeprefix("~").partition("=")
        if remove == bool(sep) or not key:
            raise ConfigError(f"override {item!r}: expected dotted.key=value, or ~dotted.key to remove a key")
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
            node = child
        if remove:
            if parts[-1] not in node:
                raise ConfigError(f"override {item!r}: the config has no key {key!r} to remove")
            del node[parts[-1]]
            continue
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({problem}); quote it") from None
    return result


def _deep_copy(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in values.items()}


def load_yaml(cls: type[T], path: str | Path, overrides: Sequence[str] = ()) -> T:
    """Loads config dataclass ``cls`` from a YAML file, applying dotted overrides."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    try:
        return from_dict(cls, apply_overrides(raw, overrides))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def dump_yaml(config: Any, path: str | Path) -> None:
    """Writes a config dataclass as YAML (the resolved config kept next to every run's outputs)."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False), encoding="utf-8")
