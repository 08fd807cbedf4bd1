"""IRNeXt: the authors' state_dict layout, and the semantics of the spec."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from restorecli.checkpoint import CheckpointError, load_weights, read_state_dict
from restorecli.models import create_model, get_spec
from restorecli.models.irnext import DynamicFilter, local_box_mean

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"
if not SPEC.is_dir():  # a clone elsewhere: the spec files travel with the tests
    SPEC = Path(__file__).resolve().parent / "data" / "spec"


def _keys_tsv(name: str) -> list[tuple[str, str]]:
    rows = (SPEC / f"{name}.keys.tsv").read_text().strip().splitlines()[1:]
    return [(r.split("\t")[0], r.split("\t")[1]) for r in rows]


@pytest.mark.parametrize("name,params", [("irnext-deblur", 13_205_641), ("irnext-dehaze", 5_455_241)])
def test_state_dict_is_the_authors(name, params):
    with torch.device("meta"):
        model = create_model(name)
    sd = model.state_dict()
    expected = _keys_tsv(name)
    assert list(sd) == [k for k, _ in expected]  # same keys, same order
    for key, shape in expected:
        got = "x".join(str(d) for d in sd[key].shape) or "scalar"
        assert got == shape, key
    assert sum(p.numel() for p in model.parameters()) == params


def test_family_resolves_by_task():
    assert get_spec("irnext", "dehaze").name == "irnext-dehaze"
    for task in ("deblur", "derain", "desnow", "defocus", "denoise"):
        assert get_spec("irnext", task).name == "irnext-deblur"
    assert get_spec("irnext-dehaze", "deblur").name == "irnext-dehaze"  # a variant name wins
    assert get_spec("irnext-deblur").size_multiple == 32


def _unfold_filter(f: DynamicFilter, x: torch.Tensor) -> torch.Tensor:
    """The dynamic filter as the authors formulate it: a 9x unfold copy, taps summed."""
    n, c, h, w = x.shape
    k, g = f.kernel_size, f.group
    taps = torch.tanh(f.bn(f.conv(F.adaptive_avg_pool2d(x, 1))))
    cols = F.unfold(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel_size=k).reshape(n, g, c // g, k * k, h * w)
    taps = taps.reshape(n, g, k * k, 1).unsqueeze(2)
    low = torch.sum(cols * taps, dim=3).reshape(n, c, h, w)
    out_low = low * (f.inside_all + 1.0) - f.inside_all * f.coarse(x)
    return out_low * f.lamb_l[None, :, None, None] + x * (f.lamb_h[None, :, None, None] + 1.0)


@pytest.mark.parametrize("pool", ["gap", "box"])
def test_dynamic_filter_equals_unfold_form(pool):
    torch.manual_seed(0)
    f = DynamicFilter(32, global_pool=pool).eval()
    with torch.no_grad():  # non-trivial parameters and statistics
        for p in (f.lamb_l, f.lamb_h, f.inside_all, f.bn.weight, f.bn.bias, f.bn.running_mean):
            p.normal_()
        f.bn.running_var.uniform_(0.5, 2)
        x = torch.randn(2, 32, 24, 40)
        ours, theirs = f(x), _unfold_filter(f, x)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-5)
    assert (ours - theirs).abs().max() < 1e-5


@pytest.mark.parametrize("h,w", [(16, 16), (24, 40), (13, 7), (3, 5)])
def test_local_box_mean_is_a_window_mean(h, w):
    torch.manual_seed(1)
    x = torch.rand(1, 2, h, w, dtype=torch.float64)
    kh, kw = max(1, h * 120 // 256), max(1, w * 120 // 256)
    valid = F.avg_pool2d(x, (kh, kw), stride=1)  # the mean of every full window
    oh, ow = valid.shape[-2:]
    expected = F.pad(valid, ((w - ow) // 2, (w - ow + 1) // 2, (h - oh) // 2, (h - oh + 1) // 2), mode="replicate")
    assert torch.allclose(local_box_mean(x), expected, atol=1e-12)


def test_box_window_follows_input_size():
    # computed per call: the same input size gives the same numbers in any call order
    f = DynamicFilter(8, group=8, global_pool="box").eval()
    a, b = torch.rand(1, 8, 16, 16), torch.rand(1, 8, 32, 48)
    with torch.no_grad():
        first = f(a)
        f(b)
        assert torch.equal(f(a), first)


def test_authors_checkpoint_loads_strictly(tmp_path):
    torch.manual_seed(2)
    model = create_model("irnext-dehaze").eval()
    sd = model.state_dict()
    variants = {
        "wrapped.pkl": {"model": sd},
        "bare.pth": sd,
        "ddp.pth": {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
        "ema.pth": {"params_ema": sd, "params": {k: torch.zeros_like(v) for k, v in sd.items()}},
    }
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
    for fname, obj in variants.items():
        torch.save(obj, tmp_path / fname)
        other = load_weights(create_model("irnext-dehaze"), tmp_path / fname).eval()
        with torch.no_grad():
            assert torch.equal(other(x), ref), fname


def test_wrong_architecture_is_named(tmp_path):
    torch.save({"model": create_model("irnext-dehaze").state_dict()}, tmp_path / "dehaze.pkl")
    with pytest.raises(CheckpointError) as e:
        load_weights(create_model("irnext-deblur"), tmp_path / "dehaze.pkl")
    msg = str(e.value)
    assert "not a checkpoint of irnext-deblur" in msg
    assert "missing keys: Encoder.0.layers.4" in msg
    assert "irnext-dehaze" in msg  # what it looks like instead


def test_pickled_objects_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    torch.save({"model": {"w": torch.zeros(1)}, "x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="never unpickled"):
        read_state_dict(tmp_path / "evil.pth")
    (tmp_path / "junk.pkl").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a weights file"):
        read_state_dict(tmp_path / "junk.pkl")


def test_a_protocol_4_checkpoint_is_refused_for_what_it_is(tmp_path, recwarn):
    """torch's safe loader cannot read pickle protocol 4 (its FRAME opcode): the message says
    so, not that the file holds Python objects, and torch's UserWarning is not passed on."""
    torch.save({"w": torch.zeros(2)}, tmp_path / "p4.pth", pickle_protocol=4)
    with pytest.raises(CheckpointError, match="saved with pickle protocol 4 or later, which the safe loader "
                                              "cannot read: re-save it") as e:
        read_state_dict(tmp_path / "p4.pth")
    assert "never unpickled" not in str(e.value)
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]


def test_forward_multiscale_outputs():
    model = create_model("irnext-dehaze").eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        out4, out2, out = model(x, all_scales=True)
        assert out4.shape == (1, 3, 16, 24) and out2.shape == (1, 3, 32, 48) and out.shape == x.shape
        assert torch.equal(model(x), out)


@pytest.mark.parametrize("variant", ["irnext-dehaze", "irnext-deblur"])
def test_channels_last_and_fused_convs_equal_the_plain_forward(variant, monkeypatch):
    # The fast path (NHWC features, oneDNN conv + GELU / conv + residual) gives the numbers
    # of the plain NCHW, unfused forward, for every output scale and a batch of two.
    import restorecli.models.irnext as irnext
    from conftest import active_model

    model = active_model(variant)
    x = torch.rand(2, 3, 64, 96)
    fused = []
    real = irnext._can_fuse
    monkeypatch.setattr(irnext, "_can_fuse", lambda t: fused.append(real(t)) or fused[-1])
    with torch.inference_mode():
        fast = model(x, all_scales=True)
        assert fused and all(fused)  # every BasicConv took the fused path
        model.fuse = False
        assert not model.fuse
        unfused = model(x, all_scales=True)
        monkeypatch.setattr(type(model), "channels_last", False)
        plain = model(x, all_scales=True)
    for a, b, c in zip(fast, unfused, plain):
        assert a.is_contiguous() and c.is_contiguous()
        assert (a - c).abs().max() < 1e-4 and (b - c).abs().max() < 1e-4


def test_fused_path_is_off_for_training_and_autocast():
    from restorecli.models.irnext import _can_fuse

    x = torch.rand(1, 8, 16, 16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert _can_fuse(x)
        assert not _can_fuse(x.contiguous())  # NCHW
        assert not _can_fuse(x.double())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not _can_fuse(x)
    assert not _can_fuse(x)  # autograd on: the plain modules run, gradients flow
    model = create_model("irnext-dehaze")
    out = model(torch.rand(2, 3, 32, 32, requires_grad=True))
    out.mean().backward()
    assert model.feat_extract[0].main[0].weight.grad is not None


def test_safetensors_files_are_reproducible(tmp_path):
    import hashlib
    import os

    from restorecli.checkpoint import save_safetensors

    sd = create_model("irnext-dehaze").state_dict()
    meta = {"arch": "irnext-dehaze", "source": "x.pkl", "producer": "restorecli", "note": "n"}
    digests = {hashlib.sha256(save_safetensors(sd, tmp_path / f"{i}.safetensors", metadata=meta).read_bytes())
               .hexdigest() for i in range(3)}
    assert len(digests) == 1
    assert os.stat(tmp_path / "0.safetensors").st_mode & 0o044  # readable by others, unlike mkstemp's 0600
    back = read_state_dict(tmp_path / "0.safetensors")
    assert all(torch.equal(back[k], v) for k, v in sd.items())
