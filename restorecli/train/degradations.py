"""Synthetic degradations, one registry keyed by task.

A degradation turns a batch of clean patches into (degraded input, conditioning)
pairs. Each is a small class registered under a name and a task, so later tasks
(rain, motion blur, defocus, haze, snow) plug in without touching the trainer::

    @register_degradation("rain_streaks", task="derain")
    class RainStreaks(Degradation): ...

Conventions
-----------
* Images are float32 tensors in [0, 1], shape ``(N, C, H, W)``.
* Randomness comes only from the ``torch.Generator`` passed in, so a seed fixes
  the degraded batch exactly (the trainer seeds one generator per rank).
* ``__call__`` returns ``(degraded, target, cond)``: ``target`` is what the network
  should output (the clean batch, or a transformed copy, e.g. turned gray), and
  ``cond`` maps a conditioning name (the model's ``spec.conditioning``, e.g.
  ``"sigma"``) to a per-sample tensor of shape ``(N,)`` in the units the model
  takes (sigma / 255).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

__all__ = [
    "Degradation",
    "GaussianNoise",
    "register_degradation",
    "create_degradation",
    "list_degradations",
    "default_degradation",
]


class Degradation:
    """Base class: ``deg(clean, generator) -> (degraded, target, cond)``."""

    name: str = ""
    task: str = ""

    def __call__(self, clean: torch.Tensor, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def fixed(self, **values: Any) -> "Degradation":
        """The same degradation with its random parameters pinned (for validation)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be pinned")


@dataclass(frozen=True)
class _Entry:
    name: str
    task: str
    factory: Callable[..., Degradation]
    default: bool


_REGISTRY: dict[str, _Entry] = {}


def register_degradation(name: str, task: str, default: bool = False):
    """Class decorator: register a degradation for a task (``default``: the task's choice)."""

    def deco(cls):
        if name in _REGISTRY:
            raise ValueError(f"degradation {name!r} registered twice")
        cls.name, cls.task = name, task
        _REGISTRY[name] = _Entry(name, task, cls, default)
        return cls

    return deco


def list_degradations(task: str | None = None) -> list[str]:
    return sorted(n for n, e in _REGISTRY.items() if task is None or e.task == task)


def default_degradation(task: str) -> str:
    for e in _REGISTRY.values():
        if e.task == task and e.default:
            return e.name
    names = list_degradations(task)
    if not names:
        known = sorted({e.task for e in _REGISTRY.values()})
        raise KeyError(f"no degradation registered for task {task!r} (tasks with one: {', '.join(known)})")
    return names[0]


def create_degradation(name: str, **params: Any) -> Degradation:
    if name not in _REGISTRY:
        raise KeyError(f"unknown degradation {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name].factory(**params)


def quantize_uint8(x: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to the 8-bit grid, as a saved 8-bit file would."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


@register_degradation("gaussian_noise", task="denoise", default=True)
class GaussianNoise(Degradation):
    """Additive white Gaussian noise, sigma (on the 0-255 scale) drawn per sample.

    ``sigma_range=(lo, hi)``: drawn per sample as ``lo + (hi - lo) * u ** sigma_power`` with
    ``u`` uniform: 1 is uniform, above 1 favours low sigmas (where a small network has the
    most to learn relative to BM3D: its fine detail). ``gray_prob``: probability that
    a sample is turned gray (the same values on all channels) before the noise, so
    one color network also learns gray images as the Restorer feeds them: one noisy
    gray image replicated to three channels (the same noise in each). ``clip``/``quantize``: mimic an 8-bit file
    (noise added, clipped to [0, 255] and rounded), as users' noisy photos are.
    ``quantize_prob`` applies that only to a fraction of the samples so the network
    sees both. The conditioning returned is the drawn sigma / 255.
    """

    def __init__(self, sigma_range: tuple[float, float] = (0.0, 55.0), gray_prob: float = 0.0,
                 clip_prob: float = 0.5, quantize_prob: float = 0.5, sigma_power: float = 1.0):
        if sigma_power <= 0:
            raise ValueError(f"sigma_power must be > 0, got {sigma_power}")
        self.sigma_power = float(sigma_power)
        lo, hi = float(sigma_range[0]), float(sigma_range[1])
        if not 0 <= lo <= hi:
            raise ValueError(f"sigma_range must satisfy 0 <= lo <= hi, got {sigma_range}")
        self.sigma_range = (lo, hi)
        self.gray_prob = float(gray_prob)
        self.clip_prob = float(clip_prob)
        self.quantize_prob = float(quantize_prob)

    def fixed(self, sigma: float | None = None, **_: Any) -> "GaussianNoise":
        s = float(sigma if sigma is not None else sum(self.sigma_range) / 2)
        return GaussianNoise((s, s), gray_prob=0.0, clip_prob=self.clip_prob,
                             quantize_prob=self.quantize_prob)

    def __call__(self, clean: torch.Tensor, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        n = clean.shape[0]
        lo, hi = self.sigma_range
        sigma = lo + (hi - lo) * torch.rand(n, generator=generator) ** self.sigma_power
        x = clean
        noise = torch.randn(x.shape, generator=generator) * (sigma / 255.0).view(n, 1, 1, 1)
        if self.gray_prob > 0 and clean.shape[1] == 3:
            gray = torch.rand(n, generator=generator) < self.gray_prob
            if gray.any():
                # a gray photo's noise replicated to three channels, as the Restorer feeds it
                y = (0.299 * clean[:, 0] + 0.587 * clean[:, 1] + 0.114 * clean[:, 2]).unsqueeze(1)
                g = gray.view(n, 1, 1, 1)
                x = torch.where(g, y.expand_as(clean), clean)
                noise = torch.where(g, noise[:, :1].expand_as(noise), noise)
        noisy = x + noise
        clip = torch.rand(n, generator=generator) < self.clip_prob
        quant = torch.rand(n, generator=generator) < self.quantize_prob
        clipped = noisy.clamp(0.0, 1.0)
        noisy = torch.where(clip.view(n, 1, 1, 1), clipped, noisy)
        noisy = torch.where((clip & quant).view(n, 1, 1, 1), quantize_uint8(noisy), noisy)
        return noisy, x, {"sigma": sigma / 255.0}


# The degradations of the other tasks (derain: rain_streaks, deblur: camera_shake,
# defocus: defocus_blur, dehaze: haze, desnow: snow) live in .synth and register
# themselves on import; importing them here makes the registry complete.
from . import synth as _synth  # noqa: E402,F401
