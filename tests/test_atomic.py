"""Atomic writes leave ordinary files and folders: the permissions the umask gives, not private ones."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mmnewsrec.atomic import atomic_directory, atomic_write_text


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_and_folders_get_the_umask_permissions(tmp_path: Path, umask: int) -> None:
    before = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "report.md", "# report\n")
        with atomic_directory(tmp_path / "run") as folder:
            (folder / "config.yaml").write_text("name: x\n")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o777 & ~umask
