"""A local HTTP server that answers the part of the Hugging Face Hub API that pushing and fetching a
model repository use (create repo, preupload, commit, revision info, tree, resolve), so the real
``huggingface_hub`` client runs against it offline. Repositories live in memory."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit

import yaml


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class StubHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}  # repo -> commit -> files
        self.refs: dict[str, dict[str, str]] = {}  # repo -> branch -> commit
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.url = ""

    def files(self, repo: str, revision: str = "main") -> dict[str, bytes]:
        commit = self.refs[repo].get(revision, revision)
        return self.repos[repo][commit]


class _Handler(http.server.BaseHTTPRequestHandler):
    hub: StubHub

    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, value: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, item in (headers or {}).items():
            self.send_header(key, item)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _missing(self, code: str) -> None:
        self._json(404, {"error": code}, {"X-Error-Code": code})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _resolve(self, repo: str, revision: str) -> str | None:
        hub = self.hub
        if repo not in hub.repos:
            return None
        return hub.refs[repo].get(revision) or (revision if revision in hub.repos[repo] else None)

    def do_POST(self) -> None:
        hub, path = self.hub, unquote(urlsplit(self.path).path)
        hub.requests.append(("POST", path))
        with hub.lock:
            if path == "/api/repos/create":
                body = json.loads(self._body())
                repo = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
                if repo not in hub.repos:
                    hub.repos[repo] = {}
                    hub.refs[repo] = {}
                self._json(200, {"url": f"{hub.url}/{repo}", "name": repo})
                return
            if path == "/api/validate-yaml":  # a README's metadata, checked as the Hub checks the basics
                body = json.loads(self._body())
                try:
                    meta = yaml.safe_load(body["content"].split("---")[1]) if body["content"].startswith("---") else {}
                except yaml.YAMLError as exc:
                    self._json(400, {"error": f"invalid YAML: {exc}"})
                    return
                if meta.get("license") == "other" and not (meta.get("license_name") and meta.get("license_link")):
                    self._json(400, {"error": "license other needs license_name and license_link"})
                    return
                self._json(200, {"errors": [], "warnings": []})
                return
            parts = path.split("/")  # "", api, models, OWNER, NAME, preupload|commit, REV
            if len(parts) < 7 or parts[:3] != ["", "api", "models"]:
                self._missing("RepoNotFound")
                return
            repo, action, revision = f"{parts[3]}/{parts[4]}", parts[5], "/".join(parts[6:])
            if repo not in hub.repos:
                self._missing("RepoNotFound")
                return
            if action == "branch":  # a new branch at the head of main
                hub.refs[repo].setdefault(revision, hub.refs[repo].get("main"))
                if hub.refs[repo][revision] is None:
                    del hub.refs[repo][revision]
                self._json(200, {})
            elif action == "preupload":
                files = json.loads(self._body())["files"]
                modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                self._json(200, {"files": modes})
            elif action == "commit":
                parent = hub.refs[repo].get(revision)
                files = dict(hub.repos[repo][parent]) if parent else {}
                for line in self._body().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                commit = hashlib.sha1(json.dumps(sorted((k, git_blob_sha(v)) for k, v in files.items())).encode())
                commit = hashlib.sha1(f"{parent}{commit.hexdigest()}".encode()).hexdigest()
                hub.repos[repo][commit] = files
                hub.refs[repo][revision] = commit
                self._json(200, {"commitUrl": f"{hub.url}/{repo}/commit/{commit}", "commitOid": commit})
            else:
                self._missing("EntryNotFound")

    def do_GET(self) -> None:
        self._get()

    def do_HEAD(self) -> None:
        self._get()

    def _get(self) -> None:
        hub, path = self.hub, unquote(urlsplit(self.path).path)
        hub.requests.append((self.command, path))
        parts = path.split("/")
        if parts[:3] == ["", "api", "models"] and len(parts) >= 7:
            repo, action, rest = f"{parts[3]}/{parts[4]}", parts[5], "/".join(parts[6:])
            commit = self._resolve(repo, rest)
            if commit is None:
                self._missing("RepoNotFound" if repo not in hub.repos else "RevisionNotFound")
                return
            files = hub.repos[repo][commit]
            if action == "revision":
                siblings = [{"rfilename": name} for name in sorted(files)]
                self._json(200, {"id": repo, "modelId": repo, "sha": commit, "siblings": siblings, "private": False})
            elif action == "tree":
                entries = [
                    {"type": "file", "path": name, "size": len(data), "oid": git_blob_sha(data)}
                    for name, data in sorted(files.items())
                ]
                self._json(200, entries)
            else:
                self._missing("EntryNotFound")
            return
        # /OWNER/NAME/resolve/REV/PATH
        if len(parts) >= 6 and parts[3] == "resolve":
            repo, revision, name = f"{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:])
            commit = self._resolve(repo, revision)
            if commit is None:
                self._missing("RepoNotFound" if repo not in hub.repos else "RevisionNotFound")
                return
            data = hub.repos[repo][commit].get(name)
            if data is None:
                self._json(404, {"error": "EntryNotFound"}, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit})
                return
            self.send_response(200)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", f'"{git_blob_sha(data)}"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(data)
            return
        self._missing("RepoNotFound")


@contextmanager
def serve_stub_hub() -> Iterator[StubHub]:
    hub = StubHub()
    handler = type("Handler", (_Handler,), {"hub": hub})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    hub.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        httpd.shutdown()
        httpd.server_close()
