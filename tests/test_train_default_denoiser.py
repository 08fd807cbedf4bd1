"""The embedded default denoiser (trained by recipes/denoise-nlmunet-s.toml) works offline,
is registered as denoise's default, and `--sigma` changes what it does."""
import numpy as np
import pytest

from restorecli import Restorer
from conftest import held_out_crop, psnr_u8 as _psnr

pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def photo():
    return held_out_crop("astronaut", slice(100, 228), slice(160, 288))


@pytest.fixture(scope="module")
def restorer():
    return Restorer("denoise", device="cpu", tile=0)


def _noisy(clean, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)


def test_default_is_the_embedded_noise_map_model(restorer):
    assert restorer.spec.conditioning == ("sigma",)
    assert restorer.weights.name == "denoise-nlmunet-s"
    assert restorer.weights.path.stat().st_size < 10_000_000


def test_denoises_color_and_gray_and_sigma_matters(restorer, photo):
    noisy = _noisy(photo, 25)
    out = restorer(noisy, sigma=25)
    assert out.shape == photo.shape and out.dtype == np.uint8
    gain = _psnr(out, photo) - _psnr(noisy, photo)
    assert gain > 6.0
    weak = restorer(noisy, sigma=5)
    assert _psnr(out, photo) > _psnr(weak, photo) + 2.0  # conditioning on sigma does something
    gray = photo.mean(2).round().astype(np.uint8)
    gnoisy = _noisy(gray, 25, seed=1)
    gout = restorer(gnoisy, sigma=25)
    assert gout.shape == gray.shape
    assert _psnr(gout, gray) - _psnr(gnoisy, gray) > 5.0
