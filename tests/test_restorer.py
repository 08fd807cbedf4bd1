"""The Python API: Restorer(task, ...)(array) -> array of the same shape and dtype."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import restorecli
from restorecli import Restorer
from restorecli.errors import UsageError
from restorecli.noise import estimate_sigma


@pytest.fixture(scope="module")
def restorer(dehaze_weights) -> Restorer:
    return Restorer("dehaze", weights=str(dehaze_weights), device="cpu", tile=0)


def test_public_api():
    assert "irnext-deblur" in restorecli.list_models() and "irnext-dehaze" in restorecli.list_models()
    model = restorecli.create_model("irnext-dehaze")
    assert model.spec.size_multiple == 32 and isinstance(model, torch.nn.Module)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape", [(40, 56, 3), (40, 56)])
def test_same_shape_and_dtype(restorer, photo, dtype, shape):
    rgb = photo[: shape[0], : shape[1]]
    img = rgb if len(shape) == 3 else rgb[..., 1]
    if dtype == np.uint16:
        img = img.astype(np.uint16) * 257
    elif dtype == np.float32:
        img = img.astype(np.float32) / 255
    out = restorer(img)
    assert out.shape == img.shape and out.dtype == img.dtype


def test_dtypes_agree_with_each_other(restorer, photo):
    rgb = np.ascontiguousarray(photo[:64, :64])
    a = restorer(rgb).astype(np.float64) / 255
    b = restorer(rgb.astype(np.uint16) * 257).astype(np.float64) / 65535
    c = restorer(rgb.astype(np.float32) / 255).astype(np.float64)
    assert np.abs(a - c).max() <= 0.5 / 255 + 1e-6 and np.abs(b - c).max() <= 0.5 / 65535 + 1e-6


def test_input_is_not_modified(restorer, photo):
    img = np.ascontiguousarray(photo[:64, :64])
    copy = img.copy()
    restorer(img)
    assert np.array_equal(img, copy)


def test_tiled_api_matches_whole_closely(dehaze_weights, photo):
    img = np.ascontiguousarray(photo[:160, :224])
    whole = Restorer("dehaze", weights=str(dehaze_weights), tile=0)(img).astype(np.float64)
    tiled_r = Restorer("dehaze", weights=str(dehaze_weights), tile=96, tile_overlap=32)
    tiled = tiled_r(img).astype(np.float64)
    assert tiled_r.last_tile == 96
    mse = np.mean((whole - tiled) ** 2)
    assert 10 * np.log10(255 ** 2 / max(mse, 1e-12)) > 35


def test_bf16_autocast_runs_on_cpu_and_stays_close(dehaze_weights, photo):
    img = np.ascontiguousarray(photo[:64, :96]).astype(np.float32) / 255
    fp32 = Restorer("dehaze", weights=str(dehaze_weights), tile=0)(img)
    bf16 = Restorer("dehaze", weights=str(dehaze_weights), tile=0, precision="bf16")(img)
    assert not np.array_equal(fp32, bf16)  # it really ran in another precision
    assert 10 * np.log10(1 / np.mean((fp32 - bf16) ** 2)) > 30


def test_out_of_memory_halves_the_tile_and_retries(dehaze_weights, photo, monkeypatch):
    r = Restorer("dehaze", weights=str(dehaze_weights), tile="auto")
    monkeypatch.setattr(r, "memory_budget", lambda: 10 ** 12)  # plans the whole image
    real = r.model.forward

    def forward(x, *a, **k):
        if x.shape[-1] * x.shape[-2] > 64 * 64:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x, *a, **k)

    monkeypatch.setattr(r.model, "forward", forward)
    out = r(np.ascontiguousarray(photo[:64, :160]))
    assert out.shape == (64, 160, 3) and r.last_tile == 64


def test_bad_options_are_usage_errors(dehaze_weights):
    w = str(dehaze_weights)
    for kwargs in ({"tile": "big"}, {"tile": 8}, {"device": "gpu"}, {"precision": "int8"},
                   {"tile_overlap": -1}, {"precision": "fp16"}):
        with pytest.raises(UsageError):
            Restorer("dehaze", weights=w, **kwargs)
    with pytest.raises(UsageError):
        Restorer("sharpen", weights=w)
    with pytest.raises(UsageError):
        Restorer("dehaze", weights=w)(np.zeros((8, 8, 4), np.uint8))


@pytest.mark.parametrize("sigma", [5, 15, 25, 50])
def test_sigma_estimate_on_a_photo(photo, sigma):
    rng = np.random.default_rng(sigma)
    clean = photo.astype(np.float64) / 255
    noisy = clean + rng.normal(0, sigma / 255, clean.shape)
    est = estimate_sigma(noisy)
    assert abs(est - sigma) < 0.12 * sigma + 1.5, est


def test_every_user_error_shares_one_base_class(dehaze_weights):
    from restorecli.checkpoint import CheckpointError
    from restorecli.errors import RestoreError
    from restorecli.imageio import ImageError
    from restorecli.models import UnknownModelError
    from restorecli.weights import WeightsError

    for cls in (UsageError, CheckpointError, ImageError, UnknownModelError, WeightsError):
        assert issubclass(cls, RestoreError)
    w = str(dehaze_weights)
    for kwargs in ({"tile": None}, {"tile": True}, {"tile": 1.5}, {"tile_overlap": "a"}):
        with pytest.raises(UsageError):
            Restorer("dehaze", weights=w, **kwargs)
    r = Restorer("dehaze", weights=w, device=torch.device("cpu"))  # a torch.device is fine
    with pytest.raises(UsageError, match="empty"):
        r(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(UsageError, match="NaN"):
        r(np.full((8, 8, 3), np.nan, np.float32))


def test_overlap_an_explicit_tile_cannot_hold_is_refused(dehaze_weights):
    w = str(dehaze_weights)
    with pytest.raises(UsageError, match=r"--tile-overlap 40 is too large for --tile 64: at most 32"):
        Restorer("dehaze", weights=w, tile=64, tile_overlap=40)
    # irnext tiles are multiples of 32: --tile 100 cuts 96-px tiles, whose half is 48
    with pytest.raises(UsageError, match=r"--tile-overlap 49 is too large for --tile 100: at most 48 .*96-px"):
        Restorer("dehaze", weights=w, tile=100, tile_overlap=49)
    assert Restorer("dehaze", weights=w, tile=100, tile_overlap=48).tile_overlap == 48
    # with auto (or the whole image) the tiler still lowers it as it needs
    assert Restorer("dehaze", weights=w, tile="auto", tile_overlap=1000).tile_overlap == 1000
    assert Restorer("dehaze", weights=w, tile=0, tile_overlap=1000).tile_overlap == 1000
