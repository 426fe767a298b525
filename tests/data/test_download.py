from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmnewsrec.data.download import CHECKSUM_FILE, DownloadError, download_file, download_mind
from mmnewsrec.data.mind import load_mind


def make_zip(split_dir: Path, target: Path, folder: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(split_dir.iterdir()):
            archive.write(path, arcname=f"{folder}{path.name}")
    return target


@pytest.fixture()
def sample_zips(mind_sample: Path, tmp_path: Path) -> dict[str, Path]:
    zips = tmp_path / "zips"
    zips.mkdir()
    return {
        "train": make_zip(mind_sample / "train", zips / "MINDsmall_train.zip"),
        "dev": make_zip(mind_sample / "dev", zips / "MINDsmall_dev.zip", folder="MINDsmall_dev/"),
    }


def send_or_cut(handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
    """Sends ``body``; while the handler's class has ``drops`` left, half of it, then the
    connection breaks off (one drop used)."""
    kind = type(handler)
    if kind.drops > 0:
        kind.drops -= 1
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.connection.shutdown(2)
        return
    handler.wfile.write(body)


class FlakyRangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from ``root``; honours Range; the first ``drops`` responses stop half-way."""

    root: Path
    drops = 0
    ranges: list[str | None]

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        start = int(header.removeprefix("bytes=").rstrip("-")) if header else 0
        body = data[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        send_or_cut(self, body)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, type[FlakyRangeHandler]]]:
    root = tmp_path / "served"
    root.mkdir()
    handler = type("Handler", (FlakyRangeHandler,), {"root": root, "drops": 0, "ranges": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_from_zip_unpacks_into_reader_layout(sample_zips: dict[str, Path], tmp_path: Path) -> None:
    root = download_mind("mind-small", tmp_path / "mind", from_zips=sample_zips.values(), mirrors=())
    dataset = load_mind(root)
    assert list(dataset.splits) == ["train", "dev"]
    assert dataset["dev"].num_impressions == 2
    recorded = (root / CHECKSUM_FILE).read_text()
    digest = hashlib.sha256(sample_zips["train"].read_bytes()).hexdigest()
    assert f"{digest}  MINDsmall_train.zip" in recorded


def test_checksum_mismatch_and_corrupt_zip(sample_zips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="differs from the expected"):
        download_mind(
            "mind-small",
            tmp_path / "a",
            from_zips=sample_zips.values(),
            mirrors=(),
            sha256={"MINDsmall_train.zip": "0" * 64},
        )
    bad = tmp_path / "MINDsmall_train.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DownloadError, match="not a valid zip"):
        download_mind("mind-small", tmp_path / "b", from_zips=[bad, sample_zips["dev"]], mirrors=())
    assert not (tmp_path / "b" / "train").exists()


def test_unrecognised_archive_name(sample_zips: dict[str, Path], tmp_path: Path) -> None:
    odd = sample_zips["train"].rename(tmp_path / "archive.zip")
    with pytest.raises(DownloadError, match="cannot tell which split"):
        download_mind("mind-small", tmp_path / "c", from_zips=[odd], mirrors=())


def test_download_resumes_after_a_broken_transfer(sample_zips, server, tmp_path: Path) -> None:
    url, handler = server
    served = handler.root / "MINDsmall_train.zip"
    served.write_bytes(sample_zips["train"].read_bytes())
    handler.drops = 1
    dest = tmp_path / "MINDsmall_train.zip"
    with pytest.raises(OSError):
        download_file(f"{url}/MINDsmall_train.zip", dest, progress=False)
    part = tmp_path / "MINDsmall_train.zip.part"
    assert not dest.exists() and 0 < part.stat().st_size < served.stat().st_size
    download_file(f"{url}/MINDsmall_train.zip", dest, progress=False)
    assert dest.read_bytes() == served.read_bytes() and not part.exists()
    assert handler.ranges == [None, f"bytes={served.stat().st_size // 2}-"]


def test_download_mind_over_http_tries_mirrors_in_order(sample_zips, server, tmp_path: Path) -> None:
    url, handler = server
    for path in sample_zips.values():
        (handler.root / path.name).write_bytes(path.read_bytes())
    root = download_mind("mind-small", tmp_path / "mind", mirrors=[f"{url}/missing", url], progress=False)
    assert load_mind(root)["train"].num_impressions == 3
    # Complete split folders are not fetched again.
    handler.ranges.clear()
    download_mind("mind-small", root, mirrors=[url], progress=False)
    assert handler.ranges == []


def test_offline_fails_fast_with_instructions(tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        download_mind("mind-small", tmp_path / "mind", mirrors=["http://127.0.0.1:9"], timeout=2)
    message = str(info.value)
    assert "MINDsmall_train.zip MINDsmall_dev.zip" in message
    assert "--from-zip PATH/MINDsmall_train.zip" in message
    with pytest.raises(DownloadError, match="unknown dataset"):
        download_mind("mind-huge", tmp_path)


def _zip_tree(folder: Path, target: Path, top: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, arcname=f"{top}{path.relative_to(folder)}")
    return target


def test_ebnerd_bundles_and_artifacts_download_resume_and_unpack_into_the_reader_layout(server, tmp_path: Path) -> None:
    from mmnewsrec.data.download import download
    from mmnewsrec.data.synthetic import generate_ebnerd

    bundle = tmp_path / "bundle"
    generate_ebnerd(bundle, "tiny", seed=0)
    url, handler = server
    (handler.root / "artifacts").mkdir()
    artifacts = bundle / "artifacts"
    name = "Ekstra_Bladet_contrastive_vector"
    _zip_tree(artifacts / name, handler.root / "artifacts" / f"{name}.zip", f"{name}/")
    shutil.rmtree(artifacts)
    _zip_tree(bundle, handler.root / "ebnerd_small.zip")  # the bundle's files at the archive's top, as EB-NeRD's
    handler.drops = 1  # the first transfer breaks off half-way: the next try resumes it
    with pytest.raises(DownloadError, match="cannot fetch ebnerd_small.zip"):
        download("ebnerd-small", tmp_path / "eb", mirrors=[url], progress=False)
    root = download("ebnerd-small", tmp_path / "eb", mirrors=[url], progress=False)
    assert handler.ranges[-1] is not None and handler.ranges[-1].startswith("bytes=")
    assert load_mind(root)["dev"].num_impressions == 500
    digest = hashlib.sha256((handler.root / "ebnerd_small.zip").read_bytes()).hexdigest()
    assert f"{digest}  ebnerd_small.zip" in (root / CHECKSUM_FILE).read_text()
    handler.ranges.clear()
    download("ebnerd-small", root, mirrors=[url], progress=False)  # unpacked already: nothing fetched
    assert handler.ranges == []
    # The artifacts go under artifacts/, each archive's folder kept; one missing is named with --from-zip.
    with pytest.raises(DownloadError, match=r"Ekstra_Bladet_image_embeddings.zip .*--from-zip PATH/"):
        download("ebnerd-artifacts", root, mirrors=[url], progress=False)
    assert (root / "artifacts" / name / "contrastive_vector.parquet").is_file()
    with pytest.raises(DownloadError, match="SHA-256"):
        download("ebnerd-demo", tmp_path / "demo", from_zips=[_zip_tree(bundle, tmp_path / "ebnerd_demo.zip")],
                 sha256={"ebnerd_demo.zip": "0" * 64}, progress=False)  # fmt: skip
    with pytest.raises(DownloadError, match="not an archive of ebnerd-demo"):
        download("ebnerd-demo", tmp_path / "demo", from_zips=[handler.root / "ebnerd_small.zip"], progress=False)


def test_ebnerd_offline_names_the_official_urls_and_from_zip(tmp_path: Path) -> None:
    from mmnewsrec.data.download import EBNERD_BASE, download

    with pytest.raises(DownloadError) as info:
        download("ebnerd-demo", tmp_path / "eb", mirrors=["http://127.0.0.1:9"], timeout=2, progress=False)
    assert "ebnerd_demo.zip" in str(info.value) and "--from-zip PATH/ebnerd_demo.zip" in str(info.value)
    assert "https://recsys.eb.dk" in str(info.value) and EBNERD_BASE.startswith("https://ebnerd-dataset")
