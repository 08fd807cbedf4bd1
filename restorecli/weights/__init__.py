"""Which weights a run uses: resolution of ``--weights`` and of the task defaults.

(The weights.toml registry and Hub download are built on top of this in the
weights issue; for now a local file is resolved, its architecture recognised.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import CheckpointError, detect_architecture, read_state_dict

__all__ = ["ResolvedWeights", "WeightsError", "resolve_weights"]


class WeightsError(Exception):
    """Weights that cannot be found, fetched or verified (a one-line user message)."""


@dataclass
class ResolvedWeights:
    path: Path  # a local file, verified
    arch: str  # a create_model name
    name: str | None = None  # registry entry name, when it came from the registry
    config: dict[str, Any] = field(default_factory=dict)  # create_model overrides
    info: dict[str, Any] = field(default_factory=dict)  # free metadata for messages


def resolve_weights(task: str, model: str | None = None, weights: str | None = None,
                    registry: "str | Path | None" = None) -> ResolvedWeights:
    """Resolve ``--weights`` (and ``--model``) for ``task`` to a verified local file.

    ``registry``: an extra weights.toml (``--registry``) layered over the shipped one.
    """
    if registry is not None and not Path(registry).is_file():
        raise WeightsError(f"--registry {registry}: no such file")
    from ..models import get_spec, list_families

    if weights is None:
        raise WeightsError(f"no default weights for '{task}' yet: pass --weights FILE")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights not found: {weights} (not a file)")
    if model is not None:
        return ResolvedWeights(path=path, arch=get_spec(model, task).name)
    try:
        found = detect_architecture(read_state_dict(path))
    except CheckpointError as e:
        raise WeightsError(str(e)) from None
    if not found:
        raise WeightsError(f"{path}: the checkpoint matches no known architecture "
                           f"({', '.join(list_families())}); pass --model")
    return ResolvedWeights(path=path, arch=found[0])
