"""Tiling: exact for a finite receptive field, seamless for IRNeXt, memory-sized tiles."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from restorecli.tiling import axis_window, choose_tile, pad_to_multiple, plan_axis, run_tiled, run_whole


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


@pytest.mark.parametrize("length,tile,overlap", [(1000, 256, 32), (300, 128, 16), (520, 512, 32), (90, 64, 32)])
def test_tiles_cover_and_windows_sum_to_one(length, tile, overlap):
    starts = plan_axis(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))  # at least the overlap
    total = torch.zeros(length)
    for i, s in enumerate(starts):
        total[s:s + tile] += axis_window(starts, i, tile, length)
    assert torch.allclose(total, torch.ones(length), atol=1e-6)


def test_window_is_zero_on_outer_quarter_of_each_overlap():
    starts = plan_axis(1000, 256, 64)
    w = axis_window(starts, 1, 256, 1000)
    ov = starts[0] + 256 - starts[1]
    assert torch.all(w[: ov // 4] == 0) and torch.all(w[-(ov // 4):] == 0)
    assert w[ov // 4 + ov // 2 + 1] == 1  # full weight past the ramp


def test_finite_receptive_field_tiled_equals_untiled():
    torch.manual_seed(0)
    # receptive field radius 1 + 2 + 1 = 4 px: within a quarter of a 32 px overlap
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.GELU(), nn.Conv2d(16, 16, 5, padding=2),
                        nn.GELU(), nn.Conv2d(16, 3, 3, padding=1)).eval()
    x = torch.rand(1, 3, 203, 341)
    with torch.no_grad():
        whole = net(x)
        for batch in (1, 4):
            tiled = run_tiled(net, x, tile=64, overlap=32, multiple=8, batch_size=batch)
            assert tiled.shape == whole.shape
            assert (tiled - whole).abs().max() < 1e-5
        # and an overlap too small for the field is visibly not exact (the test can fail)
        rough = run_tiled(net, x, tile=64, overlap=4, multiple=8)
        assert (rough - whole).abs().max() > 1e-3


def test_tile_progress_reports_every_tile():
    seen = []
    run_tiled(lambda b: b, torch.rand(1, 1, 100, 100), 48, 16, 8, batch_size=3,
              progress=lambda d, t: seen.append((d, t)))
    total = seen[-1][1]
    assert seen[-1][0] == total and total == len(plan_axis(100, 48, 16)) ** 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_pad_to_multiple_reflects_bottom_right_only_when_needed():
    x = torch.arange(5 * 7, dtype=torch.float32).reshape(1, 1, 5, 7)
    assert pad_to_multiple(torch.rand(1, 3, 64, 32), 32).shape == (1, 3, 64, 32)
    p = pad_to_multiple(x, 8)
    assert p.shape == (1, 1, 8, 8)
    assert torch.equal(p[..., :5, :7], x)
    assert torch.equal(p[0, 0, 5, :7], x[0, 0, 3])  # row 5 mirrors row 3
    tiny = pad_to_multiple(torch.rand(1, 3, 3, 2), 32)  # pad wider than the image still works
    assert tiny.shape == (1, 3, 32, 32)
    assert torch.equal(run_whole(lambda b: b * 2, x, 8), x * 2)


def test_choose_tile_from_memory():
    assert choose_tile(512, 512, 1000, budget=1 << 30, multiple=32) == 0  # fits: whole
    t = choose_tile(6000, 4000, 1500, budget=1 << 30, multiple=32)
    assert t % 32 == 0 and 128 <= t and t * t * 1500 <= 1 << 30


def test_irnext_tiled_vs_whole_on_a_photo(photo):
    from conftest import active_model

    model = active_model("irnext-deblur", seed=3)
    x = torch.from_numpy(photo[:256, :384].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        whole = run_whole(model, x, 32).clamp(0, 1)
        tiled = run_tiled(model, x, tile=192, overlap=64, multiple=32).clamp(0, 1)
    assert psnr(whole, x) < 35  # the network really changes the image
    assert psnr(tiled, whole) > 40
