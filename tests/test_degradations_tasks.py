"""The degradations of derain/deblur/defocus/dehaze/desnow (restorecli/train/synth.py),
their training wrappers, the recipes that use them, and the classical baselines."""
import dataclasses
import math
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from restorecli import baselines as B
from restorecli.models import get_spec
from restorecli.train import degradations as D
from restorecli.train import synth as S
from restorecli.train.config import load_config
from restorecli.train.deadleaves import dead_leaves

ROOT = Path(__file__).resolve().parent.parent
KINDS = list(S.SYNTHS)
TASK_OF = {"rain": "derain", "motion_blur": "deblur", "defocus": "defocus", "haze": "dehaze", "snow": "desnow"}


@pytest.fixture(scope="module")
def image():
    return dead_leaves(96, 3)


def psnr(a, b):
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_in_range_and_shape(kind, image):
    fn = S.SYNTHS[kind][0]
    a = fn(image, np.random.default_rng(5))
    b = fn(image, np.random.default_rng(5))
    c = fn(image, np.random.default_rng(6))
    assert a.shape == image.shape and a.dtype == np.float32
    assert np.array_equal(a, b), "the same seed must give the same image"
    assert not np.array_equal(a, c)
    assert a.min() >= 0.0 and a.max() <= 1.0 and np.isfinite(a).all()
    # the input is not modified in place
    assert np.array_equal(image, dead_leaves(96, 3))


# Mean PSNR (dB) of the degraded image vs the clean one over 6 seeds, per preset:
# each degradation really degrades, heavy more than light, and neither destroys the image.
BANDS = {
    "rain": {"light": (24, 45), "heavy": (10, 24)},
    "motion_blur": {"light": (16, 30), "heavy": (11, 21)},
    "defocus": {"light": (15, 27), "heavy": (12, 24)},
    "haze": {"light": (17, 34), "heavy": (7, 17)},
    "snow": {"light": (24, 42), "heavy": (11, 23)},
}


@pytest.mark.parametrize("kind", KINDS)
def test_psnr_bands_light_and_heavy(kind, image):
    fn = S.SYNTHS[kind][0]
    means = {}
    for level, (lo, hi) in BANDS[kind].items():
        vals = [psnr(fn(image, np.random.default_rng(s), level), image) for s in range(6)]
        means[level] = float(np.mean(vals))
        assert lo <= means[level] <= hi, (kind, level, means[level])
    assert means["heavy"] < means["light"] - 1.0


def test_kernels_are_normalised():
    rng = np.random.default_rng(0)
    sizes = []
    for i in range(40):
        k = S.shake_kernel(rng)
        assert k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        assert k.min() >= 0 and abs(float(k.sum()) - 1.0) < 1e-5
        sizes.append(k.shape[0])
    assert max(sizes) >= 30 and min(sizes) <= 12, "kernel sizes should vary widely"
    for k in (S.line_kernel(17.0, 30.0), S.line_kernel(0.0, 0.0), S.disk_kernel(0.3), S.disk_kernel(4.5),
              S.gaussian_kernel(2.0), S.line_kernel(9.0, -70.0, taper=1.0)):
        assert k.min() >= 0 and abs(float(k.sum()) - 1.0) < 1e-5


def test_kernel_lengths_follow_the_parameters():
    short = [S.shake_kernel(np.random.default_rng(s), {"length": (4, 4)}).shape[0] for s in range(10)]
    long = [S.shake_kernel(np.random.default_rng(s), {"length": (40, 40)}).shape[0] for s in range(10)]
    assert max(short) <= 11 and np.mean(long) > 1.6 * np.mean(short)  # long walks may curl back
    # a straight vertical line kernel: all mass in the centre column
    k = S.line_kernel(11.0, 0.0)
    c = k.shape[1] // 2
    assert k[:, c].sum() > 0.99 and (k[:, c] > 0).sum() >= 11


def test_disk_kernel_support_matches_radius():
    for r in (2.0, 5.0):
        k = S.disk_kernel(r)
        c = k.shape[0] // 2
        yy, xx = np.mgrid[:k.shape[0], :k.shape[1]] - c
        dist = np.hypot(yy, xx)
        assert k[dist > r + 1.0].sum() == 0
        assert k[dist < r - 1.0].std() < 1e-6  # flat inside


def test_elliptic_disk_kernel_has_the_asked_axes_and_orientation():
    k = S.disk_kernel(6.0, aspect=0.5, angle=0.0)       # major axis along x
    c = k.shape[0] // 2
    assert (k[c] > 0).sum() >= 11 and (k[:, c] > 0).sum() <= 7
    turned = S.disk_kernel(6.0, aspect=0.5, angle=90.0)  # the same ellipse along y
    assert np.allclose(turned, k.T, atol=1e-6) and abs(k.sum() - 1) < 1e-5
    thin = S.disk_kernel(0.5, aspect=0.1)                 # thinner than the sub-pixel grid
    assert np.isfinite(thin).all() and abs(thin.sum() - 1) < 1e-6


def test_wide_snow_draws_elongated_flakes_but_the_presets_keep_round_ones():
    assert S.resolve_params("snow", "heavy").aspect == 1.0 and S.resolve_params("snow", "light").aspect == 1.0
    assert S.resolve_params("snow", None).aspect[0] < 1.0


def test_log_uniform_haze_density_favours_light_haze(monkeypatch):
    """beta_log: the same range, drawn log-uniformly (light haze as common as dense haze)."""
    betas = []
    real = S.haze_from_depth
    monkeypatch.setattr(S, "haze_from_depth", lambda x, d, beta, A: betas.append(beta) or real(x, d, beta, A))
    x = np.full((16, 16, 3), 0.5, np.float32)
    for i in range(400):
        S.haze(x, np.random.default_rng(i), {"beta_log": True})
    monkeypatch.setattr(S, "haze_from_depth", real)
    betas = np.array(betas)
    assert betas.min() >= 0.1 and betas.max() <= 3.0
    assert 0.37 < (betas < 0.45).mean() < 0.51      # log-uniform: ln(4.5) / ln(30) = 0.44
    assert abs(np.median(betas) - np.sqrt(0.3)) < 0.12
    with pytest.raises(ValueError, match="beta_log needs"):
        S.haze(x, np.random.default_rng(0), {"beta_log": True, "beta": (0.0, 1.0)})
    S.haze(x, np.random.default_rng(0), {"beta_log": True, "beta": 0.5})   # a fixed beta stays fixed


def test_motion_blur_with_a_delta_kernel_is_the_identity_and_blur_keeps_the_mean(image):
    p = {"noise_sigma": (0, 0), "quantize_prob": 0.0, "linear_light_prob": 0.0}
    delta = np.zeros((3, 3), np.float32)
    delta[1, 1] = 1
    out = S.motion_blur(image, np.random.default_rng(0), p, kernel=delta)
    assert np.allclose(out, image, atol=1e-6)
    flat = np.full((64, 64, 3), 0.4, np.float32)
    out = S.motion_blur(flat, np.random.default_rng(1), p)
    assert np.allclose(out, 0.4, atol=1e-4)
    blurred = S.motion_blur(image, np.random.default_rng(2), {**p, "length": (20, 20)})
    # blur removes high frequencies: the mean absolute horizontal+vertical gradient drops
    grad = lambda x: np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean()  # noqa: E731
    assert grad(blurred) < 0.7 * grad(image)


def test_nonuniform_motion_blur_varies_over_the_frame():
    rng = np.random.default_rng(0)
    x = (rng.random((128, 128, 3)) > 0.5).astype(np.float32)  # white noise: blur shows as lost variance
    p = {"noise_sigma": (0, 0), "quantize_prob": 0.0, "linear_light_prob": 0.0, "length": (3, 40)}

    def local_std_spread(y):
        tiles = [y[i:i + 32, j:j + 32].std() for i in range(0, 128, 32) for j in range(0, 128, 32)]
        return np.std(tiles) / np.mean(tiles)

    uni = [local_std_spread(S.motion_blur(x, np.random.default_rng(s), {**p, "nonuniform_prob": 0.0}))
           for s in range(4)]
    var = [local_std_spread(S.motion_blur(x, np.random.default_rng(s), {**p, "nonuniform_prob": 1.0}))
           for s in range(4)]
    assert np.mean(var) > 1.5 * np.mean(uni)


def test_haze_is_monotone_in_depth_and_exact_at_zero():
    J = np.full((4, 50, 3), 0.2, np.float32)
    depth = np.tile(np.linspace(0, 1, 50, dtype=np.float32), (4, 1))
    A = np.array([0.9, 0.85, 0.8], np.float32)
    I = S.haze_from_depth(J, depth, 1.5, A)
    assert np.allclose(I[:, 0], J[:, 0])  # depth 0: no haze
    dist = np.abs(I - A).sum(axis=2)[0]
    assert np.all(np.diff(dist) < 0), "deeper points must be closer to the airlight"
    t = np.exp(-1.5 * depth[0, -1])
    assert np.allclose(I[0, -1], 0.2 * t + A * (1 - t), atol=1e-6)


def test_random_depth_is_smooth_and_normalised():
    d = S.random_depth(80, 120, np.random.default_rng(0))
    assert d.shape == (80, 120) and d.min() == 0.0 and abs(d.max() - 1.0) < 1e-6
    assert np.abs(np.diff(d, axis=1)).max() < 0.1 and np.abs(np.diff(d, axis=0)).max() < 0.1


def test_haze_lifts_dark_pixels_and_lowers_contrast(image):
    out = S.haze(image, np.random.default_rng(3), "heavy")
    assert out.std() < 0.6 * image.std()
    assert out.min() > image.min() + 0.1


def test_rain_streaks_follow_the_angle_and_only_brighten(image):
    p = {"angle": (0, 0), "angle_jitter": (0, 0), "veil_prob": 0.0, "noise_sigma": (0, 0),
         "quantize_prob": 0.0, "length": (30, 30), "density": (0.1, 0.1), "taper": (0, 0)}
    flat = np.full((96, 96, 3), 0.3, np.float32)
    out = S.rain(flat, np.random.default_rng(0), p)
    diff = (out - flat).mean(axis=2)
    assert diff.min() >= -1e-6 and diff.max() > 0.2
    # vertical streaks: the difference image varies far more across columns than along them
    assert np.abs(np.diff(diff, axis=1)).mean() > 3 * np.abs(np.diff(diff, axis=0)).mean()
    tilted = S.rain(flat, np.random.default_rng(0), {**p, "angle": (60, 60)})
    dt = (tilted - flat).mean(axis=2)
    assert np.abs(np.diff(dt, axis=1)).mean() < 2 * np.abs(np.diff(dt, axis=0)).mean()


@pytest.mark.parametrize("kind", ["rain", "snow"])
def test_veils_come_only_with_heavy_rain_and_snow(kind):
    """veil_min_layers: with fewer layers than that, no veil (dark pixels stay dark)."""
    dark = np.full((64, 64, 3), 0.02, np.float32)
    base = {"veil_prob": 1.0, "noise_sigma": (0, 0), "quantize_prob": 0.0, "density": (0.0005, 0.0005)}
    if kind == "rain":
        base.update(veil_alpha=(0.7, 0.7), intensity=(0.15, 0.15))
    else:
        base.update(veil=(0.3, 0.3))
    fn = S.rain if kind == "rain" else S.snow
    light = fn(dark, np.random.default_rng(0), {**base, "layers": (1, 1), "veil_min_layers": 3})
    veiled = fn(dark, np.random.default_rng(0), {**base, "layers": (1, 1), "veil_min_layers": 1})
    heavy = fn(dark, np.random.default_rng(0), {**base, "layers": (3, 3), "veil_min_layers": 3})
    assert np.median(light) < 0.03 and np.median(veiled) > 0.1 and np.median(heavy) > 0.1


def test_rain_softening_blurs_scene_and_streaks_only_when_asked():
    """soften_prob: a soft rainy photo (scene and streaks blurred alike). At its default 0 the
    random stream and the output are those of a recipe without the field."""
    edge = np.zeros((64, 64, 3), np.float32)
    edge[:, 32:] = 0.8
    base = {"noise_sigma": (0, 0), "quantize_prob": 0.0, "veil_prob": 0.0, "density": (0.05, 0.05),
            "layers": (1, 1), "intensity": (0.5, 0.5), "width": (0, 0), "streak_blur": (0, 0)}
    plain = S.rain(edge, np.random.default_rng(3), base)
    assert np.array_equal(plain, S.rain(edge, np.random.default_rng(3), {**base, "soften_prob": 0.0}))
    soft = S.rain(edge, np.random.default_rng(3), {**base, "soften_prob": 1.0, "soften_sigma": (1.2, 1.2)})
    step = lambda im: np.abs(np.diff(im.mean(axis=2), axis=1))[:, 30:33].max(axis=1).mean()
    assert step(plain) > 0.75 and step(soft) < 0.4  # the scene's edge is spread over pixels
    # the streaks stay, blurred: on the dark side the same light spread wider and fainter
    assert plain[:, :28].max() > soft[:, :28].max() > 0.02
    assert abs(soft[:, :28].mean() - plain[:, :28].mean()) < 0.2 * plain[:, :28].mean()


def test_snow_coverage_grows_with_density():
    flat = np.full((96, 96, 3), 0.2, np.float32)
    base = {"veil_prob": 0.0, "noise_sigma": (0, 0), "quantize_prob": 0.0, "layers": (2, 2)}
    cov = []
    for dens in (0.001, 0.008):
        c = 0.0
        for seed in range(3):
            out = S.snow(flat, np.random.default_rng(seed), {**base, "density": (dens, dens)})
            assert out.min() >= 0.2 - 1e-6  # snow is brighter than this background
            c += float(((out - flat).max(axis=2) > 0.05).mean()) / 3
        cov.append(c)
    assert 0 < cov[0] < cov[1]


def test_defocus_of_a_point_is_the_disk():
    x = np.zeros((41, 41, 3), np.float32)
    x[20, 20] = 1.0
    p = {"radius": (6, 6), "disk_prob": 1.0, "soften": (0, 0), "depth_prob": 0.0,
         "noise_sigma": (0, 0), "quantize_prob": 0.0}
    out = S.defocus(x, np.random.default_rng(0), p)
    k = S.disk_kernel(6)
    c = k.shape[0] // 2
    assert np.allclose(out[20 - c:21 + c, 20 - c:21 + c, 0], k, atol=1e-6)


def test_depth_varying_defocus_differs_from_uniform(image):
    p = {"radius": (5, 5), "disk_prob": 1.0, "soften": (0, 0), "noise_sigma": (0, 0), "quantize_prob": 0.0}
    uni = S.defocus(image, np.random.default_rng(4), {**p, "depth_prob": 0.0})
    var = S.defocus(image, np.random.default_rng(4), {**p, "depth_prob": 1.0})
    assert psnr(var, image) > psnr(uni, image)  # parts of the frame stay (nearly) in focus


def test_params_presets_and_errors():
    assert S.resolve_params("rain", None) == S.RainParams()
    heavy = S.resolve_params("rain", "heavy")
    assert heavy.veil_prob == 1.0
    over = S.resolve_params("rain", {"level": "light", "length": [5, 6]})
    assert over.length == (5, 6) and over.density == S.PRESETS["rain"]["light"]["density"]
    with pytest.raises(ValueError):
        S.resolve_params("rain", {"lenght": [5, 6]})
    with pytest.raises(ValueError):
        S.resolve_params("haze", "extreme")
    with pytest.raises(ValueError):
        S.rain(np.zeros((8, 8), np.float32), np.random.default_rng(0))
    # the wide ranges contain both presets
    for kind in KINDS:
        wide = S.resolve_params(kind, None)
        for level in ("light", "heavy"):
            for field, val in S.PRESETS[kind][level].items():
                w = getattr(wide, field)
                if isinstance(val, tuple) and isinstance(w, tuple):
                    assert w[0] <= val[0] and val[1] <= w[1], (kind, level, field)


@pytest.mark.parametrize("kind", KINDS)
def test_registered_per_task_and_seeded_by_the_torch_generator(kind):
    task = TASK_OF[kind]
    name = D.default_degradation(task)
    deg = D.create_degradation(name)
    assert deg.task == task and deg.kind == kind
    clean = torch.from_numpy(dead_leaves(48, 1)).permute(2, 0, 1)[None].repeat(3, 1, 1, 1)
    a = deg(clean, torch.Generator().manual_seed(0))
    b = deg(clean, torch.Generator().manual_seed(0))
    c = deg(clean, torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    assert torch.equal(a[1], clean)
    # no conditioning; haze gives the truth its estimating network may be taught (test_asmunet)
    assert set(a[2]) == ({"transmission", "light", "light_known"} if kind == "haze" else set())
    assert not torch.equal(a[0][0], a[0][1]), "each sample draws its own parameters"
    g = D.create_degradation(name, gray_prob=1.0)(clean, torch.Generator().manual_seed(0))
    for t in (g[0], g[1]):
        assert torch.allclose(t[:, 0], t[:, 1]) and torch.allclose(t[:, 1], t[:, 2])
    pinned = deg.fixed(level="heavy")
    assert pinned.params == S.resolve_params(kind, "heavy")


def test_clean_prob_leaves_a_share_of_samples_undegraded():
    clean = torch.from_numpy(dead_leaves(48, 1)).permute(2, 0, 1)[None].repeat(64, 1, 1, 1)
    deg = D.create_degradation("rain_streaks", level="heavy", clean_prob=0.25)
    x, y, _ = deg(clean, torch.Generator().manual_seed(0))
    kept = [bool(torch.equal(x[i], torch.round(clean[i] * 255) / 255)) for i in range(len(x))]
    assert 6 <= sum(kept) <= 28          # ~16 of 64
    assert torch.equal(y, clean)          # the targets are the clean patches either way
    assert deg.fixed().clean_prob == 0.0  # validation always degrades
    # without clean_prob the random stream is what it was before the option existed
    a = D.create_degradation("rain_streaks", level="heavy")(clean[:4], torch.Generator().manual_seed(3))
    b = D.create_degradation("rain_streaks", level="heavy", clean_prob=0.0)(clean[:4], torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0])
    with pytest.raises(ValueError, match="clean_prob"):
        D.create_degradation("haze", clean_prob=1.0)


TASK_RECIPES = sorted(p for t in TASK_OF.values() for p in (ROOT / "recipes").glob(f"{t}-*.toml")
                      if not p.name.endswith(".entry.toml"))


@pytest.mark.parametrize("path", TASK_RECIPES, ids=lambda p: p.stem)
def test_recipes_load_and_name_the_task_degradation(path):
    task = path.stem.split("-")[0]
    cfg = load_config(path)
    assert cfg.run.task == task
    assert D.create_degradation(cfg.degradation.name).task == task
    deg = D.create_degradation(cfg.degradation.name, **cfg.degradation.params)
    for setting in cfg.val.settings:
        deg.fixed(**setting)
    assert "builtin:test" not in cfg.data.clean and "builtin:test" not in cfg.val.clean
    assert tomllib.loads(path.read_text())["model"]["name"] == cfg.model.name
    # these degradations give no conditioning input, so the model must not need one
    spec = get_spec(cfg.model.name)
    assert spec.conditioning == () and cfg.data.patch_size % spec.size_multiple == 0


def test_guided_filter_and_dcp():
    rng = np.random.default_rng(0)
    I = rng.random((40, 40)).astype(np.float32)
    # eps -> 0 with the source as its own guide: the filter keeps it
    assert np.allclose(B.guided_filter(I, I, 3, 1e-8), I, atol=1e-3)
    # large eps: it smooths
    assert B.guided_filter(I, I, 3, 10.0).std() < 0.5 * I.std()
    clean = dead_leaves(96, 7)
    depth = S.random_depth(96, 96, np.random.default_rng(1))
    hazy = S.haze_from_depth(clean, 0.2 + 0.8 * depth, 1.2, np.array([0.9, 0.9, 0.9], np.float32))
    out = B.dehaze_dcp(hazy, omega=0.85, patch=7, radius=15)
    assert psnr(out, clean) > psnr(hazy, clean) + 2.0


def test_unsharp_and_median_help_where_they_should():
    clean = dead_leaves(96, 8)
    p = {"radius": (1.5, 1.5), "disk_prob": 0.0, "depth_prob": 0.0, "noise_sigma": (0, 0), "quantize_prob": 0.0}
    blurred = S.defocus(clean, np.random.default_rng(0), p)
    assert psnr(B.unsharp_mask(blurred, 1.0, 1.0), clean) > psnr(blurred, clean) + 0.5
    yy, xx = np.mgrid[0:96, 0:96] / 95.0
    clean = np.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 + 0.2 * xx * yy], axis=2).astype(np.float32)
    speckled = clean.copy()
    m = np.random.default_rng(1).random(clean.shape[:2]) < 0.03
    speckled[m] = 1.0
    assert psnr(B.median_filter(speckled, 3), clean) > psnr(speckled, clean) + 3.0
    assert len(B.grid("unsharp")) == len(B.GRIDS["unsharp"]["sigma"]) * len(B.GRIDS["unsharp"]["amount"])


def test_snow_shapes_mix_flake_sizes_and_tilts_within_a_layer():
    """shapes > 1: a layer's flakes come in several radii and tilts (as real snow and other
    generators draw them); the default (one shape per layer) draws exactly what it always did."""
    flat = np.full((192, 192, 3), 0.1, np.float32)
    base = {"veil_prob": 0.0, "noise_sigma": (0, 0), "quantize_prob": 0.0, "layers": (1, 1),
            "size": (1.5, 6.0), "density": (0.002, 0.002), "streak": (0, 0), "defocus": (0, 0),
            "opacity": (1, 1), "aspect": (0.5, 0.5)}
    same = S.snow(flat, np.random.default_rng(3), base)
    assert np.array_equal(same, S.snow(flat, np.random.default_rng(3), {**base, "shapes": (1, 1)}))

    def flake_areas(params):
        areas = []
        for seed in range(6):
            out = S.snow(flat, np.random.default_rng(seed), params)
            mask = ((out - flat).max(axis=2) > 0.3).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            areas.append(np.unique(stats[1:, cv2.CC_STAT_AREA]).size)
        return np.mean(areas)

    # one shape: isolated flakes of a layer share an area (only overlaps add others); six: many
    assert flake_areas(base) < flake_areas({**base, "shapes": (6, 6)}) - 4


def _docs_value(cell: str) -> object:
    """A cell of docs/degradations.md's parameter tables: "a – b" is a range, "no"/"yes" a
    switch, else a number."""
    cell = cell.strip()
    if " – " in cell:
        return tuple(float(v) for v in cell.split(" – "))
    if cell in ("no", "yes"):
        return float(cell == "yes")
    return float(cell)


@pytest.mark.parametrize("kind", list(S.SYNTHS))
def test_docs_parameter_tables_match_the_code(kind):
    """Each parameter table in docs/degradations.md lists every field with its wide default and
    the light/heavy presets as the code has them (the docs had drifted once)."""
    cls = S.SYNTHS[kind][1]
    lines = (Path(__file__).resolve().parent.parent / "docs" / "degradations.md").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"`{cls.__name__}` ("))
    rows = {}
    for ln in lines[start + 4:]:
        if not ln.startswith("|"):
            break
        cells = ln.split("|")[1:-1]
        rows[cells[0].strip().strip("`")] = cells[1:4]
    assert list(rows) == [f.name for f in dataclasses.fields(cls)]

    def as_float(v):  # a range with equal ends is shown as one number
        if isinstance(v, tuple):
            return float(v[0]) if v[0] == v[1] else tuple(float(x) for x in v)
        return float(v)
    for name, (wide, light, heavy) in rows.items():
        assert _docs_value(wide) == as_float(getattr(cls(), name)), f"{kind}.{name} wide"
        for level, cell in (("light", light), ("heavy", heavy)):
            want = S.resolve_params(kind, level)
            shown = getattr(cls(), name) if cell.strip() == "·" else _docs_value(cell)
            assert as_float(shown) == as_float(getattr(want, name)), f"{kind}.{name} {level}"
