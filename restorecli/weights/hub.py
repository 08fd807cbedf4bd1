"""The Hugging Face Hub side: ``hf://`` references, the local Hub cache, and downloads.

Downloads go through ``huggingface_hub.hf_hub_download`` into the standard Hub cache, so
``HF_HOME``/``HF_HUB_CACHE``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_TOKEN`` work as
everywhere else, and its progress bar shows on stderr.

A branch or tag (``hf://owner/repo/file`` is ``main``) may move: when online, one HEAD
request asks the Hub which commit it names now (:func:`head`); a 40-hex commit never moves
and needs none. Every file that comes from the Hub is checked against the content hash the
Hub gives in that answer (the LFS sha256, or the git blob sha1 of a small file), whether or
not the cache uses symlinks.

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_OFFLINE`` once, when it is
imported (into ``huggingface_hub.constants``). This module reads them from the environment at
each call instead (falling back to those constants), so a program that sets them after
importing the library, or a test, gets what it asked for.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .. import __version__
from .errors import (ChecksumError, HubAddressError, HubError, HubNotFoundError, HubUnreachableError,
                     OfflineError, TransferError, WeightsError)
from .hashing import git_blob_sha1, sha1_file, sha256_file

__all__ = [
    "HubRef",
    "HubFileInfo",
    "is_hub_address",
    "parse_hf_uri",
    "is_commit",
    "head",
    "cached_commit",
    "other_cached_copy",
    "discard_from_cache",
    "is_damaged",
    "hub_endpoint",
    "hub_cache_dir",
    "is_offline",
    "cached_file",
    "download",
    "hub_content_hash",
    "verify_against_hub_etag",
]

_TRUE = {"1", "on", "yes", "true"}
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class HubRef:
    """A file in a Hub model repository at a revision (branch, tag or commit)."""

    repo_id: str
    filename: str
    revision: str = "main"

    @property
    def uri(self) -> str:
        rev = "" if self.revision == "main" else "@" + self.revision.replace("/", "%2F")
        return f"hf://{self.repo_id}{rev}/{self.filename}"

    def __str__(self) -> str:
        return self.uri


_HUB_HOSTS = ("huggingface.co", "www.huggingface.co", "hf.co")
# how our requests name themselves in their User-Agent (the HEAD of ours and huggingface_hub's GET)
_CLIENT = {"library_name": "restorecli", "library_version": __version__}


def is_hub_address(text: str) -> bool:
    """``hf://...`` or an http(s) URL (a file page or download link copied from the Hub)."""
    return text.startswith(("hf://", "https://", "http://"))


def _hf_uri_of_url(url: str) -> str:
    """``https://huggingface.co/owner/repo/{resolve,blob}/revision/path`` (what the Hub's file
    page and its download button give; also at ``HF_ENDPOINT``) as ``hf://owner/repo@revision/path``."""
    parts, endpoint = urlsplit(url), urlsplit(hub_endpoint())
    raw = [p for p in parts.path.split("/") if p]
    if parts.netloc.lower() == endpoint.netloc.lower():
        prefix = [p for p in endpoint.path.split("/") if p]   # an endpoint served under a path
        raw = raw[len(prefix):] if raw[:len(prefix)] == prefix else []
    elif parts.netloc.lower() not in _HUB_HOSTS:
        raw = []
    segs = [unquote(p) for p in raw]
    if len(segs) < 5 or segs[2] not in ("resolve", "blob"):
        raise HubAddressError(f"{url}: not a Hub file URL; expected https://huggingface.co/owner/repo/"
                              "resolve/revision/path/to/file (or hf://owner/repo[@revision]/path/to/file)")
    rev, path = raw[3], segs[4:]  # the revision still percent-encoded: parse_hf_uri decodes it once
    if segs[3] == "refs" and len(segs) >= 7 and segs[4] in ("pr", "convert"):
        rev, path = "%2F".join(raw[3:6]), segs[6:]   # refs/pr/3 written out, as the Hub accepts it
    return f"hf://{segs[0]}/{segs[1]}@{rev}/" + "/".join(path)


def parse_hf_uri(uri: str) -> HubRef:
    """``hf://owner/repo[@revision]/path/to/file`` (a revision with ``/`` written as ``%2F``),
    or a Hub file URL (``https://huggingface.co/owner/repo/resolve/revision/path``)."""
    if uri.startswith(("https://", "http://")):
        uri = _hf_uri_of_url(uri)
    if not uri.startswith("hf://"):
        raise HubAddressError(f"not an hf:// reference: {uri}")
    rest = uri[len("hf://"):]
    parts = rest.split("/")
    usage = "expected hf://owner/repo/path/to/file or hf://owner/repo@revision/path/to/file"
    if len(parts) < 3 or not all(parts):
        raise HubAddressError(f"{uri}: {usage}")
    owner, repo = parts[0], parts[1]
    revision = "main"
    if "@" in repo:
        repo, revision = repo.split("@", 1)
        revision = unquote(revision)
        if not revision:
            raise HubAddressError(f"{uri}: empty revision after '@'; {usage}")
    if not (_REPO_PART.match(owner) and _REPO_PART.match(repo)):
        raise HubAddressError(f"{uri}: {owner}/{repo} is not a valid repo id; {usage}")
    filename = "/".join(parts[2:])
    if any(p in (".", "..") for p in parts[2:]):
        raise HubAddressError(f"{uri}: the file path must stay inside the repo")
    return HubRef(repo_id=f"{owner}/{repo}", filename=filename, revision=revision)


def is_commit(revision: str) -> bool:
    """A full commit sha: what it names never changes, so a cached copy needs no request."""
    return bool(_HEX40.match(revision))


# --------------------------------------------------------------------------- environment

def _constants():
    from huggingface_hub import constants
    return constants


def hub_endpoint() -> str:
    """``HF_ENDPOINT`` (checked: huggingface_hub fails to import with a bad port in it, after
    printing its own line) or the library's default."""
    value = os.environ.get("HF_ENDPOINT")
    if not value:
        return _constants().ENDPOINT.rstrip("/")
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise HubAddressError(f"HF_ENDPOINT={value!r} is not a valid http(s) address such as https://huggingface.co "
                              "(unset it to use the Hub)")
    return value.rstrip("/")


def hub_cache_dir() -> Path:
    """The Hub cache, resolved like huggingface_hub does, but from the environment right now."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        p = env["HF_HUB_CACHE"]
    elif env.get("HUGGINGFACE_HUB_CACHE"):
        p = env["HUGGINGFACE_HUB_CACHE"]
    elif env.get("HF_HOME"):
        p = os.path.join(env["HF_HOME"], "hub")
    elif env.get("XDG_CACHE_HOME"):
        p = os.path.join(env["XDG_CACHE_HOME"], "huggingface", "hub")
    else:
        p = _constants().HF_HUB_CACHE
    return Path(os.path.expandvars(os.path.expanduser(p)))


def is_offline() -> bool:
    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    if flag is not None:
        return flag.strip().lower() in _TRUE
    return bool(_constants().HF_HUB_OFFLINE)


def _client_errors(names: tuple[str, ...], clients: tuple[str, ...]) -> list[type[BaseException]]:
    """The exception classes called ``names`` of those HTTP ``clients`` that are installed."""
    found: list[type[BaseException]] = []
    for module in clients:
        try:
            mod = __import__(module)
        except ImportError:
            continue
        found += [getattr(mod, n) for n in names if isinstance(getattr(mod, n, None), type)]
    return found


def _network_errors() -> tuple[type[BaseException], ...]:
    """Connection failures and timeouts of whichever HTTP client huggingface_hub uses."""
    return (ConnectionError, TimeoutError,
            *_client_errors(("TransportError", "TimeoutException"), ("httpx2", "httpx")),
            *_client_errors(("ConnectionError", "Timeout"), ("requests",)))


# --------------------------------------------------------------------------- cache

def cached_file(ref: HubRef) -> Path | None:
    """The cached copy of ``ref``, without any network access (None if not cached)."""
    hub_endpoint()  # a bad HF_ENDPOINT is said before huggingface_hub's import trips on it
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(ref.repo_id, ref.filename, cache_dir=str(hub_cache_dir()),
                                       revision=ref.revision)
    except ValueError:
        return None
    if isinstance(found, str) and os.path.isfile(found):
        return Path(found)
    return None


def other_cached_copy(ref: HubRef, sha256: str | None, skip: Path | None = None) -> Path | None:
    """A cached copy of ``ref``'s file at another commit whose content is ``sha256``; no network.

    A registry entry pins the file's content, not a commit: when the cache's ``refs/<revision>``
    has moved on (another file of the repo was downloaded at a newer commit) the snapshot of that
    revision holds no copy, but an older snapshot's copy is still the registered file.
    ``skip``: a copy already looked at. Newest snapshot first; each candidate is hashed, except
    an LFS blob whose name (its sha256) already tells it is another file. ``sha256`` None: the
    newest copy, whatever its content (an ``hf://`` branch address used offline).
    """
    snapshots = hub_cache_dir() / ("models--" + ref.repo_id.replace("/", "--")) / "snapshots"
    try:
        commits = [d for d in snapshots.iterdir() if _HEX40.match(d.name) and d.is_dir()]
    except OSError:
        return None
    commits.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for commit in commits:
        p = commit / ref.filename
        if (skip is not None and p == Path(skip)) or not p.is_file():
            continue
        if sha256 is None:
            return p
        blob = os.path.basename(os.path.realpath(p)) if p.is_symlink() else ""
        if _HEX64.match(blob) and blob != sha256:
            continue
        try:
            if sha256_file(p) == sha256:
                return p
        except OSError:
            continue
    return None


def cached_commit(path: Path) -> str | None:
    """The commit a cached file belongs to (its ``snapshots/<commit>/`` folder)."""
    parts = Path(path).parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "snapshots" and i + 1 < len(parts) and _HEX40.match(parts[i + 1]):
            return parts[i + 1]
    return None


def discard_from_cache(path: Path, etag: str | None = None) -> None:
    """Remove a refused file from the Hub cache: its snapshot entry, the blob it links to, and
    the blob named after ``etag`` (a cache without symlinks may keep a copy there). Nothing
    outside the cache is touched."""
    cache = hub_cache_dir().resolve()
    candidates = [Path(os.path.realpath(path)), Path(path)]
    parts = Path(path).parts
    if etag and "snapshots" in parts:
        storage = Path(*parts[:len(parts) - 1 - parts[::-1].index("snapshots")])
        candidates.append(storage / "blobs" / etag)
    for p in candidates:
        try:
            if cache in p.parent.resolve().parents and (p.is_file() or p.is_symlink()):
                p.unlink()
        except OSError:
            pass


def hub_content_hash(path: Path, etag: str | None = None) -> tuple[str, str] | None:
    """What the Hub says the cached file's content is: ``("sha256"|"sha1", hex)``.

    The cache names each blob after the file's ETag: the sha256 of the content for files
    stored with LFS (weights always are), the git blob sha1 for small files. When the cache
    does not use symlinks the blob name is not visible from the snapshot; then ``etag`` (from
    a HEAD answer, :func:`head`) is used, if given. None when neither is known.
    """
    for value in ((os.path.basename(os.path.realpath(path)) if path.is_symlink() else None), etag):
        if value and _HEX64.match(value):
            return ("sha256", value)
        if value and _HEX40.match(value):
            return ("sha1", value)
    return None


def verify_against_hub_etag(path: Path, what: str, etag: str | None = None,
                            fresh: bool = False) -> tuple[str, bool]:
    """Hash a Hub file; check it against the Hub's content hash when that is known.

    ``etag``: the hash from a HEAD answer (needed when the cache has no symlinks). ``fresh``:
    the file was just downloaded (the message then says so). Returns ``(sha256, checked)``;
    raises :class:`ChecksumError` on a mismatch (the caller removes a fresh download).
    """
    sha = sha256_file(path)
    known = hub_content_hash(path, etag)
    if known is None:
        return sha, False
    kind, expected = known
    actual = sha if kind == "sha256" else git_blob_sha1(path)
    if kind == "sha1" and actual != expected and sha1_file(path) == expected:
        actual = expected  # the plain sha1 of the content: a Hub stand-in's ETag, not the real Hub's
    if actual != expected:
        if fresh:
            raise ChecksumError(f"{what}: the download does not match the Hub's checksum (its {kind} is "
                                f"{actual}, the Hub's is {expected}) and was removed from the cache; "
                                "run the command again, and if it persists the server sends a damaged file")
        again = (f"once online, `restore weights download {what}` replaces it" if what.startswith("hf://")
                 else "delete it and download again")
        raise ChecksumError(f"{what}: the cached file {path} is corrupt: its {kind} is {actual}, "
                            f"the Hub's is {expected}; {again}")
    return sha, True


def is_damaged(path: Path, info: HubFileInfo | None = None) -> bool:
    """Whether a cached file is not what the Hub says it is (its blob name, or the hash in
    ``info`` when that answer is for the file's commit). False when neither is known."""
    try:
        verify_against_hub_etag(path, str(path), info.etag_for(path) if info is not None else None)
    except ChecksumError:
        return True
    return False


# --------------------------------------------------------------------------- download

def offline_message(label: str, command_name: str, reason: str | None = None, corrupt: Path | None = None,
                    problem: str = "corrupt (it fails the Hub's checksum)") -> str:
    """Why ``label`` cannot be had: offline (or the Hub out of reach, for ``reason``), and
    nothing usable cached (``corrupt``: the cached copy there, which fails its check:
    ``problem`` says how)."""
    where = hub_cache_dir()
    if reason is None:
        head = "this machine is offline (HF_HUB_OFFLINE is set)"
    else:
        head = f"this machine is offline or cannot reach the Hub at {hub_endpoint()} ({reason})"
    if corrupt is not None:
        cached = f"the cached copy of {label} ({corrupt}) is there but {problem}"
    else:
        cached = f"{label} is not in the Hugging Face cache ({where})"
    return f"{head}, and {cached}: once online, run `restore weights download {command_name}`"


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _http_status(e: BaseException) -> tuple[int | str, str]:
    """An HTTP error's status and the server's reason: its X-Error-Message (the Hub's), else the
    first line of its body, else huggingface_hub's first line (only the status and URL)."""
    response = getattr(e, "response", None)
    status = getattr(response, "status_code", "?")
    said = response.headers.get("X-Error-Message") if response is not None else None
    if not said and response is not None:
        try:
            said = next((line.strip() for line in response.text.splitlines() if line.strip()), "")[:200]
        except Exception:  # a body not read, or not text
            said = None
    return status, said or _short(e)


def _hub_error(e: BaseException, ref: HubRef) -> WeightsError:
    from huggingface_hub import errors as hf

    endpoint = hub_endpoint()
    if isinstance(e, hf.GatedRepoError):
        return HubError(f"{ref.repo_id} is gated on the Hub: accept its terms on the model page, "
                        "then set HF_TOKEN (or run `hf auth login`)")
    if isinstance(e, hf.RepositoryNotFoundError):
        return HubError(f"Hub repo {ref.repo_id} not found at {endpoint} "
                        "(if it is private, set HF_TOKEN to a token that can read it)")
    if isinstance(e, hf.RevisionNotFoundError):
        return HubNotFoundError(f"revision {ref.revision!r} not found in Hub repo {ref.repo_id}")
    if isinstance(e, hf.EntryNotFoundError):
        return HubNotFoundError(f"file {ref.filename!r} not found in Hub repo {ref.repo_id} at revision {ref.revision!r}")
    if isinstance(e, hf.HfHubHTTPError):
        status, said = _http_status(e)
        if status == 401:  # not RepoNotFound: the token itself was refused
            return HubError(f"the Hub at {endpoint} refused the token sent for {ref.uri} (HTTP 401: {said}): "
                            "set HF_TOKEN to a valid token (or run `hf auth login`), or unset it for a public repo")
        if status == 403:
            return HubError(f"the Hub at {endpoint} refused {ref.uri} (HTTP 403: {said}): the token (HF_TOKEN "
                            f"or `hf auth login`) needs read access to {ref.repo_id}")
        return HubError(f"the Hub at {endpoint} refused {ref.uri} (HTTP {status}): {said}")
    if isinstance(e, hf.HFValidationError):
        return HubAddressError(f"{ref.uri}: {_short(e)}")
    return WeightsError(f"downloading {ref.uri} failed: {_short(e)}")


def _not_a_hub(ref: HubRef, missing: str = "X-Repo-Commit", answered_from: str | None = None) -> HubError:
    """A server that answered, but without the header ``missing`` that a Hub sends (``answered_from``:
    where the answer came from, when that is not the address asked, i.e. after a redirect)."""
    via = f" (the answer came from {answered_from}, where it redirected)" if answered_from else ""
    return HubError(f"the server at {hub_endpoint()} answered for {ref.uri}{via}, but not as a Hugging Face Hub "
                    f"does (no {missing} header): check HF_ENDPOINT and any proxy in between")


@dataclass(frozen=True)
class HubFileInfo:
    """The Hub's answer for a file at a revision: the commit it names now, and the file's
    content hash (LFS sha256 or git blob sha1; None if the server gave neither)."""

    commit: str
    etag: str | None
    size: int | None = None
    location: str | None = None  # where the file is sent from (a CDN, for a file stored with LFS)

    def etag_for(self, path: Path) -> str | None:
        """The hash, if it applies to the cached ``path``: only to the file of the commit named
        (a branch can move between two requests)."""
        return self.etag if cached_commit(path) == self.commit else None


def head(ref: HubRef, *, label: str, command_name: str) -> HubFileInfo:
    """Ask the Hub (one HEAD request, no retries) which commit ``ref`` names and what the
    file's content hash is.

    Raises :class:`OfflineError` when offline, :class:`HubUnreachableError` when the Hub does
    not answer (network, timeout, a 5xx), :class:`HubError` for the Hub's refusals (missing
    repo, revision or file; no access) and for a server that is not a Hub.
    """
    endpoint = hub_endpoint()
    if is_offline():
        raise OfflineError(offline_message(label, command_name))
    from huggingface_hub import errors as hf
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        url = hf_hub_url(ref.repo_id, ref.filename, revision=ref.revision, endpoint=endpoint)
        meta = get_hf_file_metadata(url, endpoint=endpoint, **_CLIENT)
    except hf.OfflineModeIsEnabled:
        raise OfflineError(offline_message(label, command_name)) from None
    except hf.HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if isinstance(status, int) and status >= 500:
            reason = f"HTTP {status}"
            raise HubUnreachableError(offline_message(label, command_name, reason), reason) from None
        raise _hub_error(e, ref) from None
    except (hf.HFValidationError, hf.EntryNotFoundError) as e:
        raise _hub_error(e, ref) from None
    except _network_errors() as e:
        raise HubUnreachableError(offline_message(label, command_name, _short(e)), _short(e)) from None
    # huggingface_hub follows a redirect that stays on the same host (a renamed repo) and reads the
    # headers of the last answer (a redirect to another host, a CDN, is not followed: its own
    # headers are the Hub's); without these, huggingface_hub cannot download the file either.
    followed = (meta.location if meta.location and meta.location != url
                and urlsplit(meta.location).netloc == urlsplit(url).netloc else None)
    if not meta.commit_hash:
        raise _not_a_hub(ref, "X-Repo-Commit", followed)
    if not meta.etag:
        raise _not_a_hub(ref, "ETag", followed)
    etag = meta.etag.strip('"').lower()
    return HubFileInfo(commit=meta.commit_hash, etag=etag, size=meta.size, location=meta.location)


def _transfer_error(ref: HubRef, e: BaseException, command_name: str, info: HubFileInfo) -> TransferError:
    """The transfer itself failed: no connection to the host that sends the file (a CDN for files
    stored with LFS), a connection that broke off, or not the number of bytes the Hub announced."""
    host = urlsplit(info.location or "").netloc or urlsplit(hub_endpoint()).netloc or hub_endpoint()
    again = f"run `restore weights download {command_name}` to try again"
    sizes = re.search(r"should be of size (\d+) but has size (\d+)", str(e))
    if sizes:
        announced, got = int(sizes[1]), int(sizes[2])
        if got > announced:
            return TransferError(f"downloading {ref.uri} from {host} gave {got} bytes, more than the {announced} "
                                 f"the Hub announced for it; the file is not used: {again}, and if it persists "
                                 "the server (or a proxy in between) is at fault")
        return TransferError(f"downloading {ref.uri} from {host} stopped at {got} of the {announced} bytes the "
                             f"Hub announced; the partial file is not used: {again}")
    if isinstance(e, _connect_errors()):
        return TransferError(f"the Hub answered for {ref.uri}, but the host that sends the file, {host}, cannot "
                             f"be reached ({_short(e)}): check any firewall or proxy for that host, then {again}")
    return TransferError(f"downloading {ref.uri} from {host} was cut short ({_short(e)}); the partial file "
                         f"is not used: {again}")


def _connect_errors() -> tuple[type[BaseException], ...]:
    """A connection that could not be opened at all (as opposed to one that broke off)."""
    return (ConnectionRefusedError, *_client_errors(("ConnectError", "ConnectTimeout"), ("httpx2", "httpx")))


def download(ref: HubRef, *, label: str, command_name: str, expected_sha256: str | None = None,
             info: HubFileInfo | None = None) -> tuple[Path, str, bool]:
    """Fetch ``ref`` into the Hub cache (``hf_hub_download``); return ``(path, sha256, checked)``.

    Asks the Hub for the file's metadata first (:func:`head`, unless ``info`` is that answer
    already), without retries, so that an offline machine gets a message at once
    (huggingface_hub alone would retry for about 25 s), and so that a file whose LFS sha256 is
    not ``expected_sha256`` is refused before it is downloaded. The downloaded file is then
    checked against the Hub's content hash (``checked``); a mismatch is removed from the cache
    and raised as :class:`ChecksumError`.
    """
    if info is None:
        info = head(ref, label=label, command_name=command_name)
    from huggingface_hub import errors as hf
    from huggingface_hub import hf_hub_download

    etag = info.etag
    if expected_sha256 and etag and _HEX64.match(etag) and etag != expected_sha256:
        raise ChecksumError(f"{label}: sha256 mismatch, refused before downloading: the Hub's "
                            f"{ref.uri} is {etag}, the registry records {expected_sha256}")
    endpoint = hub_endpoint()
    try:
        path = Path(hf_hub_download(ref.repo_id, ref.filename, revision=ref.revision,
                                    cache_dir=str(hub_cache_dir()), endpoint=endpoint, **_CLIENT))
    except hf.OfflineModeIsEnabled:
        raise OfflineError(offline_message(label, command_name)) from None
    except hf.LocalEntryNotFoundError as e:  # its own HEAD, a moment after ours, got no answer
        cause = e.__cause__ or e
        if isinstance(cause, hf.FileMetadataError):  # an answer, but without a Hub's headers
            raise _not_a_hub(ref, "X-Repo-Commit" if "X-Repo-Commit" in str(cause) else "ETag") from None
        raise HubUnreachableError(offline_message(label, command_name, _short(cause)), _short(cause)) from None
    except (hf.HfHubHTTPError, hf.HFValidationError, hf.EntryNotFoundError) as e:
        request = getattr(getattr(e, "response", None), "request", None)
        host = urlsplit(str(request.url)).netloc if request is not None else ""
        if host and host != urlsplit(endpoint).netloc:  # the CDN refused, not the Hub
            status, said = _http_status(e)
            raise TransferError(f"the Hub answered for {ref.uri}, but the host that sends the file, {host}, "
                                f"refused it (HTTP {status}: {said}): run `restore weights download "
                                f"{command_name}` to try again; if it persists, check any proxy for that host") from None
        raise _hub_error(e, ref) from None
    except _network_errors() as e:  # the metadata came; the transfer itself failed
        raise _transfer_error(ref, e, command_name, info) from None
    except OSError as e:
        if "consistency check failed" in str(e).lower():  # not the number of bytes the Hub announced
            raise _transfer_error(ref, e, command_name, info) from None
        raise WeightsError(f"downloading {ref.uri} into {hub_cache_dir()} failed: {_short(e)}") from None
    # The Hub's hash applies to the file of the commit it named (the commit can move between
    # our HEAD and huggingface_hub's; a symlinked cache names the blob after the hash it used).
    try:
        sha, checked = verify_against_hub_etag(path, label, info.etag_for(path), fresh=True)
    except ChecksumError:
        discard_from_cache(path, info.etag_for(path))
        raise
    return path, sha, checked
