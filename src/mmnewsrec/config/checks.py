"""Small checks the config dataclasses share: choices, positive integers, dropout probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
