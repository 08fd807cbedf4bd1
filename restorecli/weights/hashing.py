"""sha256 of weight files, checked before every use.

No cache of verified hashes: hashing is fast next to loading a network (about 70 ms for the
largest IRNeXt file, 52 MB, on one core with SHA extensions), and a cache keyed by path, size
and modification time could be fooled by a file rewritten within the same second with the same
size. Every run re-hashes the file it is about to load.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .errors import ChecksumError

__all__ = ["sha256_file", "sha1_file", "git_blob_sha1", "verify_sha256", "is_sha256", "format_size"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and bool(_HEX64.match(value))


def _hash_file(path: str | os.PathLike, h):
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    return _hash_file(path, hashlib.sha256())


def sha1_file(path: str | os.PathLike) -> str:
    return _hash_file(path, hashlib.sha1())


def git_blob_sha1(path: str | os.PathLike) -> str:
    """The git object id of a file's content (the Hub's ETag for files not stored with LFS)."""
    return _hash_file(path, hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode()))


def verify_sha256(path: str | os.PathLike, expected: str, what: str) -> str:
    """Hash ``path``; raise :class:`ChecksumError` unless it is ``expected``. Returns the hash."""
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ChecksumError(
            f"{what}: sha256 mismatch, refusing to use {Path(path)}: it is {actual}, "
            f"the registry records {expected}"
        )
    return actual


def format_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover
