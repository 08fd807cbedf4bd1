"""``restore weights import``: an authors' checkpoint (``.pkl``/``.pth``/...) -> checked safetensors.

The file is read with ``torch.load(weights_only=True)`` (nothing but tensors is unpickled),
loaded strictly into the architecture, and written back from the model as fp32 safetensors
with the architecture in the metadata, so it is interchangeable with the original.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import WeightsError
from .hashing import sha256_file

__all__ = ["ImportResult", "import_checkpoint", "default_import_dir", "guess_task"]


@dataclass
class ImportResult:
    path: Path  # the safetensors written
    sha256: str
    size: int
    arch: str
    task: str
    source: Path
    source_sha256: str
    fields: dict[str, Any]  # a ready [[weights]] entry (see registry.entry_to_toml)


def default_import_dir() -> Path:
    """Where imported weights go when ``--name`` is given without ``-o``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base).expanduser() / "restorecli" / "weights"


def guess_task(arch: str) -> str:
    """The architecture's usual task, for an entry imported without ``--task``: the first one it
    is made for, ``denoise`` for a network conditioned on the noise level; an architecture
    trained per task (unet-s, clginet-s) has none, and the caller must say which."""
    from .. import TASKS
    from ..models import get_spec, list_models

    spec = get_spec(arch)
    kin = [spec] + [get_spec(n) for n in list_models(spec.family) if n != spec.name]  # asmunet-s-dcp: dehaze
    for t in (t for s in kin for t in s.family_default_for):
        if t in TASKS:
            return t
    if "sigma" in spec.conditioning:
        return "denoise"
    raise WeightsError(f"--task is needed: {spec.name} is trained per task, so its checkpoint could be "
                       f"for any of {', '.join(TASKS)}")


def _clean_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.") or "weights"
    return name if name[0].isalnum() else "w" + name


def import_checkpoint(source: str | os.PathLike, arch: str, output: str | os.PathLike | None = None, *,
                      task: str | None = None, name: str | None = None,
                      overwrite: bool = False) -> ImportResult:
    """Check ``source`` loads strictly into ``arch`` and write it as fp32 safetensors."""
    import torch

    from .. import TASKS
    from ..checkpoint import load_into, read_state_dict, save_safetensors
    from ..models import get_spec

    src = Path(source).expanduser()
    if not src.is_file():
        raise WeightsError(f"{src}: no such checkpoint file")
    if task is not None and task not in TASKS:
        raise WeightsError(f"--task {task!r}: expected one of {', '.join(TASKS)}")
    spec = get_spec(arch, task)  # unknown names fail with close matches
    task = task or guess_task(spec.name)

    if output is not None:
        out = Path(output).expanduser()
    elif name is not None:
        out = default_import_dir() / f"{name}.safetensors"
    else:
        out = src.with_suffix(".safetensors")
    if out.suffix != ".safetensors":
        raise WeightsError(f"-o {out}: the output must be a .safetensors file")
    if out.exists() and out.resolve() == src.resolve():
        raise WeightsError(f"{out}: the output would replace the input; pass another -o")
    if out.exists() and not overwrite:
        raise WeightsError(f"{out} already exists; pass --overwrite to replace it")

    state = read_state_dict(src)
    model = spec.build()
    load_into(model, state, spec.name, source=str(src))  # strict; names missing/unexpected keys
    source_sha = sha256_file(src)
    save_safetensors(model.state_dict(), out, dtype=torch.float32, metadata={
        "format": "pt", "arch": spec.name, "source": src.name, "source_sha256": source_sha,
        "producer": "restorecli weights import",
    })
    sha = sha256_file(out)
    size = out.stat().st_size
    fields: dict[str, Any] = {
        "name": _clean_name(name or out.stem),
        "task": task,
        "arch": spec.name,
        "path": str(out.resolve()),
        "sha256": sha,
        "size": size,
        "source_file": src.name,
        "source_sha256": source_sha,
    }
    return ImportResult(path=out, sha256=sha, size=size, arch=spec.name, task=task, source=src,
                        source_sha256=source_sha, fields=fields)
