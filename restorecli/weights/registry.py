"""The weights registry: ``weights.toml`` files listing named, hash-pinned weight files.

Files are read in this order, a later file adding entries or replacing earlier ones by name:

1. the shipped registry, ``restorecli/weights.toml`` inside the package;
2. the user registry, ``$XDG_CONFIG_HOME/restorecli/weights.toml`` (``~/.config/...``);
3. the files in ``RESTORECLI_REGISTRY`` (several separated by ``os.pathsep``);
4. the files given with ``--registry`` (or ``registry=`` in Python).

A task has at most one default per file; when several files name a default for the same task,
the one read last wins. Each entry is ``[[weights]]`` with ``name``, ``task``, ``arch``,
``sha256`` and at least one place the file lives: ``embedded`` (inside the package),
``path`` (a local file, relative to the registry file) or ``repo_id`` + ``filename``
(+ ``revision``) on the Hugging Face Hub. Other keys are free metadata.
"""
from __future__ import annotations

import difflib
import json
import math
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator, Sequence

from ..ensemble import ENSEMBLE_SIZES, is_ensemble_size
from .errors import RegistryError, UnknownWeightsError, WeightsError
from .hashing import is_sha256

__all__ = [
    "WeightEntry",
    "Registry",
    "load_registry",
    "parse_registry",
    "registry_files",
    "shipped_registry_path",
    "user_registry_path",
    "env_registry_paths",
    "package_dir",
    "entry_to_toml",
    "add_entry_to_file",
]

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # restorecli/

# Keys with a meaning; any other key of an entry is free metadata (licence, source, ...).
KNOWN_KEYS = ("name", "task", "arch", "sha256", "repo_id", "filename", "revision", "embedded",
              "path", "default", "size", "config", "metrics", "ensemble")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_HEADER_RE = re.compile(r"^\s*\[\[\s*(?:weights|\"weights\"|'weights')\s*\]\]")
_TOP_HEADER_RE = re.compile(r"^\s*\[")


def package_dir() -> Path:
    return PACKAGE_DIR


def shipped_registry_path() -> Path:
    return PACKAGE_DIR / "weights.toml"


def user_registry_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base).expanduser() / "restorecli" / "weights.toml"


def env_registry_paths() -> list[Path]:
    value = os.environ.get("RESTORECLI_REGISTRY", "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


@dataclass(frozen=True)
class WeightEntry:
    """One ``[[weights]]`` entry, validated."""

    name: str
    task: str
    arch: str
    sha256: str
    repo_id: str | None = None
    filename: str | None = None
    revision: str = "main"
    embedded: str | None = None  # relative to the package directory (restorecli/)
    path: str | None = None  # as written: relative to the registry file's directory
    default: bool = False
    size: int | None = None
    ensemble: int = 1  # the self-ensemble size runs use unless told otherwise (restorecli.ensemble)
    config: dict[str, Any] = field(default_factory=dict)
    metrics: tuple[dict[str, Any], ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    origin: Path | None = None  # the registry file it came from
    line: int | None = None  # line of its [[weights]] header in that file

    @property
    def embedded_path(self) -> Path | None:
        return PACKAGE_DIR / self.embedded if self.embedded else None

    @property
    def local_path(self) -> Path | None:
        if not self.path:
            return None
        p = Path(self.path).expanduser()
        if not p.is_absolute() and self.origin is not None:
            p = self.origin.parent / p
        return p

    @property
    def hub_uri(self) -> str | None:
        if not self.repo_id:
            return None
        rev = "" if self.revision == "main" else "@" + self.revision.replace("/", "%2F")
        return f"hf://{self.repo_id}{rev}/{self.filename}"

    @property
    def where_defined(self) -> str:
        if self.origin is None:
            return "(registry)"
        return f"{self.origin}:{self.line}" if self.line else str(self.origin)

    def metric_text(self) -> str:
        """The first recorded metric, e.g. ``PSNR 32.10 dB (GoPro test)``."""
        if not self.metrics:
            return ""
        m = self.metrics[0]
        value = m["value"]
        text = f"{m['name']} {value:.2f}" if isinstance(value, float) else f"{m['name']} {value}"
        if m.get("unit"):
            text += f" {m['unit']}"
        if m.get("dataset"):
            text += f" ({m['dataset']})"
        return text

    def to_fields(self) -> dict[str, Any]:
        """The entry as the key/values of its TOML table (what :func:`entry_to_toml` writes)."""
        out: dict[str, Any] = {"name": self.name, "task": self.task, "arch": self.arch}
        if self.repo_id:
            out.update(repo_id=self.repo_id, filename=self.filename, revision=self.revision)
        if self.embedded:
            out["embedded"] = self.embedded
        if self.path:
            out["path"] = self.path
        out["sha256"] = self.sha256
        if self.size is not None:
            out["size"] = self.size
        if self.default:
            out["default"] = True
        if self.ensemble != 1:
            out["ensemble"] = self.ensemble
        if self.config:
            out["config"] = dict(self.config)
        out.update(self.meta)
        if self.metrics:
            out["metrics"] = [dict(m) for m in self.metrics]
        return out


# --------------------------------------------------------------------------- parsing

def _toml_error_location(e: tomllib.TOMLDecodeError, text: str) -> tuple[int | None, int | None, str]:
    line = getattr(e, "lineno", None)
    col = getattr(e, "colno", None)
    msg = getattr(e, "msg", None) or str(e)
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", msg)
    if m:
        line, col = int(m.group(1)), int(m.group(2))
        msg = msg[: m.start()]
    elif line is None:
        m = re.search(r"\s*\(at end of document\)\s*$", msg)
        if m:
            msg = msg[: m.start()] + " (at the end of the file)"
            lines = text.splitlines()
            line = max((i + 1 for i, t in enumerate(lines) if t.strip()), default=1)
            col = len(lines[line - 1]) + 1 if lines else 1
    return line, col, msg


class _Locator:
    """Line numbers of ``[[weights]]`` headers and of the keys under them (tomllib has none)."""

    def __init__(self, text: str, count: int):
        self.lines = text.splitlines()
        headers = [i for i, line in enumerate(self.lines) if _HEADER_RE.match(line)]
        self.headers = headers if len(headers) == count else []

    def entry_line(self, index: int) -> int | None:
        return self.headers[index] + 1 if self.headers else None

    def key_line(self, index: int, key: str) -> int | None:
        if not self.headers:
            return None
        start = self.headers[index]
        end = self.headers[index + 1] if index + 1 < len(self.headers) else len(self.lines)
        pat = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*[=.]")
        in_subtable = False
        for i in range(start + 1, end):
            line = self.lines[i]
            if _TOP_HEADER_RE.match(line):  # [weights.config], [[weights.metrics]]
                if re.search(rf"weights\s*\.\s*{re.escape(key)}\b", line):
                    return i + 1
                in_subtable = True
            elif not in_subtable and pat.match(line):
                return i + 1
        return start + 1

    def top_key_line(self, key: str) -> int | None:
        pat = re.compile(rf"^\s*\[*\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*[\]=.]")
        for i, line in enumerate(self.lines):
            if pat.match(line):
                return i + 1
        return None


def _known(names: Iterable[str], what: str, close_to: str) -> str:
    names = sorted(set(names))
    close = difflib.get_close_matches(close_to, names, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"{hint}; known {what}: {', '.join(names)}"


def _check_rel_path(value: str) -> bool:
    p = PurePosixPath(value.replace("\\", "/"))
    return bool(value) and not p.is_absolute() and ".." not in p.parts and not re.match(r"^[A-Za-z]:", value)


def _metrics_from_table(table: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``[weights.metrics]`` as one table: ``{ name, value, ... }``, or numbers by metric name
    with optional shared strings (``psnr = 31.2``, ``ssim = 0.88``, ``command = "..."``)."""
    if "name" in table or "value" in table:
        return [table]
    shared = {k: v for k, v in table.items() if isinstance(v, str)}
    numbers = {k: v for k, v in table.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not numbers or len(shared) + len(numbers) != len(table):
        return None
    return [{"name": k, "value": v, **shared} for k, v in numbers.items()]


def parse_registry(text: str, origin: Path | str) -> list[WeightEntry]:
    """Parse and validate one registry file's text. Errors name the file and the line."""
    from .. import TASKS
    from ..models import get_spec, list_models

    origin = Path(origin)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line, col, msg = _toml_error_location(e, text)
        where = f"{origin}:{line}:{col}" if line else str(origin)
        raise RegistryError(f"{where}: malformed TOML: {msg}") from None

    raw = data.get("weights", [])
    loc = _Locator(text, len(raw) if isinstance(raw, list) else 0)
    for key in data:
        if key not in ("weights", "format"):
            line = loc.top_key_line(key)
            hint = " (entries go under [[weights]])" if key.lower().startswith("weight") else ""
            raise RegistryError(f"{origin}:{line or '?'}: unknown top-level key {key!r}{hint}")
    fmt = data.get("format", 1)
    if fmt != 1:
        raise RegistryError(f"{origin}:{loc.top_key_line('format') or '?'}: format = {fmt!r}: "
                            "this version of restorecli reads format 1")
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise RegistryError(f"{origin}:{loc.top_key_line('weights') or '?'}: 'weights' must be "
                            "an array of tables: write each entry under a [[weights]] header")

    models = list_models()
    entries: list[WeightEntry] = []
    seen: dict[str, int] = {}
    defaults: dict[str, WeightEntry] = {}
    for i, table in enumerate(raw):
        entry_line = loc.entry_line(i)

        def fail(message: str, key: str | None = None) -> RegistryError:
            line = loc.key_line(i, key) if key else entry_line
            label = f"entry {table['name']!r}" if isinstance(table.get("name"), str) else f"entry #{i + 1}"
            return RegistryError(f"{origin}:{line or '?'}: {label}: {message}")

        def get_str(key: str, required: bool = False) -> str | None:
            value = table.get(key)
            if value is None:
                if required:
                    raise fail(f"missing {key!r}")
                return None
            if not isinstance(value, str) or not value.strip():
                raise fail(f"{key!r} must be a non-empty string", key)
            return value.strip()

        for key in table:
            if key not in KNOWN_KEYS:
                close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.8)
                if close:
                    raise fail(f"unknown key {key!r} (did you mean {close[0]!r}?)", key)

        name = get_str("name", required=True)
        assert name is not None
        if not _NAME_RE.match(name):
            raise fail("'name' may hold letters, digits and . _ + - only (it is what --weights takes)", "name")
        if name in seen:
            raise fail(f"duplicate name: already defined at line {seen[name] or '?'}", "name")
        seen[name] = entry_line or 0

        task = get_str("task", required=True)
        if task not in TASKS:
            raise fail(f"unknown task {task!r}{_known(TASKS, 'tasks', task)}", "task")
        arch = get_str("arch", required=True)
        if arch not in models:
            raise fail(f"unknown arch {arch!r}{_known(models, 'architectures', arch)}", "arch")

        sha = table.get("sha256")
        if sha is None:
            raise fail("missing 'sha256' (every file is checked against it; "
                       "`sha256sum FILE` or `restore weights import` prints it)")
        if not is_sha256(sha):
            raise fail("'sha256' must be 64 lowercase hexadecimal digits", "sha256")

        repo_id = get_str("repo_id")
        filename = get_str("filename")
        revision = get_str("revision") or "main"
        if repo_id is not None and not _REPO_RE.match(repo_id):
            raise fail(f"'repo_id' {repo_id!r} is not of the form owner/repo", "repo_id")
        if repo_id and not filename:
            raise fail("'repo_id' needs 'filename' (the file's path inside the repo)")
        # (a 'filename' without 'repo_id' beside 'embedded'/'path' is only informational)
        if filename and not _check_rel_path(filename):
            raise fail(f"'filename' {filename!r} must be a relative path inside the repo", "filename")
        if "revision" in table and not repo_id:
            raise fail("'revision' needs 'repo_id'", "revision")

        embedded = get_str("embedded")
        if embedded is not None and not _check_rel_path(embedded):
            raise fail(f"'embedded' {embedded!r} must be a path relative to the package directory "
                       "(e.g. \"weights/x.safetensors\")", "embedded")
        path = get_str("path")
        if not (repo_id or embedded or path):
            raise fail("no place to get the file from: give 'repo_id' + 'filename' (Hugging Face Hub), "
                       "'embedded' (shipped in the package) or 'path' (a local file)")

        default = table.get("default", False)
        if not isinstance(default, bool):
            raise fail("'default' must be true or false", "default")
        size = table.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise fail("'size' must be the file size in bytes (an integer)", "size")

        config = table.get("config", {})
        if not isinstance(config, dict):
            raise fail("'config' must be a table of create_model overrides", "config")
        known_cfg = get_spec(arch).config
        for key in config:
            if key not in known_cfg:
                hint = ""
                if isinstance(config.get("model"), dict) or isinstance(config.get("optim"), dict):
                    hint = ("; 'config' holds create_model overrides only: put a training config "
                            "under [weights.training] (free metadata)")
                raise fail(f"config key {key!r} is not an option of {arch}"
                           f"{_known(known_cfg, 'options', key)}{hint}", "config")

        metrics = table.get("metrics", [])
        if isinstance(metrics, dict):
            metrics = _metrics_from_table(metrics)
        if not isinstance(metrics, list) or not all(isinstance(m, dict) for m in metrics):
            raise fail("'metrics' must be [[weights.metrics]] tables with name and value, or a "
                       "[weights.metrics] table of numbers", "metrics")
        for m in metrics:
            if not isinstance(m.get("name"), str) or isinstance(m.get("value"), bool) \
                    or not isinstance(m.get("value"), (int, float)):
                raise fail("each metric needs 'name' (a string) and 'value' (a number), "
                           "e.g. { name = \"PSNR\", value = 32.1, unit = \"dB\", dataset = \"GoPro test\", "
                           "command = \"restore bench ...\" }", "metrics")

        ensemble = table.get("ensemble", 1)
        if not is_ensemble_size(ensemble):
            raise fail(f"'ensemble' must be one of {', '.join(map(str, ENSEMBLE_SIZES))} "
                       "(flips/rotations averaged per run)", "ensemble")

        entry = WeightEntry(
            name=name, task=task, arch=arch, sha256=sha, repo_id=repo_id, filename=filename,
            revision=revision, embedded=embedded, path=path, default=default, size=size, ensemble=ensemble,
            config=dict(config), metrics=tuple(dict(m) for m in metrics),
            meta={k: v for k, v in table.items() if k not in KNOWN_KEYS},
            origin=origin, line=entry_line,
        )
        if default:
            if task in defaults:
                other = defaults[task]
                raise fail(f"two defaults for task {task!r} in one file: {other.name!r} "
                           f"(line {other.line or '?'}) and {name!r}; keep default = true on one", "default")
            defaults[task] = entry
        entries.append(entry)
    return entries


def read_registry_file(path: Path) -> list[WeightEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RegistryError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise RegistryError(f"{path}: cannot read the registry ({e.strerror or e})") from None
    return parse_registry(text, path)


# --------------------------------------------------------------------------- the merged registry

class Registry:
    """Entries by name, merged from several files (later files override earlier ones)."""

    def __init__(self, files: Sequence[tuple[Path, list[WeightEntry]]] = ()):
        self.sources: list[Path] = []
        self.entries: dict[str, WeightEntry] = {}
        rank: dict[Path, int] = {}
        for i, (path, entries) in enumerate(files):
            self.sources.append(path)
            rank[path] = i
            for e in entries:
                self.entries.pop(e.name, None)  # an override moves to where it was (re)defined
                self.entries[e.name] = e
        self.defaults: dict[str, str] = {}
        best: dict[str, int] = {}
        for e in self.entries.values():
            if e.default:
                r = rank.get(e.origin, -1) if e.origin else -1
                if e.task not in best or r >= best[e.task]:
                    best[e.task] = r
                    self.defaults[e.task] = e.name

    def __iter__(self) -> Iterator[WeightEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def is_default(self, entry: WeightEntry) -> bool:
        return self.defaults.get(entry.task) == entry.name

    def get(self, name: str, file_checked: bool = False) -> WeightEntry:
        if name in self.entries:
            return self.entries[name]
        raise UnknownWeightsError(self.unknown_message(name, file_checked))

    def unknown_message(self, name: str, file_checked: bool = False) -> str:
        names = list(self.entries)
        # names containing what was typed ("ots" -> "irnext-dehaze-ots"), then similar ones
        close = [n for n in names if len(name) >= 3 and name.lower() in n.lower()]
        close += [n for n in difflib.get_close_matches(name, names, n=3, cutoff=0.6) if n not in close]
        close = close[:3]
        if close:
            hint = f" Did you mean: {', '.join(close)}?"
        elif names:
            hint = f" Known: {', '.join(sorted(names)[:8])}{' ...' if len(names) > 8 else ''}."
        else:
            hint = " The registry has no entries yet."
        if file_checked:
            return (f"no weights named {name!r} in the registry, and no such file.{hint} "
                    "(`restore weights list` shows all; --weights also takes a file or hf://owner/repo/file)")
        return f"no weights named {name!r} in the registry.{hint} (`restore weights list` shows all)"

    def find_hub(self, repo_id: str, filename: str, revision: str) -> WeightEntry | None:
        for e in self.entries.values():
            if e.repo_id == repo_id and e.filename == filename and e.revision == revision:
                return e
        return None

    def default_for(self, task: str, model: str | None = None) -> WeightEntry | None:
        """The entry a task uses without ``--weights``; with ``model``, one of that family/arch."""
        name = self.defaults.get(task)
        default = self.entries.get(name) if name else None
        if model is None:
            return default
        from ..models import get_spec

        def matches(e: WeightEntry) -> bool:
            return e.arch == model or get_spec(e.arch).family == model

        if default is not None and matches(default):
            return default
        candidates = [e for e in self.entries.values() if e.task == task and matches(e)]
        if len(candidates) == 1:
            return candidates[0]
        flagged = [e for e in candidates if e.default]
        if len(flagged) == 1:
            return flagged[0]
        if candidates:
            raise WeightsError(f"several weights for {task!r} with --model {model}: "
                               f"{', '.join(e.name for e in candidates)}; pick one with --weights NAME")
        return None


def registry_files(registry: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                   include_user: bool = True) -> list[tuple[Path, bool]]:
    """The registry files read, in order, each with whether it must exist."""
    files: list[tuple[Path, bool]] = [(shipped_registry_path(), True)]
    if include_user:
        files.append((user_registry_path(), False))
    files += [(p, True) for p in env_registry_paths()]
    if registry is not None:
        env_value = os.environ.get("RESTORECLI_REGISTRY")
        extra = [registry] if isinstance(registry, (str, os.PathLike)) else list(registry)
        for p in extra:
            if env_value and os.fspath(p) == env_value:
                continue  # an option that defaults to $RESTORECLI_REGISTRY: read above already
            files.append((Path(p).expanduser(), True))
    # A file named twice is read once, at its last (strongest) place.
    seen: set[Path] = set()
    kept: list[tuple[Path, bool]] = []
    for p, required in reversed(files):
        key = p.resolve() if p.exists() else p.absolute()
        if key not in seen:
            seen.add(key)
            kept.append((p, required))
    return kept[::-1]


def load_registry(registry: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                  include_user: bool = True) -> Registry:
    """Read and merge the shipped, user, ``RESTORECLI_REGISTRY`` and explicit registry files."""
    loaded: list[tuple[Path, list[WeightEntry]]] = []
    env_paths = set(env_registry_paths())
    for path, required in registry_files(registry, include_user):
        if not path.is_file():
            if not required:
                continue
            if path == shipped_registry_path():
                raise RegistryError(f"{path}: the shipped weights registry is missing; reinstall restorecli")
            how = "RESTORECLI_REGISTRY" if path in env_paths else "--registry"
            if path.is_dir():
                raise RegistryError(f"{path} is a folder, not a registry file (from {how})")
            raise RegistryError(f"registry file not found: {path} (from {how})")
        loaded.append((path, read_registry_file(path)))
    return Registry(loaded)


# --------------------------------------------------------------------------- writing entries

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def entry_to_toml(fields: dict[str, Any], comments: Sequence[str] = ()) -> str:
    """One ``[[weights]]`` table (``fields`` as from :meth:`WeightEntry.to_fields`)."""
    lines = [f"# {c}" if c else "#" for c in comments]
    lines.append("[[weights]]")
    metrics = fields.get("metrics") or []
    for key, value in fields.items():
        if key == "metrics" or value is None:
            continue
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for m in metrics:
        lines.append("[[weights.metrics]]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in m.items()]
    return "\n".join(lines) + "\n"


NEW_REGISTRY_HEADER = """\
# restorecli weights registry (format: see docs/weights.md).
# Entries here add to the shipped registry or replace its entries by name.
"""


def add_entry_to_file(path: str | os.PathLike, fields: dict[str, Any],
                      comments: Sequence[str] = ()) -> WeightEntry:
    """Append an entry to a registry file (created if missing), refusing duplicates.

    The new text is validated as a whole before it replaces the file (atomically).
    """
    path = Path(path).expanduser()
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if old:
        existing = parse_registry(old, path)  # refuse to append to a broken file
        for e in existing:
            if e.name == fields["name"]:
                raise RegistryError(f"{path}:{e.line or '?'}: there is already an entry named "
                                    f"{e.name!r}; choose another --name or edit the file")
    block = entry_to_toml(fields, comments)
    text = (old.rstrip("\n") + "\n\n" + block) if old.strip() else NEW_REGISTRY_HEADER + "\n" + block
    entries = parse_registry(text, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return next(e for e in entries if e.name == fields["name"])
