"""One registry of architectures, as in timm: ``create_model("irnext-deblur")``.

Each architecture file registers its configurations with :func:`register_model`.
A :class:`ModelSpec` is the descriptor a caller needs (size multiple, channels,
precisions, what extra inputs the network takes) without building the network.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn

from ..errors import UsageError

__all__ = ["ModelSpec", "register_model", "create_model", "list_models", "get_spec", "UnknownModelError"]


class UnknownModelError(UsageError, KeyError):
    """Raised for a model name that is not registered (a usage error: exit 2); the message
    lists the names accepted."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ModelSpec:
    """What a caller must know about an architecture configuration."""

    name: str  # registry name, e.g. "irnext-deblur"
    family: str  # what `--model` takes for the whole family, e.g. "irnext"
    builder: Callable[..., nn.Module]
    config: dict[str, Any] = field(default_factory=dict)
    size_multiple: int = 1  # inputs must be padded to a multiple of this
    in_channels: int = 3  # image channels (extra conditioning channels not counted)
    out_channels: int = 3
    # Extra per-pixel inputs concatenated after the image channels, e.g. ("sigma",)
    # for a noise-level map in [0, 1] units (sigma / 255).
    conditioning: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("fp32", "fp16", "bf16")
    # Peak inference memory per input pixel (fp32, bytes), measured; sizes `--tile auto`.
    bytes_per_pixel: float = 2000.0
    # Tasks for which this configuration is the family's choice (`--model irnext`
    # with `restore dehaze` -> the spec whose family_default_for has "dehaze").
    family_default_for: tuple[str, ...] = ()
    description: str = ""

    def build(self, **overrides: Any) -> nn.Module:
        cfg = {**self.config, **overrides}
        model = self.builder(**cfg)
        model.spec = self  # the descriptor travels with the module
        return model


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _ensure_loaded() -> None:
    # Importing the architecture modules registers their configurations.
    from . import irnext  # noqa: F401
    try:
        from . import clginet  # noqa: F401
    except ImportError:  # pragma: no cover - only while the file does not exist
        pass
    from . import nlmunet  # noqa: F401  (noise-level-map denoisers; after clginet)
    from . import asmunet  # noqa: F401  (the scattering-model dehazer)
    from . import wienerunet  # noqa: F401  (the deblurrers given a Wiener bank)


def list_models(family: str | None = None) -> list[str]:
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items() if family is None or s.family == family)


def list_families() -> list[str]:
    _ensure_loaded()
    return sorted({s.family for s in _REGISTRY.values()})


def get_spec(name: str, task: str | None = None) -> ModelSpec:
    """The spec for a registry name, or for a family name resolved by task."""
    _ensure_loaded()
    if name in _REGISTRY:
        return _REGISTRY[name]
    members = [s for s in _REGISTRY.values() if s.family == name]
    if members:
        if task is not None:
            for s in members:
                if task in s.family_default_for:
                    return s
        for s in members:
            if "*" in s.family_default_for:
                return s
        return sorted(members, key=lambda s: s.name)[0]
    choices = sorted(set(_REGISTRY) | {s.family for s in _REGISTRY.values()})
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"unknown model {name!r} (known: {', '.join(choices)}){hint}")


def create_model(name: str, task: str | None = None, **overrides: Any) -> nn.Module:
    """Build a registered architecture (randomly initialised, eval mode off).

    ``name`` is a configuration name (``irnext-deblur``) or a family name
    (``irnext``) resolved with ``task``. Keyword overrides replace config values.
    """
    return get_spec(name, task).build(**overrides)
