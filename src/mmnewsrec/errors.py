"""Exceptions shared by every layer.

Errors about user input carry the place they were found (file and 1-based line, or config field) in
their message so that the CLI can print them as they are, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class MmnewsrecError(Exception):
    """Base class of every error this library raises on purpose."""


class DataFormatError(MmnewsrecError, ValueError):
    """Malformed input data, located by file and 1-based line number.

    Attributes:
        path: the file the problem is in.
        line: 1-based line number, or None when the problem is about the whole file.
        reason: what is wrong, without the location.
    """

    def __init__(self, path: str | Path, line: int | None, reason: str):
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {reason}")


class ConfigError(MmnewsrecError, ValueError):
    """An invalid configuration value or key, named by its dotted field path."""
