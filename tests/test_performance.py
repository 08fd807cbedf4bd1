"""Code paths added for speed and memory (issue 7): they must not change any result.

Speed itself is measured by benchmarks/speed.py, never asserted here.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from restorecli import Restorer
from restorecli.batch import eta_seconds
from restorecli.errors import UsageError
from restorecli.imageio import from_float as _from_float
from restorecli.restorer import CPU_BUDGET_CAP
from restorecli.tiling import run_tiled


@pytest.fixture(scope="module")
def dehaze(dehaze_weights) -> Restorer:
    return Restorer("dehaze", weights=str(dehaze_weights), device="cpu", tile=0)


def test_channels_last_input_gives_the_contiguous_result(dehaze, photo):
    # __call__ hands the HxWxC array to the network as a channels-last view (no copy)
    rgb = np.ascontiguousarray(photo[:64, :96]).astype(np.float32) / 255
    nchw = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]
    view = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    assert view.is_contiguous(memory_format=torch.channels_last) and not view.is_contiguous()
    a, b = dehaze.restore_tensor(nchw), dehaze.restore_tensor(view)
    # equal up to float rounding (oneDNN's kernels may differ with the buffer's alignment)
    assert (a - b).abs().max() < 1e-6
    out = dehaze(rgb)
    assert np.abs(out - a[0].permute(1, 2, 0).numpy()).max() < 1e-6


def test_float_input_array_is_not_modified(dehaze, photo):
    img = np.ascontiguousarray(photo[:64, :64]).astype(np.float32) / 255
    copy = img.copy()
    dehaze(img)
    assert np.array_equal(img, copy)


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255.0), (np.uint16, 65535.0)])
def test_from_float_in_place_equals_the_plain_formula(dtype, top):
    x = np.random.default_rng(0).uniform(-0.2, 1.2, (37, 41, 3)).astype(np.float32)
    x[0, :5, 0] = [0.5 / top, 1.5 / top, 2.5 / top, 1.0, 0.0]  # ties round half to even
    expected = np.clip(np.rint(x * top), 0, top).astype(dtype)
    got = _from_float(x, dtype)
    assert got.dtype == dtype and np.array_equal(got, expected)
    assert np.array_equal(_from_float(x.transpose(1, 0, 2), dtype), expected.transpose(1, 0, 2))


@pytest.mark.parametrize("h,w,tile,overlap,batch", [(203, 341, 64, 32, 1), (100, 37, 48, 16, 3), (64, 64, 64, 8, 2)])
def test_tiled_blend_weights_sum_to_one(h, w, tile, overlap, batch):
    # the per-axis weight sums normalise exactly like an H x W weight buffer did
    x = torch.rand(1, 3, h, w)
    y = run_tiled(lambda b: b, x, tile, overlap, 8, batch_size=batch)
    assert (y - x).abs().max() < 1e-6


def test_tile_auto_keeps_a_24_mp_run_within_the_cpu_cap(dehaze_weights, monkeypatch):
    import restorecli.restorer as restorer

    monkeypatch.setattr(restorer, "free_memory", lambda device: 64 << 30)  # a big machine
    dehaze = Restorer("dehaze", weights=str(dehaze_weights), device="cpu")  # --tile auto
    h, w = 4000, 6000
    tile = dehaze._plan_tile(torch.empty(1, 3, h, w, device="meta"))
    assert tile > 0 and tile % dehaze.size_multiple == 0
    image_buffers = 4 * (3 + 3) * h * w
    assert tile * tile * dehaze.bytes_per_pixel() + image_buffers <= CPU_BUDGET_CAP
    assert dehaze._plan_tile(torch.empty(1, 3, 256, 256, device="meta")) == 0  # small: whole


def test_eta_from_the_measured_rate():
    assert eta_seconds(None, 0, 10) is None and eta_seconds(5.0, 0, 10) is None
    assert eta_seconds(60.0, 2, 10) == pytest.approx(240.0)  # 30 s a tile, 8 left
    assert eta_seconds(100.0, 10, 10) == 0.0
    assert eta_seconds(3.0, 1, None) is None


def test_eta_column_shows_slow_tiles():
    # rich's own estimate drops samples older than 30 s: with 45 s tiles it showed nothing
    from rich.progress import Progress

    from restorecli.batch import _eta_column

    col = _eta_column()
    with Progress(col, disable=True) as progress:
        task_id = progress.add_task("tiles", total=4)
        progress.update(task_id, completed=1)
        task = progress.tasks[0]
        task.start_time = task.stop_time = None
        task.start_time = progress.get_time() - 45.0
        assert str(col.render(task)) == "0:02:15"


def test_compile_option_is_validated(dehaze_weights, monkeypatch):
    with pytest.raises(UsageError, match="True or False"):
        Restorer("dehaze", weights=str(dehaze_weights), device="cpu", compile="yes")
    import restorecli.restorer as restorer

    monkeypatch.setattr(restorer.shutil, "which", lambda name: None)
    with pytest.raises(UsageError, match="C\\+\\+ compiler"):
        Restorer("dehaze", weights=str(dehaze_weights), device="cpu", compile=True)


def test_compile_wraps_the_network_lazily(dehaze_weights, monkeypatch):
    import restorecli.restorer as restorer

    monkeypatch.setattr(restorer.shutil, "which", lambda name: "/usr/bin/" + name)
    plain = Restorer("dehaze", weights=str(dehaze_weights), device="cpu")
    assert plain._net is plain.model and "compiled" not in plain.describe()
    r = Restorer("dehaze", weights=str(dehaze_weights), device="cpu", compile=True)
    assert r._net is not r.model and "compiled" in r.describe()  # compiled on its first call


def test_cli_has_the_compile_flag(monkeypatch, tmp_path, photo):
    from typer.testing import CliRunner
    from PIL import Image

    from restorecli.cli import app
    import restorecli.restorer as restorer

    seen = {}

    class Spy(restorer.Restorer):
        def __init__(self, *args, **kwargs):
            seen.update(kwargs)
            raise UsageError("stop here")

    monkeypatch.setattr(restorer, "Restorer", Spy)
    src = tmp_path / "in.png"
    Image.fromarray(photo[:32, :32]).save(src)
    runner = CliRunner()
    result = runner.invoke(app, ["deblur", str(src), "--compile", "-o", str(tmp_path / "out.png")])
    assert seen.get("compile") is True, result.output
    result = runner.invoke(app, ["deblur", str(src), "-o", str(tmp_path / "out.png")])
    assert seen.get("compile") is False


@pytest.mark.parametrize("name", ["nlmunet-s", "nlmunet-sx"])
def test_nlmunet_channels_last_equals_nchw(name, monkeypatch):
    from conftest import active_model
    from restorecli.models.nlmunet import NLMUNet

    model = active_model(name)
    x = torch.rand(2, 4, 64, 96)
    with torch.inference_mode():
        fast = model(x)
        monkeypatch.setattr(NLMUNet, "channels_last", False)
        plain = model(x)
    assert fast.is_contiguous() and (fast - plain).abs().max() < 1e-5
