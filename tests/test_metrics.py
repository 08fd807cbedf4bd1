"""PSNR/SSIM against scikit-image on the same arrays; the BT.601 Y channel against known values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from restorecli import metrics


def _pair(shape, dtype, seed=0):
    """A structured image (gradients + texture) and a degraded copy, of the given depth."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.3 * np.sin(6 * xx + 3 * yy) + 0.1 * rng.standard_normal((h, w))
    if len(shape) == 3:
        base = np.stack([np.roll(base, 2 * c, axis=1) for c in range(shape[2])], axis=-1)
    noisy = base + rng.normal(0, 0.05, base.shape)
    base, noisy = np.clip(base, 0, 1), np.clip(noisy, 0, 1)
    if dtype == np.uint8:
        return np.rint(base * 255).astype(np.uint8), np.rint(noisy * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(base * 65535).astype(np.uint16), np.rint(noisy * 65535).astype(np.uint16)
    return base.astype(dtype), noisy.astype(dtype)


RANGE = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0, np.float64: 1.0}
CASES = [((37, 53, 3), np.uint8), ((64, 48), np.uint8), ((40, 41, 3), np.uint16),
         ((33, 60, 3), np.float32), ((29, 31), np.float64)]


def _sk_ssim(a, b, data_range, **kw):
    opts = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False) if not kw.pop("uniform", False) else {}
    return sk_ssim(a, b, data_range=data_range, channel_axis=-1 if a.ndim == 3 else None, **opts, **kw)


@pytest.mark.parametrize("shape,dtype", CASES)
def test_psnr_matches_skimage(shape, dtype):
    clean, noisy = _pair(shape, dtype)
    ours = metrics.psnr(noisy, clean)  # data range from the depth
    ref = sk_psnr(clean, noisy, data_range=RANGE[dtype])
    assert abs(ours - ref) < 1e-4
    assert 15 < ours < 40  # a real comparison, not a degenerate one


@pytest.mark.parametrize("shape,dtype", CASES)
def test_ssim_gaussian_matches_skimage(shape, dtype):
    clean, noisy = _pair(shape, dtype)
    ours = metrics.ssim(noisy, clean)
    ref = _sk_ssim(clean, noisy, RANGE[dtype])
    assert abs(ours - ref) < 1e-5
    assert 0.2 < ours < 0.99


@pytest.mark.parametrize("shape,dtype", CASES[:3])
def test_ssim_uniform_matches_skimage_defaults(shape, dtype):
    clean, noisy = _pair(shape, dtype)
    ours = metrics.ssim(noisy, clean, window="uniform")
    ref = _sk_ssim(clean, noisy, RANGE[dtype], uniform=True)
    assert abs(ours - ref) < 1e-5
    assert abs(ours - metrics.ssim(noisy, clean)) > 1e-4  # the window matters


def test_crop_border_scores_the_inside_only():
    clean, noisy = _pair((50, 44, 3), np.uint8)
    noisy[:4] = 0  # ruin a 4-pixel band: cropping it away must change the score
    c = 4
    assert abs(metrics.psnr(noisy, clean, crop_border=c) - sk_psnr(clean[c:-c, c:-c], noisy[c:-c, c:-c])) < 1e-4
    assert abs(metrics.ssim(noisy, clean, crop_border=c) - _sk_ssim(clean[c:-c, c:-c], noisy[c:-c, c:-c], 255)) < 1e-5
    assert metrics.psnr(noisy, clean, crop_border=c) > metrics.psnr(noisy, clean) + 3


def test_mixed_depths_are_compared_in_a_common_scale():
    clean, noisy = _pair((30, 30, 3), np.uint8)
    as_float = noisy.astype(np.float32) / 255
    assert abs(metrics.psnr(as_float, clean) - metrics.psnr(noisy, clean)) < 1e-4
    assert abs(metrics.ssim(as_float, clean) - metrics.ssim(noisy, clean)) < 1e-6


def test_identical_images():
    clean, _ = _pair((20, 20, 3), np.uint8)
    assert metrics.psnr(clean, clean) == math.inf
    assert metrics.ssim(clean, clean) == pytest.approx(1.0, abs=1e-12)


def test_shape_mismatch_and_tiny_images_are_refused():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match="smaller than"):
        metrics.ssim(np.zeros((8, 30), np.uint8), np.zeros((8, 30), np.uint8))


# -- BT.601 luma --------------------------------------------------------------------------------

def test_y_of_white_black_and_known_colours():
    px = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [100, 150, 200]]], dtype=np.uint8)
    # MATLAB: rgb2ycbcr(uint8([255 255 255])) -> 235, black -> 16, red -> 81 (81.481),
    # [100 150 200] -> 16 + (65.481*100 + 128.553*150 + 24.966*200)/255 = 136.879 -> 137
    assert metrics.rgb_to_y(px).tolist() == [[235, 16, 81, 137]]
    y = metrics.rgb_to_y(px.astype(np.float64) / 255) * 255  # BasicSR: float, unrounded
    assert y[0, 3] == pytest.approx(136.8794, abs=1e-4)
    assert y[0, 0] == pytest.approx(235.0) and y[0, 1] == pytest.approx(16.0)
    assert metrics.rgb_to_y(px.astype(np.uint16) * 257)[0, :2].tolist() == [235 * 257, 16 * 257]


def test_y_channel_scores_are_skimage_on_the_y_images():
    clean, noisy = _pair((36, 40, 3), np.uint8)
    yc, yn = metrics.rgb_to_y(clean), metrics.rgb_to_y(noisy)
    assert yc.dtype == np.uint8 and 16 <= yc.min() and yc.max() <= 235
    assert abs(metrics.psnr(noisy, clean, y_channel=True) - sk_psnr(yc, yn, data_range=255)) < 1e-4
    assert abs(metrics.ssim(noisy, clean, y_channel=True) - _sk_ssim(yc, yn, 255)) < 1e-5
    assert abs(metrics.psnr(noisy, clean, y_channel=True) - metrics.psnr(noisy, clean)) > 0.1


# -- pooled SSIM (DehazeFormer / IRNeXt dehazing eval) -----------------------------------------

def test_pooled_size_follows_the_authors_formula():
    # SOTS indoor 460x620 with IRNeXt's multiple 32: padded 480x640, ratio round(1.875) = 2
    assert metrics._pooled_size(460, 620, 32) == (240, 320)
    # 256x256 is already a multiple: the script pads to 288 (one multiple more), ratio 1
    assert metrics._pooled_size(256, 256, 32) == (288, 288)
    # GoPro-sized 720x1280: padded 736x1312, ratio round(2.875) = 3
    assert metrics._pooled_size(720, 1280, 32) == (245, 437)


@pytest.mark.parametrize("shape", [(45, 70, 3), (300, 260, 3)])
def test_ssim_pooled_is_ssim_of_torch_pooled_images(shape):
    clean, noisy = _pair(shape, np.uint8, seed=3)
    h, w = shape[:2]
    H, W = ((h + 32) // 32) * 32, ((w + 32) // 32) * 32
    r = max(1, round(min(H, W) / 256))

    def pool(a):
        t = torch.from_numpy(a.astype(np.float64) / 255).permute(2, 0, 1)[None]
        return torch.nn.functional.adaptive_avg_pool2d(t, (int(H / r), int(W / r)))[0].permute(1, 2, 0).numpy()

    ref = _sk_ssim(pool(clean), pool(noisy), 1.0)
    assert abs(metrics.ssim_pooled(noisy, clean, 32) - ref) < 1e-5


# -- RealBlur / RSBlur alignment ----------------------------------------------------------------

def test_masked_scores_with_a_full_mask_are_the_plain_ones():
    clean, noisy = _pair((40, 44, 3), np.float64)
    mask = np.ones_like(clean)
    assert abs(metrics.psnr_masked(noisy, clean, mask) - sk_psnr(clean, noisy, data_range=1)) < 1e-4
    assert abs(metrics.ssim_masked(noisy, clean, mask) - _sk_ssim(clean, noisy, 1.0)) < 1e-5


def test_ecc_alignment_undoes_a_shift():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:96, 0:96]
    img = 0.5 + 0.25 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + 0.02 * rng.standard_normal((96, 96))
    target = np.rint(np.clip(np.stack([img] * 3, -1), 0, 1) * 255).astype(np.uint8)
    shifted = np.roll(target, 2, axis=1)
    plain = metrics.psnr(shifted, target)
    zr, xr, cr, converged = metrics.align_ecc(shifted, target)
    aligned = metrics.psnr_masked(zr, xr, cr)
    assert converged
    assert aligned > plain + 10
    assert 0.9 < cr.mean() < 1.0  # the warp leaves a strip uncovered, which is not scored
