"""IRNeXt against an independent reference written after the authors' release.

The reference below follows the module structure and names of the authors' code
(github c-yn/IRNeXt: Dehazing/ITS/models/IRNeXt.py, Dehazing/OTS/models/layers.py;
the deblur release's box mean as shared/spec/irnext.md describes it, in the form of
the TLC ``AvgPool2d`` the same authors use in c-yn/SFNet) and their evaluation
(Dehazing/ITS/valid.py, c-yn/ConvIR's eval.py): reflect-pad bottom/right to a multiple of
32 only when needed, take the last of the three outputs, crop, clamp to [0, 1]. It is
written plainly (a 9x ``unfold`` dynamic filter, NCHW, no fused ops), loads our
state_dict strictly, and must give our numbers to float32 noise, for both variants,
for the bare model and for the whole ``Restorer`` path.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from restorecli.models import create_model

# ----------------------------------------------------------------------------- reference


class BasicConv(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride=1, relu=True, transpose=False):
        super().__init__()
        if transpose:
            op = nn.ConvTranspose2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2 - 1)
        else:
            op = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2)
        self.main = nn.Sequential(op, nn.GELU()) if relu else nn.Sequential(op)

    def forward(self, x):
        return self.main(x)


class BoxMean(nn.Module):
    """Window mean (size * 120 // 256 per side, clipped to the input) over the valid
    positions of an integral image, replicate-padded back; the window is fixed at the
    first call, as in the authors' module."""

    def __init__(self, base=120, train=256):
        super().__init__()
        self.base, self.train_size, self.kernel = base, train, None

    def forward(self, x):
        n, c, h, w = x.shape
        if self.kernel is None:
            self.kernel = (h * self.base // self.train_size, w * self.base // self.train_size)
        k1, k2 = min(h, self.kernel[0]), min(w, self.kernel[1])
        integral = F.pad(x.cumsum(-1).cumsum(-2), (1, 0, 1, 0))
        box = (integral[:, :, k1:, k2:] - integral[:, :, :-k1, k2:]
               - integral[:, :, k1:, :-k2] + integral[:, :, :-k1, :-k2]) / (k1 * k2)
        bh, bw = box.shape[2:]
        return F.pad(box, ((w - bw) // 2, (w - bw + 1) // 2, (h - bh) // 2, (h - bh + 1) // 2), mode="replicate")


class dynamic_filter(nn.Module):  # noqa: N801 (the authors' name)
    def __init__(self, inchannels, kernel_size=3, group=8, box=False):
        super().__init__()
        self.kernel_size, self.group = kernel_size, group
        self.conv = nn.Conv2d(inchannels, group * kernel_size ** 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(group * kernel_size ** 2)
        self.act = nn.Tanh()
        self.lamb_l = nn.Parameter(torch.zeros(inchannels))
        self.lamb_h = nn.Parameter(torch.zeros(inchannels))
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        self.ap = nn.AdaptiveAvgPool2d((1, 1))
        self.gap = BoxMean() if box else nn.AdaptiveAvgPool2d(1)
        self.inside_all = nn.Parameter(torch.zeros(inchannels, 1, 1))

    def forward(self, x):
        n, c, h, w = x.shape
        k2 = self.kernel_size ** 2
        taps = self.bn(self.conv(self.ap(x)))                       # n, g*9, 1, 1
        taps = self.act(taps.reshape(n, self.group, k2, 1).unsqueeze(2))  # n, g, 1, 9, 1
        cols = F.unfold(self.pad(x), kernel_size=self.kernel_size)  # n, c*9, h*w
        cols = cols.reshape(n, self.group, c // self.group, k2, h * w)
        low = (cols * taps).sum(dim=3).reshape(n, c, h, w)
        low = low * (self.inside_all + 1.0) - self.inside_all * self.gap(x)
        return low * self.lamb_l[None, :, None, None] + x * (self.lamb_h[None, :, None, None] + 1.0)


class DeepPoolLayer(nn.Module):
    def __init__(self, k, k_out, box=False):
        super().__init__()
        self.pools_sizes = [8, 4, 2]
        self.pools = nn.ModuleList([nn.AvgPool2d(s, stride=s) for s in self.pools_sizes])
        self.convs = nn.ModuleList([nn.Conv2d(k, k, 3, 1, 1, bias=False) for _ in self.pools_sizes])
        self.dynas = nn.ModuleList([dynamic_filter(k, box=box) for _ in self.pools_sizes])
        self.relu = nn.GELU()
        self.conv_sum = nn.Conv2d(k, k_out, 3, 1, 1, bias=False)

    def forward(self, x):
        total, prev = x, None
        for i in range(3):
            inp = self.pools[i](x) if prev is None else self.pools[i](x) + prev
            y = self.dynas[i](self.convs[i](inp))
            total = total + F.interpolate(y, x.shape[2:], mode="bilinear", align_corners=True)
            if i < 2:
                prev = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
        return self.conv_sum(self.relu(total))


class ResBlock(nn.Module):
    def __init__(self, cin, cout, filter=False, box=False):
        super().__init__()
        self.main = nn.Sequential(BasicConv(cin, cout, 3),
                                  DeepPoolLayer(cin, cout, box) if filter else nn.Identity(),
                                  BasicConv(cout, cout, 3, relu=False))

    def forward(self, x):
        return self.main(x) + x


class EBlock(nn.Module):  # DBlock is the same module
    def __init__(self, c, num_res, box):
        super().__init__()
        self.layers = nn.Sequential(*[ResBlock(c, c) for _ in range(num_res - 1)],
                                    ResBlock(c, c, filter=True, box=box))

    def forward(self, x):
        return self.layers(x)


class SCM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.main = nn.Sequential(BasicConv(3, c // 4, 3), BasicConv(c // 4, c // 2, 1),
                                  BasicConv(c // 2, c // 2, 3), BasicConv(c // 2, c, 1, relu=False),
                                  nn.InstanceNorm2d(c, affine=True))

    def forward(self, x):
        return self.main(x)


class FAM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.merge = BasicConv(2 * c, c, 3, relu=False)

    def forward(self, a, b):
        return self.merge(torch.cat([a, b], dim=1))


class RefIRNeXt(nn.Module):
    def __init__(self, num_res, box):
        super().__init__()
        c = 32
        self.Encoder = nn.ModuleList([EBlock(c, num_res, box), EBlock(2 * c, num_res, box), EBlock(4 * c, num_res, box)])
        self.feat_extract = nn.ModuleList([
            BasicConv(3, c, 3), BasicConv(c, 2 * c, 3, stride=2), BasicConv(2 * c, 4 * c, 3, stride=2),
            BasicConv(4 * c, 2 * c, 4, stride=2, transpose=True), BasicConv(2 * c, c, 4, stride=2, transpose=True),
            BasicConv(c, 3, 3, relu=False)])
        self.Decoder = nn.ModuleList([EBlock(4 * c, num_res, box), EBlock(2 * c, num_res, box), EBlock(c, num_res, box)])
        self.Convs = nn.ModuleList([BasicConv(4 * c, 2 * c, 1), BasicConv(2 * c, c, 1)])
        self.ConvsOut = nn.ModuleList([BasicConv(4 * c, 3, 3, relu=False), BasicConv(2 * c, 3, 3, relu=False)])
        self.FAM1, self.SCM1 = FAM(4 * c), SCM(4 * c)
        self.FAM2, self.SCM2 = FAM(2 * c), SCM(2 * c)

    def forward(self, x):
        x_2 = F.interpolate(x, scale_factor=0.5)
        x_4 = F.interpolate(x_2, scale_factor=0.5)
        z2, z4 = self.SCM2(x_2), self.SCM1(x_4)
        res1 = self.Encoder[0](self.feat_extract[0](x))
        res2 = self.Encoder[1](self.FAM2(self.feat_extract[1](res1), z2))
        z = self.Encoder[2](self.FAM1(self.feat_extract[2](res2), z4))
        z = self.Decoder[0](z)
        out4 = self.ConvsOut[0](z) + x_4
        z = self.Decoder[1](self.Convs[0](torch.cat([self.feat_extract[3](z), res2], dim=1)))
        out2 = self.ConvsOut[1](z) + x_2
        z = self.Decoder[2](self.Convs[1](torch.cat([self.feat_extract[4](z), res1], dim=1)))
        return [out4, out2, self.feat_extract[5](z) + x]


def authors_eval(model: nn.Module, x: torch.Tensor, factor: int = 32) -> torch.Tensor:
    """The authors' test procedure for one 1x3xHxW image in [0, 1]."""
    h, w = x.shape[2:]
    H, W = ((h + factor) // factor) * factor, ((w + factor) // factor) * factor
    padh = H - h if h % factor else 0
    padw = W - w if w % factor else 0
    x = F.pad(x, (0, padw, 0, padh), mode="reflect")
    with torch.no_grad():
        pred = model(x)[2][:, :, :h, :w]
    return pred.clamp(0, 1)


# ----------------------------------------------------------------------------- helpers

VARIANTS = {"irnext-dehaze": (4, False), "irnext-deblur": (14, True)}


def randomized(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict in which every parameter and statistic matters (the release's filter
    gains start at zero; BN/IN at identity), scaled so that activations stay moderate."""
    torch.manual_seed(seed)
    sd = create_model(name).state_dict()
    g = torch.Generator().manual_seed(seed + 1)
    out = {}
    for k, v in sd.items():
        if not v.is_floating_point():
            out[k] = v
        elif k.endswith(("lamb_l", "lamb_h", "inside_all")):
            out[k] = torch.randn(v.shape, generator=g) * 0.5
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith(("running_mean", "bias")):
            out[k] = torch.randn(v.shape, generator=g) * 0.1
        elif ".bn." in k or "main.4." in k:  # BN and InstanceNorm affine weights
            out[k] = 1 + torch.randn(v.shape, generator=g) * 0.2
        else:
            out[k] = v.clone()
    return out


def reference(name: str, sd, dtype=torch.float32) -> RefIRNeXt:
    num_res, box = VARIANTS[name]
    ref = RefIRNeXt(num_res, box)
    ref.load_state_dict(sd, strict=True)
    return ref.to(dtype).eval()


def ours(name: str, sd) -> nn.Module:
    model = create_model(name)
    model.load_state_dict(sd, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", list(VARIANTS))
def test_reference_has_the_authors_keys(name):
    sd = create_model(name).state_dict()
    num_res, box = VARIANTS[name]
    assert list(RefIRNeXt(num_res, box).state_dict()) == list(sd)


@pytest.mark.parametrize("name,batch,size", [("irnext-dehaze", 2, (70, 101)), ("irnext-deblur", 1, (97, 75))])
def test_model_equals_reference(name, batch, size):
    sd = randomized(name)
    x = torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(3))
    xp = F.pad(x, (0, (-size[1]) % 32, 0, (-size[0]) % 32), mode="reflect")
    with torch.no_grad():
        truth = reference(name, sd, torch.float64)(xp.double())
        ref32 = reference(name, sd)(xp)
        model = ours(name, sd)
        fast = model(xp, all_scales=True)
        model.fuse = False
        plain = model(xp, all_scales=True)
    for i, t in enumerate(truth):
        noise = (ref32[i].double() - t).abs().max().item()  # float32 noise of the reference
        for got in (fast[i], plain[i]):
            err = (got.double() - t).abs().max().item()
            assert err < max(1e-5, 4 * noise), (name, i, err, noise)
            assert (got - ref32[i]).abs().max().item() < max(1e-5, 4 * noise), (name, i)


@pytest.mark.parametrize("name,size", [("irnext-dehaze", (45, 77)), ("irnext-deblur", (100, 67))])
def test_restorer_equals_the_authors_eval(name, size, tmp_path):
    from restorecli import Restorer

    sd = randomized(name, seed=5)
    torch.save({"model": sd}, tmp_path / "authors.pkl")
    task = "dehaze" if name == "irnext-dehaze" else "deblur"
    # as `restore TASK --model irnext --weights FILE` runs it (--tile auto: whole when it fits)
    r = Restorer(task, model="irnext", weights=str(tmp_path / "authors.pkl"), device="cpu")
    assert r.spec.name == name and r.ensemble == 1 and r.precision == "fp32"
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255  # torchvision's to_tensor
    expected = authors_eval(reference(name, sd), x)
    truth = authors_eval(reference(name, sd, torch.float64), x.double())
    noise = (expected.double() - truth).abs().max().item()
    tol = max(1e-5, 4 * noise)

    got = r.restore_tensor(x.clone())
    assert r.last_tile == 0  # untiled, as the authors evaluate
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert (got.double() - truth).abs().max().item() < tol
    as_float = r(img.astype(np.float32) / np.float32(255))  # HxWx3 float32 in, same out
    assert np.abs(as_float - expected[0].permute(1, 2, 0).numpy()).max() < tol
    # 8-bit: the authors save round(255 * p) (as (p + 0.5/255) * 255 truncated); ours
    # rounds half to even, so only exact ties, if any, may differ by one level.
    as_u8 = r(img)
    theirs_u8 = ((expected[0].permute(1, 2, 0) + 0.5 / 255) * 255).to(torch.uint8).numpy()
    diff = np.abs(as_u8.astype(int) - theirs_u8.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_box_window_at_the_first_call_equals_per_call_for_one_size():
    # The authors fix each box mean's window at its first call; with one image size (a
    # benchmark's test set) that is our per-call window. Same image twice -> same numbers.
    sd = randomized("irnext-deblur", seed=9)
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    ref = reference("irnext-deblur", sd)
    with torch.no_grad():
        first = ref(x)[2]
        again = ref(x)[2]
        mine = ours("irnext-deblur", sd)(x)
    assert torch.equal(first, again)
    assert (mine - first).abs().max().item() < 1e-4
