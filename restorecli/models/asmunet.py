"""A dehazing network that inverts the atmospheric scattering model.

Haze is ``I = J t + A (1 - t)``: a per-pixel transmission ``t`` (smooth where depth is) and
one atmospheric light ``A``. A generic image-to-image network must learn that division
itself and, trained briefly, leaves colour casts and streaks in bright skies; the dark
channel prior (He et al., CVPR 2009) gets far by estimating only ``t`` and ``A``. ``ASMUNet``
does the same with learned estimates, as DehazeNet and AOD-Net do:

- a U-Net (``NLMUNet`` without conditioning) maps the hazy image to five maps: a
  transmission logit, a pooling score and a colour per pixel;
- ``t = t_min + (1 - t_min) * sigmoid(logit)``;
- ``A`` = the softmax(score)-weighted mean of the per-pixel colours over the whole input
  (one light per image; a tiled run estimates it once from a downscaled copy of the whole
  image, :meth:`ASMUNet.set_whole_image`, so all tiles share it);
- ``J = (I - A) / t + A``, the model inverted exactly.

``t`` and ``A`` are estimated on an overview of the image (``estimate_side`` px, area-downscaled),
and ``t`` is brought back to full size by a fast guided filter (edges follow the full-size
image): haze is low-frequency, the network learnt it on patches of about that size, and on a
full-resolution photo it judged haze too thin or too thick (2.5 dB lost on the validation photo).
The full-size work is then only the inversion, and large photos need no tiles for memory.

Its parameters are named and shaped as ``unet-s``'s except the last convolution's, so a
trained ``unet-s`` initialises it (``[model] init`` in a recipe).

``asmunet-s-dcp`` also gives the U-Net the dark channel prior's transmission as a guide map
(computed inside the model from the input, no guided filter: the network refines it), the way
the noise-level map conditions the denoiser; a trained ``asmunet-s`` initialises it, the new
map's weights starting at zero.

``asmunet-s-dcpres`` goes one step further and starts from the dark channel prior: its
transmission is DCP's (omega 0.95, 15-px patches) refined by a guided filter (radius 20,
the classical method's full estimate), with the network adding a correction in logit space,
``t = t_min + (1 - t_min) sigmoid(gain logit(t_gf) + logit_net)``, and its light is DCP's plus
a pooled correction. Both corrections start at zero, so the untrained model dehazes as DCP
with a guided filter does (with ``t_min + (1 - t_min) t_gf`` where DCP would clip at ``t0``),
and training only has to learn where DCP is wrong (too much haze removed from light haze,
white objects taken for haze). A guided filter looks ~50 px around each pixel, more than
``--tile-overlap``'s default keeps: tiled runs differ from whole-image ones near tile edges.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from .nlmunet import NLMUNet
from .registry import ModelSpec, register_model

__all__ = ["ASMUNet", "guided_filter"]


class ASMUNet(NLMUNet):
    """The U-Net's own forward gives the five maps; :meth:`forward` applies the model."""

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 256), blocks: Sequence[int] = (1, 2, 2, 1),
                 t_min: float = 0.05, dcp_guide: bool = False, dcp_patch: int = 15,
                 dcp_residual: bool = False, gf_radius: int = 20, gf_eps: float = 1e-3,
                 estimate_side: int = 0, upsample_radius: int = 4, upsample_eps: float = 1e-3,
                 light_head: bool = False):
        dcp_guide = dcp_guide or dcp_residual
        if light_head and not dcp_residual:
            raise ValueError("light_head corrects the dark channel prior's light: it needs dcp_residual")
        super().__init__(in_channels=3, out_channels=5, cond_channels=1 if dcp_guide else 0,
                         widths=widths, blocks=blocks)
        self.t_min = float(t_min)
        self.dcp_guide, self.dcp_patch = bool(dcp_guide), int(dcp_patch) | 1
        self.dcp_residual, self.gf_radius, self.gf_eps = bool(dcp_residual), int(gf_radius), float(gf_eps)
        self.estimate_side = int(estimate_side)
        self.upsample_radius, self.upsample_eps = int(upsample_radius), float(upsample_eps)
        with torch.no_grad():
            if self.dcp_residual:  # start as DCP: zero corrections of t's logit and of A
                self.tail.weight[[0, 2, 3, 4]] = 0.0
                self.tail.bias.zero_()
            else:  # start near "thin haze, light-gray sky": t ~ 0.88, A ~ 0.8
                self.tail.weight.mul_(0.1)
                self.tail.bias.copy_(torch.tensor([2.0, 0.0, 1.4, 1.4, 1.4]))
        if self.dcp_residual:
            # How much of DCP's logit the network keeps (learned; 1 at the start).
            self.prior_gain = torch.nn.Parameter(torch.ones(1))
        self.light_head: nn.Module | None = None
        if light_head:
            # The pooled per-pixel correction of A is bounded (0.5 tanh) and local evidence: on a
            # dark scene DCP's light is the scene's brightest haze-free pixels (0.33-0.41 for a true
            # 0.85, benchmarks/dehaze_estimates.py) and the correction saturates. This head sees
            # the whole overview (the deepest features pooled, the prior's light, the mean colour)
            # and moves A in logit space, unbounded; it starts at zero (= asmunet-s-dcpres).
            c = widths[-1]
            self.light_head = nn.Sequential(nn.Linear(2 * c + 6, 64), nn.GELU(), nn.Linear(64, 3))
            with torch.no_grad():
                self.light_head[-1].weight.zero_()
                self.light_head[-1].bias.zero_()
        # Image-wide estimates fixed for tiled runs (N = 1): the network's A and the DCP guide's A.
        self._light: torch.Tensor | None = None
        self._dcp_light: torch.Tensor | None = None

    @torch.no_grad()
    def set_whole_image(self, x: torch.Tensor | None) -> None:
        """Fix the image-wide estimates (``A``, and the DCP guide's light) from ``x`` (a
        downscaled whole image, 1 x 3 x h x w) for the calls that follow, e.g. on the tiles of
        that image; ``None`` returns to estimating them per input."""
        self._light = self._dcp_light = None
        if x is not None:
            if self.dcp_guide:
                self._dcp_light = self._dark_channel_light(x.float())
            self._light = self.estimate_at_scale(x)[1].detach()

    def _dark_channel(self, x: torch.Tensor) -> torch.Tensor:
        k = self.dcp_patch
        return -F.max_pool2d(-x.amin(1, keepdim=True), k, stride=1, padding=k // 2)

    def _dark_channel_light(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3: the mean colour of the 0.1 % of pixels with the brightest dark channel."""
        dark = self._dark_channel(x)
        n = max(1, dark[0].numel() // 1000)
        idx = dark.flatten(1).topk(n, dim=1).indices                              # N x n
        return torch.gather(x.flatten(2), 2, idx[:, None].expand(-1, 3, -1)).mean(-1)

    def dcp_transmission(self, x: torch.Tensor, light: torch.Tensor | None = None) -> torch.Tensor:
        """The dark channel prior's raw transmission (He et al.; omega 0.95, no refinement):
        ``1 - 0.95 * minpool(min_c(I / A))``, ``A`` = ``light`` (N x 3) if given, else the dark
        channel's light of this input, or of the whole image when :meth:`set_whole_image` fixed it."""
        x = x.float()
        A = self._dcp_light_of(x) if light is None else light
        norm = x / A.clamp(min=0.05)[..., None, None]
        return (1.0 - 0.95 * self._dark_channel(norm)).clamp(0.0, 1.0)

    def _dcp_light_of(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3: DCP's light of ``x``, or the whole image's when :meth:`set_whole_image` fixed it."""
        if self._dcp_light is None:
            return self._dark_channel_light(x)
        return self._dcp_light.to(x.device).expand(len(x), -1)

    def refined_transmission(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """DCP's raw transmission smoothed by a guided filter with the luminance as guide
        (He et al., ECCV 2010): edges follow the image, blocks of the min-filter go."""
        return guided_filter(_luma(x), raw.float(), self.gf_radius, self.gf_eps).clamp(0.0, 1.0)

    def estimate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t, A)`` for hazy images ``x`` (N x 3 x H x W): ``t`` N x 1 x H x W, ``A`` N x 3 x 1 x 1."""
        light = self._dcp_light_of(x.float()) if self.dcp_guide else None   # once: a top-k over the image
        raw = self.dcp_transmission(x, light) if self.dcp_guide else None
        inputs = torch.cat([x, raw.to(x.dtype)], 1) if self.dcp_guide else x
        maps, deep = self.forward_with_bottleneck(inputs)
        maps = maps.float()
        weights = torch.softmax(maps[:, 1:2].flatten(2), dim=-1)            # N x 1 x HW
        if self.dcp_residual:
            prior = self.refined_transmission(x, raw)
            logit = self.prior_gain * torch.logit(prior, eps=1e-3) + maps[:, :1]
            t = self.t_min + (1.0 - self.t_min) * torch.sigmoid(logit)
            correction = (torch.tanh(maps[:, 2:5]).flatten(2) * weights).sum(-1)   # N x 3, in (-1, 1)
            A = (light + 0.5 * correction).clamp(0.0, 1.0)
            if self.light_head is not None:
                deep = deep.float()
                pooled = torch.cat([deep.mean((2, 3)), deep.amax((2, 3)), light, x.float().mean((2, 3))], 1)
                A = torch.sigmoid(torch.logit(A, eps=1e-3) + self.light_head(pooled))
            A = A[..., None, None]
        else:
            t = self.t_min + (1.0 - self.t_min) * torch.sigmoid(maps[:, :1])
            colours = torch.sigmoid(maps[:, 2:5]).flatten(2)                 # N x 3 x HW
            A = (colours * weights).sum(-1)[..., None, None]
        if self._light is not None:
            A = self._light.to(A.device, A.dtype).expand_as(A)
        return t, A

    @property
    def whole_image_only(self) -> bool:
        """True when the network runs on an overview (``estimate_side``): the Restorer then runs
        whole images, as tiles would each estimate their own ``t`` and show seams."""
        return self.estimate_side > 0

    def estimate_at_scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`estimate` on an overview of ``x`` no larger than ``estimate_side`` (when set and
        ``x`` is larger), its ``t`` brought back to full size by a fast guided filter.

        ``t`` and ``A`` are low-frequency; the network learnt them on patches of about that size
        and misjudges both on a full-resolution photo (haze looks thinner per pixel there)."""
        h, w = x.shape[-2:]
        side = self.estimate_side
        if side <= 0 or max(h, w) <= side:
            return self.estimate(x)
        m, f = self.size_multiple, side / max(h, w)
        size = [max(m, int(round(d * f / m)) * m) for d in (h, w)]
        small = F.interpolate(x.float(), size=size, mode="area").to(x.dtype)
        t_small, A = self.estimate(small)
        t = guided_upsample(_luma(small), t_small, _luma(x), self.upsample_radius, self.upsample_eps)
        return t.clamp(self.t_min, 1.0), A

    def forward(self, x: torch.Tensor, return_estimates: bool = False):
        """The dehazed image; with ``return_estimates`` also ``(t, A)`` (training's physics loss,
        through ``forward`` so that a DDP-wrapped model syncs its gradients)."""
        t, A = self.estimate_at_scale(x)
        out = ((x.float() - A) / t + A).to(x.dtype)
        return (out, t, A) if return_estimates else out


def _box_1d(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """Mean over a 2r+1 window along ``dim``, shrunk at the borders (a running sum: O(1) per
    pixel at any radius)."""
    n = x.shape[dim]
    s = F.pad(x.movedim(dim, -1), (1, 0)).cumsum(-1)
    idx = torch.arange(n, device=x.device)
    lo, hi = (idx - r).clamp(min=0), (idx + r + 1).clamp(max=n)
    return ((s[..., hi] - s[..., lo]) / (hi - lo).to(s.dtype)).movedim(-1, dim)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over the (2r+1)^2 window, shrunk at the borders; separable, so running sums stay
    one row or column long."""
    return _box_1d(_box_1d(x, r, -1), r, -2)


def _guided_coefficients(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """The guided filter's window-averaged linear coefficients ``(a, b)``: output = a * guide + b.

    Computed in float64 where the device has it (not MPS): ``var = E[I^2] - E[I]^2`` cancels
    badly in float32 on flat regions of large images, and ``eps`` is only 1e-3."""
    dtype = torch.float32 if guide.device.type == "mps" else torch.float64
    g, p = guide.to(dtype), src.to(dtype)
    mean_i, mean_p = _box(g, r), _box(p, r)
    var = (_box(g * g, r) - mean_i * mean_i).clamp(min=0.0)
    a = (_box(g * p, r) - mean_i * mean_p) / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, r), _box(b, r)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """He et al.'s guided filter, gray guide (N x 1 x H x W) on ``src`` (N x 1 x H x W)."""
    a, b = _guided_coefficients(guide, src, r, eps)
    return (a * guide.to(a.dtype) + b).to(src.dtype)


def guided_upsample(guide_small: torch.Tensor, src_small: torch.Tensor, guide: torch.Tensor,
                    r: int, eps: float) -> torch.Tensor:
    """He & Sun's fast guided filter: ``src_small`` brought to ``guide``'s size with edges
    following the full-size ``guide``. The coefficients are fitted at the small size and
    interpolated, so the full-size work is one multiply-add (no window sums over millions of
    pixels)."""
    a, b = _guided_coefficients(guide_small, src_small, r, eps)
    size = guide.shape[-2:]
    a = F.interpolate(a.float(), size=size, mode="bilinear", align_corners=False)
    b = F.interpolate(b.float(), size=size, mode="bilinear", align_corners=False)
    return (a * guide.float() + b).to(src_small.dtype)


def _luma(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).float()


# The side of the overview t and A are estimated on (ASMUNet.estimate_at_scale), chosen on the
# validation photo (benchmarks/dehaze_overview.py: motorcycle_right, 6 seeds per preset), dB
# light / dense haze. dehaze-asmunet-s-dcp: full resolution 29.6 / 20.9, 96 px 32.2 / 22.3,
# 128 px 31.8 / 22.0, 192 px 32.1 / 23.5, 256 px 31.8 / 23.2. dehaze-asmunet-s-dcpres: full
# 21.7 / 21.3, 128 px 34.7 / 24.5, 192 px 32.4 / 25.4, 256 px 31.3 / 25.5.
ESTIMATE_SIDE = 192
# With the network on the overview, the full-size work is the guided upsampling and the inversion:
# 29 B/px of peak RSS growth measured for one fp32 restore_tensor call at 4000 x 6000 and at
# 3000 x 4000 (dehaze-asmunet-s-dcp, CPU), so 24-MP photos run whole under --tile auto. (At full
# resolution, estimate_side = 0, the U-Net's 800-950 B/px would apply.)
BYTES_PER_PIXEL = 40.0


def _register() -> None:
    register_model(ModelSpec(
        name="asmunet-s", family="asmunet", builder=ASMUNet,
        config=dict(widths=(32, 64, 128, 256), blocks=(1, 2, 2, 1), t_min=0.05, estimate_side=ESTIMATE_SIDE),
        size_multiple=8, in_channels=3, out_channels=3,
        family_default_for=("dehaze",),
        bytes_per_pixel=BYTES_PER_PIXEL,
        description="unet-s estimating transmission and atmospheric light, inverting I = J t + A (1 - t); dehaze",
    ))
    register_model(ModelSpec(
        name="asmunet-s-dcp", family="asmunet", builder=ASMUNet,
        config=dict(widths=(32, 64, 128, 256), blocks=(1, 2, 2, 1), t_min=0.05, dcp_guide=True, dcp_patch=15,
                    estimate_side=ESTIMATE_SIDE),
        size_multiple=8, in_channels=3, out_channels=3,
        bytes_per_pixel=BYTES_PER_PIXEL,
        description="asmunet-s guided by the dark channel prior's transmission map; dehaze",
    ))
    register_model(ModelSpec(
        name="asmunet-s-dcpres", family="asmunet", builder=ASMUNet,
        config=dict(widths=(32, 64, 128, 256), blocks=(1, 2, 2, 1), t_min=0.05, dcp_residual=True,
                    dcp_patch=15, gf_radius=20, gf_eps=1e-3, estimate_side=ESTIMATE_SIDE),
        size_multiple=8, in_channels=3, out_channels=3,
        bytes_per_pixel=BYTES_PER_PIXEL,
        description="asmunet-s correcting the dark channel prior's guided-filter transmission and light; dehaze",
    ))
    register_model(ModelSpec(
        name="asmunet-s-dcpres-lh", family="asmunet", builder=ASMUNet,
        config=dict(widths=(32, 64, 128, 256), blocks=(1, 2, 2, 1), t_min=0.05, dcp_residual=True,
                    dcp_patch=15, gf_radius=20, gf_eps=1e-3, estimate_side=ESTIMATE_SIDE, light_head=True),
        size_multiple=8, in_channels=3, out_channels=3,
        bytes_per_pixel=BYTES_PER_PIXEL,
        description="asmunet-s-dcpres with an image-wide head for the light (dark scenes); dehaze",
    ))


_register()
