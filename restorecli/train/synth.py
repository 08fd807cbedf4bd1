"""Synthetic weather and blur: rain, camera shake, defocus, haze, snow (issue 8).

Each degradation is a plain function ``f(clean, rng, params) -> degraded``:

* ``clean``: float32 ``HxWx3`` RGB in [0, 1];
* ``rng``: a :class:`numpy.random.Generator` (all randomness comes from it, so a seed
  fixes the output exactly);
* ``params``: a parameter dataclass (``RainParams``, ...), a dict of overrides of the
  defaults, a preset name (``"light"``, ``"heavy"``, ``"wide"``) or ``None`` (``"wide"``).

Every field of a parameter dataclass is either a ``(lo, hi)`` range drawn uniformly per
image, a probability, or a plain choice; the defaults (the ``wide`` preset) span both the
``light`` and ``heavy`` presets and more, because users' rain is not our rain: a network
trained on one narrow generator fails on another's output. The wide ranges are
documented field by field below and in docs/degradations.md.

The same functions are registered in the training registry
(:mod:`restorecli.train.degradations`) under the tasks ``derain`` (``rain_streaks``),
``deblur`` (``camera_shake``), ``defocus`` (``defocus_blur``), ``dehaze`` (``haze``) and
``desnow`` (``snow``), wrapped so they take a torch batch and a ``torch.Generator``.

Sources of the models (facts only; the code is ours):

* rain: streaks as motion-blurred, thresholded noise (the Photoshop recipe behind
  Rain100L/H and Rain800), several layers of different angle/length/density (Rain100H
  mixes five streak directions), composited additively or by *screen* blending; heavy
  rain adds the rain-accumulation veil of Yang et al. (JORDER, CVPR 2017),
  ``O = alpha (B + sum S_i) + (1 - alpha) A``.
* camera shake: random-walk trajectories with inertia, a centripetal pull and rare big
  shakes (Boracchi & Foi, TIP 2012; the generator DeblurGAN uses: canvas 64, max_len 60,
  expl 0.005, centripetal 0.7 U, big-shake probability 0.2 U, Gaussian shake 10 U),
  rasterised sub-pixel into a PSF; also straight-line kernels; sometimes spatially
  varying (2-3 kernels blended over smooth weights, the efficient-filter-flow form of
  Hirsch et al. 2010); blurred optionally in linear light (as GoPro's frame averaging
  is), then noise and 8-bit quantisation.
* defocus: disk (pill-box) and Gaussian PSFs; depth-varying blur as a blend of a few
  blur levels over a smooth random depth map with a random focal plane.
* haze: the atmospheric scattering model ``I = J t + A (1 - t)``, ``t = exp(-beta d)``
  (RESIDE draws A in [0.7, 1] and beta in [0.6, 1.8] with depth from an estimator; we
  have no depth, so ``d`` is a smooth random map: tilted gradients, multi-scale noise,
  and a term following the image's brightness so depth edges sometimes follow
  image edges).
* snow: Snow100K (DesnowNet, Liu et al. TIP 2018) composites snow masks of small,
  medium and large particles with transparency: ``K = z R + x (1 - z)``; our masks are
  particle layers (anti-aliased discs, softened, motion-streaked, per-layer opacity),
  larger particles rarer and more out of focus, optionally with a veil.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

import cv2
import numpy as np

from .deadleaves import LUMA

__all__ = [
    "RainParams", "ShakeParams", "DefocusParams", "HazeParams", "SnowParams",
    "rain", "motion_blur", "defocus", "haze", "snow",
    "shake_kernel", "line_kernel", "disk_kernel", "gaussian_kernel", "random_depth",
    "haze_from_depth", "haze_with_estimates", "resolve_params", "SYNTHS",
]

Range = tuple[float, float]


# ----------------------------------------------------------------------------- helpers

def _u(rng: np.random.Generator, r: Range | float) -> float:
    """A uniform draw from a ``(lo, hi)`` range (a plain number is returned as is)."""
    if isinstance(r, (int, float)):
        return float(r)
    lo, hi = float(r[0]), float(r[1])
    return lo if hi <= lo else float(rng.uniform(lo, hi))


def _iu(rng: np.random.Generator, r: Range | int) -> int:
    """An integer draw from an inclusive ``(lo, hi)`` range."""
    if isinstance(r, (int, float)):
        return int(r)
    lo, hi = int(round(r[0])), int(round(r[1]))
    return lo if hi <= lo else int(rng.integers(lo, hi + 1))


def _check(clean: np.ndarray) -> np.ndarray:
    x = np.asarray(clean)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _conv(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """True convolution (not correlation) with reflected borders, per channel."""
    k = np.ascontiguousarray(k[::-1, ::-1], dtype=np.float32)
    return cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT_101)


def _splat(k: np.ndarray, xs: np.ndarray, ys: np.ndarray, w: np.ndarray) -> None:
    """Add weights ``w`` at sub-pixel points ``(xs, ys)`` into ``k``, bilinearly."""
    x0 = np.floor(xs).astype(np.int64)
    y0 = np.floor(ys).astype(np.int64)
    fx, fy = xs - x0, ys - y0
    h, wd = k.shape
    for dy, dx, ww in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                       (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        yy, xx = y0 + dy, x0 + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < wd)
        np.add.at(k, (yy[ok], xx[ok]), (w * ww)[ok])


def _kernel_from_points(xs: np.ndarray, ys: np.ndarray, w: np.ndarray | None = None,
                        pad: int = 1) -> np.ndarray:
    """A normalised odd-sized PSF holding the points, centred on their bounding box."""
    w = np.ones_like(xs) if w is None else w
    cx = 0.5 * (xs.min() + xs.max())
    cy = 0.5 * (ys.min() + ys.max())
    ext = max(xs.max() - xs.min(), ys.max() - ys.min())
    size = int(math.ceil(ext)) + 2 * pad + 1
    size += 1 - size % 2
    c = size // 2
    k = np.zeros((size, size), np.float64)
    _splat(k, xs - cx + c, ys - cy + c, w)
    s = k.sum()
    if s <= 0:
        k[c, c] = 1.0
        s = 1.0
    return (k / s).astype(np.float32)


def line_kernel(length: float, angle_deg: float, taper: float = 0.0) -> np.ndarray:
    """A straight motion PSF (sums to 1). ``angle_deg`` is measured from the vertical
    (0 = a vertical streak, positive leans right at the bottom); ``taper`` in [0, 1]
    fades one end (0 = uniform, 1 = from full weight down to zero)."""
    length = max(float(length), 0.0)
    n = max(2, int(math.ceil(length * 3)) + 1)
    t = np.linspace(-0.5, 0.5, n) * length
    a = math.radians(angle_deg)
    xs, ys = t * math.sin(a), t * math.cos(a)
    w = 1.0 - taper * np.linspace(0.0, 1.0, n)
    return _kernel_from_points(xs, ys, w + 1e-6)


def disk_kernel(radius: float, supersample: int = 8, aspect: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """An anti-aliased pill-box PSF of the given radius in pixels (sums to 1); with ``aspect``
    < 1 an ellipse of semi-axes ``radius`` and ``aspect * radius``, turned by ``angle`` degrees."""
    r = max(float(radius), 0.0)
    if r < 0.5:
        k = np.zeros((3, 3), np.float32)
        k[1, 1] = 1.0
        if r > 0:  # a sub-pixel disk: a little spread to the neighbours
            g = gaussian_kernel(r)
            return g
        return k
    c = int(math.ceil(r))
    size = 2 * c + 1
    s = supersample
    coords = (np.arange(size * s) + 0.5) / s - (c + 0.5)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    if aspect < 1.0:
        a = math.radians(angle)
        u, v = xx * math.cos(a) + yy * math.sin(a), -xx * math.sin(a) + yy * math.cos(a)
        m = ((u / r) ** 2 + (v / (r * max(aspect, 0.1))) ** 2 <= 1.0).astype(np.float64)
    else:
        m = ((xx ** 2 + yy ** 2) <= r * r).astype(np.float64)
    k = m.reshape(size, s, size, s).mean(axis=(1, 3))
    if k.sum() <= 0:  # an ellipse thinner than the sub-pixel grid: a point
        k[c, c] = 1.0
    return (k / k.sum()).astype(np.float32)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """An isotropic Gaussian PSF (sums to 1), 3 sigma each side."""
    sigma = max(float(sigma), 1e-3)
    c = max(1, int(math.ceil(3 * sigma)))
    x = np.arange(-c, c + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def _smooth_noise(h: int, w: int, rng: np.random.Generator, cells: tuple[float, ...] = (1.5, 3, 6, 12),
                  persistence: float = 0.55) -> np.ndarray:
    """Multi-scale value noise in [0, 1]: random grids of ``cells`` cells across the
    longer side, bicubically upsampled and summed with weights ``persistence**octave``."""
    out = np.zeros((h, w), np.float32)
    side = max(h, w)
    amp = 1.0
    for n in cells:
        gh = max(2, int(math.ceil(n * h / side)) + 2)
        gw = max(2, int(math.ceil(n * w / side)) + 2)
        grid = rng.random((gh, gw)).astype(np.float32)
        up = cv2.resize(grid, (w + 2 * max(1, w // gw), h + 2 * max(1, h // gh)), interpolation=cv2.INTER_CUBIC)
        oy, ox = (up.shape[0] - h) // 2, (up.shape[1] - w) // 2
        out += amp * up[oy:oy + h, ox:ox + w]
        amp *= persistence
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)


def _finish(x: np.ndarray, rng: np.random.Generator, noise_sigma: Range, quantize_prob: float) -> np.ndarray:
    """Sensor noise (sigma on the 0-255 scale), clipping, and 8-bit quantisation."""
    s = _u(rng, noise_sigma)
    if s > 0:
        x = x + rng.normal(0.0, s / 255.0, x.shape).astype(np.float32)
    x = np.clip(x, 0.0, 1.0)
    if rng.random() < quantize_prob:
        x = np.round(x * 255.0) / 255.0
    return x.astype(np.float32)


def _tint(rng: np.random.Generator, base: float, spread: float) -> np.ndarray:
    """An RGB colour close to gray ``base`` (each channel jittered by up to ``spread``)."""
    return np.clip(base + rng.uniform(-spread, spread, 3), 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- rain

@dataclass(frozen=True)
class RainParams:
    """Rain streaks. Lengths and widths in pixels of the image the function gets."""
    layers: Range = (1, 4)                # streak layers (depths), each its own draw below
    angle: Range = (-45.0, 45.0)          # mean angle from vertical, degrees, per image
    angle_jitter: Range = (0.0, 12.0)     # per-layer deviation from the mean angle (std, degrees)
    density: Range = (0.01, 0.25)         # share of the frame covered by a layer's streaks
    length: Range = (4.0, 60.0)           # streak length, per layer
    width: Range = (0.0, 1.8)             # Gaussian thickening of the seeds (sigma, px); 0 = 1 px
    intensity: Range = (0.15, 1.0)        # streak brightness, per layer
    streak_blur: Range = (0.0, 1.5)       # extra Gaussian blur of the layer (out-of-focus drops)
    taper: Range = (0.0, 1.0)             # fading of streak ends (0 = uniform)
    screen_prob: float = 0.5              # screen blend 1-(1-B)(1-S); otherwise additive B+S
    veil_prob: float = 0.35               # rain accumulation / mist veil (Rain100H-style)
    veil_alpha: Range = (0.6, 0.95)       # O = alpha O + (1 - alpha) A
    veil_light: Range = (0.65, 1.0)       # A, slightly coloured
    # Rain accumulation comes with heavy rain (Rain100H has it, Rain100L not): a veil only over
    # at least this many streak layers, so a network does not "remove a veil" from light rain.
    veil_min_layers: int = 1
    # A soft rainy photo: a wet lens, spray or another generator's blur softens scene and
    # streaks alike, and the target stays the sharp scene. Off by default (drawn only when on,
    # so the presets and older recipes keep their exact random streams).
    soften_prob: float = 0.0
    soften_sigma: Range = (0.4, 1.3)      # Gaussian sigma of that softening, px
    noise_sigma: Range = (0.0, 3.0)       # sensor noise after compositing, 0-255 scale
    quantize_prob: float = 0.8            # share of outputs rounded to 8 bits


def _rain_layer(h: int, w: int, rng: np.random.Generator, angle: float, p: RainParams,
                depth: float) -> np.ndarray:
    """One layer of streak intensity in [0, 1], ``h x w``. ``depth`` in [0, 1] (0 = near)
    makes far layers denser, thinner, shorter and fainter."""
    length = _u(rng, p.length) * (1.15 - 0.5 * depth)
    width = _u(rng, p.width) * (1.1 - 0.6 * depth)
    # seeds per pixel so that streaks of this length and width cover `density` of the frame
    dens = _u(rng, p.density) * (0.6 + 0.8 * depth) / (max(length, 1.0) * (1.0 + 2.0 * width))
    inten = _u(rng, p.intensity) * (1.0 - 0.4 * depth)
    pad = int(math.ceil(length)) + 4  # seeds outside the frame streak into it
    H, W = h + 2 * pad, w + 2 * pad
    seeds = (rng.random((H, W)) < dens).astype(np.float32)
    seeds *= rng.uniform(0.4, 1.0, (H, W)).astype(np.float32)
    if width > 0.3:
        seeds = cv2.GaussianBlur(seeds, (0, 0), width) * (2 * math.pi * width * width)
    k = line_kernel(length, angle, _u(rng, p.taper))
    s = _conv(seeds, k) * max(length, 1.0)
    sb = _u(rng, p.streak_blur)
    if sb > 0.2:
        s = cv2.GaussianBlur(s, (0, 0), sb)
    s = s[pad:pad + h, pad:pad + w]
    return np.clip(s * inten, 0.0, 1.0)


def rain(clean: np.ndarray, rng: np.random.Generator, params: Any = None) -> np.ndarray:
    """Rain streaks composited on ``clean`` (see :class:`RainParams`)."""
    p = resolve_params("rain", params)
    x = _check(clean)
    h, w = x.shape[:2]
    base = _u(rng, p.angle)
    n = _iu(rng, p.layers)
    jit = _u(rng, p.angle_jitter)
    streaks = np.zeros((h, w, 3), np.float32)
    for i in range(n):
        depth = i / max(n - 1, 1) if n > 1 else float(rng.random())
        a = base + (rng.normal(0.0, jit) if jit > 0 else 0.0)
        layer = _rain_layer(h, w, rng, a, p, depth)
        color = _tint(rng, 0.95, 0.05)
        streaks = np.maximum(streaks, layer[..., None] * color) if rng.random() < 0.3 \
            else streaks + layer[..., None] * color
    streaks = np.clip(streaks, 0.0, 1.0)
    if rng.random() < p.screen_prob:
        out = 1.0 - (1.0 - x) * (1.0 - streaks)
    else:
        out = x + streaks
    out = np.clip(out, 0.0, 1.0)
    if rng.random() < p.veil_prob and n >= p.veil_min_layers:
        alpha = _u(rng, p.veil_alpha)
        # a veil slightly uneven over the frame
        field = 1.0 - (1.0 - alpha) * (0.7 + 0.6 * _smooth_noise(h, w, rng, (1.5, 3)))
        A = _tint(rng, _u(rng, p.veil_light), 0.03)
        out = field[..., None] * out + (1.0 - field[..., None]) * A
    if p.soften_prob > 0 and rng.random() < p.soften_prob:
        out = cv2.GaussianBlur(out, (0, 0), _u(rng, p.soften_sigma))
    return _finish(out, rng, p.noise_sigma, p.quantize_prob)


# ----------------------------------------------------------------------------- camera shake

@dataclass(frozen=True)
class ShakeParams:
    """Camera-shake motion blur. Sizes in pixels."""
    length: Range = (3.0, 45.0)           # trajectory length (max_len of the random walk)
    steps: int = 256                      # random-walk steps
    expl: Range = (0.002, 0.01)           # exploration (DeblurGAN: 0.005)
    centripetal: Range = (0.0, 0.7)       # pull back to the start
    big_shake: Range = (0.0, 0.2)         # probability factor of abrupt direction changes
    gaussian_shake: Range = (0.0, 10.0)   # random acceleration
    exposure: Range = (0.5, 1.0)          # share of the trajectory inside the exposure
    speed_var: Range = (0.0, 1.0)         # uneven dwell along the path (0 = constant speed)
    linear_prob: float = 0.2              # a straight-line kernel instead of a trajectory
    kernel_blur: Range = (0.0, 0.7)       # optics blur of the PSF (Gaussian sigma)
    linear_light_prob: float = 0.5       # blur in linear light (gamma 2.2), as frame averaging does
    nonuniform_prob: float = 0.25         # spatially varying: 2-3 kernels blended over smooth weights
    noise_sigma: Range = (0.0, 5.0)
    quantize_prob: float = 0.8


def shake_kernel(rng: np.random.Generator, params: Any = None) -> np.ndarray:
    """A random camera-shake PSF (odd size, non-negative, sums to 1)."""
    p = resolve_params("motion_blur", params)
    max_len = _u(rng, p.length)
    if rng.random() < p.linear_prob:
        k = line_kernel(max_len, rng.uniform(-90.0, 90.0), taper=rng.uniform(0.0, 0.5))
    else:
        steps = max(16, int(p.steps))
        scale = 2000.0 / steps  # DeblurGAN's constants are per step of a 2000-step walk
        expl = min(_u(rng, p.expl) * scale, 0.5)
        centripetal = _u(rng, p.centripetal)
        big = _u(rng, p.big_shake)
        gauss = _u(rng, p.gaussian_shake)
        step_len = max_len / (steps - 1)
        ang = rng.uniform(0, 2 * math.pi)
        v = complex(math.cos(ang), math.sin(ang)) * step_len
        x = np.zeros(steps, np.complex128)
        big_u = rng.random(steps)
        big_phase = rng.random(steps)
        shake = rng.normal(size=(steps, 2))
        for t in range(steps - 1):
            if big_u[t] < big * expl:
                nxt = 2 * v * complex(math.cos(math.pi + big_phase[t] - 0.5), math.sin(math.pi + big_phase[t] - 0.5))
            else:
                nxt = 0j
            dv = nxt + expl * (gauss * complex(shake[t, 0], shake[t, 1]) - centripetal * x[t]) * step_len
            v = v + dv
            mag = abs(v)
            v = v / mag * step_len if mag > 0 else complex(step_len, 0)
            x[t + 1] = x[t] + v
        n_keep = max(2, int(round(_u(rng, p.exposure) * steps)))
        start = int(rng.integers(0, steps - n_keep + 1))
        seg = x[start:start + n_keep]
        # uneven dwell: a smooth random weight along the path
        sv = _u(rng, p.speed_var)
        t = np.linspace(0, 1, n_keep)
        wts = np.exp(sv * (rng.normal() * np.sin(2 * math.pi * (t * rng.uniform(0.3, 1.5) + rng.random()))
                           + 0.5 * rng.normal() * np.cos(2 * math.pi * (t * rng.uniform(0.5, 3) + rng.random()))))
        k = _kernel_from_points(seg.real, seg.imag, wts)
    kb = _u(rng, p.kernel_blur)
    if kb > 0.15:
        g = gaussian_kernel(kb)
        pad = g.shape[0] // 2
        k = cv2.filter2D(np.pad(k, pad), -1, g, borderType=cv2.BORDER_CONSTANT)
        k = k / k.sum()
    return k.astype(np.float32)


def motion_blur(clean: np.ndarray, rng: np.random.Generator, params: Any = None,
                kernel: np.ndarray | None = None) -> np.ndarray:
    """Camera-shake blur (a random :func:`shake_kernel`, or ``kernel``), noise, 8 bits."""
    p = resolve_params("motion_blur", params)
    x = _check(clean)
    k = shake_kernel(rng, p) if kernel is None else np.asarray(kernel, np.float32) / float(np.sum(kernel))
    lin = rng.random() < p.linear_light_prob
    y = np.power(x, 2.2) if lin else x
    if kernel is None and rng.random() < p.nonuniform_prob:
        # a spatially varying blur (camera roll, parallax) in the efficient-filter-flow
        # form of Hirsch et al. (2010): sum_i w_i(x) (k_i * y), smooth weights summing to 1
        h, w = x.shape[:2]
        ks = [k] + [shake_kernel(rng, p) for _ in range(int(rng.integers(1, 3)))]
        ws = [_smooth_noise(h, w, rng, (1.0, 2.0)) ** 2 + 1e-3 for _ in ks]
        tot = np.sum(ws, axis=0)
        y = np.sum([_conv(y, ki) * (wi / tot)[..., None] for ki, wi in zip(ks, ws)], axis=0)
    else:
        y = _conv(y, k)
    if lin:
        y = np.power(np.clip(y, 0.0, 1.0), 1 / 2.2)
    return _finish(y, rng, p.noise_sigma, p.quantize_prob)


# ----------------------------------------------------------------------------- defocus

@dataclass(frozen=True)
class DefocusParams:
    """Defocus blur: disk or Gaussian PSF, optionally varying with a random depth."""
    radius: Range = (0.8, 9.0)            # disk radius in px (Gaussian: sigma = radius / 2)
    disk_prob: float = 0.6                # pill-box PSF, else Gaussian
    soften: Range = (0.0, 0.6)            # Gaussian softening of the disk (lens aberrations), px
    depth_prob: float = 0.4               # depth-varying blur over a smooth random depth map
    depth_levels: int = 6                 # blur levels blended over the depth map
    noise_sigma: Range = (0.0, 3.0)
    quantize_prob: float = 0.8


def _defocus_psf(r: float, disk: bool, soften: float) -> np.ndarray:
    if not disk:
        return gaussian_kernel(max(r / 2.0, 0.05))
    k = disk_kernel(r)
    if soften > 0.15:
        g = gaussian_kernel(soften)
        pad = g.shape[0] // 2
        k = cv2.filter2D(np.pad(k, pad), -1, g, borderType=cv2.BORDER_CONSTANT)
        k = k / k.sum()
    return k


def random_depth(h: int, w: int, rng: np.random.Generator, image: np.ndarray | None = None,
                 image_weight: Range = (0.0, 0.0)) -> np.ndarray:
    """A smooth random depth map in [0, 1] (0 = near): a tilted gradient (usually far at
    the top), multi-scale noise, and optionally a term following ``image``'s blurred
    brightness (bright regions such as sky read as far), mixed with random weights."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.normal(0.0, 0.45)  # tilt of the gradient; 0 = far at the top
    if rng.random() < 0.15:
        a = rng.uniform(-math.pi, math.pi)
    g = -(np.cos(a) * (yy / max(h - 1, 1)) - np.sin(a) * (xx / max(w - 1, 1)))
    g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    if rng.random() < 0.3:  # a road/corridor: far towards a vanishing point
        vx, vy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.6) * h
        r = np.sqrt((xx - vx) ** 2 + (yy - vy) ** 2) / math.hypot(h, w)
        g = 0.5 * g + 0.5 * (1 - r / max(float(r.max()), 1e-6))
    noise = _smooth_noise(h, w, rng, (1.5, 3, 6, 12), rng.uniform(0.35, 0.7))
    wg = rng.uniform(0.2, 1.0)
    d = wg * g + (1.0 - wg) * noise
    iw = _u(rng, image_weight)
    if image is not None and iw > 0:
        lum = image @ LUMA
        lum = cv2.GaussianBlur(lum, (0, 0), max(1.0, 0.01 * max(h, w)))
        d = (1 - iw) * d + iw * lum
    lo, hi = float(d.min()), float(d.max())
    return ((d - lo) / (hi - lo) if hi > lo else np.zeros_like(d)).astype(np.float32)


def defocus(clean: np.ndarray, rng: np.random.Generator, params: Any = None) -> np.ndarray:
    """Defocus blur (see :class:`DefocusParams`)."""
    p = resolve_params("defocus", params)
    x = _check(clean)
    h, w = x.shape[:2]
    r = _u(rng, p.radius)
    disk = rng.random() < p.disk_prob
    soft = _u(rng, p.soften)
    if rng.random() < p.depth_prob:
        d = random_depth(h, w, rng, x, (0.0, 0.5))
        focus = rng.uniform(0.0, 1.0)
        coc = np.abs(d - focus)
        coc = coc / max(float(coc.max()), 1e-6)  # 0 in focus .. 1 at the strongest blur
        n = max(2, int(p.depth_levels))
        radii = np.linspace(0.0, r, n)
        levels = [x if rr < 0.3 else _conv(x, _defocus_psf(rr, disk, soft)) for rr in radii]
        pos = coc * (n - 1)
        i0 = np.clip(np.floor(pos).astype(np.int64), 0, n - 2)
        f = (pos - i0)[..., None].astype(np.float32)
        y = np.zeros_like(x)
        for i in range(n - 1):
            m = (i0 == i)[..., None]
            y = np.where(m, (1 - f) * levels[i] + f * levels[i + 1], y)
    else:
        y = _conv(x, _defocus_psf(r, disk, soft))
    return _finish(y, rng, p.noise_sigma, p.quantize_prob)


# ----------------------------------------------------------------------------- haze

@dataclass(frozen=True)
class HazeParams:
    """Homogeneous-medium haze over a random depth map."""
    beta: Range = (0.1, 3.0)              # scattering coefficient (depth in [near, 1])
    # Draw beta log-uniformly: light haze (beta < 0.45) in 44 % of samples instead of 12 %, as
    # common as in photos; a network trained mostly on dense haze over-dehazes light haze.
    beta_log: bool = False
    near: Range = (0.0, 0.5)              # depth of the nearest point
    light: Range = (0.6, 1.0)             # atmospheric light A (gray level)
    light_tint: float = 0.06              # per-channel colour jitter of A
    image_weight: Range = (0.0, 0.6)      # how much depth follows the image's brightness
    noise_sigma: Range = (0.0, 2.0)
    quantize_prob: float = 0.8


def haze_from_depth(clean: np.ndarray, depth: np.ndarray, beta: float, A: np.ndarray | float) -> np.ndarray:
    """``I = J t + A (1 - t)`` with ``t = exp(-beta depth)`` (no noise, no clipping)."""
    t = np.exp(-float(beta) * np.asarray(depth, np.float32))[..., None]
    A = np.broadcast_to(np.asarray(A, np.float32), (3,))
    return (np.asarray(clean, np.float32) * t + A * (1.0 - t)).astype(np.float32)


def haze(clean: np.ndarray, rng: np.random.Generator, params: Any = None) -> np.ndarray:
    """Haze by the atmospheric scattering model (see :class:`HazeParams`)."""
    return haze_with_estimates(clean, rng, params)[0]


def haze_with_estimates(clean: np.ndarray, rng: np.random.Generator, params: Any = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`haze`'s image (the same draws) with what made it: the transmission ``t``
    (H x W) and the atmospheric light ``A`` (3,), the targets of a network that estimates
    them (``[optim] estimate_weight``)."""
    p = resolve_params("haze", params)
    x = _check(clean)
    h, w = x.shape[:2]
    d = random_depth(h, w, rng, x, p.image_weight)
    near = _u(rng, p.near)
    d = near + (1.0 - near) * d
    A = _tint(rng, _u(rng, p.light), p.light_tint)
    if p.beta_log and not isinstance(p.beta, (int, float)):
        if min(p.beta) <= 0:
            raise ValueError(f"haze: beta_log needs a beta range above 0, got {tuple(p.beta)}")
        beta = math.exp(_u(rng, (math.log(p.beta[0]), math.log(p.beta[1]))))
    else:
        beta = _u(rng, p.beta)
    y = haze_from_depth(x, d, beta, A)
    t = np.exp(-float(beta) * d).astype(np.float32)  # haze_from_depth forms its own; cheap next to the depth map
    return _finish(y, rng, p.noise_sigma, p.quantize_prob), t, A


# ----------------------------------------------------------------------------- snow

@dataclass(frozen=True)
class SnowParams:
    """Snow particles in layers of several sizes (Snow100K-style masks)."""
    layers: Range = (1, 4)                # particle layers, from small/far to large/near
    size: Range = (0.6, 7.0)              # particle radius range spanned by the layers, px
    density: Range = (0.0005, 0.012)      # particles per pixel for the smallest layer
    opacity: Range = (0.35, 1.0)          # per-layer transparency of the particles
    streak: Range = (0.0, 14.0)           # motion streak length, px
    angle: Range = (-60.0, 60.0)          # fall direction from vertical, degrees
    defocus: Range = (0.0, 0.6)           # extra softness of the largest particles (x radius)
    aspect: Range = (0.4, 1.0)            # flake shape per layer: minor / major axis (1 = round)
    shapes: Range = (1, 1)                # flake shapes per layer, each its own radius (within the
                                          # layer's size slot) and tilt; 1 = one shape per layer
    color: Range = (0.85, 1.0)            # snow colour R (gray level, slightly tinted)
    veil_prob: float = 0.4
    veil: Range = (0.0, 0.3)              # veil strength (mist of out-of-focus snow)
    veil_min_layers: int = 1              # a veil only over this many layers (heavy snow; as for rain)
    noise_sigma: Range = (0.0, 2.0)
    quantize_prob: float = 0.8


def _flake_seeds(H: int, W: int, rng: np.random.Generator, n: int) -> np.ndarray:
    seeds = np.zeros((H, W), np.float32)
    if n:
        ys = rng.integers(0, H, n)
        xs = rng.integers(0, W, n)
        np.add.at(seeds, (ys, xs), rng.uniform(0.5, 1.0, n).astype(np.float32))
    return seeds


def _flake(radius: float, aspect: float, rng: np.random.Generator) -> np.ndarray:
    """One flake shape, peak 1 (opaque at its centre); an ellipse (aspect < 1) draws its tilt."""
    disk = disk_kernel(radius, aspect=aspect, angle=float(rng.uniform(0, 180)) if aspect < 1.0 else 0.0)
    return disk / disk.max()


def _snow_layer(h: int, w: int, rng: np.random.Generator, radius: float, density: float,
                streak: float, angle: float, soft: float, aspect: float = 1.0,
                radii: tuple[float, ...] = ()) -> np.ndarray:
    """One layer of flakes. ``radii``: more shapes in the layer (each its own radius and,
    for ellipses, tilt; the flakes split evenly between them): real snow mixes flake sizes
    and orientations, and other generators draw each flake on its own."""
    pad = int(math.ceil(max((radius, *radii)) + streak)) + 3
    H, W = h + 2 * pad, w + 2 * pad
    n = int(rng.poisson(density * H * W))
    per_shape = n // (len(radii) + 1)
    m = _conv(_flake_seeds(H, W, rng, per_shape), _flake(radius, aspect, rng))
    for r in radii:
        m = np.maximum(m, _conv(_flake_seeds(H, W, rng, per_shape), _flake(r, aspect, rng)))
    if soft > 0.2:
        m = cv2.GaussianBlur(m, (0, 0), soft)
    if streak > 1.0:
        m = _conv(m, line_kernel(streak, angle, rng.uniform(0.0, 0.7))) * (1.0 + 0.3 * streak / (1 + radius))
    m = np.clip(m, 0.0, 1.0)
    return m[pad:pad + h, pad:pad + w]


def snow(clean: np.ndarray, rng: np.random.Generator, params: Any = None) -> np.ndarray:
    """Snow composited as ``K = z R + x (1 - z)`` per layer (see :class:`SnowParams`)."""
    p = resolve_params("snow", params)
    x = _check(clean)
    h, w = x.shape[:2]
    out = x.copy()
    n = _iu(rng, p.layers)
    rlo, rhi = float(p.size[0]), float(p.size[1])
    angle = _u(rng, p.angle)
    streak = _u(rng, p.streak)
    dens0 = _u(rng, p.density)
    if rng.random() < p.veil_prob and n >= p.veil_min_layers:
        v = _u(rng, p.veil) * (0.6 + 0.8 * _smooth_noise(h, w, rng, (1.5, 3, 6)))
        A = _tint(rng, _u(rng, p.color), 0.03)
        out = out * (1 - v[..., None]) + A * v[..., None]
    # sizes spread log-uniformly over the range; each layer draws around its slot
    for i in range(n):
        lo = rlo * (rhi / rlo) ** (i / n)
        hi = rlo * (rhi / rlo) ** ((i + 1) / n)
        r = rng.uniform(lo, hi)
        dens = dens0 * (rlo / r) ** 1.5  # bigger particles are rarer
        soft = _u(rng, p.defocus) * r * (i / max(n - 1, 1))
        s = streak * (0.5 + r / rhi) * rng.uniform(0.7, 1.3)
        a = angle + rng.normal(0.0, 8.0)
        k = _iu(rng, p.shapes)
        radii = tuple(float(rr) for rr in rng.uniform(lo, hi, k - 1)) if k > 1 else ()
        z = _snow_layer(h, w, rng, r, dens, s, a, soft, _u(rng, p.aspect), radii) * _u(rng, p.opacity)
        R = _tint(rng, _u(rng, p.color), 0.03)
        out = z[..., None] * R + out * (1.0 - z[..., None])
    return _finish(out, rng, p.noise_sigma, p.quantize_prob)


# ----------------------------------------------------------------------------- params

SYNTHS: dict[str, tuple[Callable[..., np.ndarray], type]] = {
    "rain": (rain, RainParams),
    "motion_blur": (motion_blur, ShakeParams),
    "defocus": (defocus, DefocusParams),
    "haze": (haze, HazeParams),
    "snow": (snow, SnowParams),
}

# Narrow presets: the two ends the docs show and the benchmark scores separately. On the
# held-out photos the light ones sit near Rain100L's input PSNR (about 27 dB).
# "wide" (the dataclass defaults) is what training draws from.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "rain": {
        "light": dict(layers=(1, 2), density=(0.04, 0.1), length=(8.0, 25.0), width=(0.0, 0.6),
                      intensity=(0.3, 0.6), veil_prob=0.0, noise_sigma=(0.0, 1.0)),
        "heavy": dict(layers=(3, 4), density=(0.06, 0.14), length=(20.0, 55.0), width=(0.4, 1.1),
                      intensity=(0.3, 0.65), veil_prob=1.0, veil_alpha=(0.75, 0.9)),
    },
    "motion_blur": {
        "light": dict(length=(3.0, 9.0), noise_sigma=(0.0, 2.0)),
        "heavy": dict(length=(18.0, 40.0), noise_sigma=(1.0, 4.0)),
    },
    "defocus": {
        "light": dict(radius=(1.0, 2.5), depth_prob=0.0),
        "heavy": dict(radius=(4.0, 8.0), depth_prob=0.3),
    },
    "haze": {
        "light": dict(beta=(0.1, 0.45), light=(0.7, 0.95)),
        "heavy": dict(beta=(1.0, 2.2), near=(0.1, 0.4), light=(0.75, 1.0)),
    },
    "snow": {
        "light": dict(layers=(1, 3), size=(0.6, 3.0), density=(0.002, 0.005), opacity=(0.5, 0.9),
                      veil_prob=0.0, aspect=1.0),
        "heavy": dict(layers=(3, 4), size=(0.8, 6.0), density=(0.004, 0.010), opacity=(0.7, 1.0),
                      veil_prob=1.0, veil=(0.1, 0.25), aspect=1.0),
    },
}


def _as_range(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(v)
    return v


def resolve_params(kind: str, params: Any = None) -> Any:
    """The parameter dataclass of ``kind`` from ``params``: an instance (returned as is),
    a preset name, ``None`` (wide), or a dict of field overrides (it may hold ``level``,
    a preset to start from)."""
    cls = SYNTHS[kind][1]
    if isinstance(params, cls):
        return params
    if params is None:
        return cls()
    if isinstance(params, str):
        params = {"level": params}
    if not isinstance(params, dict):
        raise TypeError(f"{kind}: params must be a {cls.__name__}, a dict or a preset name")
    params = dict(params)
    level = params.pop("level", "wide")
    base = cls()
    if level != "wide":
        if level not in PRESETS[kind]:
            raise ValueError(f"{kind}: unknown level {level!r} (known: wide, {', '.join(PRESETS[kind])})")
        base = replace(base, **PRESETS[kind][level])
    known = {f.name for f in fields(cls)}
    bad = sorted(set(params) - known)
    if bad:
        raise ValueError(f"{kind}: unknown parameter(s) {', '.join(bad)} (known: level, {', '.join(sorted(known))})")
    return replace(base, **{k: _as_range(v) for k, v in params.items()})


# ----------------------------------------------------------------------------- training registry

import torch  # noqa: E402  (the numpy functions above do not need it)

from .degradations import Degradation, register_degradation  # noqa: E402


class SynthDegradation(Degradation):
    """A :data:`SYNTHS` function as a training degradation: ``deg(batch, generator)``.

    Each sample gets its own ``numpy`` generator seeded from the ``torch.Generator``,
    so the trainer's seed fixes the batch. ``level``: ``"wide"`` (the default, what
    training draws from), ``"light"`` or ``"heavy"``; other keyword arguments override
    single fields of the parameter dataclass (``length = [10, 30]``). ``gray_prob``: the
    share of samples turned gray (clean and degraded, replicated to 3 channels, as the
    Restorer feeds gray images). ``clean_prob``: the share of samples left undegraded (only
    rounded to 8 bits), so the network learns to leave alone what is not rain, blur, haze or
    snow: users also run a task on photos with little or none of it, and a network that has
    only seen degraded inputs "restores" fine texture away (derain-unet-s4: coffee under
    light rain 30.0 dB in, 27.1 out). No conditioning is returned.
    """

    kind = ""

    def __init__(self, level: str = "wide", gray_prob: float = 0.0, clean_prob: float = 0.0, **params: Any):
        self.level = str(level)
        self.gray_prob = float(gray_prob)
        self.clean_prob = float(clean_prob)
        if not 0.0 <= self.clean_prob < 1.0:
            raise ValueError(f"clean_prob must be in [0, 1), got {clean_prob}")
        self.overrides = dict(params)
        self.params = resolve_params(self.kind, {"level": self.level, **self.overrides})

    def fixed(self, level: str | None = None, **values: Any) -> "SynthDegradation":
        return type(self)(level=level or self.level, gray_prob=0.0, clean_prob=0.0, **{**self.overrides, **values})

    def __call__(self, clean: torch.Tensor, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        n = clean.shape[0]
        seeds = torch.randint(0, 2 ** 62, (n,), generator=generator, dtype=torch.int64).tolist()
        gray = (torch.rand(n, generator=generator) < self.gray_prob).tolist() if self.gray_prob > 0 else [False] * n
        # drawn only when used, so recipes without clean_prob keep their exact random stream
        keep = (torch.rand(n, generator=generator) < self.clean_prob).tolist() if self.clean_prob > 0 else [False] * n
        x = clean.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        outs, tgts, extras = [], [], []
        for i in range(n):
            c = np.ascontiguousarray(x[i])
            if gray[i]:
                c = np.repeat((c @ LUMA)[..., None], 3, axis=2)
            if keep[i]:
                y, e = np.round(c * 255.0) / 255.0, self._undegraded_extras(c)
            else:
                y, e = self._degrade_one(c, np.random.default_rng(seeds[i]), bool(gray[i]))
            if gray[i]:
                y = np.repeat((y @ LUMA)[..., None], 3, axis=2)
            outs.append(y)
            tgts.append(c)
            extras.append(e)

        def stack(lst):
            return torch.from_numpy(np.stack(lst)).permute(0, 3, 1, 2).contiguous()

        return stack(outs), stack(tgts), {k: torch.from_numpy(np.stack([e[k] for e in extras])) for k in extras[0]}

    def _degrade_one(self, clean: np.ndarray, rng: np.random.Generator, gray: bool
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One sample degraded, and what a network may be taught besides the clean image
        (none here; ``gray``: ``clean`` is a gray photo on 3 channels)."""
        return SYNTHS[self.kind][0](clean, rng, self.params), {}

    def _undegraded_extras(self, clean: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`_degrade_one`'s extras for a sample left undegraded (``clean_prob``)."""
        return {}


@register_degradation("rain_streaks", task="derain", default=True)
class RainStreaks(SynthDegradation):
    """Rain streak layers (:func:`rain`, :class:`RainParams`)."""
    kind = "rain"


@register_degradation("camera_shake", task="deblur", default=True)
class CameraShake(SynthDegradation):
    """Random-walk camera-shake blur + noise + 8 bits (:func:`motion_blur`, :class:`ShakeParams`)."""
    kind = "motion_blur"


@register_degradation("defocus_blur", task="defocus", default=True)
class DefocusBlur(SynthDegradation):
    """Disk/Gaussian defocus, optionally depth-varying (:func:`defocus`, :class:`DefocusParams`)."""
    kind = "defocus"


@register_degradation("haze", task="dehaze", default=True)
class Haze(SynthDegradation):
    """Atmospheric scattering over a random depth map (:func:`haze`, :class:`HazeParams`).

    The conditioning dict carries the truth behind each sample for networks that estimate
    it (``[optim] estimate_weight``): ``transmission`` (N x 1 x H x W), ``light`` (N x 3;
    a gray sample's is gray, as its haze is) and ``light_known`` (N; 0 for a haze-free
    sample, whose light nothing in the image shows)."""
    kind = "haze"

    def _degrade_one(self, clean, rng, gray):
        y, t, A = haze_with_estimates(clean, rng, self.params)
        if gray:  # luma(J t + A (1 - t)) = luma(J) t + luma(A) (1 - t)
            A = np.full(3, float(A @ LUMA), np.float32)
        return y, {"transmission": t[None], "light": A, "light_known": np.float32(1.0)}

    def _undegraded_extras(self, clean):
        return {"transmission": np.ones((1, *clean.shape[:2]), np.float32),
                "light": np.zeros(3, np.float32), "light_known": np.float32(0.0)}


@register_degradation("snow", task="desnow", default=True)
class Snow(SynthDegradation):
    """Snow particle layers (:func:`snow`, :class:`SnowParams`)."""
    kind = "snow"
