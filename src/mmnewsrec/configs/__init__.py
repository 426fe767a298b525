"""Experiment configs shipped with the package (``configs/demo_*.yaml`` in the repository link here)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def packaged_config(name: str) -> Path:
    """The path of a shipped config, e.g. ``packaged_config("demo_text_minilm")``."""
    return Path(str(files(__name__) / f"{name}.yaml"))
