"""CLG-INet (Jiang et al., ACM MM 2023): Coupled Local-Global Interactive Network.

The paper has no public code or weights; this file is the reference implementation,
built from ``shared/spec/clginet.md``. Module names follow the paper's parts so the
code reads against it:

* :class:`CNNLayer` -- two cascaded 3x3 convolutions and a :class:`ChannelAttention`
  (squeeze-excitation), with a residual connection.
* :class:`TransformerLayer` -- pre-norm :class:`DBPA` (Dynamic Bi-Projected Attention)
  and :class:`GNFF` (Gated Non-linear Feed-Forward network).
* :class:`CouplingBlock` -- the "sandwich" CNN -> Transformer -> CNN; the
  intra-block coupling connection (:attr:`CouplingBlock.coupling`) lets the local
  features of the first CNN layer bypass the Transformer and reach the second one.
* :class:`DualHybridUnit` -- the inter-block dual hybrid (gated) unit fusing encoder
  (local) and decoder (global) features of one resolution.
* :class:`CLGINet` -- the U-shaped hierarchy (widths C, 2C, 4C, bottleneck 8C).

DBPA, our reading of "dynamic bi-projected": q, k, v come from a 1x1 conv and a
7x7 depthwise conv (crossing window borders). Two projections share them:

* the *channel projection* attends across channels over the whole image (q, k
  L2-normalised along pixels, a learned temperature per head). Its cost and memory
  are linear in the pixel count (a ``d x d`` attention map per head);
* the *spatial projection* is multi-head self-attention in non-overlapping 8x8
  windows. Sizes that are not a multiple of 8 are zero-padded inside the layer and
  the padded keys are masked out, so every real pixel attends exactly to the real
  pixels of its (clipped) window and the result does not depend on the padding.

*Dynamic*: per-sample, per-channel weights for the two projections (global average
pooling of their sum, a 1x1 MLP, a softmax over the two), then a 1x1 output
projection.

Dtype safety: L2 norms, attention logits and softmaxes are computed in float32 and
cast back (the LayerNorm and SDPA kernels accumulate in float32 themselves), so the
network runs in fp32, under ``torch.autocast`` (bf16 on CPU, fp16 on CUDA) and after
``model.half()``. No tensor is created on a fixed device or in a fixed dtype.

Memory format: :class:`CLGINet` runs its features channels-last (see
``CLGINet.channels_last``); every layer also accepts NCHW and gives the same numbers.

Configurations
--------------
Block counts are per level, level 1 = full resolution (width C), level 3 = 1/4
resolution (4C); the bottleneck is at 1/8 resolution (8C).

==============  ===  =======  ========  ==========  ========  ==========  ============  =========
name            C    heads    encoder   bottleneck  decoder   refinement  parameters    GMACs
                                                                                        256x256
==============  ===  =======  ========  ==========  ========  ==========  ============  =========
``clginet``     48   1/2/4/8  2/1/1     2           2/1/1     1           24,644,008    103.6
``clginet-s``   16   1/2/4/8  1/1/1     1           1/1/1     1           1,918,596     9.8
==============  ===  =======  ========  ==========  ========  ==========  ============  =========

Measured with ``python -m restorecli.models.clginet`` (:func:`count_macs`:
``FlopCounterMode`` total / 2, with the CPU flash-attention kernel, which the flop
counter does not know, counted like the other SDPA kernels).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import ModelSpec, register_model

__all__ = [
    "CLGINet", "CouplingBlock", "CNNLayer", "ChannelAttention", "TransformerLayer", "DBPA",
    "GNFF", "DualHybridUnit", "LayerNorm2d", "Downsample", "Upsample", "window_attention",
    "channel_attention", "count_macs", "count_params",
]


# --------------------------------------------------------------------------- helpers

def _l2_normalize(x: torch.Tensor, dim: int = -1, eps: float = 1e-6) -> torch.Tensor:
    """``x / ||x||`` along ``dim``; the norm accumulates in float32 (fp16 sums of
    squares over a large image would overflow), the result keeps ``x.dtype``."""
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    return x * norm.clamp_min(eps).reciprocal().to(x.dtype)


def channel_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      temperature: torch.Tensor) -> torch.Tensor:
    """Transposed (channel) attention over the whole image.

    ``q, k, v``: ``(B, heads, d, N)`` (any strides) with N the pixel count;
    ``temperature``: ``(heads, 1, 1)``. The attention map is ``d x d`` per head, so
    time and memory are linear in N. Returns ``(B, heads, N, d)``, pixel-major, which
    is what a channels-last feature map needs (``out^T = v^T attn^T``).
    """
    q = _l2_normalize(q)
    k = _l2_normalize(k)
    logits = torch.matmul(q, k.transpose(-2, -1)).float() * temperature.float()
    attn = logits.softmax(dim=-1).to(v.dtype)
    return torch.matmul(v.transpose(-2, -1), attn.transpose(-2, -1))


def _window_key_mask(h: int, w: int, hp: int, wp: int, window: int, batch: int,
                     device: torch.device) -> torch.Tensor:
    """Boolean ``(batch * windows, 1, 1, window**2)``: True where a key is a real pixel."""
    rows = torch.arange(hp, device=device) < h
    cols = torch.arange(wp, device=device) < w
    valid = (rows[:, None] & cols[None, :]).view(hp // window, window, wp // window, window)
    valid = valid.permute(0, 2, 1, 3).reshape(1, -1, window * window)
    return valid.expand(batch, -1, -1).reshape(-1, 1, 1, window * window)


def window_attention(qkv: torch.Tensor, heads: int, window: int = 8) -> torch.Tensor:
    """Multi-head self-attention inside non-overlapping ``window x window`` windows.

    ``qkv``: ``(B, 3C, H, W)`` with q, k, v stacked along channels, each split into
    ``heads`` groups of ``C / heads`` channels. Any H, W: the input is zero-padded
    to a multiple of ``window`` and the padded keys are masked, so each pixel attends
    to the real pixels of its window only. Returns ``(B, C, H, W)`` whose memory is
    channels-last (the layout the rest of the network runs in).
    """
    b, c3, h, w = qkv.shape
    c = c3 // 3
    d = c // heads
    hp = -(-h // window) * window
    wp = -(-w // window) * window
    padded = (hp, wp) != (h, w)
    t = qkv.permute(0, 2, 3, 1)  # (B, H, W, 3C): a view when qkv is channels-last
    if padded:
        t = F.pad(t, (0, 0, 0, wp - w, 0, hp - h))
    nh, nw = hp // window, wp // window
    # Splitting dims is always a view; the permute + reshape is the one copy:
    # (B, nh, win, nw, win, 3, heads, d) -> (3, B * nh * nw, heads, win * win, d)
    t = t.view(b, nh, window, nw, window, 3, heads, d).permute(5, 0, 1, 3, 6, 2, 4, 7)
    t = t.reshape(3, b * nh * nw, heads, window * window, d)
    mask = _window_key_mask(h, w, hp, wp, window, b, qkv.device) if padded else None
    out = F.scaled_dot_product_attention(t[0], t[1], t[2], attn_mask=mask)
    # (B, nh, nw, heads, win, win, d) -> (B, nh, win, nw, win, heads, d) = (B, Hp, Wp, C)
    out = out.view(b, nh, nw, heads, window, window, d).permute(0, 1, 4, 2, 5, 3, 6)
    out = out.reshape(b, hp, wp, c)
    if padded:
        out = out[:, :h, :w]
    return out.permute(0, 3, 1, 2)


# --------------------------------------------------------------------------- layers

class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel of an NCHW tensor (statistics in float32)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # On a channels-last tensor the permute is a view and layer_norm reduces over
        # contiguous memory; its kernels accumulate in float32 for fp16/bf16 inputs.
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight.to(x.dtype),
                         self.bias.to(x.dtype), self.eps)
        return y.permute(0, 3, 1, 2)


class ChannelAttention(nn.Module):
    """Squeeze-excitation: GAP, 1x1 down by ``reduction``, GELU, 1x1 up, sigmoid, multiply."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.down = nn.Conv2d(channels, hidden, 1)
        self.act = nn.GELU()
        self.up = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.up(self.act(self.down(s))))


class CNNLayer(nn.Module):
    """``x + CA(conv3x3(GELU(conv3x3(x))))``: the local part of a coupling block."""

    def __init__(self, channels: int, ca_reduction: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.ca = ChannelAttention(channels, ca_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ca(self.conv2(self.act(self.conv1(x))))


class DBPA(nn.Module):
    """Dynamic Bi-Projected Attention: channel (global) and window (spatial) projections
    of one q, k, v, mixed by per-sample, per-channel dynamic weights."""

    def __init__(self, channels: int, heads: int, window: int = 8, qkv_kernel: int = 7,
                 select_reduction: int = 4):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.window = window
        self.qkv = nn.Conv2d(channels, channels * 3, 1)
        self.qkv_dw = nn.Conv2d(channels * 3, channels * 3, qkv_kernel, padding=qkv_kernel // 2,
                                groups=channels * 3)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        hidden = max(8, channels // select_reduction)
        self.select_down = nn.Conv2d(channels, hidden, 1)
        self.select_act = nn.GELU()
        self.select_up = nn.Conv2d(hidden, channels * 2, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        heads, d, n = self.heads, c // self.heads, h * w
        qkv = self.qkv_dw(self.qkv(x))
        # Channel projection. q and k go channel-major (a copy when channels-last) so
        # their norms reduce over contiguous memory; v is used in place.
        qk = qkv[:, :2 * c].reshape(b, 2, heads, d, n).contiguous()
        v = qkv[:, 2 * c:].reshape(b, heads, d, n)
        out_c = channel_attention(qk[:, 0], qk[:, 1], v, self.temperature)  # (B, heads, N, d)
        out_c = out_c.transpose(1, 2).reshape(b, h, w, c).permute(0, 3, 1, 2)
        # Spatial projection: windows.
        out_s = window_attention(qkv, self.heads, self.window)
        # Dynamic selection between the two, per sample and channel.
        s = F.adaptive_avg_pool2d(out_c + out_s, 1)
        logits = self.select_up(self.select_act(self.select_down(s))).view(b, 2, c, 1, 1)
        sel = logits.float().softmax(dim=1).to(out_c.dtype)
        return self.proj(out_c * sel[:, 0] + out_s * sel[:, 1])


class GNFF(nn.Module):
    """Gated Non-linear Feed-Forward: 1x1 to 2*hidden, depthwise 3x3, ``GELU(a) * b``, 1x1."""

    def __init__(self, channels: int, expansion: float = 2.66):
        super().__init__()
        hidden = int(channels * expansion)
        self.project_in = nn.Conv2d(channels, hidden * 2, 1)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2)
        self.project_out = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, g = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * g)


class TransformerLayer(nn.Module):
    """``t = x + DBPA(LN(x)); t + GNFF(LN(t))``: the global part of a coupling block."""

    def __init__(self, channels: int, heads: int, window: int = 8, qkv_kernel: int = 7,
                 ffn_expansion: float = 2.66):
        super().__init__()
        self.norm1 = LayerNorm2d(channels)
        self.attn = DBPA(channels, heads, window, qkv_kernel)
        self.norm2 = LayerNorm2d(channels)
        self.ffn = GNFF(channels, ffn_expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class CouplingBlock(nn.Module):
    """CNN layer -> Transformer layer -> CNN layer, with the intra-block coupling
    connection: ``a = cnn1(x); t = transformer(a); x + cnn2(coupling(cat[t, a]))``."""

    def __init__(self, channels: int, heads: int, window: int = 8, qkv_kernel: int = 7,
                 ffn_expansion: float = 2.66, ca_reduction: int = 8):
        super().__init__()
        self.cnn1 = CNNLayer(channels, ca_reduction)
        self.transformer = TransformerLayer(channels, heads, window, qkv_kernel, ffn_expansion)
        self.coupling = nn.Conv2d(channels * 2, channels, 1)  # intra-block coupling fuse
        self.cnn2 = CNNLayer(channels, ca_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.cnn1(x)
        t = self.transformer(a)
        return x + self.cnn2(self.coupling(torch.cat([t, a], dim=1)))


class DualHybridUnit(nn.Module):
    """Inter-block dual hybrid (gated) unit: fuses the encoder feature ``e`` (local
    detail, spatial gate) with the upsampled decoder feature ``d`` (global context,
    channel gate) of one resolution."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mix = nn.Conv2d(channels * 2, channels, 1)
        self.spatial_gate = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.channel_down = nn.Conv2d(channels, hidden, 1)
        self.channel_act = nn.GELU()
        self.channel_up = nn.Conv2d(hidden, channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, e: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        f = self.mix(torch.cat([e, d], dim=1))
        gate_s = torch.sigmoid(self.spatial_gate(f))
        gate_c = torch.sigmoid(self.channel_up(self.channel_act(self.channel_down(
            F.adaptive_avg_pool2d(f, 1)))))
        return self.out(gate_s * e + gate_c * d)


class Downsample(nn.Module):
    """conv3x3 C -> C/2, PixelUnshuffle(2): half resolution, twice the width."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels // 2, 3, padding=1)
        self.shuffle = nn.PixelUnshuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class Upsample(nn.Module):
    """conv3x3 C -> 2C, PixelShuffle(2): twice the resolution, half the width."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


# --------------------------------------------------------------------------- network

class CLGINet(nn.Module):
    """The U-shaped CLG-INet. ``forward(x)``: ``x`` is NCHW with ``in_channels +
    cond_channels`` channels (image first, then per-pixel conditioning such as a
    noise-level map), H and W multiples of 8; returns ``out_channels`` channels.

    The global residual adds the image channels when ``in_channels == out_channels``.
    """

    size_multiple = 8
    # Run the features channels-last (NHWC memory): depthwise convs and the per-pixel
    # LayerNorm are faster that way on CPU (whole network at 256x256, one thread: about
    # 10% in fp32, 20% under bf16 autocast). The numbers are the same either way.
    channels_last = True

    def __init__(self, in_channels: int = 3, out_channels: int = 3, cond_channels: int = 0,
                 channels: int = 48, heads: Sequence[int] = (1, 2, 4, 8),
                 encoder_blocks: Sequence[int] = (2, 1, 1), bottleneck_blocks: int = 2,
                 decoder_blocks: Sequence[int] = (2, 1, 1), refinement_blocks: int = 1,
                 window: int = 8, qkv_kernel: int = 7, ffn_expansion: float = 2.66,
                 ca_reduction: int = 8):
        super().__init__()
        if len(heads) != 4 or len(encoder_blocks) != 3 or len(decoder_blocks) != 3:
            raise ValueError("heads needs 4 entries (levels 1-3, bottleneck); "
                             "encoder_blocks and decoder_blocks 3 (levels 1-3)")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.cond_channels = cond_channels
        c = channels
        widths = (c, c * 2, c * 4, c * 8)
        blk = dict(window=window, qkv_kernel=qkv_kernel, ffn_expansion=ffn_expansion,
                   ca_reduction=ca_reduction)

        def stage(level: int, n: int) -> nn.Sequential:
            return nn.Sequential(*(CouplingBlock(widths[level], heads[level], **blk)
                                   for _ in range(n)))

        self.embed = nn.Conv2d(in_channels + cond_channels, c, 3, padding=1)
        self.encoder1 = stage(0, encoder_blocks[0])
        self.down1 = Downsample(widths[0])
        self.encoder2 = stage(1, encoder_blocks[1])
        self.down2 = Downsample(widths[1])
        self.encoder3 = stage(2, encoder_blocks[2])
        self.down3 = Downsample(widths[2])
        self.bottleneck = stage(3, bottleneck_blocks)
        self.up3 = Upsample(widths[3])
        self.hybrid3 = DualHybridUnit(widths[2])
        self.decoder3 = stage(2, decoder_blocks[2])
        self.up2 = Upsample(widths[2])
        self.hybrid2 = DualHybridUnit(widths[1])
        self.decoder2 = stage(1, decoder_blocks[1])
        self.up1 = Upsample(widths[1])
        self.hybrid1 = DualHybridUnit(widths[0])
        self.decoder1 = stage(0, decoder_blocks[0])
        self.refinement = stage(0, refinement_blocks)
        self.output = nn.Conv2d(c, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(f"CLGINet needs H and W that are multiples of {m}, got {h}x{w}")
        expected = self.in_channels + self.cond_channels
        if x.shape[1] != expected:
            raise ValueError(f"CLGINet expects {expected} input channels "
                             f"({self.in_channels} image + {self.cond_channels} conditioning), "
                             f"got {x.shape[1]}")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        e1 = self.encoder1(self.embed(x))
        e2 = self.encoder2(self.down1(e1))
        e3 = self.encoder3(self.down2(e2))
        z = self.bottleneck(self.down3(e3))
        z = self.decoder3(self.hybrid3(e3, self.up3(z)))
        z = self.decoder2(self.hybrid2(e2, self.up2(z)))
        z = self.decoder1(self.hybrid1(e1, self.up1(z)))
        out = self.output(self.refinement(z))
        if self.in_channels == self.out_channels:
            out = out + x[:, :self.in_channels]
        return out.contiguous()


# --------------------------------------------------------------------------- measuring

def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    # FLOPs of softmax(q k^T) v: two batched matmuls (2 FLOPs per multiply-add).
    *batch, l, e = query_shape
    s, ev = key_shape[-2], value_shape[-1]
    n = 1
    for dim in batch:
        n *= dim
    return 2 * n * l * s * e + 2 * n * l * s * ev


def count_macs(model: nn.Module, height: int = 256, width: int = 256, batch: int = 1,
               channels: int | None = None) -> int:
    """Multiply-accumulates of one forward pass: ``FlopCounterMode`` total / 2.

    Runs a real forward on the model's device (use a model built under
    ``torch.device("meta")`` for a count without computing). The flop counter has no
    formula for the CPU flash-attention kernel, so one is supplied (same formula as
    for its CUDA kernels); on the meta device SDPA decomposes into counted matmuls.
    """
    from torch.utils.flop_counter import FlopCounterMode

    p = next(model.parameters())
    if channels is None:
        channels = getattr(model, "in_channels", 3) + getattr(model, "cond_channels", 0)
    x = torch.zeros(batch, channels, height, width, device=p.device, dtype=p.dtype)
    custom = {}
    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_sdpa is not None:
        custom[cpu_sdpa] = _sdpa_cpu_flops
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=custom) as counter:
        model(x)
    return counter.get_total_flops() // 2


# --------------------------------------------------------------------------- registry

# Block counts per level (level 1 = full resolution). See the table in the module docstring.
CONFIGS: dict[str, dict] = {
    "clginet": dict(channels=48, heads=(1, 2, 4, 8), encoder_blocks=(2, 1, 1),
                    bottleneck_blocks=2, decoder_blocks=(2, 1, 1), refinement_blocks=1),
    "clginet-s": dict(channels=16, heads=(1, 2, 4, 8), encoder_blocks=(1, 1, 1),
                      bottleneck_blocks=1, decoder_blocks=(1, 1, 1), refinement_blocks=1),
}

register_model(ModelSpec(
    name="clginet", family="clginet", builder=CLGINet, config=CONFIGS["clginet"],
    size_multiple=8, family_default_for=("*",),
    description="CLG-INet at the paper's size (C=48, blocks 2/1/1 + 2 + 1/1/2 + 1), 24.7 M params",
))
register_model(ModelSpec(
    name="clginet-s", family="clginet", builder=CLGINet, config=CONFIGS["clginet-s"],
    size_multiple=8,
    # peak RSS growth of one fp32 restore_tensor call per pixel at 1024x1024: 1124, rounded up
    # (docs/performance.md); clginet keeps the registry default (2000): not measured at 1024.
    bytes_per_pixel=1200.0,
    description="CLG-INet small (C=16, one block per level), 1.9 M params, trainable on a CPU",
))


if __name__ == "__main__":  # python -m restorecli.models.clginet: the numbers in the docstring
    # Built from CONFIGS directly: going through the registry would import this file a
    # second time (as restorecli.models.clginet) and register the names twice.
    for _name, _cfg in CONFIGS.items():
        with torch.device("meta"):  # count without computing
            _model = CLGINet(**_cfg)
        print(f"{_name}: {count_params(_model):,} parameters, "
              f"{count_macs(_model, 256, 256) / 1e9:.2f} GMACs at 256x256")
