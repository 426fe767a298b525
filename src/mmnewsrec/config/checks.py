"""Small checks the config dataclasses share: choices, positive integers, dropout probabilities."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal, get_args, get_origin, get_type_hints

from mmnewsrec.errors import ConfigError


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} is not one of {list(choices)}")


def _check_positive(prefix: str, config: Any, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if value < 1:
            raise ConfigError(f"{prefix}.{name}: must be an integer >= 1, got {value}")


def _check_dropout(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ConfigError(f"{name}: a dropout probability must lie in [0, 1), got {value}")


def _divisor_near(number: int, wanted: int) -> int:
    """The divisor of ``number`` closest to ``wanted`` (for error messages that suggest a fix)."""
    return min((d for d in range(1, number + 1) if number % d == 0), key=lambda d: (abs(d - wanted), d))


def check_choices(config: Any, prefix: str) -> None:
    """Checks every field of dataclass ``config`` typed as a ``Literal`` (or an optional one)
    against its choices, naming the key as ``{prefix}.{field}``: one rule for every choice field,
    whether the config was loaded from YAML or built in Python.

    Raises:
        ConfigError: ``training.loss: 'hinge' is not one of ['listwise', 'pointwise_weighted_ce']``.
    """
    for name, choices in _choice_fields(type(config)):
        value = getattr(config, name)
        if value is not None or None not in choices:
            _check_choice(f"{prefix}.{name}", value, [c for c in choices if c is not None])


@functools.cache
def _choice_fields(cls: type) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    hints = get_type_hints(cls)
    found = []
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        if get_origin(hint) in (typing.Union, types.UnionType):
            literals = [arg for arg in get_args(hint) if get_origin(arg) is Literal]
            if len(literals) == 1:
                extra = (None,) if type(None) in get_args(hint) else ()
                found.append((item.name, (*get_args(literals[0]), *extra)))
        elif get_origin(hint) is Literal:
            found.append((item.name, get_args(hint)))
    return tuple(found)
