"""Devices, precisions and free memory: CUDA, Apple MPS and the CPU."""
from __future__ import annotations

import contextlib
import os
import re

import torch

from .errors import UsageError

__all__ = ["resolve_device", "precision_context", "free_memory", "is_out_of_memory", "PRECISIONS"]

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; ``cuda:N`` is checked to exist."""
    if name is not None and not str(name).strip():  # an unset shell variable: --device "$GPU"
        raise UsageError("--device is empty: expected auto, cpu, cuda, cuda:N or mps")
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?", name):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: no CUDA device is available here (try --device cpu)")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device(name)
    if name == "mps":
        if not _mps_available():
            raise UsageError("--device mps: Apple's Metal backend is not available here (try --device cpu)")
        return torch.device("mps")
    raise UsageError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps")


def check_precision(device: torch.device, precision: str, supported: tuple[str, ...] = tuple(PRECISIONS)) -> str:
    precision = precision.lower()
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: expected fp32, fp16 or bf16")
    if precision not in supported:
        raise UsageError(f"--precision {precision}: this model supports {', '.join(supported)}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError("--precision bf16: this GPU has no bfloat16 support (use fp16)")
    if precision == "fp16" and device.type == "cpu":
        # Autocast on the CPU does run fp16, but slowly and with no gain; bf16 is the CPU's half type.
        raise UsageError("--precision fp16 is for GPUs; on the CPU use bf16 (or fp32)")
    return precision


def precision_context(device: torch.device, precision: str):
    """Autocast for half precisions: convolutions and matmuls in half, reductions in fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])


def free_memory(device: torch.device) -> int:
    """Bytes this process can still use on ``device`` (a best estimate)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "mps":
        try:  # unified memory: what the driver recommends minus what we hold
            return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
        except (AttributeError, RuntimeError):
            pass
    return _available_ram()


def _read_text(path: str) -> str:
    with open(path) as f:  # closed at once (an open() left to the collector is a ResourceWarning)
        return f.read().strip()


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
            else:
                avail = 0
    except OSError:
        avail = 0
    # A cgroup limit (containers, CI) can be far below what the host reports.
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = _read_text(path)
            used_path = path.replace("memory.max", "memory.current").replace("limit_in_bytes", "usage_in_bytes")
            if raw != "max" and int(raw) < 1 << 60:
                used = int(_read_text(used_path))
                avail = min(avail, int(raw) - used) if avail else int(raw) - used
        except (OSError, ValueError):
            pass
    if avail <= 0:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 4 << 30
    return int(avail)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in msg or "mps backend out of memory" in msg)
