"""From ``--weights`` / ``--model`` / the task to one verified local file.

``--weights`` takes a registry name, a local file, or ``hf://owner/repo[@revision]/path``.
Without it, the task's default entry is used (for ``--model``'s family or architecture, when
given). A registry entry's file is looked for in this order: its local ``path``; the file
embedded in the package; the Hugging Face cache; a download from the Hub. Every file is
checked against the entry's sha256 before it is used; a mismatch is refused.

An ``hf://`` address not in the registry has no recorded sha256: its file is checked against
the Hub's content hash instead, and a branch or tag is asked about (one HEAD request) when
online, so a branch that moved is downloaded again; offline or with the Hub out of reach, the
cached copy is used and ``info["note"]`` says so.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import (ChecksumError, HubError, HubNotFoundError, HubUnreachableError, OfflineError,
                     UnknownWeightsError, WeightsError)
from .hashing import sha256_file, verify_sha256
from .hub import (HubRef, cached_commit, cached_file, discard_from_cache, download, head, hub_content_hash,
                  hub_endpoint, is_commit, is_damaged, is_hub_address, is_offline, offline_message, other_cached_copy, parse_hf_uri,
                  verify_against_hub_etag)
from .registry import Registry, WeightEntry, load_registry

__all__ = ["ResolvedWeights", "HubFile", "resolve_weights", "locate_entry", "entry_files", "entry_where",
           "architecture_of_file", "fetch_hub_file"]

RegistryArg = str | os.PathLike | Sequence[str | os.PathLike] | None
_WEIGHT_SUFFIXES = (".pkl", ".pth", ".pt", ".bin", ".ckpt", ".safetensors")


@dataclass
class ResolvedWeights:
    path: Path  # a local file, verified
    arch: str  # a create_model name
    name: str | None = None  # registry entry name, when it came from the registry
    config: dict[str, Any] = field(default_factory=dict)  # create_model overrides
    info: dict[str, Any] = field(default_factory=dict)  # free metadata for messages


# --------------------------------------------------------------------------- registry entries

def entry_files(entry: WeightEntry) -> list[tuple[str, Path]]:
    """The copies of an entry's file present on this machine, as ``(kind, path)``; no network.

    For the Hub cache, the copy a run would use (``cached``: the registered content, at the
    entry's revision or, when that has moved on, an older commit's); failing that, the copy at
    the revision, as ``outdated`` (intact by the Hub's hash, but not the registered content: the
    branch moved) or ``mismatch`` (damaged, or the Hub's hash is not visible to tell).
    """
    found: list[tuple[str, Path]] = []
    for kind, p in (("local", entry.local_path), ("embedded", entry.embedded_path)):
        if p is not None and p.is_file():
            found.append((kind, p))
    if entry.repo_id and entry.filename:
        ref = HubRef(entry.repo_id, entry.filename, entry.revision)
        cached = cached_file(ref)
        if cached is not None and sha256_file(cached) == entry.sha256:
            found.append(("cached", cached))
        elif (older := other_cached_copy(ref, entry.sha256, skip=cached)) is not None:
            found.append(("cached", older))
        elif cached is not None:
            found.append(("mismatch" if is_damaged(cached) or hub_content_hash(cached) is None
                          else "outdated", cached))
    return found


def entry_where(entry: WeightEntry) -> str:
    """``local``, ``embedded``, ``cached``, ``remote`` (on the Hub only) or ``missing``."""
    files = entry_files(entry)
    if files:
        return files[0][0]
    return "remote" if entry.repo_id else "missing"


def locate_entry(entry: WeightEntry, allow_download: bool = True) -> tuple[Path, str]:
    """A verified local copy of ``entry``'s file and where it came from.

    ``local`` / ``embedded`` / ``cache`` / ``download``. A copy whose sha256 is wrong is skipped
    (a corrupt cached copy is downloaded again when online); if no good copy can be had, the
    first mismatch is raised (:class:`ChecksumError`).
    """
    label = f"weights {entry.name!r}"
    mismatches: list[ChecksumError] = []
    for kind, p in (("local", entry.local_path), ("embedded", entry.embedded_path)):
        if p is not None and p.is_file():
            try:
                verify_sha256(p, entry.sha256, f"{label} ({kind} file)")
                return p, kind
            except ChecksumError as e:
                mismatches.append(e)

    if entry.repo_id and entry.filename:
        ref = HubRef(entry.repo_id, entry.filename, entry.revision)
        cached = cached_file(ref)
        if cached is not None:
            try:
                verify_sha256(cached, entry.sha256, f"{label} (cached copy of {ref.uri})")
                return cached, "cache"
            except ChecksumError as e:
                mismatches.append(e)
        older = other_cached_copy(ref, entry.sha256, skip=cached)  # the entry pins content, not a commit
        if older is not None:
            return older, "cache"
        if mismatches and (is_offline() or not allow_download):
            if cached is not None and is_offline() and hub_content_hash(cached) and not is_damaged(cached):
                # intact, but the branch's newer file: offline is the problem, not damage
                raise ChecksumError(offline_message(label, entry.name, corrupt=cached,
                                                    problem="another commit's file, not the registered one"))
            raise mismatches[0]
        if not allow_download:
            raise OfflineError(f"{label} is not downloaded yet: run `restore weights download {entry.name}`")
        try:
            info = head(ref, label=label, command_name=entry.name)
        except HubUnreachableError as e:
            if cached is None:
                raise
            # The cached copy is there but fails its check, and no fresh one can be had.
            raise ChecksumError(offline_message(label, entry.name, e.reason, corrupt=cached,
                                                problem="not the registered file (sha256 mismatch)")) from None
        if cached is not None and is_damaged(cached, info):
            # huggingface_hub would keep a damaged snapshot file in a cache without symlinks
            # even with force_download: remove it, then download as new.
            discard_from_cache(cached, info.etag_for(cached))
        path, sha, _ = download(ref, label=label, command_name=entry.name, expected_sha256=entry.sha256,
                                info=info)
        if sha != entry.sha256:
            # The Hub's own file (download() checked it against the Hub's hash): it stays in the
            # cache, where other addresses may use it, and is never used for this entry.
            raise ChecksumError(f"{label}: the Hub's {ref.uri} (commit {info.commit[:12]}) is not the "
                                f"registered file: its sha256 is {sha}, the registry records {entry.sha256}; "
                                "pin the entry's revision to the commit it was registered at, or correct "
                                "its sha256")
        return path, "download"

    if mismatches:
        raise mismatches[0]
    if entry.embedded:
        raise WeightsError(f"{label}: the embedded file {entry.embedded_path} is missing from this "
                           f"installation (reinstall restorecli); entry at {entry.where_defined}")
    raise WeightsError(f"{label}: file not found: {entry.local_path} (entry at {entry.where_defined})")


# --------------------------------------------------------------------------- files

def architecture_of_file(path: Path, task: str) -> str:
    """The registered architecture a checkpoint fits (safetensors ``arch`` metadata first)."""
    from ..checkpoint import CheckpointError, detect_architecture, read_state_dict
    from ..models import get_spec, list_families

    try:
        state = read_state_dict(path)
    except CheckpointError as e:
        raise WeightsError(str(e)) from None
    found = detect_architecture(state)
    declared = None
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open
            with safe_open(str(path), framework="pt") as f:
                declared = (f.metadata() or {}).get("arch")
        except Exception:  # unreadable metadata: fall back to the keys
            declared = None
    if declared in found:
        return declared
    if not found:
        raise WeightsError(f"{path}: the checkpoint matches no known architecture "
                           f"({', '.join(list_families())}); pass --model")
    for name in found:
        if task in get_spec(name).family_default_for:
            return name
    return found[0]


def _registered_task(info: dict[str, Any], registry: Registry | RegistryArg) -> None:
    """A registered file given by its path or Hub address keeps its entry's task in ``info``
    (so a run for another task can say so)."""
    try:
        reg = registry if isinstance(registry, Registry) else load_registry(registry)
    except WeightsError:  # only for a message; a broken registry is reported where it is used
        return
    entry = next((e for e in reg if e.sha256 == info["sha256"]), None)
    if entry is not None:
        info.update(task=entry.task, registered_as=entry.name)


def _resolve_file(task: str, model: str | None, path: Path, registry: RegistryArg) -> ResolvedWeights:
    from ..models import get_spec

    arch = get_spec(model, task).name if model is not None else architecture_of_file(path, task)
    info = {"source": "file", "sha256": sha256_file(path), "verified": False}
    _registered_task(info, registry)
    return ResolvedWeights(path=path, arch=arch, info=info)


def _resolve_entry(task: str, model: str | None, entry: WeightEntry, registry: Registry,
                   allow_download: bool) -> ResolvedWeights:
    from ..models import get_spec

    if model is not None:
        spec = get_spec(model, task)  # an unknown --model fails here, with close names
        if not (entry.arch == model or entry.arch == spec.name or get_spec(entry.arch).family == model):
            raise WeightsError(f"weights {entry.name!r} are for {entry.arch}, not for --model {model}; "
                               f"drop --model or pick other weights")
    path, source = locate_entry(entry, allow_download=allow_download)
    info: dict[str, Any] = dict(entry.meta)
    info.update(source=source, sha256=entry.sha256, verified=True, task=entry.task, ensemble=entry.ensemble,
                registry=str(entry.origin) if entry.origin else None,
                default=registry.is_default(entry), metrics=[dict(m) for m in entry.metrics])
    if entry.repo_id:
        info["hub"] = entry.hub_uri
    return ResolvedWeights(path=path, arch=entry.arch, name=entry.name, config=dict(entry.config), info=info)


@dataclass
class HubFile:
    """A Hub file on this machine: ``source`` is ``cache`` or ``download``; ``checked``: its
    content was compared with the Hub's hash; ``note``: a line for the user, or None."""

    path: Path
    source: str
    sha256: str
    checked: bool
    note: str | None = None


def _short_commit(path: Path) -> str:
    commit = cached_commit(path)
    return f" (commit {commit[:12]})" if commit else ""


def _cached_but_corrupt(label: str, path: Path, e: WeightsError) -> ChecksumError:
    """No fresh copy to be had (``e``) while the cached one fails the Hub's checksum."""
    if isinstance(e, HubUnreachableError):
        return ChecksumError(offline_message(label, label, e.reason, corrupt=path))
    return ChecksumError(f"{e}; and the cached copy of {label} ({path}) is there but corrupt "
                         "(it fails the Hub's checksum)")


def fetch_hub_file(ref: HubRef, allow_download: bool = True) -> HubFile:
    """A cached or downloaded Hub file not in the registry, checked against the Hub's hash.

    A commit-pinned cached copy is used without a request. For a branch or tag, one HEAD asks
    the Hub which commit it names now: the cached copy is used if it is of that commit and
    matches the Hub's hash, else the file is downloaded (a damaged cached copy is removed
    first). Offline, or with the Hub out of reach, the cached copy is used with a ``note``.
    ``checked`` is False only for a cached copy used without a request in a cache without
    symlinks, where the Hub's hash is not visible.
    """
    label = ref.uri
    path = cached_file(ref)
    corrupt = False
    no_network = is_offline() or not allow_download
    # The cache's refs/<branch> moves when another file of the repo is fetched at a newer
    # commit; without an answer from the Hub, the newest copy this file has is what there is.
    stale = other_cached_copy(ref, None) if path is None and not is_commit(ref.revision) else None
    if no_network and path is None:
        path = stale
    if path is not None and (no_network or is_commit(ref.revision)):
        try:
            sha, checked = verify_against_hub_etag(path, label)
        except ChecksumError:
            if no_network:
                raise
            corrupt = True
        else:
            note = None
            if not is_commit(ref.revision):
                why = "offline (HF_HUB_OFFLINE is set)" if is_offline() else "no network access asked for"
                note = (f"{why}: using the cached copy of {label}{_short_commit(path)} without asking "
                        f"the Hub whether {ref.revision!r} has moved")
            return HubFile(path, "cache", sha, checked, note)
    if no_network:
        raise OfflineError(offline_message(label, ref.uri) if is_offline()
                           else f"{label} is not downloaded yet: run `restore weights download {ref.uri}`")

    try:
        info = head(ref, label=label, command_name=ref.uri)
    except (HubUnreachableError, HubError) as e:
        # No answer, or not a Hub's: what is cached is used, and said so. The Hub's word that
        # the revision or the file is not there is raised.
        path = path or stale
        if path is None or isinstance(e, HubNotFoundError):
            raise
        if corrupt:
            raise _cached_but_corrupt(label, path, e) from None
        try:
            sha, checked = verify_against_hub_etag(path, label)
        except ChecksumError:
            raise _cached_but_corrupt(label, path, e) from None
        why = (f"cannot reach the Hub at {hub_endpoint()} ({e.reason})" if isinstance(e, HubUnreachableError)
               else str(e))
        return HubFile(path, "cache", sha, checked,
                       f"{why}; using the cached copy of {label}{_short_commit(path)}, which may not be "
                       f"the latest of {ref.revision!r}")
    if path is not None and not corrupt and cached_commit(path) == info.commit:
        try:
            sha, checked = verify_against_hub_etag(path, label, info.etag_for(path))
            return HubFile(path, "cache", sha, checked)
        except ChecksumError:
            corrupt = True
    if path is not None and corrupt:
        # huggingface_hub would keep a damaged snapshot file in a cache without symlinks even
        # with force_download: remove it, then download as new.
        discard_from_cache(path, info.etag_for(path))
    got, sha, checked = download(ref, label=label, command_name=ref.uri, info=info)
    return HubFile(got, "download", sha, checked)


def _resolve_hub(task: str, model: str | None, uri: str, registry: Registry,
                 allow_download: bool) -> ResolvedWeights:
    from ..models import get_spec

    ref = parse_hf_uri(uri)
    entry = registry.find_hub(ref.repo_id, ref.filename, ref.revision)
    if entry is not None:  # a registered file: its sha256 and architecture apply
        return _resolve_entry(task, model, entry, registry, allow_download)
    got = fetch_hub_file(ref, allow_download)
    arch = get_spec(model, task).name if model is not None else architecture_of_file(got.path, task)
    info = {"source": got.source, "sha256": got.sha256, "verified": got.checked, "hub": ref.uri,
            "verified_against": "the Hub's ETag" if got.checked else None}
    if got.note:
        info["note"] = got.note
    _registered_task(info, registry)
    return ResolvedWeights(path=got.path, arch=arch, info=info)


def _no_default_message(task: str, model: str | None) -> str:
    from ..models import get_spec

    try:
        arch = get_spec(model or "irnext", task).name
    except Exception:
        arch = "ARCH"
    which = f"'{task}' with --model {model}" if model else f"'{task}'"
    return (f"no default weights for {which} yet: pass --weights FILE (or a registry name, or "
            f"hf://owner/repo/file), or import the authors' checkpoint: restore weights import "
            f"FILE.pkl --arch {arch} --name NAME --task {task} (see docs/weights.md)")


def resolve_weights(task: str, model: str | None = None, weights: str | os.PathLike | None = None,
                    registry: RegistryArg = None, *, allow_download: bool = True) -> ResolvedWeights:
    """Resolve ``--weights`` (and ``--model``) for ``task`` to a verified local file.

    ``registry``: extra registry file(s) read after the shipped, user and
    ``RESTORECLI_REGISTRY`` ones (what ``--registry`` gives). ``allow_download=False``
    never touches the network.
    """
    if model is not None:
        from ..models import get_spec

        # A mistyped --model is a usage error, whatever --weights says (else it reads as
        # "no default weights" or "file not found").
        get_spec(model, task)
    if weights is None:
        reg = load_registry(registry)
        entry = reg.default_for(task, model)
        if entry is None:
            raise WeightsError(_no_default_message(task, model))
        return _resolve_entry(task, model, entry, reg, allow_download)

    text = os.fspath(weights)
    if not text.strip():  # an unset shell variable: Path("") would be the current folder
        raise UnknownWeightsError("--weights is empty: give a registry name, a weights file or an hf:// address")
    if is_hub_address(text):
        return _resolve_hub(task, model, text, load_registry(registry), allow_download)
    path = Path(text).expanduser()
    if path.is_file():
        return _resolve_file(task, model, path, registry)
    if path.is_dir():
        raise UnknownWeightsError(f"--weights {text}: is a folder, not a weights file")
    reg = load_registry(registry)
    if text in reg:
        return _resolve_entry(task, model, reg.get(text), reg, allow_download)
    if os.sep in text or "/" in text or text.lower().endswith(_WEIGHT_SUFFIXES):
        raise UnknownWeightsError(f"weights file not found: {text}")
    reg.get(text, file_checked=True)  # raises UnknownWeightsError listing close names
    raise AssertionError("unreachable")  # pragma: no cover
