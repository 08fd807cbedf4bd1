"""A deblurring U-Net that is given its input already deconvolved by a bank of PSFs.

A small U-Net trained for a few CPU hours restores defocus little better than unsharp
masking: undoing a pill-box blur of radius ``r`` needs a filter as wide as the blur, with
a large gain at the frequencies the blur nearly erased, and such a filter is slow to learn.
The Fourier domain gives it in closed form when the PSF is known (non-blind deconvolution),
so ``WienerUNet`` computes it for several guesses and lets the network choose and clean up,
as deep Wiener deconvolution (Dong et al., NeurIPS 2020) does with one known kernel:

- ``WienerBank``: for each PSF ``k_i`` of a fixed set (pill-boxes of radii ``radii``, then
  Gaussians of ``sigmas``), the input deconvolved with a Laplacian (second-order) prior,
  ``X_i = conj(K_i) Y / (|K_i|^2 + lambda_i |L|^2)`` (``L`` the 5-point Laplacian), in
  float32 on a copy reflect-padded by twice the PSF array's size. ``lambda_i`` is learned
  (log scale), starting at ``lam0 * r_i^2`` (a Gaussian counts as a pill-box of radius
  ``2 sigma``), near the values that scored best on our and another generator's defocus.
- The U-Net is ``unet-s`` with the ``3 R`` deconvolved channels as conditioning maps (seen
  at its input and, pooled, at every scale, as the denoiser's noise map is); it predicts the
  residual to the blurred input. Its parameters are named as ``unet-s``'s, and a trained
  ``unet-s`` initialises it (``[model] init``): the new channels' weights start at zero, so
  the model starts as that network and training teaches it to use the bank.

Measured on the four held-out photos (``python benchmarks/defocus_wiener_oracle.py``): with
the best radius and ``lambda`` picked per photo knowing the answer, this filter restores our
light defocus to 33.45 dB (input 30.75, tuned unsharp masking 31.96, the plain network 32.27);
heavy defocus it restores less well than the network (26.55 against 27.60), so both are kept.
Picked blind by the gradients' L1/L2 sparsity it keeps none of that (30.74 dB, ``--pick
sparsity``): which PSF fits is what the network has to learn, and trained for 1.5-2 hours of one
core from the defocus default (session 12) these networks learnt to use the bank only faintly
and tied it (docs/degradations.md, "Session 12").

Limits, known: the inverse filters of the largest radii reach further than the padding (a
fifth of an r = 6.5 filter's weight lies beyond it), so near a border those channels carry
some of the opposite border; the networks were trained that way, on 128-px patches, where
that is true of most pixels. A tiled run computes the bank per tile, so near the tiles'
seams the large-radius channels differ from a whole-image run's by more than the network's
own receptive field would (the overlap's blend hides part of it).
"""
from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .nlmunet import NLMUNet
from .registry import ModelSpec, register_model

__all__ = ["WienerBank", "WienerUNet", "disk_psf", "gaussian_psf"]


_AUTOCAST_DEVICES = ("cpu", "cuda", "mps", "xpu")
# lambda's floor: below it the filters' gain at the PSFs' zeros (and their reach) explodes
LOG_LAMBDA_MIN = math.log(1e-5)


def disk_psf(radius: float, size: int, supersample: int = 8) -> torch.Tensor:
    """A pill-box PSF of ``radius`` px, anti-aliased by counting sub-pixel samples inside the
    circle, centred in a ``size`` x ``size`` array (odd size), summing to 1."""
    s = int(supersample)
    c = (torch.arange(size * s, dtype=torch.float64) + 0.5) / s - size / 2.0
    inside = (c[:, None] ** 2 + c[None, :] ** 2) <= max(float(radius), 0.5 / s) ** 2
    k = inside.to(torch.float64).reshape(size, s, size, s).mean(dim=(1, 3))
    return (k / k.sum()).to(torch.float32)


def gaussian_psf(sigma: float, size: int) -> torch.Tensor:
    """A Gaussian PSF of standard deviation ``sigma`` px, centred in a ``size`` x ``size``
    array (odd size), summing to 1."""
    c = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / (2.0 * max(float(sigma), 0.1) ** 2))
    return (g / g.sum()).to(torch.float32)


def _reflect_pad_sides(x: torch.Tensor, p: int) -> torch.Tensor:
    """Reflect-pad all four sides by ``p``, in steps where the input is smaller than that (a
    reflection needs pad < size); replicate a 1-pixel side."""
    while p > 0:
        step = min(p, x.shape[-2] - 1, x.shape[-1] - 1)
        if step == 0:
            return F.pad(x, (p, p, p, p), mode="replicate")
        x = F.pad(x, (step, step, step, step), mode="reflect")
        p -= step
    return x


def _laplacian_power(h: int, w: int, device: torch.device) -> torch.Tensor:
    """``|L|^2`` of the 5-point Laplacian at the frequencies of an ``h x w`` rfft2."""
    fy = torch.fft.fftfreq(h, device=device, dtype=torch.float32)[:, None]
    fx = torch.fft.rfftfreq(w, device=device, dtype=torch.float32)[None, :]
    lap = 4.0 - 2.0 * torch.cos(2 * math.pi * fy) - 2.0 * torch.cos(2 * math.pi * fx)
    return lap ** 2


class WienerBank(nn.Module):
    """``forward(x)``: N x C x H x W -> N x (R C) x H x W, the input deconvolved with each PSF
    (PSF-major: the C channels of PSF 0, then of PSF 1, ...), in ``x``'s dtype. The PSFs are
    pill-boxes of ``radii`` then Gaussians of ``sigmas`` (px)."""

    def __init__(self, radii: Sequence[float] = (1.0, 1.5, 2.0, 2.75, 3.75, 5.0, 6.5, 8.5),
                 lam0: float = 2e-3, sigmas: Sequence[float] = ()):
        super().__init__()
        self.radii, self.sigmas = tuple(float(r) for r in radii), tuple(float(s) for s in sigmas)
        if not self.radii and not self.sigmas:
            raise ValueError("WienerBank needs at least one PSF")
        # a Gaussian's regularisation is that of a pill-box of radius 2 sigma, whose blur is similar
        reach = self.radii + tuple(2.0 * s for s in self.sigmas)
        self.size = 2 * int(math.ceil(max(reach))) + 3
        # A plain float32 attribute, not a buffer: derived from the config, so not in checkpoints,
        # and neither .half() nor to_empty() may change it. Moved to the input's device per call.
        self.psfs = torch.stack([disk_psf(r, self.size) for r in self.radii]
                                + [gaussian_psf(s, self.size) for s in self.sigmas])
        self.log_lambda = nn.Parameter(torch.tensor([math.log(lam0 * r * r) for r in reach]))

    @property
    def count(self) -> int:
        return len(self.radii) + len(self.sigmas)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        # FFTs in float32 whatever the model's precision (no half-precision FFT on the CPU,
        # and cuFFT's only for power-of-two sizes), outside autocast.
        no_autocast = (torch.autocast(device_type=x.device.type, enabled=False)
                       if x.device.type in _AUTOCAST_DEVICES else contextlib.nullcontext())  # meta: FLOP counts
        with no_autocast:
            y = x.float()
            # Reflect-pad by a few PSF widths so the deconvolution wraps little of the image's
            # opposite border in.
            p = 2 * self.size
            y = _reflect_pad_sides(y, p)
            hp, wp = y.shape[-2:]
            k = self.psfs.to(y.device)
            otf = torch.zeros(self.count, hp, wp, device=y.device, dtype=torch.float32)
            otf[:, :self.size, :self.size] = k
            otf = torch.roll(otf, shifts=(-(self.size // 2), -(self.size // 2)), dims=(1, 2))
            otf = torch.fft.rfft2(otf)                                   # R x hp x wf
            lam = self.log_lambda.float().clamp(min=LOG_LAMBDA_MIN).exp()[:, None, None]
            gain = otf.conj() / (otf.abs() ** 2 + lam * _laplacian_power(hp, wp, y.device))
            spec = torch.fft.rfft2(y)                                    # N x C x hp x wf
            out = torch.fft.irfft2(spec[:, None] * gain[None, :, None], s=(hp, wp))
            out = out[..., p:p + h, p:p + w].reshape(n, self.count * c, h, w)
        return out.to(x.dtype)


class WienerUNet(NLMUNet):
    """``unet-s`` conditioned on :class:`WienerBank`'s deconvolutions of its input.

    With ``mix``, a further zero-initialised convolution (``mix``) on the U-Net's last features
    gives one gate per PSF and pixel, and the output is ``x + sum_i g_i (X_i - x) + residual``:
    the network can take a deconvolution directly where it fits (a per-pixel choice of radius,
    as depth-varying blur needs) instead of learning to copy it through its input weights,
    which trained slowly (after 1,000 steps the head's weights on the bank were 3 % of those on
    the image). The gates start at zero, so the model still starts as its ``unet-s``.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 256), blocks: Sequence[int] = (1, 2, 2, 1),
                 radii: Sequence[float] = (1.0, 1.5, 2.0, 2.75, 3.75, 5.0, 6.5, 8.5), lam0: float = 2e-3,
                 sigmas: Sequence[float] = (), mix: bool = False):
        bank = WienerBank(radii, lam0, sigmas)
        super().__init__(in_channels=3, out_channels=3, cond_channels=3 * bank.count,
                         widths=widths, blocks=blocks)
        self.bank = bank
        self.mix = None
        if mix:
            self.mix = nn.Conv2d(widths[0], bank.count, 3, padding=1)
            nn.init.zeros_(self.mix.weight)
            nn.init.zeros_(self.mix.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"WienerUNet expects {self.in_channels} image channels, got {x.shape[1]}")
        maps = self.bank(x)
        if self.mix is None:
            return super().forward(torch.cat([x, maps], 1))
        z, _ = self.forward_features(torch.cat([x, maps], 1))
        n, _, h, w = x.shape
        gates = self.mix(z).float()[:, :, None]                        # N x R x 1 x H x W
        moved = (gates * (maps.float().view(n, -1, 3, h, w) - x.float()[:, None])).sum(1)
        return (x + self.tail(z) + moved.to(x.dtype)).contiguous()


def _register() -> None:
    register_model(ModelSpec(
        name="wienerunet-s", family="wienerunet", builder=WienerUNet,
        config=dict(widths=(32, 64, 128, 256), blocks=(1, 2, 2, 1),
                    radii=(1.0, 1.5, 2.0, 2.75, 3.75, 5.0, 6.5, 8.5), lam0=2e-3),
        size_multiple=8, in_channels=3, out_channels=3,
        family_default_for=("defocus",),
        # peak RSS growth of one fp32 restore_tensor call per pixel at 1024x1024: 952 and 1065 in
        # two runs (nlmunet-s 756 / 754); rounded up (python benchmarks/speed.py --archs wienerunet-s ...)
        bytes_per_pixel=1150.0,
        description="unet-s given its input deconvolved by 8 pill-box PSFs (learned Wiener bank); defocus",
    ))
    register_model(ModelSpec(
        name="wienerunet-s-dg", family="wienerunet", builder=WienerUNet,
        config=dict(widths=(32, 64, 128, 256), blocks=(1, 2, 2, 1),
                    radii=(1.0, 1.5, 2.25, 3.25, 4.75, 7.0), sigmas=(0.6, 1.0, 1.6, 2.6), lam0=2e-3),
        size_multiple=8, in_channels=3, out_channels=3,
        bytes_per_pixel=1150.0,  # measured as wienerunet-s's: 960 at 1024x1024
        description="wienerunet-s with 6 pill-box and 4 Gaussian PSFs in its bank; defocus",
    ))
    register_model(ModelSpec(
        name="wienerunet-s-mix", family="wienerunet", builder=WienerUNet,
        config=dict(widths=(32, 64, 128, 256), blocks=(1, 2, 2, 1),
                    radii=(1.0, 1.5, 2.25, 3.25, 4.75, 7.0), sigmas=(0.6, 1.0, 1.6, 2.6), lam0=2e-3, mix=True),
        size_multiple=8, in_channels=3, out_channels=3,
        bytes_per_pixel=1200.0,  # measured: 1121 at 1024x1024
        description="wienerunet-s-dg whose output also takes each deconvolution by a per-pixel gate; defocus",
    ))


_register()
