"""Fetching the real MIND archives: resumable downloads, integrity checks, unpacking to our layout.

MIND's licence is research-only, so the data is never shipped with this project: users fetch it
themselves with ``mmnewsrec download mind-small --to DIR`` (or hand in archives they already have
with ``--from-zip``). The result is ``DIR/train``, ``DIR/dev`` (and ``DIR/test`` for MIND-large),
each with ``news.tsv`` and ``behaviors.tsv``: the layout :func:`mmnewsrec.data.mind.load_mind` reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_directory, atomic_write_text
from mmnewsrec.data.schema import BEHAVIORS_FILE, NEWS_FILE
from mmnewsrec.errors import MmnewsrecError

logger = logging.getLogger(__name__)

OFFICIAL_PAGE = "https://msnews.github.io"

#: Where the official page links every archive today: a gated Hugging Face dataset (accept its terms
#: on https://huggingface.co/datasets/yjw1029/MIND once, then ``hf auth login`` or ``HF_TOKEN``).
OFFICIAL_HUB_REPO = "yjw1029/MIND"
#: The revision asked for; the commit it resolves to is recorded in ``DIR/download.json``.
OFFICIAL_HUB_REVISION = "main"

#: Sources of the archives, tried in order: ``hf://datasets/OWNER/NAME[@REVISION]`` goes through
#: ``huggingface_hub`` (resumable, cached in the Hugging Face cache, ``HF_TOKEN``, ``HF_ENDPOINT``
#: and ``HF_HUB_OFFLINE`` honoured); any other entry is a base URL fetched with resumable HTTP.
MIRRORS = (
    f"hf://datasets/{OFFICIAL_HUB_REPO}@{OFFICIAL_HUB_REVISION}",
    "https://recodatasets.z20.web.core.windows.net/newsrec",
    "https://mind201910small.blob.core.windows.net/release",
    "hf://datasets/Recommenders/MIND@main",
)

CHECKSUM_FILE = "checksums.sha256"
#: Where each archive came from: source, URL, resolved commit (Hub sources), bytes and SHA-256.
SOURCE_FILE = "download.json"
HUB_PREFIX = "hf://datasets/"


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


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face dataset repository that holds the archives at its top level."""

    repo_id: str
    revision: str = "main"

    @classmethod
    def parse(cls, spec: str) -> HubSource:
        """``hf://datasets/OWNER/NAME[@REVISION]`` -> the source; a clear error otherwise."""
        rest = spec[len(HUB_PREFIX) :]
        repo_id, _, revision = rest.partition("@")
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id) or (_ and not revision):
            raise DownloadError(
                f"mirror {spec!r}: expected hf://datasets/OWNER/NAME or hf://datasets/OWNER/NAME@REVISION"
            )
        return cls(repo_id, revision or "main")

    def __str__(self) -> str:
        return f"{HUB_PREFIX}{self.repo_id}@{self.revision}"


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


def _record_source(root: Path, filename: str, record: dict[str, object]) -> None:
    path = root / SOURCE_FILE
    records = json.loads(path.read_text()) if path.exists() else {}
    records[filename] = record
    atomic_write_text(path, json.dumps(records, indent=2, sort_keys=True) + "\n")


def download_mind(
    dataset: str,
    to: str | Path,
    from_zips: Iterable[str | Path] = (),
    mirrors: Sequence[str] = MIRRORS,
    sha256: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    force: bool = False,
    progress: bool = True,
    hub_endpoint: str | None = None,
    hub_cache: str | Path | None = None,
) -> Path:
    """Fetches (or takes from ``from_zips``) the archives of ``dataset`` and unpacks them into ``to``.

    Args:
        dataset: ``mind-demo``, ``mind-small`` or ``mind-large``.
        to: the dataset root to create (``to/train``, ``to/dev``[, ``to/test``]).
        from_zips: archives the user already has; the splits they cover are not downloaded.
        mirrors: sources tried in order for each archive: ``hf://datasets/OWNER/NAME[@REVISION]``
            (through ``huggingface_hub``) or a base URL.
        sha256: optional expected SHA-256 per archive file name; the computed ones are always
            written to ``to/checksums.sha256``, and where each came from to ``to/download.json``.
        force: unpack again even when a split folder is already complete.
        hub_endpoint: the Hub to ask (default: ``HF_ENDPOINT``, else huggingface.co).
        hub_cache: the Hugging Face cache to keep the archives in (default: ``HF_HUB_CACHE``,
            ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``).

    Raises:
        DownloadError: no source could be reached (with what to download and where to put it), a
            gated repository without access, a corrupt archive, or a checksum mismatch.
    """
    if dataset not in DATASETS:
        raise DownloadError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
    archives = DATASETS[dataset]
    sources = [HubSource.parse(m) if m.startswith(HUB_PREFIX) else m for m in mirrors]
    root = Path(to)
    root.mkdir(parents=True, exist_ok=True)
    given = {_split_of(Path(p), archives).split: Path(p) for p in from_zips}
    for path in given.values():
        if not path.is_file():
            raise DownloadError(f"{path}: archive not found")
    sha256 = dict(sha256 or {})
    fetch = _Fetcher(sources, root / ".downloads", timeout, progress, hub_endpoint, hub_cache)
    for archive in archives:
        split_dir = root / archive.split
        if not force and (split_dir / NEWS_FILE).is_file() and (split_dir / BEHAVIORS_FILE).is_file():
            logger.info("%s already unpacked in %s", archive.filename, split_dir)
            continue
        if archive.split in given:
            path, record = given[archive.split], {"source": "--from-zip", "path": str(given[archive.split])}
        else:
            path, record = fetch(archive.filename, archive.filename, _mind_failure(dataset, archive.filename, root))
        try:
            digest = verify_archive(path, sha256.get(archive.filename) or record.pop("expected_sha256", None))
        except DownloadError:
            if archive.split not in given:
                _discard(path)  # a corrupt download must not be resumed or served from the cache
            raise
        _record_checksum(root, archive.filename, digest)
        _record_source(root, archive.filename, {**record, "sha256": digest, "bytes": path.stat().st_size})
        unpack_split(path, split_dir)
        logger.info("unpacked %s into %s", archive.filename, split_dir)
    return root


def _mind_failure(dataset: str, filename: str, root: Path) -> Callable[[list[str]], DownloadError]:
    """The error of a MIND archive no source served: each failure, and how to hand the archives in."""
    names = " ".join(a.filename for a in DATASETS[dataset])

    def error(failures: list[str]) -> DownloadError:
        return DownloadError(
            f"could not download {filename} from any source:\n  "
            + "\n  ".join(failures)
            + f"\nDownload {names} yourself (see {OFFICIAL_PAGE}), then run:\n"
            + f"  mmnewsrec download {dataset} --to {root} "
            + " ".join(f"--from-zip PATH/{a.filename}" for a in DATASETS[dataset])
        )

    return error


def _discard(path: Path) -> None:
    """Removes a download, and the cached blob behind it when it is a Hugging Face cache link."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    if blob != path:
        blob.unlink(missing_ok=True)


class _Fetcher:
    """Tries each source in turn for one archive; collects the failures for the final error."""

    def __init__(
        self,
        sources: Sequence[str | HubSource],
        cache: Path,
        timeout: float,
        progress: bool,
        hub_endpoint: str | None,
        hub_cache: str | Path | None,
    ) -> None:
        self.sources, self.cache, self.timeout, self.progress = sources, cache, timeout, progress
        self.hub_endpoint, self.hub_cache = hub_endpoint, hub_cache

    def __call__(
        self, filename: str, remote: str, failure: Callable[[list[str]], DownloadError]
    ) -> tuple[Path, dict[str, object]]:
        """The archive ``remote`` (its path under each source) as ``cache/filename``: a complete
        earlier download, else the first source that serves it; ``failure`` turns each source's
        failure into the error raised when none does."""
        from huggingface_hub import constants

        offline = constants.is_offline_mode()
        dest = self.cache / filename
        if dest.is_file():
            return dest, {"source": "earlier download", "path": str(dest)}
        failures = []
        for source in self.sources:
            if isinstance(source, HubSource):
                url = self._hub_url(source, remote)
                try:
                    path, record = self._from_hub(source, remote, url)
                    return path, {"source": str(source), "url": url, **record}
                except _HubFailure as exc:
                    failures.append(f"{url}: {exc}")
                continue
            url = f"{source.rstrip('/')}/{remote}"
            if offline:
                failures.append(f"{url}: not tried (HF_HUB_OFFLINE is set)")
                continue
            self.cache.mkdir(parents=True, exist_ok=True)
            try:
                logger.info("downloading %s", url)
                return download_file(url, dest, timeout=self.timeout, progress=self.progress), {
                    "source": source,
                    "url": url,
                }
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                failures.append(f"{url}: {reason}")
        raise failure(failures)

    def _hub_url(self, source: HubSource, filename: str) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(
            source.repo_id, filename, repo_type="dataset", revision=source.revision, endpoint=self.hub_endpoint
        )

    def _from_hub(self, source: HubSource, filename: str, url: str) -> tuple[Path, dict[str, object]]:
        from huggingface_hub import get_hf_file_metadata, hf_hub_download
        from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, OfflineModeIsEnabled
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

        where = {"repo_type": "dataset", "revision": source.revision, "cache_dir": self.hub_cache}
        try:  # a complete archive in the cache is used without asking the Hub (and works offline)
            local = Path(hf_hub_download(source.repo_id, filename, local_files_only=True, **where))
        except LocalEntryNotFoundError:
            local = None
        quiet = not self.progress and not are_progress_bars_disabled()
        if quiet:
            disable_progress_bars()
        try:
            if local is None:
                # One HEAD without retries first: hf_hub_download retries an unreachable host for
                # about 25 s, and a user without network should hear so at once.
                get_hf_file_metadata(url, timeout=self.timeout)
                logger.info("downloading %s from %s", filename, source)
                local = Path(
                    hf_hub_download(
                        source.repo_id,
                        filename,
                        endpoint=self.hub_endpoint,
                        etag_timeout=self.timeout,
                        library_name="mmnewsrec",
                        **where,
                    )
                )
        except GatedRepoError:
            raise _HubFailure(
                f"{source.repo_id} is gated: accept its terms on https://huggingface.co/datasets/{source.repo_id}, "
                "then run `hf auth login` or set HF_TOKEN"
            ) from None
        except OfflineModeIsEnabled:
            raise _HubFailure("not in the Hugging Face cache, and HF_HUB_OFFLINE is set") from None
        except (OSError, ValueError, *httpx_errors()) as exc:  # huggingface_hub's HTTP errors are OSErrors
            raise _HubFailure(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        finally:
            if quiet:
                enable_progress_bars()
        # The cache keeps snapshots/COMMIT/FILE -> blobs/ETAG; an LFS file's ETag is its SHA-256.
        blob = local.resolve().name
        record: dict[str, object] = {"commit": local.parent.name}
        if re.fullmatch(r"[0-9a-f]{64}", blob):
            record["expected_sha256"] = blob
        return local, record


def httpx_errors() -> tuple[type[Exception], ...]:
    """The transport errors of the HTTP client huggingface_hub uses (httpx, or its httpx2 fork)."""
    errors: list[type[Exception]] = []
    for name in ("httpx2", "httpx"):
        try:
            errors.append(__import__(name).HTTPError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


class _HubFailure(Exception):
    """One Hub source failed for one archive (its reason goes into the final error)."""


# ------------------------------------------------------------------------------------------ EB-NeRD
#: EB-NeRD's official location (https://recsys.eb.dk links every archive there).
EBNERD_PAGE = "https://recsys.eb.dk"
EBNERD_BASE = "https://ebnerd-dataset.s3.eu-west-1.amazonaws.com"
#: dataset -> its archives (paths under the base URL). A bundle unpacks into the dataset root
#: (``articles.parquet``, ``train/``, ``validation/``; the test set's ``test/``), the artifacts
#: into ``ROOT/artifacts/`` (``Ekstra_Bladet_contrastive_vector/contrastive_vector.parquet``...).
EBNERD_DATASETS: dict[str, tuple[str, ...]] = {
    "ebnerd-demo": ("ebnerd_demo.zip",),
    "ebnerd-small": ("ebnerd_small.zip",),
    "ebnerd-large": ("ebnerd_large.zip",),
    "ebnerd-testset": ("ebnerd_testset.zip",),
    "ebnerd-artifacts": (
        "artifacts/Ekstra_Bladet_contrastive_vector.zip",
        "artifacts/Ekstra_Bladet_image_embeddings.zip",
        "artifacts/google_bert_base_multilingual_cased.zip",
        "artifacts/FacebookAI_xlm_roberta_base.zip",
    ),
}
DATASETS_ALL = (*DATASETS, *EBNERD_DATASETS)


def download(
    dataset: str,
    to: str | Path,
    from_zips: Iterable[str | Path] = (),
    mirrors: Sequence[str] | None = None,
    sha256: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """``mmnewsrec download``: a MIND release (:func:`download_mind`) or an EB-NeRD one
    (:func:`download_ebnerd`); ``mirrors`` None is the dataset's official sources."""
    if dataset in EBNERD_DATASETS:
        return download_ebnerd(dataset, to, from_zips, mirrors or (EBNERD_BASE,), sha256, timeout, force, progress)
    return download_mind(
        dataset, to, from_zips, MIRRORS if mirrors is None else mirrors, sha256, timeout, force, progress
    )


def download_ebnerd(
    dataset: str,
    to: str | Path,
    from_zips: Iterable[str | Path] = (),
    mirrors: Sequence[str] = (EBNERD_BASE,),
    sha256: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Fetches (or takes from ``from_zips``, matched by file name) the archives of an EB-NeRD
    release and unpacks them into ``to`` (a bundle's one top folder, if any, dropped; artifacts
    under ``to/artifacts/``). Transfers resume (``download_file``); each archive's CRCs are
    checked, its SHA-256 compared with ``sha256[NAME]`` when given and always recorded in
    ``to/checksums.sha256``, its source in ``to/download.json``. An archive already unpacked
    (recorded there) is not fetched again unless ``force``.

    Raises:
        DownloadError: unknown dataset; no source reachable (naming the URLs and ``--from-zip``); a
            corrupt archive or a checksum mismatch.
    """
    if dataset not in EBNERD_DATASETS:
        raise DownloadError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS_ALL)}")
    root = Path(to)
    root.mkdir(parents=True, exist_ok=True)
    given = {Path(p).name: Path(p) for p in from_zips}
    wanted = {Path(a).name for a in EBNERD_DATASETS[dataset]}
    for name, path in given.items():
        if name not in wanted:
            raise DownloadError(f"{path}: not an archive of {dataset} (expected one of {sorted(wanted)})")
        if not path.is_file():
            raise DownloadError(f"{path}: archive not found")
    sha256 = dict(sha256 or {})
    done = json.loads((root / SOURCE_FILE).read_text()) if (root / SOURCE_FILE).is_file() else {}
    sources = [HubSource.parse(m) if m.startswith(HUB_PREFIX) else m for m in mirrors]
    fetch = _Fetcher(sources, root / ".downloads", timeout, progress, None, None)
    for archive in EBNERD_DATASETS[dataset]:
        name = Path(archive).name
        if not force and done.get(name, {}).get("unpacked"):
            logger.info("%s already unpacked in %s", name, root)
            continue
        if name in given:
            path, record = given[name], {"source": "--from-zip", "path": str(given[name])}
        else:

            def failure(failures: list[str], name: str = name) -> DownloadError:
                return DownloadError(
                    f"cannot fetch {name} ({'; '.join(failures)}). Download it from {EBNERD_PAGE} "
                    f"and pass --from-zip PATH/{name}"
                )

            path, record = fetch(name, archive, failure)
        try:
            digest = verify_archive(path, sha256.get(name) or record.pop("expected_sha256", None))
        except DownloadError:
            if name not in given:
                _discard(path)  # a corrupt download must not be resumed or served from the cache
            raise
        target = root / "artifacts" if archive.startswith("artifacts/") else root
        _unpack_tree(path, target, strip_top=not archive.startswith("artifacts/"))
        _record_checksum(root, name, digest)
        _record_source(root, name, {**record, "sha256": digest, "bytes": path.stat().st_size, "unpacked": True})
        done[name] = {"unpacked": True}
        logger.info("unpacked %s into %s", name, target)
    return root


def _unpack_tree(archive_path: Path, target: Path, strip_top: bool) -> None:
    """Extracts every member under ``target`` (each file written whole, then renamed), the
    archive's single top folder dropped when ``strip_top``; unsafe member paths are refused."""
    with zipfile.ZipFile(archive_path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        tops = {Path(info.filename).parts[0] for info in members}
        prefix = (
            next(iter(tops))
            if strip_top and len(tops) == 1 and all(len(Path(i.filename).parts) > 1 for i in members)
            else None
        )
        for info in members:
            relative = Path(info.filename)
            if relative.is_absolute() or ".." in relative.parts:
                raise DownloadError(f"{archive_path}: unsafe member path {info.filename!r}")
            if prefix is not None:
                relative = Path(*relative.parts[1:])
            dest = target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + ".part")
            with archive.open(info) as source, open(part, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
            os.replace(part, dest)
