"""Weights from the Hugging Face Hub, against a loopback server of our own.

``FakeHub`` answers the Hub's ``/{repo}/resolve/{revision}/{file}`` as huggingface_hub 2.x
expects: files stored with LFS get a 302 to another host name (``localhost`` instead of
``127.0.0.1``, like a CDN) with ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``; small
files a 200 with a git-sha1 ``ETag``; both carry ``X-Repo-Commit``. Missing repos, revisions
and files get the Hub's ``X-Error-Code``. Every request is recorded. A test can move ``main``
to another commit (``main_commit``), have the CDN send damaged bytes for a file (``damage``)
or cut every transfer short (``truncate``), or drop ``X-Repo-Commit`` (``hub_headers``), as
a proxy or a plain web server would; ``reset_extras`` lists the other switches (tags, renamed
repos, refusals with ``X-Error-Code``, ETag forms, a relative or unreachable CDN, a CDN that
refuses, a wrong ``X-Linked-Size``, a transfer that breaks off once and resumes with Range).

In-process tests set the environment with monkeypatch (restorecli reads ``HF_ENDPOINT``,
``HF_HOME`` and ``HF_HUB_OFFLINE`` at each call); the CLI tests run ``restore`` in a
subprocess, where huggingface_hub reads them at import as it does for users.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from restorecli.weights import (ChecksumError, HubError, OfflineError, WeightsError,
                                parse_hf_uri, resolve_weights)
from restorecli.weights.errors import TransferError
from restorecli.weights.hub import HubRef, cached_file

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RESTORE = [sys.executable, "-c", "from restorecli.cli import main; main()"]


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, tuple[bytes, bool]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.main_commit = COMMIT
        self.damaged: dict[str, bytes] = {}  # sha256 -> the bytes the CDN sends instead
        self.truncate = False
        self.hub_headers = True
        self.reset_extras()
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                hub._answer(self, body=False)

            def do_GET(self):
                hub._answer(self, body=True)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, repo_id: str, filename: str, data: bytes, lfs: bool = True) -> str:
        self.repos.setdefault(repo_id, {})[filename] = (data, lfs)
        return hashlib.sha256(data).hexdigest()

    def reset_extras(self) -> None:
        """The switches for what the real Hub (or a CDN, a mirror) may also do."""
        self.tags: dict[str, str] = {}  # tag or branch -> commit, besides main
        self.renamed: dict[str, str] = {}  # old repo id -> new: a relative 307, as the Hub does
        self.errors: dict[str, tuple[int, dict[str, str]]] = {}  # repo id -> status, headers
        self.cdn = "other-host"  # or "relative": Location: /cdn/<sha>, a path on the Hub's own host
        self.etag_form = '"{}"'  # the ETag's form: '{}' unquoted, 'W/"{}"' weak
        self.small_etag = "git"  # a small file's ETag: the git blob sha1 (the Hub's), "sha1" or "sha256"
        # of the content, or any other string as it is
        self.linked_size_delta = 0  # X-Linked-Size off by this many bytes (the CDN sends the real file)
        self.drop_first = False  # the first CDN GET breaks off halfway; a Range GET resumes (206)
        self.auth_seen: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self.cdn_auth: list[str | None] = []  # the CDN's Authorization headers
        self.cdn_refuses: int | None = None  # the CDN answers with this status

    def reset(self) -> None:
        self.repos.clear()
        self.main_commit = COMMIT
        self.damaged.clear()
        self.truncate = False
        self.hub_headers = True
        self.reset_extras()
        with self.lock:
            self.requests.clear()

    def damage(self, data: bytes) -> bytes:
        """The CDN sends these bytes (same length, last byte flipped) for ``data`` from now on."""
        bad = data[:-1] + bytes([data[-1] ^ 0xFF])
        self.damaged[hashlib.sha256(data).hexdigest()] = bad
        return bad

    def count(self, method: str | None = None, kind: str | None = None) -> int:
        """Requests seen; ``kind``: "resolve", "cdn" or "api"."""
        with self.lock:
            return sum(1 for m, p in self.requests
                       if (method is None or m == method) and (kind is None or p.startswith(f"/{kind}")
                                                               or (kind == "resolve" and "/resolve/" in p)))

    def body_downloads(self) -> int:
        with self.lock:
            return sum(1 for m, p in self.requests
                       if m == "GET" and (p.startswith("/cdn/") or "/resolve/" in p))

    # -- the server side ------------------------------------------------------------
    def _send(self, h, status: int, headers: dict[str, str], body: bytes = b"", send_body: bool = True):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", headers.get("Content-Length", str(len(body))))
        h.end_headers()
        if send_body and body:
            h.wfile.write(body)

    def _answer(self, h, body: bool) -> None:
        path = h.path.split("?")[0]
        with self.lock:
            self.requests.append((h.command, path))
        if path.startswith("/api/"):  # e.g. huggingface_hub's agent-harness registry
            data = json.dumps({"standardEnvVars": [], "harnesses": {}}).encode()
            return self._send(h, 200, {"Content-Type": "application/json"}, data, body)
        if path.startswith("/cdn/"):
            with self.lock:
                self.cdn_auth.append(h.headers.get("Authorization"))
            if self.cdn_refuses is not None:  # e.g. an expired signed URL
                return self._send(h, self.cdn_refuses, {"Content-Type": "text/plain"}, b"Request has expired", body)
            sha = path[len("/cdn/"):]
            for files in self.repos.values():
                for data, _ in files.values():
                    if hashlib.sha256(data).hexdigest() == sha:
                        data = self.damaged.get(sha, data)
                        if (self.truncate or self.drop_first) and body:  # announce it all, send half, hang up
                            self.drop_first = False
                            self._send(h, 200, {"Content-Type": "application/octet-stream",
                                                "Content-Length": str(len(data))}, data[:len(data) // 2])
                            h.close_connection = True
                            return
                        ranged = (h.headers.get("Range") or "").removeprefix("bytes=").split("-")[0]
                        if ranged.isdigit():  # a resumed download
                            start = int(ranged)
                            return self._send(h, 206, {"Content-Type": "application/octet-stream",
                                                       "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"},
                                              data[start:], body)
                        mirror = ({"X-Repo-Commit": self.main_commit, "ETag": f'"{sha}"'}
                                  if self.cdn == "relative-hub" else {})
                        return self._send(h, 200, {"Content-Type": "application/octet-stream", **mirror}, data, body)
            return self._send(h, 404, {})
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._send(h, 404, {})
        repo_id, revision, filename = "/".join(parts[:2]), unquote(parts[3]), "/".join(parts[4:])
        with self.lock:
            self.auth_seen.append((path, h.headers.get("Authorization")))
        if repo_id in self.renamed:  # the Hub's answer for a renamed repo
            new = self.renamed[repo_id]
            return self._send(h, 307, {"Location": f"/{new}/resolve/{parts[3]}/{'/'.join(parts[4:])}"}, b"", body)
        if repo_id in self.errors:
            status, headers = self.errors[repo_id]
            return self._send(h, status, headers, b"", body)
        if repo_id not in self.repos:
            return self._send(h, 401, {"X-Error-Code": "RepoNotFound",
                                       "X-Error-Message": "Repository not found"}, b"", body)
        if revision not in ("main", COMMIT, self.main_commit, *self.tags):
            return self._send(h, 404, {"X-Error-Code": "RevisionNotFound",
                                       "X-Error-Message": "Invalid rev id"}, b"", body)
        commit = self.main_commit if revision == "main" else self.tags.get(revision, revision)
        if filename not in self.repos[repo_id]:
            return self._send(h, 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit,
                                       "X-Error-Message": "Entry not found"}, b"", body)
        data, lfs = self.repos[repo_id][filename]
        hub = {"X-Repo-Commit": commit} if self.hub_headers else {}
        if lfs:
            sha = hashlib.sha256(data).hexdigest()
            where = (f"/cdn/{sha}" if self.cdn.startswith("relative") else f"{self.cdn}/cdn/{sha}"
                     if self.cdn.startswith("http") else f"http://localhost:{self.port}/cdn/{sha}")
            return self._send(h, 302, {
                "Location": where,
                **hub,
                **self._etag("X-Linked-Etag", sha),
                "X-Linked-Size": str(len(data) + self.linked_size_delta),
                **self._etag("ETag", hashlib.sha1(b"pointer " + sha.encode()).hexdigest()),
                "Content-Length": "0",
            }, b"", body)
        etag = {"git": hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest(),
                "sha1": hashlib.sha1(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()
                }.get(self.small_etag, self.small_etag)
        return self._send(h, 200, {**hub, **self._etag("ETag", etag),
                                   "Content-Type": "application/octet-stream"}, data, body)

    def _etag(self, name: str, value: str) -> dict[str, str]:
        return {} if self.etag_form is None else {name: self.etag_form.format(value)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def fake_hub():
    hub = FakeHub()
    yield hub
    hub.close()


@pytest.fixture
def hub(fake_hub, tmp_path, monkeypatch):
    """The fake Hub, emptied, with this process's environment pointing at it."""
    fake_hub.reset()
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                "HF_TOKEN", "RESTORECLI_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no user registry
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    # huggingface_hub fetches an "agent harness" list from its import-time endpoint once per
    # process; keep that off the network (it is not what these tests count).
    import huggingface_hub.utils._detect_agent as detect
    monkeypatch.setattr(detect, "_registry", {"standardEnvVars": [], "harnesses": {}}, raising=False)
    # huggingface_hub fixes offline mode when first imported (perhaps by an earlier test that
    # set HF_HUB_OFFLINE=1): these tests decide it through the environment instead.
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return fake_hub


def write_registry(path: Path, *entries: dict) -> Path:
    from restorecli.weights.registry import entry_to_toml

    path.write_text("format = 1\n\n" + "\n".join(entry_to_toml(e) for e in entries), encoding="utf-8")
    return path


def hub_entry(name: str, sha256: str, repo_id: str = "lab/irnext", filename: str = "model.safetensors",
              **extra) -> dict:
    return {"name": name, "task": "dehaze", "arch": "irnext-dehaze", "repo_id": repo_id,
            "filename": filename, "revision": "main", "sha256": sha256, **extra}


PAYLOAD = os.urandom(200_000)


# ----------------------------------------------------------------------------- hf:// parsing

def test_parse_hf_uri():
    assert parse_hf_uri("hf://lab/repo/model.safetensors") == HubRef("lab/repo", "model.safetensors", "main")
    assert parse_hf_uri("hf://lab/repo@v1.0/sub/dir/m.pth") == HubRef("lab/repo", "sub/dir/m.pth", "v1.0")
    assert parse_hf_uri(f"hf://lab/repo@{COMMIT}/m.pkl").revision == COMMIT
    assert parse_hf_uri("hf://lab/repo@refs%2Fpr%2F3/m.pkl").revision == "refs/pr/3"
    assert HubRef("lab/repo", "m.pkl", "refs/pr/3").uri == "hf://lab/repo@refs%2Fpr%2F3/m.pkl"
    for bad in ("hf://lab/model.safetensors", "hf://lab//m.pth", "hf://lab/repo@/m.pth",
                "hf://la b/repo/m.pth", "hf://lab/repo/../m.pth"):
        with pytest.raises(WeightsError, match="hf://|repo|revision|inside"):
            parse_hf_uri(bad)


def test_hub_file_urls_read_as_hf_uris():
    """The address a user copies from the Hub's file page (blob) or download link (resolve)."""
    url = "https://huggingface.co/lab/repo/resolve/main/sub/m.safetensors?download=true"
    assert parse_hf_uri(url) == HubRef("lab/repo", "sub/m.safetensors", "main")
    assert parse_hf_uri("https://hf.co/lab/repo/blob/v1.0/m.pth") == HubRef("lab/repo", "m.pth", "v1.0")
    assert parse_hf_uri("https://huggingface.co/lab/repo/resolve/refs%2Fpr%2F3/m.pkl").revision == "refs/pr/3"
    assert parse_hf_uri("https://huggingface.co/lab/repo/resolve/v%2525/m.pkl").revision == "v%25"  # decoded once
    # a pull request's revision written out, as the Hub also serves it
    assert parse_hf_uri("https://huggingface.co/lab/repo/resolve/refs/pr/3/sub/m.pkl") == HubRef(
        "lab/repo", "sub/m.pkl", "refs/pr/3")
    for bad in ("https://example.com/lab/repo/resolve/main/m.pth", "https://huggingface.co/lab/repo",
                "https://huggingface.co/lab/repo/tree/main/m.pth"):
        with pytest.raises(WeightsError, match="not a Hub file URL"):
            parse_hf_uri(bad)


def test_hub_file_urls_at_an_endpoint_under_a_path(monkeypatch):
    """A mirror served under a path (HF_ENDPOINT=https://mirror.lab/hf): its file URLs carry the
    prefix before owner/repo; the same host without the prefix is not that Hub."""
    monkeypatch.setenv("HF_ENDPOINT", "https://Mirror.lab/hf/")
    url = "https://mirror.lab/hf/lab/repo/resolve/v2/sub/m.safetensors"
    assert parse_hf_uri(url) == HubRef("lab/repo", "sub/m.safetensors", "v2")
    assert parse_hf_uri("https://huggingface.co/lab/repo/blob/main/m.pth") == HubRef("lab/repo", "m.pth", "main")
    for bad in ("https://mirror.lab/other/lab/repo/resolve/v2/m.safetensors",
                "https://mirror.lab/lab/repo/resolve/v2/m.safetensors"):
        with pytest.raises(WeightsError, match="not a Hub file URL"):
            parse_hf_uri(bad)


# ----------------------------------------------------------------------------- resolution

def test_first_run_downloads_then_cache_then_offline(hub, tmp_path, monkeypatch):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))

    first = resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert first.info["source"] == "download"
    assert first.path.read_bytes() == PAYLOAD
    assert Path(os.environ["HF_HOME"]) in first.path.parents  # the standard Hub cache under HF_HOME
    assert (first.name, first.arch, first.info["sha256"]) == ("haze-lab", "irnext-dehaze", sha)
    assert hub.body_downloads() == 1

    before = len(hub.requests)
    again = resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert again.info["source"] == "cache" and again.path == first.path
    assert len(hub.requests) == before  # a verified cached file needs no request

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert offline.path == first.path and offline.info["source"] == "cache"
    assert len(hub.requests) == before


def test_default_entry_for_the_task_comes_from_the_hub(hub, tmp_path):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha, default=True))
    got = resolve_weights("dehaze", registry=reg)
    assert got.name == "haze-lab" and got.info["default"] is True
    assert resolve_weights("dehaze", model="irnext", registry=reg).name == "haze-lab"
    with pytest.raises(WeightsError, match="no default weights for 'derain' with --model irnext"):
        resolve_weights("derain", model="irnext", registry=reg)


def test_offline_with_empty_cache_says_so(hub, tmp_path, monkeypatch):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError) as e:
        resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert "offline" in str(e.value) and "restore weights download haze-lab" in str(e.value)
    assert hub.requests == []


def test_unreachable_hub_fails_fast_with_the_command_to_run(hub, tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", "0" * 64))
    started = time.monotonic()
    with pytest.raises(OfflineError) as e:
        resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert time.monotonic() - started < 8  # huggingface_hub alone retries for ~25 s
    assert "cannot reach the Hub" in str(e.value) and "restore weights download haze-lab" in str(e.value)


def test_wrong_sha256_of_an_lfs_file_is_refused_before_downloading(hub, tmp_path):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", "ab" * 32))
    with pytest.raises(ChecksumError, match="sha256 mismatch.*refused before downloading"):
        resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert hub.body_downloads() == 0
    assert cached_file(HubRef("lab/irnext", "model.safetensors")) is None


def test_wrong_sha256_after_download_is_refused_and_the_hubs_file_kept(hub, tmp_path):
    """A small file (no LFS sha256 to refuse it by beforehand) is fetched, then refused for the
    entry; it is the Hub's own file (its git sha1 checks), so it stays cached for what else
    names it (here hf://, and an entry with the right sha256), and is never used for this one."""
    sha = hub.add("lab/small", "model.safetensors", PAYLOAD, lfs=False)  # ETag: git sha1, not sha256
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", "ab" * 32, repo_id="lab/small"),
                         hub_entry("haze-ok", sha, repo_id="lab/small"))
    for _ in range(2):
        with pytest.raises(ChecksumError, match=r"hf://lab/small/model.safetensors \(commit 0123456789ab\) is "
                                                "not the registered file: its sha256 is " + sha):
            resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert hub.body_downloads() == 1
    kept = cached_file(HubRef("lab/small", "model.safetensors"))
    assert kept is not None and kept.read_bytes() == PAYLOAD
    before = hub.body_downloads()
    assert resolve_weights("dehaze", weights="haze-ok", registry=reg).path == kept
    assert hub.body_downloads() == before


def test_corrupt_cached_copy_is_refused_offline_and_downloaded_again_online(hub, tmp_path, monkeypatch):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))
    path = resolve_weights("dehaze", weights="haze-lab", registry=reg).path
    blob = Path(os.path.realpath(path))
    blob.write_bytes(bytes([PAYLOAD[0] ^ 0xFF]) + PAYLOAD[1:])  # bit rot / tampering (always a change)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        resolve_weights("dehaze", weights="haze-lab", registry=reg)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    fixed = resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert fixed.info["source"] == "download" and fixed.path.read_bytes() == PAYLOAD
    assert hub.body_downloads() == 2


def test_hub_errors_are_one_clear_line(hub, tmp_path):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml",
                         hub_entry("no-file", sha, filename="other.safetensors"),
                         hub_entry("no-repo", sha, repo_id="lab/missing"),
                         hub_entry("no-rev", sha, revision="v9"))
    with pytest.raises(HubError, match="file 'other.safetensors' not found in Hub repo lab/irnext"):
        resolve_weights("dehaze", weights="no-file", registry=reg)
    with pytest.raises(HubError, match="Hub repo lab/missing not found.*HF_TOKEN"):
        resolve_weights("dehaze", weights="no-repo", registry=reg)
    with pytest.raises(HubError, match="revision 'v9' not found in Hub repo lab/irnext"):
        resolve_weights("dehaze", weights="no-rev", registry=reg)


def test_hf_uri_is_downloaded_and_checked_against_the_hub_etag(hub, tmp_path, monkeypatch):
    hub.add("lab/irnext", "sub/model.safetensors", PAYLOAD)
    uri = f"hf://lab/irnext@{COMMIT}/sub/model.safetensors"
    got = resolve_weights("dehaze", model="irnext", weights=uri)
    assert got.arch == "irnext-dehaze" and got.info["source"] == "download"
    assert got.info["verified"] is True and got.info["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    before = len(hub.requests)
    assert resolve_weights("dehaze", model="irnext", weights=uri).info["source"] == "cache"
    assert len(hub.requests) == before  # a commit-pinned cached file needs no request

    # flip the last byte (a fixed replacement byte would equal the random payload's 1 time in 256)
    Path(os.path.realpath(got.path)).write_bytes(PAYLOAD[:-1] + bytes([PAYLOAD[-1] ^ 0xFF]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ChecksumError, match="corrupt"):
        resolve_weights("dehaze", model="irnext", weights=uri)


def test_hub_url_at_the_endpoint_is_downloaded_like_its_hf_uri(hub, tmp_path):
    hub.add("lab/irnext", "sub/model.safetensors", PAYLOAD)
    url = f"{hub.url}/lab/irnext/resolve/{COMMIT}/sub/model.safetensors"  # HF_ENDPOINT is the stand-in
    got = resolve_weights("dehaze", model="irnext", weights=url)
    assert got.info["source"] == "download" and got.info["verified"] is True
    assert got.info["hub"] == f"hf://lab/irnext@{COMMIT}/sub/model.safetensors"
    assert got.path.read_bytes() == PAYLOAD


def test_hf_uri_of_a_registered_file_uses_the_entry(hub, tmp_path):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", "cd" * 32))
    with pytest.raises(ChecksumError):  # the entry's (wrong) sha256 applies to its hf:// address too
        resolve_weights("dehaze", weights="hf://lab/irnext/model.safetensors", registry=reg)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))
    got = resolve_weights("dehaze", weights="hf://lab/irnext/model.safetensors", registry=reg)
    assert got.name == "haze-lab" and got.arch == "irnext-dehaze"


@pytest.fixture
def no_symlinks(monkeypatch):
    """A Hub cache without symlinks (HF_HUB_DISABLE_SYMLINKS=1, or Windows without developer
    mode): snapshot files are plain copies, and the blob name (the Hub's hash) is not visible."""
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_SYMLINKS", True)


def closed_port_endpoint() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def repo_files(tmp_path: Path, repo: str = "lab--irnext") -> list[Path]:
    """Every file the cache holds for a repo (snapshots and blobs), locks and refs aside."""
    root = tmp_path / "hf" / "hub" / f"models--{repo}"
    return sorted(p for p in root.rglob("*") if p.is_file() and "refs" not in p.parts) if root.exists() else []


def test_damaged_download_is_refused_and_removed_without_symlinks(hub, tmp_path, no_symlinks):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    hub.damage(PAYLOAD)  # same length, wrong content: only the hash tells
    uri = "hf://lab/irnext/model.safetensors"
    with pytest.raises(ChecksumError) as e:
        resolve_weights("dehaze", model="irnext", weights=uri)
    message = str(e.value)
    assert "does not match the Hub's checksum" in message and "removed" in message
    assert "delete it and download again" not in message  # it was just downloaded, and is gone
    assert cached_file(HubRef("lab/irnext", "model.safetensors")) is None
    assert repo_files(tmp_path) == []  # neither the snapshot copy nor a blob is kept

    hub.damaged.clear()  # the server is fixed: the next run downloads the good file
    got = resolve_weights("dehaze", model="irnext", weights=uri)
    assert got.path.read_bytes() == PAYLOAD and got.info["verified"] is True
    assert not got.path.is_symlink()


def test_damaged_cached_copy_is_replaced_without_symlinks(hub, tmp_path, no_symlinks):
    """huggingface_hub's force_download keeps an existing snapshot file when it cannot link:
    the damaged copy must be removed before the new download, or the new one is never used."""
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))
    path = resolve_weights("dehaze", weights="haze-lab", registry=reg).path
    assert not path.is_symlink()
    path.write_bytes(PAYLOAD[:-1] + bytes([PAYLOAD[-1] ^ 0xFF]))
    fixed = resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert fixed.info["source"] == "download" and fixed.path.read_bytes() == PAYLOAD

    # The same without a registry entry: the HEAD on main gives the Hub's hash to check against.
    fixed.path.write_bytes(PAYLOAD[::-1])
    got = resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    assert got.info["source"] == "download" and got.path.read_bytes() == PAYLOAD
    assert got.info["verified"] is True


def test_a_branch_is_asked_about_once_and_followed_when_it_moves(hub, tmp_path, monkeypatch):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    uri = "hf://lab/irnext/model.safetensors"  # main
    first = resolve_weights("dehaze", model="irnext", weights=uri)
    assert first.info["source"] == "download"

    before = len(hub.requests)
    again = resolve_weights("dehaze", model="irnext", weights=uri)
    assert again.info["source"] == "cache" and again.path == first.path and "note" not in again.info
    assert hub.requests[before:] == [("HEAD", "/lab/irnext/resolve/main/model.safetensors")]  # one HEAD

    newer = os.urandom(150_000)
    hub.add("lab/irnext", "model.safetensors", newer)
    hub.main_commit = "fedcba9876543210fedcba9876543210fedcba98"
    moved = resolve_weights("dehaze", model="irnext", weights=uri)
    assert moved.info["source"] == "download" and moved.path.read_bytes() == newer
    assert hub.main_commit in moved.path.parts

    before = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = resolve_weights("dehaze", model="irnext", weights=uri)
    assert offline.path == moved.path and len(hub.requests) == before
    assert "offline" in offline.info["note"] and "cached copy" in offline.info["note"]

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    unreachable = resolve_weights("dehaze", model="irnext", weights=uri)
    assert unreachable.path == moved.path and unreachable.info["source"] == "cache"
    assert "cannot reach the Hub" in unreachable.info["note"] and "cached copy" in unreachable.info["note"]


def test_an_hf_branch_address_keeps_its_copy_offline_when_the_cache_moved_on(hub, tmp_path, monkeypatch):
    """Another file of the repo fetched at a newer commit moves the cache's refs/main; offline,
    or with the Hub out of reach, the older snapshot's copy is what there is, and is used."""
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    uri = "hf://lab/irnext/model.safetensors"
    first = resolve_weights("dehaze", model="irnext", weights=uri)
    hub.main_commit = "fedcba9876543210fedcba9876543210fedcba98"
    hub.add("lab/irnext", "config.json", b"{}", lfs=False)
    resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/config.json")   # refs/main moves
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = resolve_weights("dehaze", model="irnext", weights=uri)
    assert offline.path == first.path and "offline" in offline.info["note"]
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    unreachable = resolve_weights("dehaze", model="irnext", weights=uri)
    assert unreachable.path == first.path and "cannot reach the Hub" in unreachable.info["note"]


def test_a_server_that_is_not_a_hub_is_named_as_such(hub, tmp_path):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    hub.hub_headers = False  # a plain web server, or a proxy's page: no X-Repo-Commit
    with pytest.raises(HubError) as e:
        resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    assert "not as a Hugging Face Hub" in str(e.value) and "offline" not in str(e.value)
    assert hub.body_downloads() == 0


def test_corrupt_cached_copy_with_the_hub_out_of_reach_says_it_is_there_but_corrupt(hub, tmp_path, monkeypatch):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))
    path = resolve_weights("dehaze", weights="haze-lab", registry=reg).path
    Path(os.path.realpath(path)).write_bytes(PAYLOAD[::-1])
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    for weights in ("haze-lab", "hf://lab/irnext/model.safetensors"):
        with pytest.raises(ChecksumError) as e:
            resolve_weights("dehaze", model="irnext", weights=weights, registry=reg if weights == "haze-lab" else None)
        message = str(e.value)
        assert "cannot reach the Hub" in message and "is there but" in message, message
        assert "not in the Hugging Face cache" not in message


# ----------------------------------------------------------------------------- the CLI
# `restore weights ...` in-process (CliRunner; the environment set as above), and the
# commands that must prove the environment works in a fresh process, in a subprocess.

def invoke(args: list[str]):
    from typer.testing import CliRunner

    from restorecli.cli import app

    return CliRunner().invoke(app, args, catch_exceptions=False)


def one_line_error(result) -> str:
    assert result.returncode != 0 if hasattr(result, "returncode") else result.exit_code != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_cli_download_list_verify(hub, tmp_path, monkeypatch):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha, size=len(PAYLOAD)))
    monkeypatch.setenv("COLUMNS", "200")

    listed = invoke(["weights", "list", "--registry", str(reg)])
    assert listed.exit_code == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "haze-lab" in line)
    assert "remote" in row and "irnext-dehaze" in row and "200.0 kB" in row

    got = invoke(["weights", "download", "haze-lab", "--registry", str(reg)])
    assert got.exit_code == 0, got.stderr
    path = Path(got.stdout.strip())
    assert path.read_bytes() == PAYLOAD and (tmp_path / "hf") in path.parents
    assert hub.body_downloads() == 1

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(hub.requests)
    listed = invoke(["weights", "list", "--registry", str(reg)])
    assert "cached" in next(line for line in listed.stdout.splitlines() if "haze-lab" in line)
    ok = invoke(["weights", "verify", "--registry", str(reg)])
    assert ok.exit_code == 0 and " ok " in ok.stdout, ok.stderr
    assert len(hub.requests) == before

    Path(os.path.realpath(path)).write_bytes(PAYLOAD[::-1])
    bad = invoke(["weights", "verify", "--registry", str(reg)])
    assert bad.exit_code == 1 and "MISMATCH" in bad.stdout
    assert "sha256 mismatch" in one_line_error(bad)


def test_cli_list_and_verify_follow_the_copy_runs_use_after_the_branch_moved(hub, tmp_path, monkeypatch):
    """The entry pins content at main; main moves and hf:// fetches the new file: runs still use
    the older snapshot's registered copy, and list/verify report that one, not the newer file."""
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))
    monkeypatch.setenv("COLUMNS", "250")
    got = invoke(["weights", "download", "haze-lab", "--registry", str(reg)])
    registered = Path(got.stdout.strip())
    hub.add("lab/irnext", "model.safetensors", os.urandom(150_000))
    hub.main_commit = "fedcba9876543210fedcba9876543210fedcba98"
    assert invoke(["weights", "download", "hf://lab/irnext/model.safetensors"]).exit_code == 0   # no entry
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_weights("dehaze", weights="haze-lab", registry=reg).path == registered
    ok = invoke(["weights", "verify", "haze-lab", "--registry", str(reg)])
    assert ok.exit_code == 0 and str(registered) in ok.stdout.replace("\n", ""), ok.stdout
    # an entry whose only cached copy is another commit's intact file: outdated, not corrupt
    write_registry(reg, hub_entry("haze-lab", sha, revision="fedcba9876543210fedcba9876543210fedcba98"))
    shutil.rmtree(registered.parent)
    old = invoke(["weights", "verify", "haze-lab", "--registry", str(reg)])
    assert old.exit_code == 0 and "outdated" in old.stdout and "MISMATCH" not in old.stdout
    listed = invoke(["weights", "list", "--registry", str(reg)])
    assert "outdated" in next(line for line in listed.stdout.splitlines() if "haze-lab" in line)
    with pytest.raises(ChecksumError, match=r"offline \(HF_HUB_OFFLINE is set\), and the cached copy of "
                                            r"weights 'haze-lab' .* is there but another commit's file"):
        resolve_weights("dehaze", weights="haze-lab", registry=reg)


def test_cli_download_of_a_registered_address_checks_the_entrys_sha256(hub, tmp_path):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", "ab" * 32))
    bad = invoke(["weights", "download", "hf://lab/irnext/model.safetensors", "--registry", str(reg)])
    assert bad.exit_code == 1 and "sha256 mismatch" in one_line_error(bad)
    assert hub.body_downloads() == 0


def test_cli_unknown_name_is_one_line_with_close_names(hub, tmp_path):
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", "ab" * 32))
    unknown = invoke(["weights", "download", "haze-lb", "--registry", str(reg)])
    assert unknown.exit_code == 2
    assert "no weights named 'haze-lb'" in one_line_error(unknown)
    assert "Did you mean: haze-lab?" in unknown.stderr
    assert hub.requests == []


def test_cli_malformed_hub_address_is_a_usage_error(hub, tmp_path):
    src = _tiny_png(tmp_path / "in.png")
    for args in (["weights", "download", "hf://lab/model.safetensors"],
                 ["dehaze", str(src), "-o", str(tmp_path / "out.png"), "--weights", "hf://lab/model.safetensors"]):
        result = invoke(args)
        assert result.exit_code == 2, result.stderr
        assert "expected hf://owner/repo/path/to/file" in one_line_error(result)
    assert hub.requests == []


def cli_env(hub: FakeHub, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "RESTORECLI_", "XDG_")) and k != "TRANSFORMERS_OFFLINE"}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "data"), NO_PROXY="127.0.0.1,localhost",
               HF_HUB_DISABLE_TELEMETRY="1", PYTHONWARNINGS="ignore", COLUMNS="200")
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(RESTORE + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_offline_with_empty_cache_in_a_fresh_process(hub, tmp_path):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))
    env = cli_env(hub, tmp_path, HF_HUB_OFFLINE="1")
    offline = run_cli(["weights", "download", "haze-lab", "--registry", str(reg)], env, tmp_path)
    assert offline.returncode == 1
    message = one_line_error(offline)
    assert "offline" in message and "restore weights download haze-lab" in message
    assert hub.requests == []


def _tiny_png(path: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(path)
    return path


def test_cli_task_uses_cached_hub_weights_offline(hub, tmp_path, dehaze_weights):
    """Downloaded once (here in-process), a second run with HF_HUB_OFFLINE=1 makes no request."""
    data = dehaze_weights.read_bytes()
    sha = hub.add("lab/irnext", "model.safetensors", data)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))
    assert resolve_weights("dehaze", weights="haze-lab", registry=reg).info["source"] == "download"
    src = _tiny_png(tmp_path / "in.png")

    before = len(hub.requests)
    run = run_cli(["dehaze", str(src), "-o", str(tmp_path / "out.png"), "--weights", "haze-lab",
                   "--registry", str(reg), "--tile", "0", "--quiet"],
                  cli_env(hub, tmp_path, HF_HUB_OFFLINE="1"), tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out.png").is_file()
    assert len(hub.requests) == before


def test_cli_task_refuses_weights_with_a_wrong_sha256_and_writes_nothing(hub, tmp_path):
    """First run through the real CLI: downloads via HF_ENDPOINT into HF_HOME, hashes, refuses."""
    hub.add("lab/small", "model.safetensors", PAYLOAD, lfs=False)  # downloaded, then hashed
    reg = write_registry(tmp_path / "reg.toml", hub_entry("myentry", "ef" * 32, repo_id="lab/small",
                                                          task="deblur"))
    src = _tiny_png(tmp_path / "in.png")
    run = run_cli(["deblur", str(src), "--weights", "myentry", "--registry", str(reg)],
                  cli_env(hub, tmp_path), tmp_path)
    assert run.returncode == 1
    assert "is not the registered file: its sha256 is" in one_line_error(run)
    assert hub.body_downloads() == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == ["in.png"]


def test_cli_cut_short_download_is_one_line_saying_so(hub, tmp_path):
    """huggingface_hub retries a cut transfer and logs each try; the CLI shows our line only."""
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    hub.truncate = True
    run = run_cli(["weights", "download", "hf://lab/irnext/model.safetensors"], cli_env(hub, tmp_path), tmp_path)
    assert run.returncode == 1
    message = one_line_error(run)
    assert "cut short" in message and "offline" not in message
    assert run.stderr.strip().splitlines() == [message], run.stderr  # nothing from the library
    assert cached_file(HubRef("lab/irnext", "model.safetensors")) is None


def test_cli_notes_a_cached_branch_used_with_the_hub_out_of_reach(hub, tmp_path):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    uri = "hf://lab/irnext/model.safetensors"
    first = run_cli(["weights", "download", uri], cli_env(hub, tmp_path), tmp_path)
    assert first.returncode == 0 and "downloaded" in first.stderr, first.stderr
    again = run_cli(["weights", "download", uri], cli_env(hub, tmp_path, HF_ENDPOINT=closed_port_endpoint()),
                    tmp_path)
    assert again.returncode == 0, again.stderr
    notes = [line for line in again.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "cannot reach the Hub" in notes[0] and "cached copy" in notes[0]
    assert again.stdout.strip() == first.stdout.strip()


# ----------------------------------------------------------------------------- the real Hub's other answers
# What huggingface.co (and its CDN, or a mirror) also sends, and what huggingface_hub accepts:
# ETags quoted, unquoted or weak (W/"..."), renamed repos (a relative 307 to the new name),
# tags and refs/pr/N, gated and private repos (401/403 with X-Error-Code), a token
# (HF_TOKEN) that goes to the Hub but never to the CDN, resumed transfers (Range, 206), and
# an X-Linked-Size that is not the size of what the CDN sends.

@pytest.mark.parametrize("form", ['{}', 'W/"{}"'])
@pytest.mark.parametrize("lfs", [True, False])
def test_unquoted_and_weak_etags_are_the_same_hash(hub, tmp_path, form, lfs):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD, lfs=lfs)
    hub.etag_form = form
    uri = "hf://lab/irnext/model.safetensors"
    got = resolve_weights("dehaze", model="irnext", weights=uri)
    assert got.info["source"] == "download" and got.info["verified"] is True
    before = hub.body_downloads()
    again = resolve_weights("dehaze", model="irnext", weights=uri)
    assert again.info["source"] == "cache" and hub.body_downloads() == before
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))
    assert resolve_weights("dehaze", weights="haze-lab", registry=reg).info["source"] == "cache"


@pytest.mark.parametrize("kind", ["sha1", "sha256"])
def test_a_stand_in_whose_etag_is_a_plain_hash_of_the_content(hub, tmp_path, kind):
    """A server written as a Hub stand-in may send the sha1 or sha256 of the file as its ETag
    (not git's blob sha1): the file is accepted and checked, and a damaged one still refused."""
    hub.add("lab/irnext", "model.safetensors", PAYLOAD, lfs=False)
    hub.small_etag = kind
    got = resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    assert got.info["verified"] is True and got.path.read_bytes() == PAYLOAD
    # another repo (the cache would take the first file's blob for the same ETag), damaged bytes
    hub.add("lab/damaged", "model.safetensors", PAYLOAD[:-1] + bytes([PAYLOAD[-1] ^ 0xFF]), lfs=False)
    hub.small_etag = {"sha1": hashlib.sha1(PAYLOAD).hexdigest(), "sha256": hashlib.sha256(PAYLOAD).hexdigest()}[kind]
    with pytest.raises(ChecksumError, match="does not match"):
        resolve_weights("dehaze", model="irnext", weights="hf://lab/damaged/model.safetensors")


def test_a_renamed_repo_is_followed(hub, tmp_path):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    hub.renamed["old/irnext"] = "lab/irnext"
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha, repo_id="old/irnext"))
    got = resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert got.info["source"] == "download" and got.path.read_bytes() == PAYLOAD
    got = resolve_weights("dehaze", model="irnext", weights="hf://old/irnext/model.safetensors")
    assert got.path.read_bytes() == PAYLOAD and got.info["verified"] is True


def test_tags_and_pull_request_refs(hub, tmp_path, monkeypatch):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    other = "fedcba9876543210fedcba9876543210fedcba98"
    hub.tags.update({"v1.0": COMMIT, "refs/pr/3": other})
    got = resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext@v1.0/model.safetensors")
    assert COMMIT in got.path.parts and got.info["verified"] is True
    pr = resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext@refs%2Fpr%2F3/model.safetensors")
    assert other in pr.path.parts
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(hub.requests)
    assert resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext@v1.0/model.safetensors").path == got.path
    assert len(hub.requests) == before


def test_hf_hub_cache_is_where_files_go_and_are_found_offline(hub, tmp_path, monkeypatch):
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha))
    got = resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert (tmp_path / "elsewhere") in got.path.parents
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_weights("dehaze", weights="haze-lab", registry=reg).info["source"] == "cache"
    uri = resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    assert uri.path == got.path and uri.info["verified"] is True


def test_hf_token_goes_to_the_hub_and_not_to_the_cdn(hub, tmp_path, monkeypatch):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_test_token")
    resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    resolve_paths = [a for p, a in hub.auth_seen]
    assert resolve_paths and all(a == "Bearer hf_secret_test_token" for a in resolve_paths)
    cdn = [p for m, p in hub.requests if p.startswith("/cdn/")]
    assert cdn  # the CDN was asked; its requests are not in auth_seen, checked below
    assert hub.cdn_auth == [None] * len(cdn)


def hub_refusal(repo_status: tuple[int, dict[str, str]], hub, **env) -> str:
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    hub.errors["lab/irnext"] = repo_status
    with pytest.raises(WeightsError) as e:
        resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    message = str(e.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_gated_private_and_bad_token_refusals_say_what_to_do(hub, tmp_path, monkeypatch):
    gated = {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to model lab/irnext is restricted."}
    message = hub_refusal((401, gated), hub)
    assert "gated" in message and "HF_TOKEN" in message
    hub.reset()
    monkeypatch.setenv("HF_TOKEN", "hf_not_accepted")
    message = hub_refusal((403, gated), hub)
    assert "gated" in message and "accept" in message
    hub.reset()
    message = hub_refusal((401, {"X-Error-Message": "Invalid credentials in Authorization header"}), hub)
    assert "HF_TOKEN" in message and "invalid" in message.lower(), message
    hub.reset()
    message = hub_refusal((403, {"X-Error-Message": "Your token does not have read access"}), hub)
    assert "HTTP 403" in message and "read access" in message, message
    hub.reset()
    message = hub_refusal((429, {"X-Error-Message": "rate limited"}), hub)
    assert "429" in message, message


def test_a_transfer_that_breaks_off_once_is_resumed(hub, tmp_path):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    hub.drop_first = True
    got = resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    assert got.path.read_bytes() == PAYLOAD and got.info["verified"] is True


@pytest.mark.parametrize("delta", [-1000, 1000])
def test_a_size_that_is_not_the_announced_one_is_said_so(hub, tmp_path, delta):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    hub.linked_size_delta = delta  # the Hub announces one size, the CDN sends another (whole)
    with pytest.raises(TransferError) as e:
        resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    message = str(e.value)
    assert "\n" not in message and f"localhost:{hub.port}" in message  # the CDN's host sent it
    if delta < 0:  # more bytes than announced: nothing was cut short
        assert f"gave {len(PAYLOAD)} bytes, more than the {len(PAYLOAD) + delta}" in message, message
        assert "cut short" not in message
    else:
        assert f"stopped at {len(PAYLOAD)} of the {len(PAYLOAD) + delta} bytes" in message, message
    assert cached_file(HubRef("lab/irnext", "model.safetensors")) is None


def test_a_cdn_that_cannot_be_reached_is_named(hub, tmp_path):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    hub.cdn = closed_port_endpoint()  # the Hub answers; its CDN's host is blocked (a firewall)
    with pytest.raises(TransferError) as e:
        resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    message = str(e.value)
    assert "cannot be reached" in message and hub.cdn.split("//")[1] in message, message
    assert "cut short" not in message and "offline" not in message


def test_an_answer_without_an_etag_is_not_called_offline(hub, tmp_path):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    hub.etag_form = None
    with pytest.raises(HubError) as e:
        resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    assert "no ETag header" in str(e.value) and "offline" not in str(e.value)
    assert hub.body_downloads() == 0


def test_a_cdn_path_on_the_hubs_own_host(hub, tmp_path):
    """A relative Location is followed by huggingface_hub (as for a renamed repo), and the answer
    at its end is the one read: it must carry the Hub's headers (a mirror that serves the file
    itself does), else neither huggingface_hub nor we can use it, and the message says where."""
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    hub.cdn = "relative"
    with pytest.raises(HubError) as e:
        resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    assert "where it redirected" in str(e.value) and f"/cdn/{sha}" in str(e.value), str(e.value)
    assert "offline" not in str(e.value) and hub.body_downloads() == 0

    hub.cdn = "relative-hub"
    got = resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    assert got.path.read_bytes() == PAYLOAD and got.info["verified"] is True
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", "ab" * 32))
    with pytest.raises(ChecksumError, match="refused before downloading"):
        resolve_weights("dehaze", weights="haze-lab", registry=reg)


def test_a_registered_file_cached_at_an_older_commit_is_used_offline(hub, tmp_path, monkeypatch):
    """Two entries in one repo: the second download moves the cache's refs/main to a newer
    commit, which holds no copy of the first file. The first file's copy (of the older commit)
    still has the registered sha256: it is used, offline and online, without a request."""
    sha = hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    other = os.urandom(50_000)
    other_sha = hub.add("lab/irnext", "derain.safetensors", other)
    reg = write_registry(tmp_path / "reg.toml", hub_entry("haze-lab", sha),
                         hub_entry("rain-lab", other_sha, filename="derain.safetensors", task="derain",
                                   arch="irnext-deblur"))
    first = resolve_weights("dehaze", weights="haze-lab", registry=reg)
    hub.main_commit = "fedcba9876543210fedcba9876543210fedcba98"  # a commit that changes only derain
    resolve_weights("derain", weights="rain-lab", registry=reg)
    downloads, before = hub.body_downloads(), len(hub.requests)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert offline.path == first.path and offline.info["source"] == "cache"
    listed = invoke(["weights", "list", "--registry", str(reg)])
    assert "cached" in next(line for line in listed.stdout.splitlines() if "haze-lab" in line)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    online = resolve_weights("dehaze", weights="haze-lab", registry=reg)
    assert online.info["source"] == "cache" and len(hub.requests) == before
    assert hub.body_downloads() == downloads

    # A copy of another commit whose sha256 is not the registered one is not used.
    reg2 = write_registry(tmp_path / "reg2.toml", hub_entry("haze-lab", "cd" * 32))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError):
        resolve_weights("dehaze", weights="haze-lab", registry=reg2)


def test_a_branch_that_moved_without_changing_the_file_is_not_downloaded_again(hub, tmp_path):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    uri = "hf://lab/irnext/model.safetensors"
    first = resolve_weights("dehaze", model="irnext", weights=uri)
    hub.main_commit = "fedcba9876543210fedcba9876543210fedcba98"  # a commit that changed another file
    moved = resolve_weights("dehaze", model="irnext", weights=uri)
    assert hub.main_commit in moved.path.parts and moved.path.read_bytes() == PAYLOAD
    assert os.path.realpath(moved.path) == os.path.realpath(first.path)  # the same blob
    assert hub.body_downloads() == 1 and moved.info["verified"] is True


def test_a_cdn_refusal_is_not_blamed_on_the_token(hub, tmp_path, monkeypatch):
    hub.add("lab/irnext", "model.safetensors", PAYLOAD)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_test_token")
    hub.cdn_refuses = 403  # the Hub accepted the token; the CDN's signed URL is refused
    with pytest.raises(TransferError) as e:
        resolve_weights("dehaze", model="irnext", weights="hf://lab/irnext/model.safetensors")
    message = str(e.value)
    assert f"localhost:{hub.port}" in message and "HTTP 403" in message and "HF_TOKEN" not in message, message
    assert "\n" not in message


@pytest.mark.parametrize("endpoint", ["http://localhost:99999", "ftp://mirror.lab", "mirror.lab/hf"])
def test_cli_bad_hf_endpoint_is_one_line(hub, tmp_path, endpoint):
    """A mistyped HF_ENDPOINT (a port out of range: huggingface_hub's import itself fails on it
    after printing its own line; another scheme; no scheme) is one line of ours naming it, for a
    download and for a task run's --weights, with no Hub request made."""
    env = cli_env(hub, tmp_path, HF_ENDPOINT=endpoint)
    for args in (["weights", "download", "hf://lab/irnext/model.safetensors"],
                 ["denoise", "--weights", "hf://lab/irnext/model.safetensors", str(Path(__file__).parent.parent / "examples" / "chelsea_noisy25.png"), "-o",
                  str(tmp_path / "out.png")]):
        result = run_cli(args, env, tmp_path)
        assert result.returncode in (1, 2), result.stderr
        assert one_line_error(result).startswith(f"error: HF_ENDPOINT={endpoint!r} is not a valid http(s) address")
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.png").exists()
    assert hub.requests == []
