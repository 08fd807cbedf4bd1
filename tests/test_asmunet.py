"""asmunet-s: a U-Net estimating transmission and atmospheric light, inverting the haze model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from restorecli.checkpoint import detect_architecture, transfer_weights
from restorecli.models import create_model
from restorecli.train.synth import haze_from_depth


def test_given_the_true_t_and_A_it_recovers_the_clean_image(monkeypatch):
    rng = np.random.default_rng(0)
    clean = rng.random((40, 48, 3)).astype(np.float32)
    depth = np.linspace(0.2, 1.0, 40 * 48, dtype=np.float32).reshape(40, 48)
    A = np.array([0.8, 0.75, 0.9], np.float32)
    hazy = haze_from_depth(clean, depth, 1.5, A)
    net = create_model("asmunet-s").eval()
    t = torch.from_numpy(np.exp(-1.5 * depth))[None, None]
    monkeypatch.setattr(net, "estimate", lambda x: (t, torch.from_numpy(A).view(1, 3, 1, 1)))
    out = net(torch.from_numpy(hazy).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(out - clean).max() < 1e-5


def test_estimates_are_in_range_and_A_is_one_per_image():
    torch.manual_seed(0)
    net = create_model("asmunet-s").eval()
    with torch.no_grad():
        x = torch.rand(2, 3, 32, 40)
        t, A = net.estimate(x)
        y = net(x)
    assert t.shape == (2, 1, 32, 40) and A.shape == (2, 3, 1, 1) and y.shape == x.shape
    assert float(t.min()) >= net.t_min and float(t.max()) <= 1 and 0 <= float(A.min()) and float(A.max()) <= 1
    # The fresh network starts as thin haze under a light-gray sky: close to the identity.
    assert 0.8 < float(t.mean()) < 0.95 and float((y - x).abs().mean()) < 0.1


def test_a_trained_unet_initialises_all_but_the_last_convolution():
    unet, asm = create_model("unet-s"), create_model("asmunet-s")
    report = transfer_weights(asm, unet.state_dict())
    assert sorted(report["skipped"]) == ["tail.bias", "tail.weight"]
    assert len(report["copied"]) == len(asm.state_dict()) - 2


def test_checkpoints_are_recognised_by_their_keys():
    assert detect_architecture(create_model("asmunet-s").state_dict()) == ["asmunet-s"]
    assert "asmunet-s" not in detect_architecture(create_model("unet-s").state_dict())


def test_tiles_share_the_light_estimated_from_the_whole_image(monkeypatch, tmp_path):
    """A tiled run fixes A from an overview of the whole image first (Restorer's hook), so
    every tile uses the same A; the hook is cleared afterwards."""
    from restorecli import Restorer
    from restorecli.checkpoint import save_safetensors

    torch.manual_seed(0)
    net = create_model("asmunet-s")
    path = tmp_path / "asm.safetensors"
    save_safetensors(net.state_dict(), path, metadata={"arch": "asmunet-s"})
    r = Restorer("dehaze", weights=str(path), tile=64, tile_overlap=16)
    r.model.estimate_side = 0   # at full resolution the network tiles (an out-of-memory fallback)
    seen = []
    real = type(r.model).estimate

    def spy(self, x):
        t, A = real(self, x)
        seen.append((tuple(x.shape[-2:]), A.detach().clone()))
        return t, A

    monkeypatch.setattr(type(r.model), "estimate", spy)
    img = (np.random.default_rng(0).random((150, 200, 3)) * 255).astype(np.uint8)
    r(img)
    assert r.last_tile == 64 and seen[0][0] == (48, 64)      # the overview: 200 px -> one 64-px tile
    tiles = seen[1:]
    assert len(tiles) >= 6 and all(torch.allclose(A, seen[0][1]) for _, A in tiles)
    assert r.model._light is None


def test_dcp_guided_variant_starts_as_the_model_it_is_initialised_from():
    torch.manual_seed(0)
    src = create_model("asmunet-s").eval()
    dst = create_model("asmunet-s-dcp").eval()
    report = transfer_weights(dst, src.state_dict())
    # the head and the down-convolutions take the guide map as one more input channel
    assert len(report["padded"]) == 4 and report["skipped"] == [] and report["sliced"] == []
    x = torch.rand(1, 3, 40, 48)
    with torch.no_grad():
        assert torch.allclose(dst(x), src(x), atol=1e-5)
    assert detect_architecture(dst.state_dict()) == ["asmunet-s-dcp"]


def test_dcp_transmission_of_a_hazed_dark_scene():
    """A scene whose every patch holds a black pixel: DCP's t is 1 - 0.95 (1 - t_true)."""
    rng = np.random.default_rng(1)
    clean = rng.random((64, 64, 3)).astype(np.float32)
    clean[::4, ::4] = 0.0                      # a dark pixel in every 15-px patch
    A = np.array([0.9, 0.9, 0.9], np.float32)
    hazy = haze_from_depth(clean, np.full((64, 64), 1.0, np.float32), 0.7, A)
    hazy[:16] = A                               # a sky: the brightest dark channel, A itself
    net = create_model("asmunet-s-dcp")
    t = net.dcp_transmission(torch.from_numpy(hazy).permute(2, 0, 1)[None])[0, 0].numpy()
    expected = 1 - 0.95 * (1 - np.exp(-0.7))
    assert np.allclose(t[32:], expected, atol=1e-4) and np.allclose(t[:8], 0.05, atol=1e-4)


def test_guided_filter_matches_the_baselines_away_from_the_borders():
    from restorecli.baselines import guided_filter as guided_filter_np
    from restorecli.models.asmunet import guided_filter
    rng = np.random.default_rng(2)
    guide = rng.random((60, 80)).astype(np.float32)
    src = (0.5 * guide + 0.3 * rng.random((60, 80))).astype(np.float32)
    ours = guided_filter(torch.from_numpy(guide)[None, None], torch.from_numpy(src)[None, None], 6, 1e-3)[0, 0].numpy()
    ref = guided_filter_np(guide, src, 6, 1e-3)
    # the borders differ on purpose (shrunk windows here, reflected ones in OpenCV)
    assert np.abs(ours - ref)[13:-13, 13:-13].max() < 1e-4


def test_dcp_residual_variant_starts_as_the_dark_channel_prior():
    """asmunet-s-dcpres untrained: t is DCP's guided-filter transmission, A DCP's light."""
    torch.manual_seed(0)
    net = create_model("asmunet-s-dcpres").eval()
    rng = np.random.default_rng(3)
    clean = rng.random((64, 72, 3)).astype(np.float32)
    depth = np.tile(np.linspace(0.2, 1.0, 72, dtype=np.float32), (64, 1))
    x = torch.from_numpy(haze_from_depth(clean, depth, 1.2, np.array([0.8, 0.8, 0.85], np.float32))).permute(2, 0, 1)[None]
    with torch.no_grad():
        t, A = net.estimate(x)
        prior = net.refined_transmission(x, net.dcp_transmission(x)).clamp(1e-3, 1 - 1e-3)
        light = net._dark_channel_light(x)
    assert torch.allclose(t, net.t_min + (1 - net.t_min) * prior, atol=1e-5)
    assert torch.allclose(A.flatten(), light.flatten(), atol=1e-6)
    # a checkpoint of it is told apart from asmunet-s-dcp's by the learned prior gain
    assert detect_architecture(net.state_dict()) == ["asmunet-s-dcpres"]


def test_light_head_starts_as_the_trained_dcpres_and_moves_the_light_without_bound():
    """asmunet-s-dcpres-lh initialised from a dcpres checkpoint dehazes as it did (the head starts
    at zero), and its head can lift A beyond the pooled correction's 0.5 bound (dark scenes)."""
    torch.manual_seed(0)
    src = create_model("asmunet-s-dcpres").eval()
    with torch.no_grad():
        src.tail.weight.normal_(0.0, 0.01)   # a "trained" head: non-zero corrections
    net = create_model("asmunet-s-dcpres-lh").eval()
    report = transfer_weights(net, src.state_dict())
    assert sorted(report["skipped"]) == sorted(k for k in net.state_dict() if k.startswith("light_head."))
    rng = np.random.default_rng(4)
    clean = 0.3 * rng.random((64, 72, 3)).astype(np.float32)            # a dark scene
    depth = np.tile(np.linspace(0.2, 1.0, 72, dtype=np.float32), (64, 1))
    x = torch.from_numpy(haze_from_depth(clean, depth, 0.4, 0.85)).permute(2, 0, 1)[None]
    with torch.no_grad():
        (t0, A0), (t1, A1) = src.estimate(x), net.estimate(x)
        assert torch.allclose(t0, t1) and torch.allclose(A0, A1, atol=1e-5)
        net.light_head[-1].bias.fill_(4.0)
        A2 = net.estimate(x)[1].flatten()
    assert (A2 > 0.9).all() and (A2 > A1.flatten() + 0.3).all()
    assert detect_architecture(net.state_dict()) == ["asmunet-s-dcpres-lh"]
    with pytest.raises(ValueError, match="dcp_residual"):
        create_model("asmunet-s", light_head=True)


def test_init_can_leave_a_head_fresh():
    """[model] init_skip: asmunet-s-dcpres takes a trained asmunet-s-dcp's backbone, not its head."""
    src, dst = create_model("asmunet-s-dcp"), create_model("asmunet-s-dcpres")
    fresh_tail = dst.tail.weight.detach().clone()
    report = transfer_weights(dst, src.state_dict(), skip=["tail."])
    assert sorted(report["skipped"]) == ["prior_gain", "tail.bias", "tail.weight"]
    assert torch.equal(dst.tail.weight, fresh_tail) and torch.equal(dst.head.weight, src.head.weight)


def test_guided_filter_is_exact_on_flat_regions_of_a_large_image():
    """Running sums over 12 MP: a float32 summed-area table loses the variance of flat areas
    (E[I^2] - E[I]^2 of 0.3-ish values), which then swamps eps; the filter must return the
    flat value there."""
    from restorecli.models.asmunet import guided_filter
    guide = torch.full((1, 1, 3000, 4000), 0.9)
    guide[..., :1500, :] = torch.rand(1, 1, 1500, 4000, generator=torch.Generator().manual_seed(0))
    src = guide * 0.5 + 0.05
    out = guided_filter(guide, src, 40, 1e-3)
    assert out.dtype == torch.float32
    assert torch.allclose(out[..., 2000:, 100:-100], torch.tensor(0.5), atol=1e-5)


def test_guided_upsample_follows_the_full_size_guide():
    """When the small map is a linear function of the small guide, the fast guided filter
    carries that function to the full-size guide: fine edges come back that the small map lacks."""
    from restorecli.models.asmunet import guided_upsample

    rng = np.random.default_rng(0)
    guide = torch.from_numpy(rng.random((1, 1, 96, 128)))
    small = torch.nn.functional.interpolate(guide, size=(24, 32), mode="area")
    up = guided_upsample(small, 0.5 * small + 0.2, guide, r=2, eps=1e-9)
    assert up.shape == guide.shape
    assert float((up - (0.5 * guide + 0.2)).abs().max()) < 1e-4
    bilinear = torch.nn.functional.interpolate(0.5 * small + 0.2, size=(96, 128), mode="bilinear")
    assert float((bilinear - (0.5 * guide + 0.2)).abs().mean()) > 0.05


def test_t_and_A_are_estimated_on_an_overview_of_a_large_image(monkeypatch):
    torch.manual_seed(0)
    net = create_model("asmunet-s-dcp").eval()
    assert net.estimate_side > 0
    net.estimate_side = 64
    seen = []
    real = type(net).estimate

    def spy(self, x):
        seen.append(tuple(x.shape[-2:]))
        return real(self, x)

    monkeypatch.setattr(type(net), "estimate", spy)
    with torch.no_grad():
        x = torch.rand(1, 3, 96, 160)
        t, A = net.estimate_at_scale(x)
        y = net(x)
        small = torch.rand(1, 3, 48, 64)
        t_small, _ = net.estimate_at_scale(small)
    assert seen[0] == (40, 64) and seen[1] == (40, 64)    # 160 px wide -> a 64-px overview
    assert seen[2] == (48, 64)                             # small inputs: estimated as they are
    assert t.shape == (1, 1, 96, 160) and A.shape == (1, 3, 1, 1) and y.shape == x.shape
    assert float(t.min()) >= net.t_min and float(t.max()) <= 1.0
    assert t_small.shape == (1, 1, 48, 64)


def test_a_24_mp_photo_is_dehazed_whole_under_tile_auto(monkeypatch, tmp_path):
    """With t and A estimated on an overview, the full-size work is elementwise: no tiles
    (which would each estimate their own t) are planned for a 24-MP photo on the CPU."""
    import restorecli.restorer as restorer
    from restorecli import Restorer
    from restorecli.checkpoint import save_safetensors

    monkeypatch.setattr(restorer, "free_memory", lambda device: 64 << 30)
    path = tmp_path / "asm.safetensors"
    save_safetensors(create_model("asmunet-s-dcpres").state_dict(), path, metadata={"arch": "asmunet-s-dcpres"})
    r = Restorer("dehaze", weights=str(path), device="cpu")
    assert r._plan_tile(torch.empty(1, 3, 4000, 6000, device="meta")) == 0


def test_an_explicit_tile_is_not_used_when_the_network_sees_an_overview(tmp_path):
    """Tiles would each estimate their own t (seams); the overview model runs whole and says so."""
    from restorecli import Restorer
    from restorecli.checkpoint import save_safetensors

    torch.manual_seed(0)
    path = tmp_path / "asm.safetensors"
    save_safetensors(create_model("asmunet-s-dcpres").state_dict(), path, metadata={"arch": "asmunet-s-dcpres"})
    img = (np.random.default_rng(0).random((150, 200, 3)) * 255).astype(np.uint8)
    whole = np.asarray(Restorer("dehaze", weights=str(path), tile=0)(img))
    tiled = Restorer("dehaze", weights=str(path), tile=64, tile_overlap=16)
    with pytest.warns(UserWarning, match="--tile 64 not used") as caught:
        out = np.asarray(tiled(img))
        tiled(img)
    assert tiled.last_tile == 0 and np.array_equal(out, whole)
    assert len([w for w in caught if "--tile 64 not used" in str(w.message)]) == 1   # once per Restorer


def test_physics_loss_trains_the_estimates_and_needs_an_estimating_network(tmp_path):
    """[optim] physics_weight: the clean target re-hazed with the network's t and A is compared
    with the hazy input; the term is in the training loss (it changes the step's gradient), and
    a network without estimates is refused before training."""
    from restorecli.train.config import ConfigError
    from restorecli.train.trainer import Trainer
    from test_train import tiny_config

    def trainer(weight, model="asmunet-s-dcpres"):
        cfg = tiny_config(tmp_path / f"{model}{weight}", steps=4)
        cfg.run.task, cfg.model.name = "dehaze", model
        cfg.degradation.name, cfg.degradation.params = "haze", {"level": "heavy"}
        cfg.optim.loss, cfg.optim.physics_weight = "psnr", weight
        return Trainer(cfg, quiet=True)

    a, b = trainer(0.0), trainer(1.0)
    b.model.load_state_dict(a.model.state_dict())
    la, _ = a.train_step()
    lb, _ = b.train_step()
    # same batch (same seeds), so the difference is the physics term: -PSNR of the re-hazed target, < 0
    assert lb < la - 5
    x, _, _ = a._batch()
    out, t, A = b.model(x, return_estimates=True)
    assert torch.equal(out, b.model(x)) and t.shape == (len(x), 1, *x.shape[-2:]) and A.shape == (len(x), 3, 1, 1)
    with pytest.raises(ConfigError, match="physics_weight"):
        trainer(1.0, model="unet-s")


def test_haze_degradation_gives_the_transmission_and_light_it_used():
    """Haze's conditioning dict is the truth behind each sample: re-hazing the clean target with
    it gives the input back (up to the 8-bit rounding and noise synth adds); a gray sample's
    light is gray; a haze-free sample (clean_prob) has t = 1 and its light marked unknown."""
    from restorecli.train import synth
    from restorecli.train.degradations import create_degradation

    torch.manual_seed(0)
    clean = torch.rand(6, 3, 24, 32)
    deg = create_degradation("haze", level="heavy", noise_sigma=0.0, quantize_prob=0.0)
    x, y, known = deg(clean, torch.Generator().manual_seed(3))
    t, A = known["transmission"], known["light"]
    assert t.shape == (6, 1, 24, 32) and A.shape == (6, 3) and known["light_known"].tolist() == [1.0] * 6
    assert 0 < float(t.min()) and float(t.max()) <= 1 and float(t.mean()) < 0.6   # heavy haze
    assert torch.allclose(y * t + A[..., None, None] * (1 - t), x, atol=1e-5)
    # the same draws as synth.haze, which the benchmarks use
    img = np.random.default_rng(1).random((20, 20, 3)).astype(np.float32)
    y1 = synth.haze(img, np.random.default_rng(5), "light")
    y2, t2, A2 = synth.haze_with_estimates(img, np.random.default_rng(5), "light")
    assert np.array_equal(y1, y2) and t2.shape == (20, 20) and A2.shape == (3,)

    gray = create_degradation("haze", level="heavy", gray_prob=1.0, noise_sigma=0.0, quantize_prob=0.0)
    x, y, known = gray(clean, torch.Generator().manual_seed(3))
    A = known["light"]
    assert torch.equal(A[:, 0], A[:, 1]) and torch.equal(A[:, 0], A[:, 2])
    t = known["transmission"]
    assert torch.allclose(y * t + A[..., None, None] * (1 - t), x, atol=1e-5)

    none = create_degradation("haze", clean_prob=0.999)
    _, _, known = none(clean, torch.Generator().manual_seed(3))
    assert torch.equal(known["transmission"], torch.ones(6, 1, 24, 32)) and known["light_known"].tolist() == [0.0] * 6


def test_estimate_loss_is_the_l1_distance_from_the_truth_and_trains_the_estimates(tmp_path):
    """[optim] estimate_weight: L1 of t and A from the haze's own, A counted only where there is
    haze; the term is in the step's loss, and a network without estimates or paired data (no
    truth) is refused before training."""
    from restorecli.train.config import ConfigError
    from restorecli.train.trainer import Trainer, estimate_loss
    from test_train import tiny_config

    t = torch.full((2, 1, 4, 4), 0.5)
    A = torch.tensor([[0.8, 0.8, 0.8], [0.1, 0.1, 0.1]]).view(2, 3, 1, 1)
    known = {"transmission": torch.full((2, 1, 4, 4), 0.75), "light": torch.full((2, 3), 0.9),
             "light_known": torch.tensor([1.0, 0.0])}
    assert estimate_loss(t, A, known).item() == pytest.approx(0.25 + 0.1)   # the second light is not counted
    known["light_known"] = torch.tensor([1.0, 1.0])
    assert estimate_loss(t, A, known).item() == pytest.approx(0.25 + (0.1 + 0.8) / 2)

    def trainer(weight, model="asmunet-s-dcpres", **data):
        cfg = tiny_config(tmp_path / f"{model}{weight}", steps=4)
        cfg.run.task, cfg.model.name = "dehaze", model
        cfg.degradation.name, cfg.degradation.params = "haze", {"level": "heavy"}
        cfg.optim.loss, cfg.optim.estimate_weight = "psnr", weight
        for k, v in data.items():
            setattr(cfg.data, k, v)
        return Trainer(cfg.validate() if data else cfg, quiet=True)

    a, b = trainer(0.0), trainer(10.0)
    b.model.load_state_dict(a.model.state_dict())
    la, _ = a.train_step()
    lb, _ = b.train_step()
    # same batch (same seeds): the difference is 10 x the estimates' L1 distance, > 0
    assert lb > la + 0.05
    with pytest.raises(ConfigError, match="estimate_weight"):
        trainer(1.0, model="unet-s")
    with pytest.raises(ConfigError, match="paired"):
        trainer(1.0, paired=[str(tmp_path)])
