"""CLG-INet: shapes, determinism, gradients, window/channel attention, sizes, precisions, training."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from restorecli.models import create_model, get_spec
from restorecli.models.clginet import (DBPA, CLGINet, CouplingBlock, channel_attention, count_macs,
                                       count_params, window_attention)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Small tensors gain nothing from a second thread, and on a busy 2-core machine
    # OpenMP threads waiting for each other make these tests many times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small(**overrides) -> CLGINet:
    torch.manual_seed(0)
    return create_model("clginet-s", **overrides)


def on_meta(name: str) -> CLGINet:
    # Built without memory or compute: enough for counting parameters and MACs.
    with torch.device("meta"):
        return create_model(name)


# --------------------------------------------------------------------------- registry

def test_registry_names_and_family_default():
    assert get_spec("clginet").name == "clginet"
    for task in ("denoise", "deblur", "dehaze", None):
        assert get_spec("clginet", task).name == "clginet"  # the paper's size for `--model clginet`
    assert get_spec("clginet-s").name == "clginet-s"
    for name in ("clginet", "clginet-s"):
        spec = get_spec(name)
        assert spec.family == "clginet" and spec.size_multiple == 8
        assert CLGINet.size_multiple == spec.size_multiple
    model = small()
    assert isinstance(model, CLGINet) and model.spec.name == "clginet-s"


# --------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("hw", [(8, 8), (16, 24), (40, 24), (24, 56)])
def test_shapes_at_multiples_of_size_multiple(hw):
    # 40x24 and 24x56 put windows of 5x3 / 3x7 pixels at the bottleneck: internal padding.
    model = small().eval()
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and y.dtype == x.dtype and y.is_contiguous()
    assert torch.isfinite(y).all()


def test_rejects_sizes_and_channels_it_cannot_take():
    model = small().eval()
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 3, 12, 16))
    with pytest.raises(ValueError, match="input channels"):
        model(torch.rand(1, 4, 16, 16))


def test_conditioning_and_grayscale_variant():
    model = small(in_channels=1, out_channels=1, cond_channels=1).eval()
    x = torch.rand(1, 2, 16, 24)  # gray image + noise-level map
    with torch.no_grad():
        y = model(x)
        assert y.shape == (1, 1, 16, 24)
        # The conditioning reaches the network ...
        x2 = x.clone()
        x2[:, 1] += 0.5
        assert not torch.allclose(model(x2), y)
        # ... and the global residual adds only the image channel.
        model.output.weight.zero_()
        model.output.bias.zero_()
        torch.testing.assert_close(model(x), x[:, :1], rtol=0, atol=0)


def test_eval_is_deterministic_and_memory_format_does_not_change_the_numbers():
    model = small().eval()
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        a = model(x)
        b = model(x)
        model.channels_last = False  # plain NCHW features instead of channels-last
        c = model(x)
    assert torch.equal(a, b)
    torch.testing.assert_close(c, a, rtol=1e-4, atol=1e-5)


def test_every_parameter_receives_a_gradient():
    model = small(cond_channels=1).train()
    x = torch.rand(2, 4, 16, 24)
    target = torch.rand(2, 3, 16, 24)
    F.l1_loss(model(x), target).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    bad = [n for n, p in model.named_parameters()
           if not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not bad, f"parameters with a zero or non-finite gradient: {bad}"


class Zero(torch.nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def test_coupling_connection_bypasses_the_transformer():
    """With the Transformer layer silenced, local features still reach the second CNN
    layer through the intra-block coupling connection."""
    torch.manual_seed(4)
    block = CouplingBlock(8, heads=2).eval()
    block.transformer = Zero()
    x1, x2 = torch.randn(2, 1, 8, 16, 16)
    with torch.no_grad():
        d1, d2 = block(x1) - x1, block(x2) - x2
    assert not torch.allclose(d1, d2, atol=1e-4)


# --------------------------------------------------------------------------- attention

def reference_window_attention(qkv: torch.Tensor, heads: int, window: int) -> torch.Tensor:
    """Loop over the windows of the unpadded image (the last row/column of windows is
    clipped), plain softmax attention in float64."""
    b, c3, h, w = qkv.shape
    c, d = c3 // 3, c3 // 3 // heads
    q, k, v = qkv.double().chunk(3, dim=1)
    out = torch.zeros(b, c, h, w, dtype=torch.float64)
    for i in range(0, h, window):
        for j in range(0, w, window):
            rows, cols = slice(i, i + window), slice(j, j + window)
            hh, ww = q[:, :, rows, cols].shape[-2:]

            def tokens(t):  # (B, heads, n, d)
                return t[:, :, rows, cols].reshape(b, heads, d, hh * ww).transpose(-1, -2)

            qw, kw, vw = tokens(q), tokens(k), tokens(v)
            attn = torch.softmax(qw @ kw.transpose(-1, -2) / math.sqrt(d), dim=-1)
            out[:, :, rows, cols] = (attn @ vw).transpose(-1, -2).reshape(b, c, hh, ww)
    return out


@pytest.mark.parametrize("hw", [(16, 24), (8, 8), (13, 21), (5, 3), (9, 16)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_window_attention_matches_reference(hw, channels_last):
    torch.manual_seed(1)
    heads, d = 2, 4
    qkv = torch.randn(2, 3 * heads * d, *hw) * 2
    if channels_last:
        qkv = qkv.contiguous(memory_format=torch.channels_last)
    out = window_attention(qkv, heads, window=8)
    assert out.shape == (2, heads * d, *hw)
    torch.testing.assert_close(out.double(), reference_window_attention(qkv, heads, 8),
                               rtol=1e-5, atol=1e-5)


def test_window_attention_padding_is_invisible():
    """Padded to a multiple of 8 inside: the complete windows of a 13x21 input give the
    unpadded result of the 8x16 crop, and the clipped border windows equal the same
    computation on the crop of those windows alone."""
    torch.manual_seed(2)
    qkv = torch.randn(1, 3 * 8, 13, 21)
    out = window_attention(qkv, heads=2, window=8)
    torch.testing.assert_close(out[:, :, :8, :16], window_attention(qkv[:, :, :8, :16], 2, 8))
    torch.testing.assert_close(out[:, :, 8:, 16:], window_attention(qkv[:, :, 8:, 16:], 2, 8))
    torch.testing.assert_close(out[:, :, :8, 16:], window_attention(qkv[:, :, :8, 16:], 2, 8))


def test_channel_attention_matches_formula():
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 3, 5, 40) for _ in range(3))
    temperature = torch.rand(3, 1, 1) + 0.5
    qn, kn = F.normalize(q.double(), dim=-1), F.normalize(k.double(), dim=-1)
    attn = torch.softmax(qn @ kn.transpose(-1, -2) * temperature.double(), dim=-1)
    expected = (attn @ v.double()).transpose(-1, -2)  # (B, heads, N, d)
    torch.testing.assert_close(channel_attention(q, k, v, temperature).double(), expected,
                               rtol=1e-5, atol=1e-5)


def test_dbpa_cost_is_linear_in_pixel_count():
    """MACs(N) = a*N + b exactly (b: the pooled selection MLP): no term in N^2."""
    with torch.device("meta"):
        layer = DBPA(32, heads=2)

    def macs(h, w):
        with FlopCounterMode(display=False) as counter:
            layer(torch.empty(1, 32, h, w, device="meta"))
        return counter.get_total_flops() // 2

    m16, m32, m64, m128 = macs(16, 16), macs(32, 32), macs(64, 64), macs(64, 256)
    assert m64 - m32 == 4 * (m32 - m16)
    assert m128 - m64 == 4 * (m64 - m32) and m128 > 3 * m64


# --------------------------------------------------------------------------- sizes

def test_parameter_and_mac_budgets():
    big, sm = on_meta("clginet"), on_meta("clginet-s")
    assert abs(count_params(big) - 24.7e6) <= 0.05 * 24.7e6
    assert count_params(sm) < 3e6
    assert count_macs(big, 256, 256) <= 140e9
    assert big.embed.out_channels == 48
    heads = [blk.transformer.attn.heads for blk in (big.encoder1[0], big.encoder2[0],
                                                      big.encoder3[0], big.bottleneck[0])]
    assert heads == [1, 2, 4, 8]


def test_mac_count_on_cpu_counts_the_cpu_attention_kernel():
    # On the meta device SDPA decomposes into counted matmuls; on CPU it runs a flash
    # kernel the flop counter does not know, which count_macs adds. Both must agree.
    model = small().eval()
    cpu = count_macs(model, 24, 40)
    assert cpu == count_macs(on_meta("clginet-s"), 24, 40)
    with torch.no_grad(), FlopCounterMode(display=False) as plain:
        model(torch.zeros(1, 3, 24, 40))
    assert cpu > plain.get_total_flops() // 2  # the plain counter misses the attention


# --------------------------------------------------------------------------- precisions

def _relative_residual_error(y, ref, x):
    return ((y.float() - x) - (ref - x)).norm() / (ref - x).norm()


def test_bf16_autocast_on_cpu_runs_and_stays_close():
    model = small().eval()
    x = torch.rand(1, 3, 32, 40)
    seen = {}

    def record(module, inputs, output):
        seen["dtype"] = output.dtype

    model.encoder2[0].transformer.attn.register_forward_hook(record)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            y = model(x)
    assert seen["dtype"] == torch.bfloat16  # the attention really ran in bf16
    assert torch.isfinite(y).all()
    assert _relative_residual_error(y, ref, x) < 0.05


def test_half_precision_weights_run():
    # model.half() is the CUDA fp16 path; the CPU runs the same dtype logic.
    model = small().eval()
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        ref = model(x)
        y = model.half()(x.half())
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
    assert _relative_residual_error(y, ref, x) < 0.02


# --------------------------------------------------------------------------- training

def test_small_config_overfits_one_pair():
    model = small().train()
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    clean = torch.stack([0.5 + 0.4 * torch.sin(6 * xx + 2 * yy), 0.5 + 0.4 * torch.cos(5 * yy),
                         xx * yy])[None]
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = F.mse_loss(model(noisy), clean)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
