"""Reading and writing weight files, kept apart from the architectures (as spandrel does).

Reads the authors' ``.pkl``/``.pth`` files as they ship them (``{'model': sd}``, a bare
state dict, ``state_dict``, ``params``, ``params_ema``, ``module.`` prefixes) and
safetensors. Nothing beyond tensors is ever unpickled: ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from .errors import RestoreError

__all__ = [
    "CheckpointError",
    "read_state_dict",
    "load_weights",
    "load_into",
    "save_safetensors",
    "architecture_signature",
    "detect_architecture",
]

# Wrappers seen in the wild, in the order we prefer them (EMA weights are the better ones).
_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "model_state_dict", "generator")


class CheckpointError(RestoreError):
    """A weight file that cannot be read, or does not fit the chosen architecture."""


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # e.g. {'state_dict': {'model': {...}}}
        if not isinstance(obj, dict):
            break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: no state dict found (expected tensors, or one under "
                              f"{', '.join(repr(k) for k in _WRAPPER_KEYS)})")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: no tensors found in the checkpoint")
    if all(k.startswith("module.") for k in tensors):  # saved from DataParallel/DDP
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, on the CPU, wrappers removed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the weights file is empty")
    with open(path, "rb") as f:
        head = f.read(16)
    # safetensors: an 8-byte little-endian header length, then a JSON header starting with '{'
    if path.suffix == ".safetensors" or (len(head) > 8 and head[8:9] == b"{"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return _unwrap(load_file(str(path), device="cpu"), path)
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    # torch.save writes a zip archive (PK..) or, in the legacy format, a pickle (0x80 ..)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise CheckpointError(f"{path}: not a weights file (neither a PyTorch checkpoint nor safetensors)")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4...": the error below says it
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Unsupported operand" in str(e):  # FRAME and the other opcodes of protocols 4-5
            first = ("saved with pickle protocol 4 or later, which the safe loader cannot read: "
                     "re-save it with torch.save's default protocol, or as safetensors")
        elif "weights_only" in str(e) or "Unsupported global" in str(e):
            first = "it holds Python objects beyond tensors, which are never unpickled"
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first})") from None
    return _unwrap(obj, path)


def _list(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def load_into(model: nn.Module, state: dict[str, torch.Tensor], arch: str, source: str = "") -> None:
    """Strictly load ``state`` into ``model``; a clear error names what does not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys: {_list(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_list(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatch: {_list(mismatched, 3)}")
        guess = detect_architecture(state)
        hint = f"; it looks like {' or '.join(guess)}" if guess and arch not in guess else ""
        where = f"{source}: " if source else ""
        raise CheckpointError(f"{where}not a checkpoint of {arch}: {'; '.join(parts)}{hint}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def transfer_weights(model: nn.Module, state: dict[str, torch.Tensor],
                     skip: Sequence[str] = ()) -> dict[str, list[str]]:
    """Initialise ``model`` from another network's ``state`` as far as it fits (fine-tuning).

    Same-shape tensors are copied; a convolution whose source has *more input channels*
    (e.g. the denoiser's extra noise-map channel) keeps the image channels' slice, so a
    noise-conditioned denoiser can start a plain network for another task; one whose source
    has *fewer* (a model given an extra guide map) gets the source's weights and zeros for the
    new trailing channels, so it starts as the source network. Everything else keeps its fresh
    initialisation, as do the keys starting with one of ``skip``. Returns the keys ``copied``,
    ``sliced``, ``padded`` and ``skipped``.
    """
    own = model.state_dict()
    new, report = {}, {"copied": [], "sliced": [], "padded": [], "skipped": []}
    for k, dst in own.items():
        src = None if any(k.startswith(p) for p in skip) else state.get(k)
        if src is None:
            report["skipped"].append(k)
        elif src.shape == dst.shape:
            new[k] = src.to(dst.dtype)
            report["copied"].append(k)
        elif (src.ndim == dst.ndim >= 2 and src.shape[0] == dst.shape[0] and src.shape[2:] == dst.shape[2:]
              and src.shape[1] > dst.shape[1]):
            new[k] = src[:, :dst.shape[1]].to(dst.dtype)
            report["sliced"].append(k)
        elif (src.ndim == dst.ndim >= 2 and src.shape[0] == dst.shape[0] and src.shape[2:] == dst.shape[2:]
              and src.shape[1] < dst.shape[1]):
            padded = torch.zeros_like(dst)
            padded[:, :src.shape[1]] = src.to(dst.dtype)
            new[k] = padded
            report["padded"].append(k)
        else:
            report["skipped"].append(k)
    if not new:
        raise CheckpointError("no tensor of these weights fits the model (different architecture?)")
    model.load_state_dict(new, strict=False)
    return report


def load_weights(model: nn.Module, path: str | os.PathLike, arch: str | None = None) -> nn.Module:
    arch = arch or getattr(getattr(model, "spec", None), "name", type(model).__name__)
    load_into(model, read_state_dict(path), arch, source=str(path))
    return model


def save_safetensors(state: dict[str, torch.Tensor], path: str | os.PathLike,
                     metadata: dict[str, str] | None = None, dtype: torch.dtype | None = None) -> Path:
    """Write tensors atomically (temp file + rename). ``dtype`` casts floating tensors.

    The bytes depend only on the tensors and metadata (the header's keys are sorted;
    safetensors itself writes metadata in hash order), so the same weights always have
    the same sha256 and a registry hash can be reproduced.
    """
    from safetensors.torch import save as to_bytes
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous()
    data = _canonical_header(to_bytes(out, metadata=metadata))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a weights file is for everyone
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _canonical_header(blob: bytes) -> bytes:
    """Re-serialise a safetensors header with sorted keys (data offsets are relative to the
    end of the header, so the tensor bytes stay as they are)."""
    import json
    import struct

    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the tensor data 8-byte aligned, as safetensors does
    return struct.pack("<Q", len(text)) + text + blob[8 + n:]


_SIGNATURES: dict[str, dict[str, tuple[int, ...]]] = {}


def architecture_signature(name: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a registered architecture, built on the meta device (no memory)."""
    if name not in _SIGNATURES:
        from .models import get_spec
        with torch.device("meta"):
            model = get_spec(name).build()
        _SIGNATURES[name] = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return _SIGNATURES[name]


def detect_architecture(state: dict[str, torch.Tensor]) -> list[str]:
    """Registered architectures whose keys and shapes match ``state`` exactly.

    Configurations that differ only in parameter-free behaviour (IRNeXt's deblur and
    dehaze filters at equal depth) cannot be told apart; all matches are returned.
    """
    from .models import list_models
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    return [n for n in list_models() if architecture_signature(n) == shapes]
