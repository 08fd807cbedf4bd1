"""Classical restoration baselines, the yardsticks of benchmarks/tasks_quality.py.

* dehaze: dark channel prior (He, Sun & Tang, CVPR 2009 / TPAMI 2011) with the
  transmission refined by a guided filter (He, Sun & Tang, ECCV 2010 / TPAMI 2013)
  instead of soft matting.
* deblur, defocus: unsharp masking ``x + amount (x - G_sigma * x)``.
* derain, desnow: a median filter or a bilateral filter.

Every function takes and returns float32 ``HxWx3`` RGB in [0, 1]. The benchmark tunes
their parameters on its own images (a grid search, :data:`GRIDS`), which makes the
baselines an upper bound of what these methods reach there.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable

import cv2
import numpy as np

__all__ = ["guided_filter", "dark_channel", "dehaze_dcp", "unsharp_mask", "median_filter",
           "bilateral_filter", "BASELINES", "GRIDS", "grid"]


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """The guided filter with a gray ``guide`` (``HxW``) on a ``HxW`` ``src``:
    locally ``q = a I + b`` with ``a = cov(I, p) / (var(I) + eps)``, ``b = mean(p) - a mean(I)``."""
    I = np.asarray(guide, np.float32)
    p = np.asarray(src, np.float32)
    mI, mp = _box(I, r), _box(p, r)
    cov = _box(I * p, r) - mI * mp
    var = _box(I * I, r) - mI * mI
    a = cov / (var + eps)
    b = mp - a * mI
    return _box(a, r) * I + _box(b, r)


def dark_channel(x: np.ndarray, patch: int) -> np.ndarray:
    """min over the colour channels, then over a ``patch x patch`` window."""
    m = x.min(axis=2)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    return cv2.erode(m, k, borderType=cv2.BORDER_REFLECT)


def estimate_airlight(x: np.ndarray, dark: np.ndarray, top: float = 0.001) -> np.ndarray:
    """Atmospheric light: among the ``top`` brightest dark-channel pixels, the mean colour of
    the brightest tenth of them (He et al. take the single brightest; a mean is steadier)."""
    flat = dark.reshape(-1)
    n = max(1, int(flat.size * top))
    idx = np.argpartition(flat, -n)[-n:]
    px = x.reshape(-1, 3)[idx]
    s = px.sum(axis=1)
    k = max(1, n // 10)
    best = px[np.argpartition(s, -k)[-k:]]
    return best.mean(axis=0).astype(np.float32)


def dehaze_dcp(x: np.ndarray, omega: float = 0.95, patch: int = 15, t0: float = 0.1,
               radius: int = 40, eps: float = 1e-3) -> np.ndarray:
    """Dark channel prior dehazing with guided-filter refinement of the transmission."""
    x = np.asarray(x, np.float32)
    dark = dark_channel(x, patch)
    A = np.maximum(estimate_airlight(x, dark), 1e-3)
    t = 1.0 - omega * dark_channel(x / A, patch)
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
    t = guided_filter(gray, t, radius, eps)
    t = np.maximum(t, t0)[..., None]
    return np.clip((x - A) / t + A, 0.0, 1.0).astype(np.float32)


def unsharp_mask(x: np.ndarray, sigma: float = 1.5, amount: float = 1.0) -> np.ndarray:
    x = np.asarray(x, np.float32)
    blur = cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return np.clip(x + amount * (x - blur), 0.0, 1.0)


def median_filter(x: np.ndarray, ksize: int = 5) -> np.ndarray:
    u8 = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    return cv2.medianBlur(u8, int(ksize)).astype(np.float32) / 255.0


def bilateral_filter(x: np.ndarray, sigma_color: float = 40.0, sigma_space: float = 5.0) -> np.ndarray:
    """OpenCV's bilateral filter (``sigma_color`` on the 0-255 scale, window 2*ceil(2 sigma_space)+1)."""
    u8 = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    d = 2 * int(np.ceil(2 * sigma_space)) + 1
    return cv2.bilateralFilter(u8, d, float(sigma_color), float(sigma_space)).astype(np.float32) / 255.0


BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "dcp": dehaze_dcp,
    "unsharp": unsharp_mask,
    "median": median_filter,
    "bilateral": bilateral_filter,
}

# The grids the benchmark searches (method -> parameter -> values), and the methods per task.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "dcp": {"omega": [0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.85, 0.95], "patch": [7, 15], "t0": [0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.95],
            "radius": [15, 40], "eps": [1e-3]},
    "unsharp": {"sigma": [0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 9.0, 14.0],
                "amount": [0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]},
    "median": {"ksize": [3, 5, 7, 9, 11, 15, 21, 31, 45, 61]},
    "bilateral": {"sigma_color": [10.0, 20.0, 40.0, 70.0, 120.0], "sigma_space": [1.0, 2.0, 4.0, 7.0]},
}

TASK_BASELINES: dict[str, tuple[str, ...]] = {
    "dehaze": ("dcp",),
    "deblur": ("unsharp",),
    "defocus": ("unsharp",),
    "derain": ("median", "bilateral"),
    "desnow": ("median", "bilateral"),
}


def grid(method: str) -> list[dict[str, Any]]:
    """Every parameter combination of ``GRIDS[method]``."""
    g = GRIDS[method]
    keys = list(g)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(g[k] for k in keys))]
