"""Degradations made differently from ours (restorecli/train/synth.py), for checking
that a network trained on our generators still restores other generators' output
(issue 8: "users' rain is not our generator's rain"). Benchmark-only; never trained on.

Each follows a recipe common in other tools rather than ours:

* rain: anti-aliased line segments drawn with ``cv2.line`` (one angle for the image,
  fixed gray colour, random length up to a maximum), the layer box-blurred, blended
  with ``addWeighted``, and the scene darkened and slightly blurred (the popular
  OpenCV "add rain" recipe; no screen blend, no layers, no veil model).
* deblur: frame averaging, as GoPro/REDS-style datasets make blur: the mean of 9-17
  copies of the image along a smooth random path of shifts *and rotations* (a
  spatially varying blur, unlike our single convolution kernel), in gamma-2.2 linear light.
* defocus: a hexagonal (6-blade) aperture PSF of random radius and rotation, drawn
  with ``cv2.fillPoly`` at 8x and area-downsampled; strong vignetting-free.
* haze: fog as a blend towards a gray with an opacity made of many large blurred
  random circles (an albumentations-like ``RandomFog``), not the scattering model.
* snow: hard-edged white ellipses of random sizes and orientations at random
  opacities (no motion streaks), lightly blurred.
"""
from __future__ import annotations

import math

import cv2
import numpy as np


def rain(x: np.ndarray, rng: np.random.Generator, level: str, *, streaks: bool = True,
         scene_blur: bool = True, scene_gain: bool = True) -> np.ndarray:
    """The keyword switches take parts away (benchmarks/foreign_rain_parts.py); the random
    draws stay the same, so each variant has the same streaks."""
    h, w = x.shape[:2]
    heavy = level == "heavy"
    n = int((0.004 if heavy else 0.0012) * h * w)
    slant = rng.uniform(-20, 20)
    max_len = 40 if heavy else 20
    thick = 2 if heavy else 1
    layer = np.zeros((h, w), np.float32)
    for _ in range(n):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        ln = rng.uniform(0.3, 1.0) * max_len
        x1 = int(x0 + ln * math.sin(math.radians(slant)))
        y1 = int(y0 + ln * math.cos(math.radians(slant)))
        cv2.line(layer, (x0, y0), (x1, y1), 200 / 255.0, thick, cv2.LINE_AA)
    layer = cv2.blur(layer, (3, 3)) * float(streaks)
    scene = (cv2.blur(x, (3, 3)) if scene_blur else x) * ((0.75 if heavy else 0.9) if scene_gain else 1.0)
    out = cv2.addWeighted(scene, 1.0, np.repeat(layer[..., None], 3, axis=2), 0.8 if heavy else 0.6, 0.0)
    return np.clip(out, 0, 1)


def _warp(x: np.ndarray, dx: float, dy: float, ang: float) -> np.ndarray:
    h, w = x.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(x, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def deblur(x: np.ndarray, rng: np.random.Generator, level: str) -> np.ndarray:
    heavy = level == "heavy"
    n = int(rng.integers(13, 18) if heavy else rng.integers(9, 12))
    extent = rng.uniform(10, 22) if heavy else rng.uniform(3, 7)  # px of travel
    roll = rng.uniform(0.5, 1.5) if heavy else rng.uniform(0.1, 0.4)  # degrees
    t = np.linspace(-0.5, 0.5, n)
    a, b = rng.normal(size=2), rng.normal(size=2) * 0.4
    path = np.outer(t, a / np.linalg.norm(a)) * extent + np.outer(t ** 2, b) * extent
    lin = np.power(x, 2.2)
    acc = np.zeros_like(x)
    for i in range(n):
        acc += _warp(lin, path[i, 0], path[i, 1], roll * t[i])
    out = np.power(np.clip(acc / n, 0, 1), 1 / 2.2)
    return np.clip(out + rng.normal(0, 1.5 / 255, x.shape).astype(np.float32), 0, 1)


def hexagon_kernel(radius: float, rot: float, s: int = 8) -> np.ndarray:
    c = int(math.ceil(radius)) + 1
    size = 2 * c + 1
    canvas = np.zeros((size * s, size * s), np.uint8)
    ang = rot + np.arange(6) * math.pi / 3
    pts = np.stack([(c + 0.5 + radius * np.cos(ang)) * s, (c + 0.5 + radius * np.sin(ang)) * s], 1)
    cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 255)
    k = canvas.reshape(size, s, size, s).astype(np.float64).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


def defocus(x: np.ndarray, rng: np.random.Generator, level: str) -> np.ndarray:
    r = rng.uniform(4.0, 7.0) if level == "heavy" else rng.uniform(1.2, 2.5)
    k = hexagon_kernel(r, rng.uniform(0, math.pi / 3))
    return np.clip(cv2.filter2D(x, -1, k[::-1, ::-1].copy(), borderType=cv2.BORDER_REFLECT_101), 0, 1)


def haze(x: np.ndarray, rng: np.random.Generator, level: str) -> np.ndarray:
    h, w = x.shape[:2]
    heavy = level == "heavy"
    alpha = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(20, 40))):
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, int(h * 0.8)))
        r = int(rng.uniform(0.08, 0.25) * max(h, w))
        blob = np.zeros_like(alpha)
        cv2.circle(blob, (cx, cy), r, 1.0, -1)
        alpha = np.maximum(alpha, blob * rng.uniform(0.3, 1.0))
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.08 * max(h, w))
    alpha = alpha / max(float(alpha.max()), 1e-6) * (rng.uniform(0.6, 0.8) if heavy else rng.uniform(0.25, 0.4))
    fog = np.float32(rng.uniform(0.75, 0.9))
    return np.clip(x * (1 - alpha[..., None]) + fog * alpha[..., None], 0, 1)


def snow(x: np.ndarray, rng: np.random.Generator, level: str) -> np.ndarray:
    h, w = x.shape[:2]
    heavy = level == "heavy"
    out = x.copy()
    n = int((0.003 if heavy else 0.0008) * h * w)
    layer = np.zeros((h, w), np.float32)
    for _ in range(n):
        ax = float(rng.uniform(1, 5 if heavy else 3))
        axes = (max(1, int(round(ax))), max(1, int(round(ax * rng.uniform(0.5, 1.0)))))
        cv2.ellipse(layer, (int(rng.integers(0, w)), int(rng.integers(0, h))), axes,
                    float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.5, 1.0)), -1)
    layer = cv2.GaussianBlur(layer, (0, 0), 0.7)
    out = out * (1 - layer[..., None]) + 0.95 * layer[..., None]
    return np.clip(out, 0, 1)


FOREIGN = {"derain": rain, "deblur": deblur, "defocus": defocus, "dehaze": haze, "desnow": snow}
