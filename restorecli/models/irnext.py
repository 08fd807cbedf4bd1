"""IRNeXt (Cui et al., ICML 2023): a three-scale convolutional U-Net with dynamic filters.

Module and parameter names follow the authors' release so their checkpoints load
with ``strict=True`` (see shared/spec/irnext.md and the ``.keys.tsv`` files).
What differs from their code is how, not what:

* the dynamic filter applies its per-sample 3x3 kernels as one grouped depthwise
  convolution instead of a 9x ``unfold`` copy (same numbers up to float rounding);
* the deblur variant's local box mean computes its window per call from the
  input size instead of freezing it at the first call;
* features run channels-last (NHWC memory, ``IRNeXt.channels_last``), and in fp32
  inference on the CPU each convolution is fused with the GELU after it or the
  residual added to it (oneDNN post-ops, ``IRNeXt.fuse``): at 32 channels and full
  resolution the separate element-wise passes cost about a third of the time
  (docs/performance.md). Both are off while training (autograd) and under autocast,
  and give the same numbers up to float rounding.

Configurations
--------------
=================  ========  ==========  =============  ==========================
name               num_res   G(x)        parameters     use
=================  ========  ==========  =============  ==========================
``irnext-deblur``  14        box mean    13,205,641     deblur, defocus, derain,
                                                        desnow, denoise
``irnext-dehaze``  4         global avg  5,455,241      dehaze
=================  ========  ==========  =============  ==========================
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import ModelSpec, register_model

__all__ = ["IRNeXt", "DynamicFilter", "DeepPoolLayer", "local_box_mean"]


def local_box_mean(x: torch.Tensor, ratio: tuple[int, int] = (120, 256)) -> torch.Tensor:
    """Mean over a window that scales with the input (``k = size * 120 // 256``).

    Computed from an integral image over the "valid" positions, then padded back
    to the input size by replicating the border, as the deblur release does.
    """
    _, _, h, w = x.shape
    num, den = ratio
    k1 = max(1, min(h, h * num // den))
    k2 = max(1, min(w, w * num // den))
    s = x.cumsum(dim=-1).cumsum(dim=-2)
    s = F.pad(s, (1, 0, 1, 0))
    s1, s2 = s[:, :, :-k1, :-k2], s[:, :, :-k1, k2:]
    s3, s4 = s[:, :, k1:, :-k2], s[:, :, k1:, k2:]
    out = (s4 + s1 - s2 - s3) / (k1 * k2)
    oh, ow = out.shape[-2:]
    pad = ((w - ow) // 2, (w - ow + 1) // 2, (h - oh) // 2, (h - oh + 1) // 2)
    if any(pad):
        out = F.pad(out, pad, mode="replicate")
    return out


def _reflect_pad2d(x: torch.Tensor, p: int) -> torch.Tensor:
    """Reflection padding; a side of one pixel (tiny inputs at the deepest pool) has
    nothing to reflect and is replicated instead of failing as the release does."""
    if min(x.shape[-2:]) > p:
        return F.pad(x, (p, p, p, p), mode="reflect")
    x = F.pad(x, (p, p, 0, 0), mode="reflect" if x.shape[-1] > p else "replicate")
    return F.pad(x, (0, 0, p, p), mode="reflect" if x.shape[-2] > p else "replicate")


def _global_mean(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1)


def _can_fuse(x: torch.Tensor) -> bool:
    """Whether oneDNN's fused conv + GELU / conv + residual ops apply: fp32 inference on the
    CPU (no autograd, no autocast, not being compiled) on channels-last features."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
            and not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")
            and x.is_contiguous(memory_format=torch.channels_last)
            and not torch.compiler.is_compiling() and torch.backends.mkldnn.is_available())


class BasicConv(nn.Module):
    """``Sequential(conv[, GELU])``; the conv is ``.main.0`` as in the release."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1,
                 act: bool = True, transpose: bool = False, bias: bool = True):
        super().__init__()
        if transpose:
            conv = nn.ConvTranspose2d(cin, cout, kernel_size, stride=stride,
                                      padding=kernel_size // 2 - 1, bias=bias)
        else:
            conv = nn.Conv2d(cin, cout, kernel_size, stride=stride,
                             padding=kernel_size // 2, bias=bias)
        layers: list[nn.Module] = [conv]
        if act:
            layers.append(nn.GELU())
        self.main = nn.Sequential(*layers)
        self.act = act
        self.fuse = True  # IRNeXt.fuse sets it on every BasicConv

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``conv(x)`` [+ GELU] [+ ``residual``], in one fused oneDNN call when it can be."""
        if self.fuse and _can_fuse(x):
            conv = self.main[0]
            mk = torch.ops.mkldnn
            unary = ("gelu", [], "none") if self.act else ("none", [], None)
            if isinstance(conv, nn.ConvTranspose2d):
                y = mk._convolution_transpose_pointwise(
                    x, conv.weight, conv.bias, conv.padding, conv.output_padding, conv.stride,
                    conv.dilation, conv.groups, *unary)
            elif residual is not None and not self.act and residual.shape[1] == conv.out_channels:
                return mk._convolution_pointwise.binary(
                    x, residual.contiguous(memory_format=torch.channels_last), conv.weight, conv.bias,
                    conv.padding, conv.stride, conv.dilation, conv.groups, "add", None, None, [], None)
            else:
                y = mk._convolution_pointwise(x, conv.weight, conv.bias, conv.padding, conv.stride,
                                              conv.dilation, conv.groups, *unary)
        else:
            y = self.main(x)
        return y if residual is None else y + residual


class DynamicFilter(nn.Module):
    """Per-sample 3x3 low-pass kernels (8 channel groups) from global context.

    ``A = tanh(BN(conv1x1(GAP(x))))``; each group's kernel filters every channel of
    its group over the reflection-padded input. ``G(x)`` is the coarse low-pass
    that the high-frequency re-weighting subtracts: a global mean (dehaze) or a
    large local box mean (deblur).
    """

    def __init__(self, channels: int, kernel_size: int = 3, group: int = 8,
                 global_pool: str = "gap", box_ratio: tuple[int, int] = (120, 256)):
        super().__init__()
        if channels % group:
            raise ValueError(f"channels ({channels}) must be divisible by group ({group})")
        self.kernel_size = kernel_size
        self.group = group
        self.global_pool = global_pool
        self.box_ratio = tuple(box_ratio)
        # Own parameters first, as the release registers them (state_dict order).
        self.lamb_l = nn.Parameter(torch.zeros(channels))
        self.lamb_h = nn.Parameter(torch.zeros(channels))
        self.inside_all = nn.Parameter(torch.zeros(channels, 1, 1))
        self.conv = nn.Conv2d(channels, group * kernel_size ** 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(group * kernel_size ** 2)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def coarse(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_pool == "box":
            return local_box_mean(x, self.box_ratio)
        return _global_mean(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        k = self.kernel_size
        taps = torch.tanh(self.bn(self.conv(F.adaptive_avg_pool2d(x, 1))))  # n, g*k*k, 1, 1
        # Kernel of channel ch = kernel of its group ch // (c / g); taps are row-major.
        weight = taps.view(n, self.group, 1, k, k).expand(n, self.group, c // self.group, k, k)
        weight = weight.reshape(n * c, 1, k, k).to(x.dtype)
        padded = _reflect_pad2d(x, k // 2)
        low = F.conv2d(padded.reshape(1, n * c, h + k - 1, w + k - 1), weight, groups=n * c)
        low = low.view(n, c, h, w)
        out_low = low * (self.inside_all + 1.0) - self.inside_all * self.coarse(x)
        out_low = out_low * self.lamb_l[None, :, None, None]
        out_high = x * (self.lamb_h[None, :, None, None] + 1.0)
        return out_low + out_high


class DeepPoolLayer(nn.Module):
    """Multi-scale pooling (8, 4, 2) with a dynamic filter per scale, coarse to fine."""

    pool_sizes = (8, 4, 2)

    def __init__(self, channels: int, out_channels: int, **filter_kwargs):
        super().__init__()
        self.pools = nn.ModuleList(nn.AvgPool2d(s, stride=s) for s in self.pool_sizes)
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1, bias=False)
                                   for _ in self.pool_sizes)
        self.dynas = nn.ModuleList(DynamicFilter(channels, **filter_kwargs) for _ in self.pool_sizes)
        self.relu = nn.GELU()
        self.conv_sum = nn.Conv2d(channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        acc = x
        y_up = None
        last = len(self.pool_sizes) - 1
        for i, (pool, conv, dyna) in enumerate(zip(self.pools, self.convs, self.dynas)):
            p = pool(x)
            y = dyna(conv(p if y_up is None else p + y_up))
            acc = acc + F.interpolate(y, size, mode="bilinear", align_corners=True)
            if i != last:
                y_up = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
        return self.conv_sum(self.relu(acc))


class ResBlock(nn.Module):
    """``x + conv(GELU(conv(x)))``; a DeepPoolLayer sits between the convs when ``filter``."""

    def __init__(self, channels: int, filter: bool = False, **filter_kwargs):
        super().__init__()
        self.main = nn.Sequential(
            BasicConv(channels, channels, 3, act=True),
            DeepPoolLayer(channels, channels, **filter_kwargs) if filter else nn.Identity(),
            BasicConv(channels, channels, 3, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main[2](self.main[1](self.main[0](x)), residual=x)


class Stage(nn.Module):
    """``num_res`` residual blocks; the last one carries the DeepPoolLayer."""

    def __init__(self, channels: int, num_res: int, **filter_kwargs):
        super().__init__()
        blocks = [ResBlock(channels) for _ in range(num_res - 1)]
        blocks.append(ResBlock(channels, filter=True, **filter_kwargs))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SCM(nn.Module):
    """Shallow convolutional module: features of a downscaled input."""

    def __init__(self, channels: int):
        super().__init__()
        self.main = nn.Sequential(
            BasicConv(3, channels // 4, 3, act=True),
            BasicConv(channels // 4, channels // 2, 1, act=True),
            BasicConv(channels // 2, channels // 2, 3, act=True),
            BasicConv(channels // 2, channels, 1, act=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x)
        if x.is_contiguous(memory_format=torch.channels_last):  # InstanceNorm returns NCHW
            y = y.contiguous(memory_format=torch.channels_last)
        return y


class FAM(nn.Module):
    """Feature attention module: fuses encoder features with SCM features."""

    def __init__(self, channels: int):
        super().__init__()
        self.merge = BasicConv(channels * 2, channels, 3, act=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat([a, b], dim=1))


class IRNeXt(nn.Module):
    """IRNeXt. ``forward(x)`` returns the restored image; ``forward(x, all_scales=True)``
    returns ``[out/4, out/2, out]`` as the authors' module does (multi-scale loss)."""

    size_multiple = 32
    # Features in NHWC memory: oneDNN's convolutions are faster that way on the CPU, and
    # the fused convolutions need it. Same numbers either way (float rounding aside).
    channels_last = True

    def __init__(self, num_res: int = 14, base_channels: int = 32, global_pool: str = "box",
                 box_ratio: tuple[int, int] = (120, 256)):
        super().__init__()
        c = base_channels
        fk = dict(global_pool=global_pool, box_ratio=tuple(box_ratio))
        self.Encoder = nn.ModuleList([Stage(c, num_res, **fk), Stage(c * 2, num_res, **fk),
                                      Stage(c * 4, num_res, **fk)])
        self.feat_extract = nn.ModuleList([
            BasicConv(3, c, 3, act=True),
            BasicConv(c, c * 2, 3, stride=2, act=True),
            BasicConv(c * 2, c * 4, 3, stride=2, act=True),
            BasicConv(c * 4, c * 2, 4, stride=2, act=True, transpose=True),
            BasicConv(c * 2, c, 4, stride=2, act=True, transpose=True),
            BasicConv(c, 3, 3, act=False),
        ])
        self.Decoder = nn.ModuleList([Stage(c * 4, num_res, **fk), Stage(c * 2, num_res, **fk),
                                      Stage(c, num_res, **fk)])
        self.Convs = nn.ModuleList([BasicConv(c * 4, c * 2, 1, act=True),
                                    BasicConv(c * 2, c, 1, act=True)])
        self.ConvsOut = nn.ModuleList([BasicConv(c * 4, 3, 3, act=False),
                                       BasicConv(c * 2, 3, 3, act=False)])
        self.FAM1 = FAM(c * 4)
        self.SCM1 = SCM(c * 4)
        self.FAM2 = FAM(c * 2)
        self.SCM2 = SCM(c * 2)

    @property
    def fuse(self) -> bool:
        """Fused conv + GELU / conv + residual in fp32 CPU inference (see the module docstring)."""
        return all(m.fuse for m in self.modules() if isinstance(m, BasicConv))

    @fuse.setter
    def fuse(self, on: bool) -> None:
        for m in self.modules():
            if isinstance(m, BasicConv):
                m.fuse = bool(on)

    def forward(self, x: torch.Tensor, all_scales: bool = False):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x2 = F.interpolate(x, scale_factor=0.5)
        x4 = F.interpolate(x2, scale_factor=0.5)
        z2 = self.SCM2(x2)
        z4 = self.SCM1(x4)

        res1 = self.Encoder[0](self.feat_extract[0](x))
        res2 = self.Encoder[1](self.FAM2(self.feat_extract[1](res1), z2))
        z = self.Encoder[2](self.FAM1(self.feat_extract[2](res2), z4))

        z = self.Decoder[0](z)
        out4 = self.ConvsOut[0](z, residual=x4) if all_scales else None
        z = self.feat_extract[3](z)
        z = self.Decoder[1](self.Convs[0](torch.cat([z, res2], dim=1)))
        out2 = self.ConvsOut[1](z, residual=x2) if all_scales else None
        z = self.feat_extract[4](z)
        z = self.Decoder[2](self.Convs[1](torch.cat([z, res1], dim=1)))
        out = self.feat_extract[5](z, residual=x)
        if self.channels_last:  # callers get the usual NCHW layout back (3 channels: cheap)
            out = out.contiguous()
            out4, out2 = (t.contiguous() if t is not None else None for t in (out4, out2))
        return [out4, out2, out] if all_scales else out


_TASKS_DEBLUR = ("deblur", "defocus", "derain", "desnow", "denoise", "*")
# bytes_per_pixel: peak RSS growth of one fp32 Restorer.restore_tensor call on the CPU (whole
# image, 1024x1024, channels-last and fused) per input pixel: 1454 (deblur) and 1446 (dehaze)
# measured (VmHWM reset just before the call, minus VmRSS), rounded up. docs/performance.md.

register_model(ModelSpec(
    name="irnext-deblur", family="irnext", builder=IRNeXt,
    config=dict(num_res=14, base_channels=32, global_pool="box"),
    size_multiple=32, family_default_for=_TASKS_DEBLUR, bytes_per_pixel=1500.0,
    description="IRNeXt, 14 blocks per stage, local box-mean filter (GoPro release), 13.2 M params",
))
register_model(ModelSpec(
    name="irnext-dehaze", family="irnext", builder=IRNeXt,
    config=dict(num_res=4, base_channels=32, global_pool="gap"),
    size_multiple=32, family_default_for=("dehaze",), bytes_per_pixel=1500.0,
    description="IRNeXt, 4 blocks per stage, global-mean filter (RESIDE release), 5.5 M params",
))
