"""The dead-leaves generator: deterministic per seed, values in range, power-law radii."""
import numpy as np

from restorecli.train.deadleaves import DeadLeavesParams, _sample_radii, color_palette, dead_leaves

FAST = DeadLeavesParams(r_min=2.0, max_disks=4000)


def test_deterministic_per_seed_and_in_range():
    a = dead_leaves(64, seed=5, params=FAST)
    b = dead_leaves(64, seed=5, params=FAST)
    c = dead_leaves(64, seed=6, params=FAST)
    assert a.shape == (64, 64, 3) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    assert a.std() > 0.02  # not a flat picture
    # many distinct regions, as occluding disks of many sizes give
    assert len(np.unique(a.reshape(-1, 3).round(3), axis=0)) > 50


def test_gray_and_palette():
    g = dead_leaves((48, 80), seed=1, params=FAST, gray=True)
    assert g.shape == (48, 80, 3)
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])
    pal = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    p = dead_leaves(48, seed=2, params=DeadLeavesParams(r_min=2.0, texture_prob=0, blur_prob=0), palette=pal)
    assert np.all(p[..., 1] < 0.05)  # only red/blue (and their anti-aliased mixes)
    photo = np.zeros((10, 10, 3), np.uint8)
    photo[..., 2] = 255
    assert np.allclose(color_palette([photo], per_image=20), [0, 0, 1])


def test_radii_follow_the_power_law():
    rng = np.random.default_rng(0)
    r = _sample_radii(rng, 200_000, alpha=3.0, r_min=1.0, r_max=100.0)
    assert r.min() >= 1.0 and r.max() <= 100.0
    # P(r < 2) = (1 - 2^-2) / (1 - 100^-2) for p(r) ~ r^-3
    assert abs((r < 2).mean() - 0.75 / (1 - 1e-4)) < 0.01
