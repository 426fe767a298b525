"""Fetching the real MIND archives: resumable downloads, integrity checks, unpacking to our layout.

MIND's licence is research-only, so the data is never shipped with this project: users fetch it
themselves with ``mmnewsrec download mind-small --to DIR`` (or hand in archives they already have
with ``--from-zip``). The result is ``DIR/train``, ``DIR/dev`` (and ``DIR/test`` for MIND-large),
each with ``news.tsv`` and ``behaviors.tsv``: the layout :func:`mmnewsrec.data.mind.load_mind` reads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_directory
from mmnewsrec.data.schema import BEHAVIORS_FILE, NEWS_FILE
from mmnewsrec.errors import MmnewsrecError

logger = logging.getLogger(__name__)

OFFICIAL_PAGE = "https://msnews.github.io"

#: Hosts of the archives, tried in order (the official blob has been unreliable at times).
MIRRORS = (
    "https://recodatasets.z20.web.core.windows.net/newsrec",
    "https://mind201910small.blob.core.windows.net/release",
    "https://huggingface.co/datasets/Recommenders/MIND/resolve/main",
)

CHECKSUM_FILE = "checksums.sha256"


@dataclass(frozen=True)
class Archive:
    filename: str
    split: str


DATASETS: dict[str, tuple[Archive, ...]] = {
    "mind-demo": (Archive("MINDdemo_train.zip", "train"), Archive("MINDdemo_dev.zip", "dev")),
    "mind-small": (Archive("MINDsmall_train.zip", "train"), Archive("MINDsmall_dev.zip", "dev")),
    "mind-large": (
        Archive("MINDlarge_train.zip", "train"),
        Archive("MINDlarge_dev.zip", "dev"),
        Archive("MINDlarge_test.zip", "test"),
    ),
}


class DownloadError(MmnewsrecError):
    """A download, checksum or unpacking failure, with what the user can do about it."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, dest: str | Path, timeout: float = 20.0, progress: bool = True) -> Path:
    """Downloads ``url`` to ``dest``, resuming a previous partial download (``dest.part``).

    The bytes go to ``dest.part``; a retry asks the server for the rest with an HTTP Range request
    (a server that ignores it sends everything again, which is handled). Only a complete download
    is renamed to ``dest``.

    Raises:
        urllib.error.URLError / OSError: the server cannot be reached or the transfer broke off
            (the partial file stays, for the next try to resume).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "mmnewsrec"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the partial file is complete
            os.replace(part, dest)
            return dest
        raise
    with response:
        resumed = have and response.status == 206
        if have and not resumed:
            logger.info("server ignored the resume request for %s: starting over", url)
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with (
            open(part, "ab" if resumed else "wb") as handle,
            tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar,
        ):
            while block := response.read(1 << 20):
                handle.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size != total:
        raise OSError(f"{url}: transfer ended at {part.stat().st_size} of {total} bytes")
    os.replace(part, dest)
    return dest


def verify_archive(path: Path, expected_sha256: str | None = None) -> str:
    """Checks a zip's CRCs (and its SHA-256 when one is expected); returns the SHA-256.

    Raises:
        DownloadError: the archive is corrupt or its checksum differs.
    """
    digest = sha256_of(path)
    if expected_sha256 and digest.lower() != expected_sha256.lower():
        raise DownloadError(f"{path}: SHA-256 {digest} differs from the expected {expected_sha256}")
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{path}: not a valid zip archive ({exc})") from None
    if broken is not None:
        raise DownloadError(f"{path}: member {broken!r} fails its CRC check")
    return digest


def unpack_split(archive_path: Path, split_dir: Path) -> None:
    """Extracts a MIND archive into ``split_dir`` (news.tsv, behaviors.tsv and the rest), atomically.

    Archives hold the files either at their top level or inside one folder; both are accepted.
    """
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
        news = [n for n in names if n.rsplit("/", 1)[-1] == NEWS_FILE]
        if len(news) != 1 or not any(n.rsplit("/", 1)[-1] == BEHAVIORS_FILE for n in names):
            raise DownloadError(f"{archive_path}: expected one {NEWS_FILE} and one {BEHAVIORS_FILE} inside")
        prefix = news[0][: -len(NEWS_FILE)]
        with atomic_directory(split_dir) as tmp:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.startswith(prefix):
                    continue
                relative = Path(info.filename[len(prefix) :])
                if relative.is_absolute() or ".." in relative.parts:
                    raise DownloadError(f"{archive_path}: unsafe member path {info.filename!r}")
                target = tmp / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)


def _split_of(path: Path, archives: Sequence[Archive]) -> Archive:
    name = path.name.lower()
    for archive in archives:
        if name == archive.filename.lower():
            return archive
    matches = [a for a in archives if f"_{a.split}" in name]
    if len(matches) == 1:
        return matches[0]
    raise DownloadError(
        f"{path}: cannot tell which split this archive holds; name it like one of {[a.filename for a in archives]}"
    )


def _record_checksum(root: Path, filename: str, digest: str) -> None:
    path = root / CHECKSUM_FILE
    lines = {}
    if path.exists():
        for line in path.read_text().splitlines():
            value, _, name = line.partition("  ")
            lines[name] = value
    lines[filename] = digest
    path.write_text("".join(f"{v}  {k}\n" for k, v in sorted(lines.items())))


def download_mind(
    dataset: str,
    to: str | Path,
    from_zips: Iterable[str | Path] = (),
    mirrors: Sequence[str] = MIRRORS,
    sha256: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Fetches (or takes from ``from_zips``) the archives of ``dataset`` and unpacks them into ``to``.

    Args:
        dataset: ``mind-demo``, ``mind-small`` or ``mind-large``.
        to: the dataset root to create (``to/train``, ``to/dev``[, ``to/test``]).
        from_zips: archives the user already has; the splits they cover are not downloaded.
        mirrors: base URLs tried in order for each archive.
        sha256: optional expected SHA-256 per archive file name; the computed ones are always
            written to ``to/checksums.sha256``.
        force: unpack again even when a split folder is already complete.

    Raises:
        DownloadError: no mirror could be reached (with what to download and where to put it), a
            corrupt archive, or a checksum mismatch.
    """
    if dataset not in DATASETS:
        raise DownloadError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
    archives = DATASETS[dataset]
    root = Path(to)
    root.mkdir(parents=True, exist_ok=True)
    given = {_split_of(Path(p), archives).split: Path(p) for p in from_zips}
    for path in given.values():
        if not path.is_file():
            raise DownloadError(f"{path}: archive not found")
    sha256 = dict(sha256 or {})
    for archive in archives:
        split_dir = root / archive.split
        if not force and (split_dir / NEWS_FILE).is_file() and (split_dir / BEHAVIORS_FILE).is_file():
            logger.info("%s already unpacked in %s", archive.filename, split_dir)
            continue
        if archive.split in given:
            path = given[archive.split]
        else:
            path = _fetch(archive, root / ".downloads", mirrors, timeout, progress, dataset, root)
        try:
            digest = verify_archive(path, sha256.get(archive.filename))
        except DownloadError:
            if archive.split not in given:
                path.unlink(missing_ok=True)  # a corrupt download must not be resumed
            raise
        _record_checksum(root, archive.filename, digest)
        unpack_split(path, split_dir)
        logger.info("unpacked %s into %s", archive.filename, split_dir)
    return root


def _fetch(
    archive: Archive, cache: Path, mirrors: Sequence[str], timeout: float, progress: bool, dataset: str, root: Path
) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    dest = cache / archive.filename
    if dest.is_file():
        return dest
    failures = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{archive.filename}"
        try:
            logger.info("downloading %s", url)
            return download_file(url, dest, timeout=timeout, progress=progress)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"{url}: {reason}")
    names = " ".join(a.filename for a in DATASETS[dataset])
    raise DownloadError(
        f"could not download {archive.filename} from any mirror:\n  "
        + "\n  ".join(failures)
        + f"\nDownload {names} yourself (see {OFFICIAL_PAGE}), then run:\n"
        + f"  mmnewsrec download {dataset} --to {root} "
        + " ".join(f"--from-zip PATH/{a.filename}" for a in DATASETS[dataset])
    )
