"""Writing a whole folder so that readers see the old one or the complete new one, never a half."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yields an empty temporary folder beside ``target``; on success it takes ``target``'s place.

    If the block raises (or the process is killed), the temporary folder is discarded and
    ``target`` is left as it was. An existing ``target`` is replaced only once the new folder is
    complete. The temporary name starts with a dot, so it never looks like a dataset, cache or run.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700); the result is an ordinary folder
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Writes ``path`` so that readers see the old file or the complete new one, never a half.

    Parent folders are created. The bytes go to a temporary file beside ``path`` that is flushed to
    disk and renamed over it; on any failure (a full disk, say) the temporary file is removed and
    ``path`` is left as it was.
    """
    with atomic_stream(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_stream(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file handle to write ``path`` piece by piece, with :func:`atomic_write_bytes`'s
    promise: the pieces go to a temporary file beside ``path``, flushed and renamed over it once the
    block ends; if the block raises (a full disk, an interrupt), ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private (0600); the result is an ordinary file
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def free_space(path: str | Path) -> tuple[int, str]:
    """Free bytes on the disk holding ``path`` (its nearest existing folder), and that as words:
    ``"12.3 MiB free on the disk holding /runs"``; (-1, ...) when the disk cannot be asked."""
    disk = Path(path)
    while not disk.exists() and disk != disk.parent:
        disk = disk.parent
    try:
        free = shutil.disk_usage(disk).free
    except OSError:
        return -1, f"the disk holding {disk}"
    return free, f"{free / 2**20:.1f} MiB free on the disk holding {disk}"
