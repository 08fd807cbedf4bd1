"""Run a network over an image of any size: whole, or in overlapping tiles.

Tiles are laid out evenly along each axis (equal overlaps, at least the requested
one), run in batches, and blended with a window that is exactly zero on the outer
quarter of every overlap (where a tile's border effects live) and cross-fades with
complementary raised-cosine ramps over the middle half. A network whose receptive
field is at most a quarter of the overlap therefore gives its untiled output, to
float error; a network with a global receptive field (IRNeXt's pooling) changes
smoothly from tile to tile, with no seams.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["pad_to_multiple", "run_whole", "run_tiled", "plan_axis", "axis_window", "choose_tile", "fit_tile",
           "tile_grid", "tile_side", "max_overlap", "TileProgress"]

TileProgress = Callable[[int, int], None]  # (tiles done, tiles total)


def _reflect_pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    # Reflection needs pad < size; pad in steps so tiny inputs still reflect.
    while pad_h > 0 or pad_w > 0:
        ph = min(pad_h, x.shape[-2] - 1)
        pw = min(pad_w, x.shape[-1] - 1)
        if ph == 0 and pw == 0:  # a 1-pixel side: nothing to reflect
            return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        pad_h -= ph
        pad_w -= pw
    return x


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad bottom and right to the next multiple, only when needed (as IRNeXt's authors do)."""
    h, w = x.shape[-2:]
    pad_h = (-h) % multiple
    pad_w = (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return _reflect_pad(x, pad_h, pad_w)


def run_whole(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad to ``multiple``, run once, crop back."""
    h, w = x.shape[-2:]
    return fn(pad_to_multiple(x, multiple))[..., :h, :w]


def plan_axis(length: int, tile: int, overlap: int) -> list[int]:
    """Start positions of tiles of size ``tile`` covering ``length``, evenly spaced."""
    if tile >= length:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    n = max(n, 2)
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def fit_tile(length: int, tile: int, overlap: int, multiple: int) -> int:
    """The smallest tile side (a multiple of ``multiple``, at most ``tile``) that covers
    ``length`` with as many tiles as ``tile`` needs and at least ``overlap`` between them.

    Tiles are spread evenly, so full-size tiles overlap by more than asked whenever the
    length is not a whole number of steps (4 tiles of 1264 over 4000 pixels overlap by
    ~350, a third of the work recomputed); shrinking them to fit costs nothing in quality
    and keeps the recomputation near the requested overlap.
    """
    if tile >= length:
        return length
    n = len(plan_axis(length, tile, overlap))
    need = -(-(length + (n - 1) * overlap) // n)  # ceil
    need += (-need) % multiple
    return max(min(tile, need), min(length, multiple))


def axis_window(starts: list[int], index: int, tile: int, length: int) -> torch.Tensor:
    """1-D blend weights of tile ``index``: zero on the outer quarter of each interior
    overlap, a raised-cosine ramp over its middle half, one elsewhere."""
    size = min(tile, length)
    w = torch.ones(size, dtype=torch.float64)
    start = starts[index]
    if index > 0:  # overlap with the previous tile on this axis
        ov = starts[index - 1] + size - start
        m, r = ov // 4, ov - 2 * (ov // 4)
        w[:m] = 0
        t = (torch.arange(r, dtype=torch.float64) + 0.5) / r
        w[m:m + r] *= torch.sin(t * math.pi / 2) ** 2
    if index < len(starts) - 1:  # overlap with the next tile
        ov = start + size - starts[index + 1]
        m, r = ov // 4, ov - 2 * (ov // 4)
        if m:
            w[size - m:] = 0
        t = (torch.arange(r, dtype=torch.float64) + 0.5) / r
        w[size - m - r:size - m] *= torch.cos(t * math.pi / 2) ** 2
    return w.float()


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    multiple: int,
    batch_size: int = 1,
    device: torch.device | None = None,
    progress: TileProgress | None = None,
) -> torch.Tensor:
    """Run ``fn`` over ``x`` (1 x C x H x W, on the CPU) in overlapping tiles.

    ``fn`` takes a batch on ``device`` whose sides are multiples of ``multiple``
    and returns the same spatial size. The result is float32 on the CPU.

    Memory: one C x H x W output buffer besides the input. The blend weights are
    separable (a row window times a column window), so their sum over all tiles is
    the outer product of the two per-axis sums: the result is divided by those, row
    then column, with no H x W weight buffer.
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError("run_tiled takes one image, shaped 1 x C x H x W")
    device = device or x.device
    _, _, h, w = x.shape
    ys, xs, th, tw = tile_grid(h, w, tile, overlap, multiple)
    wy = [axis_window(ys, i, th, h) for i in range(len(ys))]
    wx = [axis_window(xs, j, tw, w) for j in range(len(xs))]
    sum_y, sum_x = torch.zeros(h), torch.zeros(w)
    for y0, wi in zip(ys, wy):
        sum_y[y0:y0 + th] += wi
    for x0, wj in zip(xs, wx):
        sum_x[x0:x0 + tw] += wj
    tiles = [(i, j) for i in range(len(ys)) for j in range(len(xs))]

    out: torch.Tensor | None = None  # allocated once the output channel count is known
    done = 0
    step = max(1, batch_size)
    for b in range(0, len(tiles), step):
        batch = tiles[b:b + step]
        inp = torch.cat([x[:, :, ys[i]:ys[i] + th, xs[j]:xs[j] + tw] for i, j in batch], dim=0)
        inp = pad_to_multiple(inp.to(device, non_blocking=True), multiple)
        res = fn(inp)[..., :th, :tw].float().cpu()
        if out is None:
            out = torch.zeros(res.shape[1], h, w, dtype=torch.float32)
        for k, (i, j) in enumerate(batch):
            out[:, ys[i]:ys[i] + th, xs[j]:xs[j] + tw].addcmul_(res[k], wy[i][:, None] * wx[j][None, :])
        del inp, res
        done += len(batch)
        if progress is not None:
            progress(done, len(tiles))
    assert out is not None
    out /= sum_y.clamp_min_(1e-12)[:, None]
    out /= sum_x.clamp_min_(1e-12)[None, :]
    return out.unsqueeze(0)


def count_tiles(h: int, w: int, tile: int, overlap: int, multiple: int) -> int:
    ys, xs, _, _ = tile_grid(h, w, tile, overlap, multiple)
    return len(ys) * len(xs)


def tile_side(tile: int, multiple: int) -> int:
    """The side ``run_tiled`` uses for ``tile``: rounded down to ``multiple`` (tiles need no padding)."""
    return max(multiple, tile - tile % multiple)


def max_overlap(tile: int, multiple: int) -> int:
    """The largest overlap ``run_tiled`` keeps for ``tile``; a larger one is lowered to it."""
    return tile_side(tile, multiple) // 2


def tile_grid(h: int, w: int, tile: int, overlap: int, multiple: int) -> tuple[list[int], list[int], int, int]:
    """Where ``run_tiled`` puts its tiles: row starts, column starts, tile height, tile width."""
    tile = tile_side(tile, multiple)
    overlap = max(0, min(overlap, max_overlap(tile, multiple)))
    th, tw = fit_tile(h, tile, overlap, multiple), fit_tile(w, tile, overlap, multiple)
    return plan_axis(h, th, overlap), plan_axis(w, tw, overlap), th, tw


def choose_tile(h: int, w: int, bytes_per_pixel: float, budget: int, multiple: int,
                minimum: int = 128) -> int:
    """``--tile auto``: 0 (untiled) when the whole image fits ``budget`` bytes,
    else the largest square tile (a multiple of ``multiple``) that does."""
    if h * w * bytes_per_pixel <= budget:
        return 0
    side = int(math.sqrt(budget / bytes_per_pixel))
    side -= side % multiple
    return max(side, max(minimum, multiple) - max(minimum, multiple) % multiple)
