"""``restore bench`` in model mode: real architectures with random weights, run through the CLI,
checked against the same restoration done by hand and against scoring mode on the saved outputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from typer.testing import CliRunner

from restorecli import metrics
from restorecli.bench.datasets import add_gaussian_noise
from restorecli.checkpoint import save_safetensors
from restorecli.cli import app
from restorecli.models import create_model

from test_bench_datasets import degrade, load, picture, save  # noqa: E402  (tests/ is on sys.path)


@pytest.fixture(autouse=True)
def quick_cpu():
    """Randomly initialised networks produce denormal floats, which slow CPU convolutions
    tens of times (clginet-s: ~5 s instead of 0.2 s for 32x32), and the flush-to-zero mode is
    per thread. These tests check the bench's logic, not speed: one thread, denormals flushed,
    for the duration of each test; then the defaults again."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory) -> dict[str, Path]:
    out = {}
    folder = tmp_path_factory.mktemp("bench-weights")
    for name in ("clginet-s", "nlmunet-s"):
        torch.manual_seed(0)
        out[name] = save_safetensors(create_model(name).state_dict(), folder / f"{name}.safetensors")
    return out


def bench(*args: str):
    return CliRunner().invoke(app, ["bench", *map(str, args)])


def test_model_mode_times_scores_and_saves(tmp_path, dehaze_weights):
    rng = np.random.default_rng(0)
    root = tmp_path / "SOTS"
    for n in ("1400", "1401"):
        gt = picture(rng, 68, 68)  # larger than the hazy image: centre-cropped, as FFA-Net does
        save(root / "indoor" / "gt" / f"{n}.png", gt)
        save(root / "indoor" / "hazy" / f"{n}_1.png", degrade(rng, gt[2:66, 2:66]))
    report, saved = tmp_path / "r.json", tmp_path / "out"
    result = bench("-d", "sots-indoor", "-r", root, "--model", "irnext-dehaze", "--weights", dehaze_weights,
                   "--device", "cpu", "--save", saved, "--json", report, "--csv", tmp_path / "r.csv")
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["mode"] == "model" and data["count"] == 2 and "irnext-dehaze" in data["model"]
    assert [i["path"] for i in data["images"]] == ["indoor/hazy/1400_1.png", "indoor/hazy/1401_1.png"]
    seconds = [i["seconds"] for i in data["images"]]
    assert all(s > 0 for s in seconds)
    assert data["seconds_per_image"] == pytest.approx(np.mean(seconds))
    assert data["seconds_per_megapixel"] == pytest.approx(sum(seconds) / (2 * 64 * 64 / 1e6))
    assert "IRNeXt (published)" in result.stdout and "41.21" in result.stdout
    for rel in ("indoor/hazy/1400_1.png", "indoor/hazy/1401_1.png"):
        assert load(saved / rel).shape == (64, 64, 3)  # the mirrored tree

    # The same restoration by hand, untiled, scored in float against the cropped target.
    from restorecli.restorer import Restorer
    r = Restorer("dehaze", model="irnext-dehaze", weights=str(dehaze_weights), device="cpu", tile=0)
    hazy = load(root / "indoor" / "hazy" / "1400_1.png").astype(np.float32) / 255
    out = r(hazy).astype(np.float64)
    gt = load(root / "indoor" / "gt" / "1400.png")[2:66, 2:66].astype(np.float64) / 255
    assert data["images"][0]["psnr"] == pytest.approx(sk_psnr(gt, out, data_range=1.0), abs=1e-4)
    assert np.abs(load(saved / "indoor/hazy/1400_1.png") / 255.0 - out).max() <= 0.5 / 255 + 1e-6


def test_model_mode_equals_scoring_its_saved_outputs(tmp_path, small_weights):
    # Deraining is scored on 8-bit outputs (Y channel): model mode and scoring mode of what it
    # saved must agree exactly.
    rng = np.random.default_rng(1)
    root = tmp_path / "Rain100L"
    for i in (1, 2, 3):
        gt = picture(rng)
        save(root / f"norain-{i:03d}.png", gt)
        save(root / "rainy" / f"rain-{i:03d}.png", degrade(rng, gt))
    saved = tmp_path / "out"
    result = bench("-d", "rain100l", "-r", root, "--model", "clginet-s", "--weights", small_weights["clginet-s"],
                   "--device", "cpu", "--save", saved, "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    result = bench("-d", "rain100l", "-r", root, "-p", saved, "--json", tmp_path / "p.json")
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "m.json").read_text())
    scored = json.loads((tmp_path / "p.json").read_text())
    assert [(i["path"], i["psnr"], i["ssim"]) for i in model["images"]] == \
           [(i["path"], i["psnr"], i["ssim"]) for i in scored["images"]]
    for item in model["images"]:
        n = item["path"].split("-")[1]
        yo = metrics.rgb_to_y(load(saved / item["path"]))
        yt = metrics.rgb_to_y(load(root / f"norain-{n}"))
        assert item["psnr"] == pytest.approx(sk_psnr(yt, yo, data_range=255), abs=1e-4)

    # A second run does not silently replace what the first saved: refused before it runs.
    result = bench("-d", "rain100l", "-r", root, "--model", "clginet-s", "--weights", small_weights["clginet-s"],
                   "--device", "cpu", "--save", saved)
    assert result.exit_code == 2 and "3 of the 3 outputs exist already" in result.stderr
    assert "ours:" not in result.output


def test_synthetic_noise_model_mode(tmp_path, small_weights):
    rng = np.random.default_rng(2)
    root = tmp_path / "CBSD68"
    for n in ("101085.png", "101087.png", "102061.png"):
        save(root / n, picture(rng))
    saved = tmp_path / "out"
    result = bench("-d", "cbsd68", "-r", root, "--sigma", 25, "--limit", 2, "--model", "nlmunet-s",
                   "--weights", small_weights["nlmunet-s"], "--device", "cpu", "--save", saved,
                   "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["sigma"] == 25 and data["count"] == 2
    assert sorted(p.name for p in saved.iterdir()) == ["101085.png", "101087.png"]

    # By hand: the seeded noisy image, the model told sigma 25, the output rounded to 8 bits.
    from restorecli.imageio import from_float
    from restorecli.restorer import Restorer
    r = Restorer("denoise", model="nlmunet-s", weights=str(small_weights["nlmunet-s"]), device="cpu", tile=0)
    clean = load(root / "101085.png")
    out = from_float(r(add_gaussian_noise(clean, 25), sigma=25), np.uint8)
    assert data["images"][0]["psnr"] == pytest.approx(sk_psnr(clean, out, data_range=255), abs=1e-4)
    assert np.array_equal(load(saved / "101085.png"), out)

    result = bench("-d", "cbsd68", "-r", root, "--sigma", 25, "--limit", 2, "-p", saved,
                   "--json", tmp_path / "p.json")
    assert result.exit_code == 0, result.output
    scored = json.loads((tmp_path / "p.json").read_text())
    assert [i["psnr"] for i in scored["images"]] == [i["psnr"] for i in data["images"]]


def test_usage_errors(tmp_path, small_weights):
    root = tmp_path / "Urban100"
    save(root / "img001.png", picture(np.random.default_rng(3)))
    result = bench("-d", "urban100", "-r", root, "--model", "nlmunet-s", "--weights", small_weights["nlmunet-s"])
    assert result.exit_code == 2 and "--sigma" in result.stderr
    result = bench("-d", "urban100", "-r", root, "-p", root, "--weights", small_weights["nlmunet-s"])
    assert result.exit_code == 2 and "--weights" in result.stderr
    result = bench("-d", "nope", "-r", root, "-p", root)
    assert result.exit_code == 2 and "gopro" in result.stderr
    assert bench("--help").exit_code == 0
