"""Noise-level estimation for ``--sigma auto``.

Donoho's wavelet estimate: the finest diagonal (HH) Haar sub-band of a natural
image is almost all noise, and its median absolute value / 0.6745 estimates the
noise standard deviation robustly against the few edges it holds.
"""
from __future__ import annotations

import numpy as np

__all__ = ["estimate_sigma"]


def estimate_sigma(image: np.ndarray, max_value: float = 255.0) -> float:
    """Estimate Gaussian noise sigma of ``image`` (HxW or HxWxC) in units of ``max_value``.

    ``image`` is float in [0, 1] (what the Restorer works on); the result is in
    the 0-255 scale users give ``--sigma`` in. Multi-channel images use the
    median of the per-channel estimates.
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    h, w = x.shape[:2]
    h2, w2 = h - h % 2, w - w % 2
    if h2 < 2 or w2 < 2:
        return 0.0
    x = x[:h2, :w2]
    a, b = x[0::2, 0::2], x[0::2, 1::2]
    c, d = x[1::2, 0::2], x[1::2, 1::2]
    hh = (a - b - c + d) / 2.0  # orthonormal Haar diagonal detail: noise std is preserved
    sigmas = [np.median(np.abs(hh[..., k])) / 0.6745 for k in range(hh.shape[-1])]
    return float(np.median(sigmas) * max_value)
