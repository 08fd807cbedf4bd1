"""Geometric self-ensemble (restorecli.ensemble) and its --ensemble / registry plumbing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from restorecli import Restorer
from restorecli.ensemble import self_ensemble
from restorecli.errors import UsageError
from restorecli.weights.errors import RegistryError
from restorecli.weights.registry import parse_registry


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_an_equivariant_function_is_unchanged(n):
    x = torch.rand(2, 3, 10, 14)
    assert torch.allclose(self_ensemble(lambda t: t * 2 + 1, n)(x), x * 2 + 1, atol=1e-6)


@pytest.mark.parametrize("n,offset", [(2, 3.5), (4, 3.5), (8, 3.0)])
def test_members_are_inverted(n, offset):
    """fn adds a ramp along its input's last axis: mapped back, a member and its mirror
    average to a constant, (W-1)/2 = 3.5 for the untransposed members of a 6x8 image and
    (H-1)/2 = 2.5 for the transposed ones, so the mean is x + that constant exactly when
    every member is inverted correctly."""
    x = torch.rand(1, 3, 6, 8)
    shapes = []

    def fn(t):
        shapes.append(tuple(t.shape[-2:]))
        return t + torch.arange(t.shape[-1], dtype=torch.float32)

    out = self_ensemble(fn, n)(x)
    assert len(shapes) == n and ((6, 8) in shapes) and (((8, 6) in shapes) == (n == 8))
    assert torch.allclose(out, x + offset, atol=1e-5)


def test_ensemble_averages_a_real_network(dehaze_weights, photo):
    img = np.ascontiguousarray(photo[:64, :96])
    one = Restorer("dehaze", weights=str(dehaze_weights), tile=0, ensemble=1)
    two = Restorer("dehaze", weights=str(dehaze_weights), tile=0, ensemble=2)
    eight = Restorer("dehaze", weights=str(dehaze_weights), tile=0, ensemble=8)
    assert eight.ensemble == 8 and "x8 self-ensemble" in eight.describe()
    x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]
    plain, mirrored = one.restore_tensor(x), one.restore_tensor(x.flip(-1)).flip(-1)
    by_hand = (plain + mirrored) / 2
    assert (plain - mirrored).abs().max() > 1e-3  # the members differ for a real network
    assert torch.allclose(two.restore_tensor(x), by_hand, atol=1e-5)
    members = [one.restore_tensor(m) for m in (x, x.flip(-1), x.flip(-2), x.flip(-2, -1))]
    members = [members[0], members[1].flip(-1), members[2].flip(-2), members[3].flip(-2, -1)]
    xt = x.transpose(-2, -1)
    for flips in ((), (-1,), (-2,), (-2, -1)):
        y = one.restore_tensor(xt.flip(flips) if flips else xt)
        members.append((y.flip(flips) if flips else y).transpose(-2, -1))
    assert torch.allclose(eight.restore_tensor(x), torch.stack(members).mean(0), atol=1e-5)


@pytest.mark.parametrize("bad", [3, 0, 16, True, "8"])
def test_bad_sizes_are_usage_errors(dehaze_weights, bad):
    with pytest.raises(UsageError, match="--ensemble"):
        Restorer("dehaze", weights=str(dehaze_weights), tile=0, ensemble=bad)


def test_registry_ensemble_is_validated(tmp_path):
    base = ('format = 1\n[[weights]]\nname = "x"\ntask = "denoise"\narch = "nlmunet-s"\n'
            'sha256 = "' + "0" * 64 + '"\npath = "x.safetensors"\n')
    assert parse_registry(base + "ensemble = 4\n", origin=tmp_path / "w.toml")[0].ensemble == 4
    assert parse_registry(base, origin=tmp_path / "w.toml")[0].ensemble == 1
    for bad in ("3", "8.0", "true", '"8"'):
        with pytest.raises(RegistryError, match="'ensemble' must be one of 1, 2, 4, 8"):
            parse_registry(base + f"ensemble = {bad}\n", origin=tmp_path / "w.toml")


def test_default_denoiser_uses_its_entrys_ensemble():
    r = Restorer("denoise", device="cpu")
    assert r.ensemble == 8 and Restorer("denoise", device="cpu", ensemble=1).ensemble == 1
