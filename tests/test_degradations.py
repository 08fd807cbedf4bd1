"""Degradations for training: the added noise has the drawn sigma; the registry is pluggable."""
import pytest
import torch

from restorecli.train import degradations as D


def test_gaussian_noise_std_matches_sigma():
    clean = torch.full((4, 3, 128, 128), 0.5)
    deg = D.create_degradation("gaussian_noise", sigma_range=(25.0, 25.0), clip_prob=0.0)
    noisy, target, cond = deg(clean, torch.Generator().manual_seed(0))
    assert torch.equal(target, clean)
    std = (noisy - clean).std().item() * 255
    assert abs(std - 25.0) < 0.5
    assert torch.allclose(cond["sigma"], torch.full((4,), 25 / 255))


def test_per_sample_sigma_is_what_the_conditioning_says():
    clean = torch.full((6, 3, 96, 96), 0.5)
    deg = D.GaussianNoise(sigma_range=(5.0, 55.0), clip_prob=0.0)
    noisy, _, cond = deg(clean, torch.Generator().manual_seed(3))
    sig = cond["sigma"] * 255
    assert sig.min() >= 5 and sig.max() <= 55 and sig.std() > 1  # really drawn per sample
    measured = (noisy - clean).flatten(1).std(1) * 255
    assert torch.allclose(measured, sig, rtol=0.03)


def test_8bit_mode_is_clipped_and_quantised():
    clean = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    deg = D.GaussianNoise(sigma_range=(50.0, 50.0), clip_prob=1.0, quantize_prob=1.0)
    noisy, _, _ = deg(clean, torch.Generator().manual_seed(2))
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert torch.allclose(noisy * 255, torch.round(noisy * 255), atol=1e-4)


def test_seeded_and_gray():
    clean = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    deg = D.GaussianNoise(sigma_range=(0.0, 50.0), gray_prob=1.0)
    a = deg(clean, torch.Generator().manual_seed(9))
    b = deg(clean, torch.Generator().manual_seed(9))
    c = deg(clean, torch.Generator().manual_seed(10))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    target, noisy = a[1], a[0]
    assert torch.equal(target[:, 0], target[:, 1]) and torch.equal(target[:, 1], target[:, 2])
    # a gray noisy image replicated to 3 channels, as the Restorer runs gray through a color net
    assert torch.equal(noisy[:, 0], noisy[:, 1]) and torch.equal(noisy[:, 1], noisy[:, 2])


def test_fixed_pins_sigma():
    deg = D.GaussianNoise(sigma_range=(0.0, 55.0)).fixed(sigma=15)
    _, _, cond = deg(torch.zeros(2, 3, 8, 8), torch.Generator().manual_seed(0))
    assert torch.allclose(cond["sigma"], torch.full((2,), 15 / 255))


def test_registry_is_keyed_by_task_and_pluggable():
    assert "gaussian_noise" in D.list_degradations("denoise")
    assert D.default_degradation("denoise") == "gaussian_noise"
    with pytest.raises(KeyError):
        D.create_degradation("no-such-degradation")
    with pytest.raises(KeyError):
        D.default_degradation("no-such-task")

    @D.register_degradation("test_darken", task="test_task")
    class Darken(D.Degradation):
        def __call__(self, clean, generator):
            return clean * 0.5, clean, {}

    try:
        assert D.default_degradation("test_task") == "test_darken"
        x = torch.ones(1, 3, 4, 4)
        out, tgt, _ = D.create_degradation("test_darken")(x, torch.Generator())
        assert torch.equal(out, x * 0.5) and torch.equal(tgt, x)
        with pytest.raises(ValueError):
            D.register_degradation("test_darken", task="x")(Darken)
    finally:
        D._REGISTRY.pop("test_darken", None)


def test_sigma_power_favours_low_sigmas():
    import torch
    from restorecli.train.degradations import GaussianNoise
    clean = torch.full((4000, 3, 2, 2), 0.5)
    means = {}
    for p in (1.0, 2.0):
        _, _, cond = GaussianNoise((0.0, 60.0), sigma_power=p)(clean, torch.Generator().manual_seed(0))
        means[p] = float(cond["sigma"].mean() * 255)
    assert abs(means[1.0] - 30.0) < 1.5 and abs(means[2.0] - 20.0) < 1.5  # E[60 u^p] = 60 / (p + 1)
    with pytest.raises(ValueError, match="sigma_power"):
        GaussianNoise((0.0, 60.0), sigma_power=0)
