"""A tiny fake Hugging Face Hub over HTTP, for tests: the real ``huggingface_hub`` client
(2.4) downloads from it (``snapshot_download``, ``hf_hub_download``) and asks it
(``HfApi().model_info`` / ``repo_info`` / ``list_repo_tree``), with no internet.

    with FakeHub({"org/tiny": folder}) as hub:
        snapshot_download("org/tiny", endpoint=hub.url, cache_dir=tmp_path / "hub")
        HfApi(endpoint=hub.url).model_info("org/tiny")

Every revision name is accepted; each repo has one fake 40-hex commit sha derived from
its files' content. ``*.safetensors`` and ``*.bin`` are served as LFS files (ETag = sha256).
No Xet headers are sent, so the client downloads over plain HTTP.

Pointing the client at it:

- ``endpoint=hub.url`` on ``snapshot_download`` / ``hf_hub_download`` / ``HfApi``: best.
- Code that passes no endpoint: the client reads ``HF_ENDPOINT`` once, at import, into
  ``constants.ENDPOINT`` (read by ``HfApi()``) *and* ``constants.HUGGINGFACE_CO_URL_TEMPLATE``
  (read by ``hf_hub_url``, so by every file download). Setting the env var in-process is
  too late; patch both constants::

      monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
      monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                          hub.url + "/{repo_id}/resolve/{revision}/{filename}")
      monkeypatch.setenv("HF_ENDPOINT", hub.url)  # for code that reads the env itself

- A subprocess: ``env={**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp)}``
  (and no ``HF_HUB_OFFLINE``); the child imports the client after, so both apply.

Keep the real cache out of it: ``cache_dir=`` / ``local_dir=``, or in-process patch
``huggingface_hub.constants.HF_HUB_CACHE`` (also read at import), or env ``HF_HOME`` for
a subprocess. ``hub.requests`` lists ``"METHOD /path"`` (no query string) of every request.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

LFS_SUFFIXES = (".safetensors", ".bin")
DATE = "2024-01-01T00:00:00.000Z"


def _entry(path: str, data: bytes) -> dict:
    """One file as the tree API lists it (type, path, size, oid, maybe lfs)."""
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id
    entry = {"type": "file", "path": path, "size": len(data), "oid": blob}
    if path.endswith(LFS_SUFFIXES):
        sha256 = hashlib.sha256(data).hexdigest()
        entry["lfs"] = {"oid": sha256, "size": len(data), "pointerSize": 134}
    return entry


class FakeHub:
    """Serves model folders under /<org>/<name>: each ``repos[repo_id] = Path(folder)``."""

    def __init__(self, repos: dict[str, Path]):
        self.repos = {repo_id: Path(folder) for repo_id, folder in repos.items()}
        self.url = ""
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hub._serve(self, body=True)

            def do_HEAD(self):
                hub._serve(self, body=False)

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _files(self, repo_id: str) -> dict[str, bytes]:
        root = self.repos[repo_id]
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and not {".git", ".cache"} & set(p.relative_to(root).parts)
        }

    @staticmethod
    def _sha(entries: list[dict]) -> str:
        return hashlib.sha1(json.dumps(entries, sort_keys=True).encode()).hexdigest()

    def _serve(self, h: BaseHTTPRequestHandler, *, body: bool) -> None:
        url = urlsplit(h.path)
        self.requests.append(f"{h.command} {url.path}")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        api = parts[:2] == ["api", "models"]
        segs = parts[2:] if api else parts
        repo_id = next(
            (r for r in ("/".join(segs[:2]), "/".join(segs[:1])) if r in self.repos),
            "/".join(segs[:2]),
        )
        rest = segs[len(repo_id.split("/")) :]
        if repo_id not in self.repos:
            return _send(h, 404, {"error": "Repository not found"}, body, code="RepoNotFound")
        files = self._files(repo_id)
        entries = [_entry(path, data) for path, data in files.items()]
        sha = self._sha(entries)
        headers = {"X-Repo-Commit": sha}
        if api and (not rest or rest[0] == "revision"):
            return _send(h, 200, self._info(repo_id, sha, entries, "blobs" in query), body)
        if api and rest[0] == "tree" and len(rest) >= 2:
            listing = _tree(entries, "/".join(rest[2:]), _true(query.get("recursive")))
            if listing is None:
                return _send(h, 404, {"error": "Entry not found"}, body, "EntryNotFound", headers)
            return _send(h, 200, listing, body, extra=headers)
        if not api and len(rest) >= 3 and rest[0] == "resolve":
            filename = "/".join(rest[2:])
            if filename not in files:
                return _send(h, 404, {"error": "Entry not found"}, body, "EntryNotFound", headers)
            data, entry = files[filename], _entry(filename, files[filename])
            etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
            headers |= {"ETag": f'"{etag}"', "Content-Type": "application/octet-stream"}
            if "lfs" in entry:
                headers |= {"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))}
            return _send(h, 200, None, body, extra=headers, data=data)
        return _send(h, 404, {"error": f"no such route: {url.path}"}, body)

    @staticmethod
    def _info(repo_id: str, sha: str, entries: list[dict], blobs: bool) -> dict:
        def sibling(e: dict) -> dict:
            if not blobs:
                return {"rfilename": e["path"]}
            lfs = e.get("lfs")
            lfs = lfs and {"size": lfs["size"], "sha256": lfs["oid"], "pointerSize": 134}
            return {"rfilename": e["path"], "size": e["size"], "blobId": e["oid"], "lfs": lfs}

        return {
            "id": repo_id,
            "sha": sha,
            "lastModified": DATE,
            "createdAt": DATE,
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "library_name": "transformers",
            "siblings": [sibling(e) for e in entries],
            "usedStorage": sum(e["size"] for e in entries),
        }


def _true(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _tree(entries: list[dict], prefix: str, recursive: bool) -> list[dict] | None:
    """Files (and folders) under ``prefix``, as the tree API lists them; None: no such folder."""
    base = f"{prefix}/" if prefix else ""
    inside = [e for e in entries if e["path"].startswith(base)]
    if prefix and not inside:
        return None
    out, folders = [], {}
    for e in inside:
        parts = e["path"][len(base) :].split("/")
        for i in range(1, len(parts) if recursive else min(2, len(parts))):
            folder = base + "/".join(parts[:i])
            folders[folder] = {"type": "directory", "path": folder, "oid": "0" * 40}
        if recursive or len(parts) == 1:
            out.append(e)
    return list(folders.values()) + out


def _send(h, status, payload, body, code=None, extra=None, data=None):
    """JSON ``payload`` (or raw ``data``), with ``X-Error-Code: code`` when given."""
    headers = {"Content-Type": "application/json", **(extra or {})}
    if code is not None:
        headers |= {"X-Error-Code": code, "X-Error-Message": payload["error"]}
    data = json.dumps(payload).encode() if data is None else data
    h.send_response(status)
    for name, value in {**headers, "Content-Length": str(len(data))}.items():
        h.send_header(name, value)
    h.end_headers()
    if body:
        h.wfile.write(data)


@pytest.fixture
def fake_hub_factory() -> Iterator[Callable[[dict[str, Path]], FakeHub]]:
    """``hub = fake_hub_factory({"org/name": folder})``: a started FakeHub, stopped at teardown.
    A test module uses it with ``from fakehub import fake_hub_factory  # noqa: F401``."""
    hubs: list[FakeHub] = []

    def make(repos: dict[str, Path]) -> FakeHub:
        hubs.append(FakeHub(repos).__enter__())
        return hubs[-1]

    yield make
    for hub in hubs:
        hub.__exit__(None, None, None)
