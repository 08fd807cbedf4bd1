"""Noise-level-conditioned networks for the default denoiser.

``NLMUNet`` is a plain convolutional U-Net that takes, after the image channels, a
per-pixel noise-level map (sigma / 255, as FFDNet does), so one network covers a
range of sigmas and ``--sigma`` changes what it does. It is the architecture chosen
for the embedded default denoiser because it trains the most per CPU-minute (see
docs/training.md for the trial against ``clginet-s-nlm``).

``FFDNet``-style input handling: the image (and the map) can be pixel-unshuffled by
2 first (``unshuffle=True``), which makes every layer four times cheaper at the same
receptive field; the output is shuffled back.

Also registered here: ``clginet-s-nlm``, CLG-INet small with the same noise map as
one extra input channel.

=====================  ==============  ===========================================
name                   parameters      use
=====================  ==============  ===========================================
``nlmunet-s``          see __main__    default denoiser (color; gray replicated)
``clginet-s-nlm``      ~1.9 M          trial / larger-budget training
=====================  ==============  ===========================================
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import ModelSpec, register_model

__all__ = ["NLMUNet"]


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


class NLMUNet(nn.Module):
    """U-Net over ``in_channels + cond_channels`` inputs; predicts the residual to the image.

    ``forward(x)``: NCHW, H and W multiples of ``2 ** (len(widths) - 1)`` (times 2 with
    ``unshuffle``). The noise map is concatenated again at each scale so deep layers
    see it directly.
    """

    # Features in NHWC memory: oneDNN's 32-channel convolutions are much faster that way on
    # the CPU (1024x1024, one thread: 4.7 s against 7.5 s per forward). Same numbers.
    channels_last = True

    def __init__(self, in_channels: int = 3, out_channels: int = 3, cond_channels: int = 1,
                 widths: Sequence[int] = (32, 64, 128, 256), blocks: Sequence[int] = (1, 1, 2, 2),
                 unshuffle: bool = False):
        super().__init__()
        if len(widths) != len(blocks) or len(widths) < 2:
            raise ValueError("widths and blocks need the same length (>= 2)")
        self.in_channels, self.out_channels, self.cond_channels = in_channels, out_channels, cond_channels
        self.unshuffle = bool(unshuffle)
        f = 4 if unshuffle else 1
        self.levels = len(widths)
        self.size_multiple = 2 ** (self.levels - 1) * (2 if unshuffle else 1)
        self.head = nn.Conv2d((in_channels + cond_channels) * f, widths[0], 3, padding=1)
        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        for i, (c, n) in enumerate(zip(widths, blocks)):
            if i > 0:
                self.down.append(nn.Conv2d(widths[i - 1] + cond_channels, c, 2, stride=2))
            self.enc.append(nn.Sequential(*(ResBlock(c) for _ in range(n))))
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(self.levels - 2, -1, -1):
            self.up.append(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2))
            self.dec.append(nn.Sequential(*(ResBlock(widths[i]) for _ in range(blocks[i]))))
        self.tail = nn.Conv2d(widths[0], out_channels * f, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_bottleneck(x)[0]

    def forward_with_bottleneck(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The output and the deepest encoder level's features (for image-wide heads)."""
        z, bottleneck = self.forward_features(x)
        out = self.tail(z)
        if self.unshuffle:
            out = F.pixel_shuffle(out, 2)
        if self.out_channels == self.in_channels:
            out = out + x[:, :self.in_channels]
        return out.contiguous(), bottleneck

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last decoder level's features (what ``tail`` maps to the output) and the deepest
        encoder level's."""
        expected = self.in_channels + self.cond_channels
        if x.shape[1] != expected:
            raise ValueError(f"NLMUNet expects {expected} input channels ({self.in_channels} image + "
                             f"{self.cond_channels} conditioning), got {x.shape[1]}")
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"NLMUNet needs H and W that are multiples of {self.size_multiple}, got {h}x{w}")
        z = F.pixel_unshuffle(x, 2) if self.unshuffle else x
        if self.channels_last:
            z = z.contiguous(memory_format=torch.channels_last)
        cond = z[:, z.shape[1] - self.cond_channels * (4 if self.unshuffle else 1):]
        if self.unshuffle and self.cond_channels:
            cond = cond[:, ::4]  # the map is constant within each 2x2 cell in practice
        z = self.head(z)
        skips = []
        for i in range(self.levels):
            if i > 0:
                c_i = F.avg_pool2d(cond, 2 ** (i - 1)) if self.cond_channels and i > 1 else cond
                z = self.down[i - 1](torch.cat([z, c_i], 1) if self.cond_channels else z)
            z = self.enc[i](z)
            skips.append(z)
        bottleneck = z
        for j, (up, dec) in enumerate(zip(self.up, self.dec)):
            z = dec(up(z) + skips[self.levels - 2 - j])
        return z, bottleneck


def _register() -> None:
    register_model(ModelSpec(
        name="nlmunet-s", family="nlmunet", builder=NLMUNet,
        config=dict(in_channels=3, out_channels=3, cond_channels=1, widths=(32, 64, 128, 256),
                    blocks=(1, 2, 2, 1), unshuffle=False),
        size_multiple=8, in_channels=3, out_channels=3, conditioning=("sigma",),
        family_default_for=("*",),
        # Peak RSS growth of one fp32 restore_tensor call per pixel, measured at 1024x1024: 877
        # (1041 at 512x512); rounded up. docs/performance.md.
        bytes_per_pixel=950.0,
        description="U-Net with a noise-level map (FFDNet-style conditioning), the default denoiser",
    ))
    register_model(ModelSpec(
        name="nlmunet-sx", family="nlmunet", builder=NLMUNet,
        config=dict(in_channels=3, out_channels=3, cond_channels=1, widths=(64, 96, 128, 192),
                    blocks=(2, 2, 2, 2), unshuffle=True),
        size_multiple=16, in_channels=3, out_channels=3, conditioning=("sigma",),
        description="U-Net with a noise-level map on pixel-unshuffled input (FFDNet-style), wider",
    ))
    try:
        from .clginet import CLGINet
        from .registry import _REGISTRY
    except ImportError:  # pragma: no cover - clginet.py not there yet
        return
    base = _REGISTRY.get("clginet-s")
    if base is None:
        return
    register_model(ModelSpec(
        name="clginet-s-nlm", family="clginet", builder=CLGINet,
        config={**base.config, "cond_channels": 1},
        size_multiple=base.size_multiple, in_channels=3, out_channels=3, conditioning=("sigma",),
        description="CLG-INet small with a noise-level map input (sigma / 255) for denoising",
    ))


_register()


def _register_plain() -> None:
    """``unet-s``: the same U-Net without a conditioning input, for the tasks that have no
    noise level to give (derain, deblur, defocus, dehaze, desnow; recipes/<task>-unet-s.toml).
    It costs about 0.4x the CPU per training step of ``clginet-s`` (issue 8, docs/degradations.md)."""
    register_model(ModelSpec(
        name="unet-s", family="nlmunet", builder=NLMUNet,
        config=dict(in_channels=3, out_channels=3, cond_channels=0, widths=(32, 64, 128, 256),
                    blocks=(1, 2, 2, 1), unshuffle=False),
        size_multiple=8, in_channels=3, out_channels=3, conditioning=(),
        bytes_per_pixel=950.0,  # nlmunet-s's measured figure: the same network minus one input channel
        description="U-Net (nlmunet-s without the noise map), 3.0 M params, for derain/deblur/defocus/dehaze/desnow",
    ))


_register_plain()
