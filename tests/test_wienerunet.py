"""wienerunet: a U-Net given its input deconvolved by a bank of PSFs (restorecli/models/wienerunet.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from restorecli.checkpoint import detect_architecture, transfer_weights
from restorecli.models import create_model, get_spec
from restorecli.models.wienerunet import WienerBank, disk_psf, gaussian_psf
from restorecli.train import synth


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def _smooth_image(seed: int = 0, size: int = 96) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size // 8, size // 8, generator=g)
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def _blur(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    p = k.shape[-1] // 2
    return F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), k[None, None].repeat(3, 1, 1, 1), groups=3)


def test_psfs_match_the_training_generators():
    """The bank's pill-box is our generator's (anti-aliased the same way) and its Gaussian
    too; both centred in the bank's array."""
    for r in (1.0, 2.5, 6.0, 8.5):
        theirs = synth.disk_kernel(r)
        pad = (21 - theirs.shape[0]) // 2
        assert np.abs(disk_psf(r, 21).numpy() - np.pad(theirs, pad)).max() < 1e-6
    for sigma in (0.6, 1.6, 2.6):
        theirs = synth.gaussian_kernel(sigma)
        pad = (21 - theirs.shape[0]) // 2
        assert np.abs(gaussian_psf(sigma, 21).numpy() - np.pad(theirs, pad)).max() < 2e-4
    k = disk_psf(3.0, 11)
    assert torch.allclose(k, k.flip(0)) and torch.allclose(k, k.flip(1))


def test_bank_is_the_wiener_formula():
    """Against numpy in float64: the PSF's centred OTF, the 5-point Laplacian's, reflect
    padding by twice the PSF array, conj(K) Y / (|K|^2 + lambda |L|^2), cropped."""
    bank = WienerBank(radii=(2.0,), sigmas=(1.2,))
    x = _smooth_image(3, 64) + 0.05 * torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = bank(x)[0].numpy()
    p = 2 * bank.size
    y = np.pad(x[0].double().numpy(), ((0, 0), (p, p), (p, p)), mode="reflect")
    hp, wp = y.shape[1:]

    def otf(k):
        a = np.zeros((hp, wp))
        a[:k.shape[0], :k.shape[1]] = k
        return np.fft.fft2(np.roll(a, (-(k.shape[0] // 2), -(k.shape[1] // 2)), (0, 1)))

    lap = otf(np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float64))
    for i, lam in enumerate(bank.log_lambda.exp().tolist()):
        K = otf(bank.psfs[i].double().numpy())
        for c in range(3):
            want = np.fft.ifft2(np.fft.fft2(y[c]) * np.conj(K) / (np.abs(K) ** 2 + lam * np.abs(lap) ** 2)).real
            assert np.abs(ours[3 * i + c] - want[p:p + 64, p:p + 64]).max() < 1e-4


def test_bank_deconvolves_the_blur_it_was_given():
    """An image blurred by a PSF of the bank comes back far sharper in that PSF's channels
    than in the others', and than the blurred input is."""
    bank = WienerBank(radii=(1.0, 2.0, 4.0), sigmas=(1.5,))  # lambda as initialised
    x = _smooth_image()
    for i, k in enumerate(bank.psfs):
        y = _blur(x, k)
        with torch.no_grad():
            out = bank(y)
        assert out.shape == (1, 3 * bank.count, 96, 96)
        scores = [_psnr(out[:, 3 * j:3 * j + 3, 16:-16, 16:-16], x[..., 16:-16, 16:-16]) for j in range(bank.count)]
        blurred = _psnr(y[..., 16:-16, 16:-16], x[..., 16:-16, 16:-16])
        assert int(np.argmax(scores)) == i, scores
        assert scores[i] > blurred + 10, (scores, blurred)


def test_bank_is_float32_inside_and_handles_tiny_inputs():
    bank = WienerBank(radii=(1.0, 8.0))
    tiny = torch.rand(2, 3, 8, 8)
    # smaller than the padding: reflected in steps, so a flat image stays flat
    assert bank(tiny).shape == (2, 6, 8, 8)
    assert torch.allclose(bank(torch.full((1, 3, 5, 7), 0.25)), torch.tensor(0.25), atol=1e-5)
    assert torch.allclose(bank(torch.full((1, 1, 1, 9), 0.5)), torch.tensor(0.5), atol=1e-5)
    x = torch.rand(1, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = bank(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), bank(x), atol=2e-2)
    half = WienerBank(radii=(1.0, 8.0)).half()  # the PSFs stay float32, summing to 1
    assert half.psfs.dtype == torch.float32 and abs(float(half.psfs[1].sum()) - 1) < 1e-6


def test_lambda_is_learned():
    bank = WienerBank(radii=(2.0,))
    out = bank(_blur(_smooth_image(1, 64), bank.psfs[0]))
    out.square().mean().backward()
    assert bank.log_lambda.grad is not None and torch.isfinite(bank.log_lambda.grad).all()
    assert float(bank.log_lambda.grad.abs().sum()) > 0


@pytest.mark.parametrize("name", ["wienerunet-s", "wienerunet-s-dg", "wienerunet-s-mix"])
def test_starts_as_the_unet_it_is_initialised_from(name):
    """Initialised from a trained unet-s, the new channels' weights are zero: same output."""
    torch.manual_seed(0)
    unet = create_model("unet-s").eval()
    model = create_model(name).eval()
    report = transfer_weights(model, unet.state_dict())
    assert report["skipped"] == ["bank.log_lambda"] + (["mix.weight", "mix.bias"] if model.mix else [])
    assert len(report["padded"]) == 4  # the head and the three downsampling convolutions
    x = torch.rand(1, 3, 40, 48)
    with torch.no_grad():
        assert torch.allclose(model(x), unet(x), atol=1e-5)


def test_mix_gates_take_a_deconvolution_into_the_output():
    """wienerunet-s-mix: output = x + tail + sum_i gate_i (X_i - x). With the tail silenced and
    gate i at 1 the output is deconvolution i; the zero gates get a gradient at the start."""
    torch.manual_seed(0)
    model = create_model("wienerunet-s-mix").eval()
    x = _blur(_smooth_image(4, 64), disk_psf(2.25, 9))
    with torch.no_grad():
        model.tail.weight.zero_()
        model.tail.bias.zero_()
        model.mix.bias[2] = 1.0  # the pill-box of radius 2.25
        maps = model.bank(x)
        assert torch.allclose(model(x), maps[:, 6:9], atol=1e-5)
        model.mix.bias.zero_()
    model.train()
    (model(x) - _smooth_image(4, 64)).abs().mean().backward()
    assert float(model.mix.weight.grad.abs().sum()) > 0 and float(model.mix.bias.grad.abs().sum()) > 0


def test_registered_and_recognised_from_its_keys():
    spec = get_spec("wienerunet", task="defocus")
    assert spec.name == "wienerunet-s" and spec.size_multiple == 8
    for name in ("wienerunet-s", "wienerunet-s-dg", "wienerunet-s-mix"):
        state = create_model(name).state_dict()
        assert "bank.psfs" not in state  # derived from the config, not stored
        assert detect_architecture(state) == [name]


def test_restorer_runs_it_tiled_and_whole(tmp_path):
    """Through the Restorer: any size (padded to 8 and cropped), whole and tiled. A model that
    reads its bank (a shipped unet-s given half the input and half the r = 1 deconvolution) differs between a tiled and a whole-image run about as much as the U-Net
    alone does: the per-tile deconvolution adds little to the seams."""
    from restorecli import Restorer
    from restorecli.checkpoint import read_state_dict, save_safetensors
    from restorecli.weights.registry import PACKAGE_DIR, read_registry_file, shipped_registry_path

    # a trained unet-s of the package (one of the task defaults)
    entry = next(e for e in read_registry_file(shipped_registry_path()) if e.arch == "unet-s" and e.embedded)
    unet = {k: v.float() for k, v in read_state_dict(PACKAGE_DIR / entry.embedded).items()}
    blurred = _blur(_smooth_image(2, 136), disk_psf(1.0, 5))
    img = (blurred[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)[:133, :131]
    seams = []
    for reads_bank in (False, True):
        model = create_model("wienerunet-s")
        transfer_weights(model, unet)
        if reads_bank:
            with torch.no_grad():
                model.head.weight[:, 3:6] = model.head.weight[:, :3] * 0.5
                model.head.weight[:, :3] *= 0.5
        path = save_safetensors(model.state_dict(), tmp_path / f"w{int(reads_bank)}.safetensors")
        whole = Restorer("defocus", model="wienerunet-s", weights=str(path), device="cpu", tile=0)(img)
        tiled = Restorer("defocus", model="wienerunet-s", weights=str(path), device="cpu", tile=64,
                         tile_overlap=32)(img)
        assert whole.shape == tiled.shape == img.shape and whole.dtype == np.uint8
        seams.append(float(np.abs(whole.astype(int) - tiled.astype(int)).mean()))
    assert seams[1] < seams[0] + 0.5, seams
