"""A small Hugging Face hub on 127.0.0.1 for tests: just enough of the hub API for the real ``huggingface_hub``.

Serves model info (``/api/models/{repo}[/revision/{rev}]``), the file tree (``/api/models/{repo}/tree/{rev}``) and
files (``/{repo}/resolve/{rev}/{path}``, HEAD and GET with ``Range``), with the ``X-Repo-Commit`` / ``ETag``
headers the client relies on and the ``X-Error-Code`` values it turns into typed errors (gated, missing repo,
missing revision). A file can be made to stall after some bytes, as a dropped connection would, to test resume.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass
class HubRepo:
    """One model repo: its files (name → bytes) at a single commit."""

    files: dict[str, bytes]
    gated: bool = False
    sha: str = ""

    def __post_init__(self) -> None:
        if not self.sha:
            digest = hashlib.sha1()
            for name in sorted(self.files):
                digest.update(name.encode() + self.files[name])
            self.sha = digest.hexdigest()

    @classmethod
    def from_dir(cls, folder: Path, **kwargs: object) -> HubRepo:
        """A repo holding every file of ``folder``."""
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return cls(files, **kwargs)  # type: ignore[arg-type]


@dataclass
class Stall:
    """Serve the first ``after`` bytes of ``path`` on its first full GET, then hold the connection open."""

    repo: str
    path: str
    after: int
    served: bool = False


@dataclass
class HubServer:
    """The server and what it saw: ``requests`` records (method, path, Range header) of every request."""

    repos: dict[str, HubRepo] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    stalls: list[Stall] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def start(self) -> HubServer:
        """Listen on a free port of 127.0.0.1 in a daemon thread."""
        hub = self

        class Handler(_HubHandler):
            server_hub = hub

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Release stalled transfers and shut the server down."""
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


INFO = re.compile(r"^/api/models/([^/]+/[^/]+?)(?:/revision/([^/]+))?/?$")
TREE = re.compile(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$")
RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class _HubHandler(BaseHTTPRequestHandler):
    server_hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:  # noqa: N802 (http.server naming)
        self._route(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._route(head=False)

    def _route(self, head: bool) -> None:
        hub = self.server_hub
        path = unquote(urlparse(self.path).path)
        hub.requests.append((self.command, path, self.headers.get("Range")))
        for pattern, handler in ((TREE, self._tree), (INFO, self._info), (RESOLVE, self._resolve)):
            match = pattern.match(path)
            if match:
                repo = hub.repos.get(match.group(1))
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found")
                revision = match.group(2)
                if revision not in (None, "main", repo.sha):
                    return self._error(404, "RevisionNotFound", "Invalid rev id")
                return handler(match, repo, head)
        self._error(404, None, "Not found")

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool = False) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, data: object, head: bool) -> None:
        self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"}, head)

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers, self.command == "HEAD")

    def _info(self, match: re.Match, repo: HubRepo, head: bool) -> None:
        siblings = [{"rfilename": n, "size": len(b), **_blob_fields(n, b)} for n, b in sorted(repo.files.items())]
        self._json({"id": match.group(1), "modelId": match.group(1), "sha": repo.sha, "private": False,
                    "gated": "manual" if repo.gated else False, "disabled": False, "siblings": siblings,
                    "tags": [], "downloads": 0, "likes": 0}, head)

    def _tree(self, match: re.Match, repo: HubRepo, head: bool) -> None:
        prefix = (match.group(3) or "").strip("/")
        entries = []
        for n, b in sorted(repo.files.items()):
            if not prefix or n.startswith(prefix + "/"):
                fields = _blob_fields(n, b)
                entry = {"type": "file", "oid": fields["blobId"], "size": len(b), "path": n}
                if "lfs" in fields:
                    entry["lfs"] = {"oid": fields["lfs"]["sha256"], "size": len(b), "pointerSize": 134}
                entries.append(entry)
        self._json(entries, head)

    def _resolve(self, match: re.Match, repo: HubRepo, head: bool) -> None:
        if repo.gated:
            return self._error(403, "GatedRepo", "Access to this model is restricted: accept the conditions")
        name = match.group(3)
        if name not in repo.files:
            return self._error(404, "EntryNotFound", "Entry not found")
        data = repo.files[name]
        fields = _blob_fields(name, data)
        etag = fields["lfs"]["sha256"] if "lfs" in fields else fields["blobId"]
        headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start = _range_start(self.headers.get("Range"))
        if head:
            return self._send(200, data, headers, head=True)
        stall = next((s for s in self.server_hub.stalls
                      if (s.repo, s.path) == (match.group(1), name) and not s.served and start == 0), None)
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send_response(206 if start else 200)
        for key, value in {"Content-Length": str(len(data) - start), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if stall is not None:
            stall.served = True
            self.wfile.write(data[:stall.after])
            self.wfile.flush()
            self.server_hub.release.wait(120)  # the client is killed meanwhile; then the connection just closes
            self.close_connection = True
            return
        self.wfile.write(data[start:])


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _blob_fields(name: str, data: bytes) -> dict:
    """``blobId`` (git blob sha1) and, for weights, ``lfs`` (sha256) — as the hub stores large files in LFS."""
    if not name.endswith((".safetensors", ".bin", ".gguf")):
        return {"blobId": _blob_id(data)}
    sha256 = hashlib.sha256(data).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n".encode()
    return {"blobId": _blob_id(pointer), "lfs": {"sha256": sha256, "size": len(data), "pointerSize": len(pointer)}}


def _range_start(header: str | None) -> int:
    match = re.match(r"bytes=(\d+)-", header or "")
    return int(match.group(1)) if match else 0
