"""MIND from where the official page links it today: a Hugging Face dataset, fetched through
huggingface_hub. A local HTTP server stands in for the Hub (its /datasets/REPO/resolve/REV/FILE
layout, the headers huggingface_hub reads, a cut connection and a gated repository)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmnewsrec.data.download import MIRRORS, SOURCE_FILE, DownloadError, download_mind
from mmnewsrec.data.mind import load_mind
from tests.data.test_download import make_zip, send_or_cut

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` at /datasets/REPO/resolve/REV/NAME like the Hub serves an LFS file."""

    files: dict[str, bytes]  # "REPO/NAME" -> bytes
    gated: set[str]
    drops = 0  # how many GETs stop half-way
    requests: list[tuple[str, str, str | None]]

    def log_message(self, *args) -> None:
        pass

    def _file(self) -> bytes | None:
        type(self).requests.append((self.command, self.path, self.headers.get("Range")))
        parts = self.path.split("/")  # "", datasets, OWNER, NAME, resolve, REV, FILE
        if len(parts) != 7 or parts[1] != "datasets" or parts[4] != "resolve":
            self.send_error(404)
            return None
        repo = f"{parts[2]}/{parts[3]}"
        if repo in self.gated:
            self.send_response(401)
            self.send_header("X-Error-Code", "GatedRepo")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        data = self.files.get(f"{repo}/{parts[6]}")
        if data is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return data

    def _headers(self, data: bytes, status: int, length: int) -> None:
        self.send_response(status)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')  # an LFS file's ETag: its SHA-256
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_HEAD(self) -> None:
        data = self._file()
        if data is not None:
            self._headers(data, 200, len(data))

    def do_GET(self) -> None:
        data = self._file()
        if data is None:
            return
        header = self.headers.get("Range")
        start = int(header.removeprefix("bytes=").split("-")[0]) if header else 0
        body = data[start:]
        self._headers(data, 206 if header else 200, len(body))
        send_or_cut(self, body)


@pytest.fixture()
def hub(mind_sample: Path, tmp_path: Path) -> Iterator[tuple[str, type[HubHandler], dict[str, bytes]]]:
    zips = tmp_path / "zips"
    zips.mkdir()
    archives = {
        "MINDsmall_train.zip": make_zip(mind_sample / "train", zips / "MINDsmall_train.zip").read_bytes(),
        "MINDsmall_dev.zip": make_zip(mind_sample / "dev", zips / "MINDsmall_dev.zip", folder="dev/").read_bytes(),
    }
    files = {f"yjw1029/MIND/{name}": data for name, data in archives.items()}
    handler = type("Handler", (HubHandler,), {"files": files, "gated": set(), "drops": 0, "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler, archives
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_official_hub_dataset_is_asked_first_and_a_cut_transfer_resumes(hub, mind_sample, tmp_path: Path) -> None:
    url, handler, archives = hub
    # huggingface_hub writes 10 MiB chunks: cut the transfer once more than one has arrived.
    (mind_sample / "train" / "padding.bin").write_bytes(os.urandom(21 << 20))
    big = make_zip(mind_sample / "train", tmp_path / "MINDsmall_train.zip").read_bytes()
    archives["MINDsmall_train.zip"] = handler.files["yjw1029/MIND/MINDsmall_train.zip"] = big
    handler.drops = 1
    cache = tmp_path / "hf-cache"
    root = download_mind("mind-small", tmp_path / "mind", hub_endpoint=url, hub_cache=cache, progress=False)
    assert load_mind(root)["dev"].num_impressions == 2

    first = handler.requests[0]
    assert first[:2] == ("HEAD", "/datasets/yjw1029/MIND/resolve/main/MINDsmall_train.zip")
    gets = [r for r in handler.requests if r[0] == "GET" and r[1].endswith("MINDsmall_train.zip")]
    size = len(archives["MINDsmall_train.zip"])
    assert len(gets) == 2 and gets[0][2] is None
    resumed_at = int(gets[1][2].removeprefix("bytes=").rstrip("-"))  # the second GET asks for the rest only
    assert 10 << 20 <= resumed_at <= size // 2

    records = json.loads((root / SOURCE_FILE).read_text())
    train = records["MINDsmall_train.zip"]
    assert train["source"] == "hf://datasets/yjw1029/MIND@main" and train["commit"] == COMMIT
    assert train["url"] == f"{url}/datasets/yjw1029/MIND/resolve/main/MINDsmall_train.zip"
    assert train["sha256"] == hashlib.sha256(archives["MINDsmall_train.zip"]).hexdigest() and train["bytes"] == size
    # The archives stay in the Hugging Face cache, where huggingface_hub keeps every download.
    assert (cache / "datasets--yjw1029--MIND" / "blobs" / train["sha256"]).is_file()
    assert MIRRORS[0] == "hf://datasets/yjw1029/MIND@main"


def test_a_corrupt_hub_download_is_refused_and_dropped_from_the_cache(hub, tmp_path: Path) -> None:
    url, handler, archives = hub
    handler.files["yjw1029/MIND/MINDsmall_train.zip"] = b"PK\x03\x04 not really a zip"
    cache = tmp_path / "hf-cache"
    with pytest.raises(DownloadError, match="differs from the expected|not a valid zip"):
        download_mind("mind-small", tmp_path / "mind", hub_endpoint=url, hub_cache=cache, mirrors=MIRRORS[:1])
    assert not list((cache / "datasets--yjw1029--MIND" / "blobs").iterdir())
    assert not (tmp_path / "mind" / "train").exists()


def test_a_gated_repository_says_how_to_get_access_and_the_next_source_is_tried(hub, tmp_path: Path) -> None:
    url, handler, archives = hub
    handler.gated.add("yjw1029/MIND")
    handler.files.update({f"mirror/MIND/{name}": data for name, data in archives.items()})
    mirrors = ["hf://datasets/yjw1029/MIND@main", "hf://datasets/mirror/MIND"]
    root = download_mind("mind-small", tmp_path / "mind", mirrors=mirrors, hub_endpoint=url, hub_cache=tmp_path / "c")
    assert (
        json.loads((root / SOURCE_FILE).read_text())["MINDsmall_dev.zip"]["source"] == "hf://datasets/mirror/MIND@main"
    )
    with pytest.raises(DownloadError) as info:
        download_mind("mind-small", tmp_path / "other", mirrors=mirrors[:1], hub_endpoint=url, hub_cache=tmp_path / "d")
    message = str(info.value)
    assert "yjw1029/MIND is gated" in message and "HF_TOKEN" in message
    assert "--from-zip PATH/MINDsmall_train.zip" in message
    with pytest.raises(DownloadError, match="expected hf://datasets/OWNER/NAME"):
        download_mind("mind-small", tmp_path / "x", mirrors=["hf://datasets/nothing"])


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmnewsrec", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_offline_mode_serves_the_cache_and_otherwise_names_the_urls_and_from_zip(hub, tmp_path: Path) -> None:
    url, handler, archives = hub
    cache = tmp_path / "hf-cache"
    download_mind("mind-small", tmp_path / "online", hub_endpoint=url, hub_cache=cache, progress=False)
    handler.requests.clear()
    offline = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_ENDPOINT": url}
    done = cli(["download", "mind-small", "--to", str(tmp_path / "offline")], offline)
    assert done.returncode == 0, done.stderr
    assert load_mind(tmp_path / "offline")["train"].num_impressions == 3 and handler.requests == []

    empty = {**offline, "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    failed = cli(["download", "mind-small", "--to", str(tmp_path / "none")], empty)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "error: could not download MINDsmall_train.zip" in failed.stderr
    assert f"{url}/datasets/yjw1029/MIND/resolve/main/MINDsmall_train.zip" in failed.stderr
    assert "not tried (HF_HUB_OFFLINE is set)" in failed.stderr and "--from-zip PATH/MINDsmall_dev.zip" in failed.stderr
    assert handler.requests == []
