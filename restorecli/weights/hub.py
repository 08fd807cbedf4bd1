"""The Hugging Face Hub side: ``hf://`` references, the local Hub cache, and downloads.

Downloads go through ``huggingface_hub.hf_hub_download`` into the standard Hub cache, so
``HF_HOME``/``HF_HUB_CACHE``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_TOKEN`` work as
everywhere else, and its progress bar shows on stderr.

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
from urllib.parse import unquote

from .errors import ChecksumError, HubError, OfflineError, WeightsError
from .hashing import git_blob_sha1, sha256_file

__all__ = [
    "HubRef",
    "parse_hf_uri",
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


def parse_hf_uri(uri: str) -> HubRef:
    """``hf://owner/repo[@revision]/path/to/file`` (a revision with ``/`` written as ``%2F``)."""
    if not uri.startswith("hf://"):
        raise WeightsError(f"not an hf:// reference: {uri}")
    rest = uri[len("hf://"):]
    parts = rest.split("/")
    usage = "expected hf://owner/repo/path/to/file or hf://owner/repo@revision/path/to/file"
    if len(parts) < 3 or not all(parts):
        raise WeightsError(f"{uri}: {usage}")
    owner, repo = parts[0], parts[1]
    revision = "main"
    if "@" in repo:
        repo, revision = repo.split("@", 1)
        revision = unquote(revision)
        if not revision:
            raise WeightsError(f"{uri}: empty revision after '@'; {usage}")
    if not (_REPO_PART.match(owner) and _REPO_PART.match(repo)):
        raise WeightsError(f"{uri}: {owner}/{repo} is not a valid repo id; {usage}")
    filename = "/".join(parts[2:])
    if any(p in (".", "..") for p in parts[2:]):
        raise WeightsError(f"{uri}: the file path must stay inside the repo")
    return HubRef(repo_id=f"{owner}/{repo}", filename=filename, revision=revision)


# --------------------------------------------------------------------------- environment

def _constants():
    from huggingface_hub import constants
    return constants


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or _constants().ENDPOINT).rstrip("/")


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


def _network_errors() -> tuple[type[BaseException], ...]:
    """Connection failures and timeouts of whichever HTTP client huggingface_hub uses."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, names in (("httpx2", ("TransportError", "TimeoutException")),
                          ("httpx", ("TransportError", "TimeoutException")),
                          ("requests", ("ConnectionError", "Timeout"))):
        try:
            mod = __import__(module)
        except ImportError:
            continue
        errors += [getattr(mod, n) for n in names if isinstance(getattr(mod, n, None), type)]
    return tuple(errors)


# --------------------------------------------------------------------------- cache

def cached_file(ref: HubRef) -> Path | None:
    """The cached copy of ``ref``, without any network access (None if not cached)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(ref.repo_id, ref.filename, cache_dir=str(hub_cache_dir()),
                                       revision=ref.revision)
    except ValueError:
        return None
    if isinstance(found, str) and os.path.isfile(found):
        return Path(found)
    return None


def hub_content_hash(path: Path) -> tuple[str, str] | None:
    """What the Hub says the cached file's content is: ``("sha256"|"sha1", hex)``.

    The cache names each blob after the file's ETag: the sha256 of the content for files
    stored with LFS (weights always are), the git blob sha1 for small files. None when the
    cache does not use symlinks (then the blob name is not visible from the snapshot).
    """
    if not path.is_symlink():
        return None
    blob = os.path.basename(os.path.realpath(path))
    if _HEX64.match(blob):
        return ("sha256", blob)
    if _HEX40.match(blob):
        return ("sha1", blob)
    return None


def verify_against_hub_etag(path: Path, what: str) -> tuple[str, bool]:
    """Hash a cached Hub file; check it against the Hub's ETag when that is known.

    Returns ``(sha256, checked)``; raises :class:`ChecksumError` on a mismatch.
    """
    sha = sha256_file(path)
    known = hub_content_hash(path)
    if known is None:
        return sha, False
    kind, expected = known
    actual = sha if kind == "sha256" else git_blob_sha1(path)
    if actual != expected:
        raise ChecksumError(f"{what}: the cached file {path} is corrupt: its {kind} is {actual}, "
                            f"the Hub's is {expected}; delete it and download again")
    return sha, True


# --------------------------------------------------------------------------- download

def offline_message(label: str, command_name: str, reason: str | None = None) -> str:
    where = hub_cache_dir()
    if reason is None:
        head = "this machine is offline (HF_HUB_OFFLINE is set)"
    else:
        head = f"this machine is offline or cannot reach the Hub at {hub_endpoint()} ({reason})"
    return (f"{head}, and {label} is not in the Hugging Face cache ({where}): "
            f"once online, run `restore weights download {command_name}`")


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


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
        return HubError(f"revision {ref.revision!r} not found in Hub repo {ref.repo_id}")
    if isinstance(e, hf.EntryNotFoundError):
        return HubError(f"file {ref.filename!r} not found in Hub repo {ref.repo_id} at revision {ref.revision!r}")
    if isinstance(e, hf.HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", "?")
        return HubError(f"the Hub at {endpoint} refused {ref.uri} (HTTP {status}): {_short(e)}")
    if isinstance(e, hf.HFValidationError):
        return WeightsError(f"{ref.uri}: {_short(e)}")
    return WeightsError(f"downloading {ref.uri} failed: {_short(e)}")


def download(ref: HubRef, *, label: str, command_name: str, expected_sha256: str | None = None,
             force: bool = False) -> Path:
    """Fetch ``ref`` into the Hub cache (``hf_hub_download``) and return the cached path.

    Asks the Hub for the file's metadata first, without retries, so that an offline machine
    gets a message at once (huggingface_hub alone would retry for about 25 s), and so that a
    file whose LFS sha256 is not ``expected_sha256`` is refused before it is downloaded.
    """
    if is_offline():
        raise OfflineError(offline_message(label, command_name))
    from huggingface_hub import errors as hf
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    endpoint = hub_endpoint()
    net = _network_errors()
    try:
        url = hf_hub_url(ref.repo_id, ref.filename, revision=ref.revision, endpoint=endpoint)
        meta = get_hf_file_metadata(url, endpoint=endpoint)
    except hf.OfflineModeIsEnabled:
        raise OfflineError(offline_message(label, command_name)) from None
    except (hf.HfHubHTTPError, hf.HFValidationError, hf.EntryNotFoundError) as e:
        raise _hub_error(e, ref) from None
    except net as e:
        raise OfflineError(offline_message(label, command_name, _short(e))) from None
    etag = (meta.etag or "").strip('"').lower()
    if expected_sha256 and _HEX64.match(etag) and etag != expected_sha256:
        raise ChecksumError(f"{label}: sha256 mismatch, refused before downloading: the Hub's "
                            f"{ref.uri} is {etag}, the registry records {expected_sha256}")
    try:
        path = hf_hub_download(ref.repo_id, ref.filename, revision=ref.revision,
                               cache_dir=str(hub_cache_dir()), endpoint=endpoint,
                               force_download=force, library_name="restorecli")
    except hf.OfflineModeIsEnabled:
        raise OfflineError(offline_message(label, command_name)) from None
    except hf.LocalEntryNotFoundError as e:
        raise OfflineError(offline_message(label, command_name, _short(e.__cause__ or e))) from None
    except (hf.HfHubHTTPError, hf.HFValidationError, hf.EntryNotFoundError) as e:
        raise _hub_error(e, ref) from None
    except net as e:
        raise OfflineError(offline_message(label, command_name, _short(e))) from None
    except OSError as e:
        raise WeightsError(f"downloading {ref.uri} into {hub_cache_dir()} failed: {_short(e)}") from None
    return Path(path)
