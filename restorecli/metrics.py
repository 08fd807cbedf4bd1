"""Full-reference image quality: PSNR and SSIM with the conventions restoration papers use.

All arithmetic is in float64. Images are ``HxW`` or ``HxWxC`` arrays of uint8, uint16 or
float; the data range comes from the depth (255, 65535, or 1.0 for floats) unless given.
Colour images are scored per channel and averaged (as scikit-image and BasicSR do), or on
the luma of ITU-R BT.601 studio-range YCbCr (16-235, MATLAB's ``rgb2ycbcr``) where the
literature does, e.g. deraining.

SSIM is Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
population (co)variances, averaged over the "valid" region (no padded border) — the
numbers of Wang's MATLAB ``ssim_index``, BasicSR's ``calculate_ssim`` and scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
Two variants some papers use are here too, so their tables can be matched:

* ``window="uniform"``: a 7x7 box with sample covariances (scikit-image's defaults, used by
  e.g. Restormer's DPDD script);
* :func:`ssim_pooled`: SSIM after average-pooling both images so the short side is near 256
  pixels (DehazeFormer's evaluation, reused by IRNeXt's dehazing code).

:func:`align_ecc` is the RealBlur/RSBlur protocol: the restored image is matched in
intensity and warped onto the target by an ECC homography, and only the pixels the warp
covers are scored (:func:`psnr_masked`, :func:`ssim_masked`).
"""
from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

__all__ = [
    "data_range_of",
    "to_unit",
    "rgb_to_y",
    "psnr",
    "ssim",
    "ssim_pooled",
    "align_ecc",
    "psnr_masked",
    "ssim_masked",
]

K1, K2 = 0.01, 0.03
GAUSS_SIZE, GAUSS_SIGMA = 11, 1.5
UNIFORM_SIZE = 7

# ITU-R BT.601 luma for R, G, B in [0, 1] giving Y in [16, 235] (MATLAB rgb2ycbcr, BasicSR).
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)


def data_range_of(img: np.ndarray) -> float:
    """The range of values an image of this depth can hold: 255, 65535 or 1.0."""
    dt = np.asarray(img).dtype
    if dt == np.uint8:
        return 255.0
    if dt == np.uint16:
        return 65535.0
    if np.issubdtype(dt, np.floating):
        return 1.0
    raise TypeError(f"unsupported image type {dt}: expected uint8, uint16 or float")


def to_unit(img: np.ndarray) -> np.ndarray:
    """float64 in the 0-1 scale of the image's depth (floats are taken as already 0-1)."""
    img = np.asarray(img)
    return img.astype(np.float64) / data_range_of(img)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """The Y (luma) channel of BT.601 studio-range YCbCr, as MATLAB's ``rgb2ycbcr`` gives it.

    The result has the input's type, like MATLAB: uint8 in gives uint8 Y in 16..235
    (rounded), uint16 gives uint16 in 4112..60395, floats give unrounded Y in
    16/255..235/255. (BasicSR's ``to_y_channel`` is the float path scaled by 255.)
    A single-channel image is returned as it is.
    """
    img = np.asarray(img)
    if img.ndim == 2 or img.shape[-1] == 1:
        return img
    if img.shape[-1] != 3:
        raise ValueError(f"rgb_to_y needs an RGB image, got shape {img.shape}")
    scale = data_range_of(img)
    rgb = img.astype(np.float64) / scale
    y = (rgb @ _Y_WEIGHTS + 16.0) / 255.0  # in [16/255, 235/255]
    if np.issubdtype(img.dtype, np.floating):
        return y.astype(img.dtype) if img.dtype != np.float64 else y
    # MATLAB converts back to the integer class by rounding half away from zero (y > 0 here).
    return np.floor(y * scale + 0.5).astype(img.dtype)


def _prepare(pred: np.ndarray, target: np.ndarray, data_range: float | None,
             crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """Both images as float64 HxWxC in a common scale, and the data range in that scale."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"image shapes differ: {pred.shape} vs {target.shape}")
    if y_channel:
        pred, target = rgb_to_y(pred), rgb_to_y(target)
    if data_range is None:
        # Depth-aware: the two may differ (a float prediction scored against an 8-bit target).
        a, b = to_unit(pred), to_unit(target)
        data_range = 1.0
    else:
        a, b = pred.astype(np.float64), target.astype(np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if crop_border:
        c = int(crop_border)
        a, b = a[c:-c, c:-c], b[c:-c, c:-c]
    return a, b, float(data_range)


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float | None = None,
         crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (``inf`` if equal)."""
    a, b, r = _prepare(pred, target, data_range, crop_border, y_channel)
    mse = np.mean((a - b) ** 2, dtype=np.float64)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(r * r / mse))


def _gaussian_1d(size: int = GAUSS_SIZE, sigma: float = GAUSS_SIGMA) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable correlation with the symmetric kernel ``k``, keeping only the valid region."""
    out = cv2.sepFilter2D(x, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT)
    p = (len(k) - 1) // 2
    return out[p:x.shape[0] - p, p:x.shape[1] - p]


def _ssim_map(a: np.ndarray, b: np.ndarray, data_range: float, window: str) -> np.ndarray:
    """SSIM index map of two single-channel float64 images over the valid region."""
    if window == "gaussian":
        k, cov_norm = _gaussian_1d(), 1.0
    elif window == "uniform":
        n = UNIFORM_SIZE
        k, cov_norm = np.full(n, 1.0 / n), (n * n) / (n * n - 1.0)  # sample covariance
    else:
        raise ValueError(f"unknown SSIM window {window!r}: expected 'gaussian' or 'uniform'")
    if min(a.shape) < len(k):
        raise ValueError(f"image of {a.shape[1]}x{a.shape[0]} is smaller than the "
                         f"{len(k)}x{len(k)} SSIM window")
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, k), _filter_valid(b, k)
    var_a = cov_norm * (_filter_valid(a * a, k) - mu_a * mu_a)
    var_b = cov_norm * (_filter_valid(b * b, k) - mu_b * mu_b)
    cov = cov_norm * (_filter_valid(a * b, k) - mu_a * mu_b)
    num = (2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return num / den


def ssim(pred: np.ndarray, target: np.ndarray, data_range: float | None = None,
         crop_border: int = 0, y_channel: bool = False,
         window: Literal["gaussian", "uniform"] = "gaussian") -> float:
    """Mean SSIM (the mean over channels of each channel's mean SSIM)."""
    a, b, r = _prepare(pred, target, data_range, crop_border, y_channel)
    return float(np.mean([_ssim_map(np.ascontiguousarray(a[..., c]), np.ascontiguousarray(b[..., c]),
                                    r, window).mean() for c in range(a.shape[-1])]))


def _pooled_size(h: int, w: int, factor: int) -> tuple[int, int]:
    # DehazeFormer / IRNeXt eval.py: H, W are the sizes after padding to the network's
    # multiple, computed as ((h + f) // f) * f (one multiple more when h is already one);
    # the pooling ratio is Python's round() of min(H, W) / 256, at least 1.
    H, W = ((h + factor) // factor) * factor, ((w + factor) // factor) * factor
    ratio = max(1, round(min(H, W) / 256))
    return int(H / ratio), int(W / ratio)


def _adaptive_avg_pool(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """``torch.nn.functional.adaptive_avg_pool2d`` on an HxWxC float64 array."""
    def bins(n_in: int, n_out: int) -> list[tuple[int, int]]:
        return [((i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)) for i in range(n_out)]

    h, w = x.shape[:2]
    # Sum over row bins, then column bins, via cumulative sums (exact bin means).
    cs = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)], axis=0)
    rows = np.stack([(cs[e] - cs[s]) / (e - s) for s, e in bins(h, out_h)], axis=0)
    cs = np.concatenate([np.zeros((rows.shape[0], 1) + x.shape[2:]), np.cumsum(rows, axis=1)], axis=1)
    return np.stack([(cs[:, e] - cs[:, s]) / (e - s) for s, e in bins(w, out_w)], axis=1)


def ssim_pooled(pred: np.ndarray, target: np.ndarray, factor: int = 32) -> float:
    """Gaussian SSIM after DehazeFormer-style average pooling (data range 1, RGB).

    Both images are pooled (torch's adaptive average pooling) to ``(int(H/r), int(W/r))``
    where ``H, W`` are the sizes the authors' script pads to for a network multiple of
    ``factor`` and ``r = max(1, round(min(H, W) / 256))``; then the usual SSIM.
    """
    a, b, _ = _prepare(pred, target, None, 0, False)
    out_h, out_w = _pooled_size(a.shape[0], a.shape[1], factor)
    a, b = _adaptive_avg_pool(a, out_h, out_w), _adaptive_avg_pool(b, out_h, out_w)
    return ssim(a, b, data_range=1.0)


# -- RealBlur / RSBlur: align, then score the covered pixels --------------------------------

def align_ecc(pred: np.ndarray, target: np.ndarray, iterations: int = 100
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Warp ``pred`` onto ``target`` as the RealBlur/RSBlur evaluation does.

    Intensity matching (``pred * sum(t*p) / sum(p*p)``), then an ECC homography between the
    grey images (``iterations`` steps, Gaussian pre-filter 5), cubic warp with reflected
    borders. Returns ``(aligned_pred, masked_target, mask, converged)`` as float32 HxWx3 in
    [0, 1]-scale, where ``mask`` is 1 where the warp has image content and 0 elsewhere;
    ``converged`` is False when ECC failed and the identity was used.
    """
    z = to_unit(pred).astype(np.float32)
    x = to_unit(target).astype(np.float32)
    if z.ndim == 2:
        z, x = z[..., None], x[..., None]
    if z.shape[-1] == 1:
        z, x = np.repeat(z, 3, axis=2), np.repeat(x, 3, axis=2)
    zs = (np.sum(x * z) / max(np.sum(z * z), 1e-12)) * z
    warp = np.eye(3, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 0)
    converged = True
    try:
        _, warp = cv2.findTransformECC(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.cvtColor(zs, cv2.COLOR_RGB2GRAY),
                                       warp, cv2.MOTION_HOMOGRAPHY, criteria, None, 5)
    except cv2.error:
        warp, converged = np.eye(3, 3, dtype=np.float32), False
    h, w = x.shape[:2]
    zr = cv2.warpPerspective(zs, warp, (w, h), flags=cv2.INTER_CUBIC + cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)
    cr = cv2.warpPerspective(np.ones_like(zs), warp, (w, h), flags=cv2.INTER_NEAREST + cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if zr.ndim == 2:
        zr, cr = zr[..., None], cr[..., None]
    zr, xr = np.clip(zr * cr, 0, 1), np.clip(x * cr, 0, 1)
    return zr, xr, cr, converged


def psnr_masked(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR with the squared error summed over the image and divided by the mask's sum."""
    err = np.sum((target.astype(np.float64) - pred.astype(np.float64)) ** 2) / max(float(np.sum(mask)), 1.0)
    return float("inf") if err == 0 else float(10.0 * np.log10(data_range * data_range / err))


def ssim_masked(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, data_range: float = 1.0) -> float:
    """Gaussian SSIM averaged over the mask's pixels of each channel's valid region, then channels."""
    p = (GAUSS_SIZE - 1) // 2
    values = []
    for c in range(pred.shape[-1]):
        m = _ssim_map(pred[..., c].astype(np.float64), target[..., c].astype(np.float64), data_range, "gaussian")
        cm = mask[p:-p, p:-p, c].astype(np.float64)
        values.append(np.sum(m * cm) / max(np.sum(cm), 1.0))
    return float(np.mean(values))
