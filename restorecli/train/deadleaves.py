"""Procedural natural-like images: the dead-leaves model (Achddou et al., SSVM 2021).

Opaque disks fall one on top of another; the visible picture is the stack seen from
above. Radii follow a power law ``p(r) ~ r^-alpha`` on ``[r_min, r_max]``, which makes
the picture statistically scale invariant like natural images, and occlusion gives
the sharp, irregular edges that restoration networks must learn to keep. As in the
paper, colours are drawn from natural-image statistics (a palette of pixels taken
from real photos when given, otherwise a luminance/chroma model of them), disks can
carry a texture, and the result can be blurred (depth of field).

Rendering uses the equivalent front-to-back order: each new disk paints only the
pixels no earlier disk covered, and drawing stops when (almost) all are covered.
It renders at twice the size and downsamples by area, so edges are anti-aliased.
Deterministic for a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# BT.601 luma weights: gray versions of colours, as the Restorer makes of gray photos
# (shared by the training data modules: dead leaves, patches, synthetic degradations).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)

__all__ = ["DeadLeavesParams", "dead_leaves", "color_palette"]


@dataclass(frozen=True)
class DeadLeavesParams:
    alpha: float = 3.0  # power-law exponent of the radius distribution
    r_min: float = 1.0  # in output pixels
    r_max: float = 0.35  # as a fraction of the image side
    max_disks: int = 30000
    texture_prob: float = 0.5  # share of disks that carry a texture
    blur_prob: float = 0.3  # share of images blurred (depth of field)
    blur_max: float = 1.5  # largest Gaussian blur sigma, output pixels
    supersample: int = 2


def _sample_radii(rng: np.random.Generator, n: int, alpha: float, r_min: float, r_max: float) -> np.ndarray:
    """Inverse-CDF draws from p(r) ~ r^-alpha on [r_min, r_max]."""
    u = rng.random(n)
    if abs(alpha - 1.0) < 1e-6:
        return r_min * (r_max / r_min) ** u
    a = 1.0 - alpha
    return (r_min ** a + u * (r_max ** a - r_min ** a)) ** (1.0 / a)


def color_palette(images: list[np.ndarray], per_image: int = 4096, seed: int = 0) -> np.ndarray:
    """Random RGB pixels (float32 in [0, 1], shape ``(K, 3)``) from real photos, to draw colours from."""
    rng = np.random.default_rng(seed)
    out = []
    for im in images:
        im = np.asarray(im)
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=2)
        flat = im[..., :3].reshape(-1, 3)
        idx = rng.integers(0, flat.shape[0], size=min(per_image, flat.shape[0]))
        px = flat[idx].astype(np.float32)
        if im.dtype == np.uint8:
            px /= 255.0
        out.append(px)
    return np.concatenate(out, 0) if out else np.zeros((0, 3), np.float32)


def _model_colors(rng: np.random.Generator, n: int) -> np.ndarray:
    """Colours without a palette: natural-image-like luminance spread, low mean saturation."""
    lum = np.clip(rng.beta(1.6, 1.8, n), 0, 1)
    chroma = rng.normal(0, 1, (n, 3)) * (0.04 + 0.12 * rng.random((n, 1)))
    chroma -= chroma.mean(1, keepdims=True)
    return np.clip(lum[:, None] + chroma, 0, 1).astype(np.float32)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A zero-mean multiplicative texture patch: a grating or a smooth gradient."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(0, 2)
    theta = rng.uniform(0, np.pi)
    proj = xx * np.cos(theta) + yy * np.sin(theta)
    if kind == 0:  # sinusoidal grating
        period = rng.uniform(3, 30)
        return (0.25 * rng.random() * np.sin(2 * np.pi * proj / period + rng.uniform(0, 6.3))).astype(np.float32)
    span = max(h, w)
    return (0.4 * (rng.random() - 0.5) * (proj / span - 0.5)).astype(np.float32)


def dead_leaves(size: int | tuple[int, int], seed: int, params: DeadLeavesParams = DeadLeavesParams(),
                palette: np.ndarray | None = None, gray: bool = False) -> np.ndarray:
    """One dead-leaves image, float32 ``HxWx3`` in [0, 1] (gray: the three channels equal)."""
    h_out, w_out = (size, size) if isinstance(size, int) else size
    s = max(1, int(params.supersample))
    h, w = h_out * s, w_out * s
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    covered = np.zeros((h, w), bool)
    r_min = params.r_min * s
    r_max = max(r_min * 1.01, params.r_max * max(h, w))
    remaining = h * w
    stop = int(0.0005 * h * w)
    batch = 512
    drawn = 0
    while remaining > stop and drawn < params.max_disks:
        radii = _sample_radii(rng, batch, params.alpha, r_min, r_max)
        cy = rng.uniform(-r_max * 0.2, h + r_max * 0.2, batch)
        cx = rng.uniform(-r_max * 0.2, w + r_max * 0.2, batch)
        if palette is not None and len(palette):
            cols = palette[rng.integers(0, len(palette), batch)].copy()
        else:
            cols = _model_colors(rng, batch)
        textured = rng.random(batch) < params.texture_prob
        tex_seeds = rng.integers(0, 2**31, batch)
        for r, y, x, col, tx, ts in zip(radii, cy, cx, cols, textured, tex_seeds):
            y0, y1 = max(0, int(y - r)), min(h, int(y + r) + 1)
            x0, x1 = max(0, int(x - r)), min(w, int(x + r) + 1)
            if y0 >= y1 or x0 >= x1:
                continue
            yy = np.arange(y0, y1, dtype=np.float32)[:, None] - y
            xx = np.arange(x0, x1, dtype=np.float32)[None, :] - x
            m = (yy * yy + xx * xx <= r * r) & ~covered[y0:y1, x0:x1]
            if not m.any():
                continue
            if tx and r > 3 * s:
                t = _texture(np.random.default_rng(int(ts)), y1 - y0, x1 - x0)
                patch = np.clip(col[None, None, :] * (1.0 + t[..., None]), 0, 1)
                img[y0:y1, x0:x1][m] = patch[m]
            else:
                img[y0:y1, x0:x1][m] = col
            covered[y0:y1, x0:x1] |= m
            remaining -= int(m.sum())
        drawn += batch
    if remaining > 0:  # the last specks: the mean colour
        img[~covered] = img[covered].mean(0) if covered.any() else 0.5
    if s > 1:
        img = cv2.resize(img, (w_out, h_out), interpolation=cv2.INTER_AREA)
    if params.blur_prob > 0 and rng.random() < params.blur_prob:
        sig = rng.uniform(0.3, params.blur_max)
        img = cv2.GaussianBlur(img, (0, 0), sig)
    if gray:
        y = img @ LUMA
        img = np.repeat(y[..., None], 3, axis=2)
    return np.clip(img, 0, 1).astype(np.float32)
