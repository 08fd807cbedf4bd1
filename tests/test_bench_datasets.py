"""Every benchmark dataset on a tiny tree in its release layout: found, paired, and scored
through ``restore bench --predictions`` with the literature's convention."""
from __future__ import annotations

import json
import os
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim
from typer.testing import CliRunner

from restorecli import metrics
from restorecli.bench.datasets import (DATASETS, LayoutError, add_gaussian_noise, find_samples,
                                       get_dataset)
from restorecli.cli import app

RNG_SEED = 7


def picture(rng, h=32, w=32) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    phase = rng.uniform(0, 6)
    base = 0.5 + 0.3 * np.sin(xx / 4.0 + phase)[..., None] * np.cos(yy / 5.0 - phase)[..., None] * np.array([1, 0.8, 0.6])
    return np.rint(np.clip(base + rng.normal(0, 0.03, (h, w, 3)), 0, 1) * 255).astype(np.uint8)


def degrade(rng, a: np.ndarray) -> np.ndarray:
    return np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)


def save(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# Each builder writes a tree and returns (root to pass, {input rel path: target rel path},
# {input rel path: group}, extra CLI arguments).

def pairs_in(root, rng, items, size=(32, 32)):
    out = {}
    for inp, tgt in items:
        if not (root / tgt).exists():
            save(root / tgt, picture(rng, *size))
        save(root / inp, degrade(rng, load(root / tgt)))
        out[inp] = tgt
    return out


def build_gopro(tmp, rng):
    root = tmp / "GOPRO_Large"
    items = [(f"test/{s}/blur/{n}", f"test/{s}/sharp/{n}")
             for s in ("GOPR0384_11_00", "GOPR0410_11_00") for n in ("000001.png", "000002.png")]
    pairs = pairs_in(root, rng, items)
    pairs_in(root, rng, [("train/GOPR0372_07_00/blur/000001.png", "train/GOPR0372_07_00/sharp/000001.png")])
    return root, pairs, {}, []


def build_gopro_flat(tmp, rng):
    root = tmp / "GOPRO"
    return root, pairs_in(root, rng, [(f"test/blur/{n}", f"test/sharp/{n}") for n in ("a_1.png", "a_2.png")]), {}, []


def build_hide(tmp, rng):
    root = tmp / "HIDE_dataset"
    items = [("test/test-close-ups/1fromGOPR0950.png", "GT/1fromGOPR0950.png"),
             ("test/test-close-ups/2fromGOPR0950.png", "GT/2fromGOPR0950.png"),
             ("test/test-long-shot/10fromGOPR1070.png", "GT/10fromGOPR1070.png")]
    pairs = pairs_in(root, rng, items)
    save(root / "train" / "99fromGOPR0001.png", picture(rng))
    groups = {k: "close-ups" if "close" in k else "long-shot" for k in pairs}
    return root, pairs, groups, []


def build_rsblur(tmp, rng):
    root = tmp / "rsblur"
    items = [(f"RSBlur/0001/00002{i}/real_blur/real_blur.png", f"RSBlur/0001/00002{i}/gt/gt_sharp.png") for i in (2, 3)]
    pairs = {}
    for inp, tgt in items:
        # a real-blur capture is misaligned with its ground truth: shift the content by a pixel
        yy, xx = np.mgrid[0:64, 0:64]
        img = 0.5 + 0.3 * np.sin(xx / 5.0 + rng.uniform(0, 3)) * np.cos(yy / 6.0)
        gt = np.rint(np.stack([img, img * 0.9, img * 0.8], -1) * 255).astype(np.uint8)
        save(root / tgt, gt)
        save(root / inp, np.roll(gt, 1, axis=1))
        pairs[inp] = tgt
    pairs_in(root, rng, [("RSBlur/0002/000001/real_blur/real_blur.png", "RSBlur/0002/000001/gt/gt_sharp.png")])
    (root / "RSBlur_real_test.txt").write_text("".join(f"{t} {i}\n" for i, t in items))
    return root, pairs, {}, []


def build_dpdd(tmp, rng):
    root = tmp / "DPDD"
    names = ["1P0A1.png", "1P0A2.png", "1P0A10.png"]  # natural order: 1, 2, 10
    pairs = pairs_in(root, rng, [(f"test/DPDD/inputC/{n}", f"test/DPDD/target/{n}") for n in names])
    np.save(root / "indoor_labels.npy", np.array([1, 3]))
    np.save(root / "outdoor_labels.npy", np.array([2]))
    groups = {"test/DPDD/inputC/1P0A1.png": "indoor", "test/DPDD/inputC/1P0A10.png": "indoor",
              "test/DPDD/inputC/1P0A2.png": "outdoor"}
    return root, pairs, groups, []


def build_sots_indoor(tmp, rng):
    root = tmp / "SOTS"
    pairs = {}
    for n in ("1400", "1401"):
        gt = picture(rng, 40, 44)  # the ground truth has a border the hazy image has not
        save(root / "indoor" / "gt" / f"{n}.png", gt)
        for k in (1, 2):
            save(root / "indoor" / "hazy" / f"{n}_{k}.png", degrade(rng, gt[2:38, 2:42]))
            pairs[f"indoor/hazy/{n}_{k}.png"] = f"indoor/gt/{n}.png"
    return root, pairs, {}, []


def build_sots_outdoor(tmp, rng):
    root = tmp / "reside-outdoor"
    pairs = {}
    for n in ("0001", "0002"):
        save(root / "test" / "gt" / f"{n}.png", picture(rng))
        for beta in ("0.8_0.2", "0.85_0.16"):
            inp = f"test/hazy/{n}_{beta}.jpg"
            save(root / inp, degrade(rng, load(root / "test" / "gt" / f"{n}.png")))
            pairs[inp] = f"test/gt/{n}.png"
    return root, pairs, {}, []


def build_rain100l(tmp, rng):
    root = tmp / "Rain100L"  # PReNet's distribution: rainy/rain-NNN.png beside norain-NNN.png
    return root, pairs_in(root, rng, [(f"rainy/rain-{i:03d}.png", f"norain-{i:03d}.png") for i in (1, 2, 10)]), {}, []


def build_rain100h(tmp, rng):
    root = tmp / "Datasets"  # Restormer: Datasets/test/Rain100H/{input,target}
    return root, pairs_in(root, rng, [(f"test/Rain100H/input/{i}.png", f"test/Rain100H/target/{i}.png")
                                      for i in (1, 2)]), {}, []


def build_test100(tmp, rng):
    root = tmp / "Test100"
    return root, pairs_in(root, rng, [(f"input/{i}.png", f"target/{i}.png") for i in (1, 2)]), {}, []


def build_csd(tmp, rng):
    root = tmp / "CSD"
    pairs = pairs_in(root, rng, [(f"Test/Snow/{i}.tif", f"Test/Gt/{i}.tif") for i in (1, 2)])
    pairs_in(root, rng, [("Train/Snow/1.tif", "Train/Gt/1.tif")])
    return root, pairs, {}, []


def build_srrs(tmp, rng):
    root = tmp / "SRRS"  # the IRNeXt authors' packaging: Snow/*.png, Gt/<stem>.jpg
    return root, pairs_in(root, rng, [(f"test2000/Snow/{n}.png", f"test2000/Gt/{n}.jpg")
                                      for n in ("beautiful_smile_00006", "city_00012")]), {}, []


def build_snow100k(tmp, rng):
    root = tmp / "Snow100K-testset"
    base = "media/jdway/GameSSD/overlapping/test"
    items = [(f"{base}/Snow100K-{s}/synthetic/{n}.jpg", f"{base}/Snow100K-{s}/gt/{n}.jpg")
             for s in ("S", "L") for n in ("winter_00001", "winter_00002")]
    pairs = pairs_in(root, rng, items)
    groups = {k: "Snow100K-S" if "-S/" in k else "Snow100K-L" for k in pairs}
    return root, pairs, groups, []


def build_sidd(tmp, rng):
    from scipy.io import savemat
    root = tmp / "SIDD"
    root.mkdir(parents=True)
    gt = np.stack([np.stack([picture(rng) for _ in range(3)]) for _ in range(2)])  # 2 images x 3 blocks
    noisy = degrade(rng, gt)
    savemat(root / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": gt})
    savemat(root / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    return root, {f"{i + 1:04d}_{k + 1:02d}.png": gt[i, k] for i in range(2) for k in range(3)}, {}, []


def clean_set(folder):
    def build(tmp, rng):
        root = tmp / folder
        pairs = {}
        for n in ("img001.png", "img002.png"):
            save(root / n, picture(rng))
            pairs[n] = n
        return root, pairs, {}, ["--sigma", "50"]
    return build


BUILDERS = {
    "gopro": build_gopro, "hide": build_hide, "rsblur": build_rsblur, "dpdd": build_dpdd,
    "sots-indoor": build_sots_indoor, "sots-outdoor": build_sots_outdoor, "rain100l": build_rain100l,
    "rain100h": build_rain100h, "test100": build_test100, "csd": build_csd, "srrs": build_srrs,
    "snow100k": build_snow100k, "sidd": build_sidd, "cbsd68": clean_set("CBSD68"),
    "kodak24": clean_set("Kodak24"), "urban100": clean_set("Urban100"), "mcmaster": clean_set("McMaster"),
}


def test_every_dataset_has_a_tree_here():
    assert set(BUILDERS) == set(DATASETS)


def target_array(root: Path, target) -> np.ndarray:
    return target if isinstance(target, np.ndarray) else load(root / target)


@pytest.mark.parametrize("name", sorted(BUILDERS) + ["gopro-flat"])
def test_layout_is_found_and_paired(tmp_path, name):
    build = build_gopro_flat if name == "gopro-flat" else BUILDERS[name]
    root, pairs, groups, _ = build(tmp_path, np.random.default_rng(RNG_SEED))
    samples = find_samples(get_dataset(name.replace("-flat", "")), root)
    assert sorted(s.rel for s in samples) == sorted(pairs)  # test split only, every pair
    for s in samples:
        want = target_array(root, pairs[s.rel])
        assert np.array_equal(s.target(), want)
        if s.input_path is not None:
            assert s.input_path == root / s.rel
        assert s.group == groups.get(s.rel)


def test_a_root_in_no_known_layout_shows_the_expected_trees(tmp_path):
    (tmp_path / "photos").mkdir()
    save(tmp_path / "photos" / "a.png", picture(np.random.default_rng(0)))
    with pytest.raises(LayoutError) as e:
        find_samples(get_dataset("dpdd"), tmp_path / "photos")
    assert "inputC/" in str(e.value) and "test_c/" in str(e.value) and "target/" in str(e.value)
    result = CliRunner().invoke(app, ["bench", "-d", "sots-indoor", "-r", str(tmp_path / "photos"),
                                      "-p", str(tmp_path)])
    assert result.exit_code == 2
    assert "hazy/" in result.stderr and "gt/" in result.stderr


def test_training_splits_and_missing_ground_truth_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    pairs_in(tmp_path / "train", rng, [("blur/1.png", "sharp/1.png")])
    with pytest.raises(LayoutError, match="only test splits"):
        find_samples(get_dataset("gopro"), tmp_path / "train")
    # a scene of GoPro's training split, and Restormer's Datasets/train/GoPro: the split is above
    gopro, *_ = build_gopro(tmp_path / "g", rng)
    pairs_in(tmp_path / "Datasets" / "train" / "GoPro", rng, [("input/1.png", "target/1.png")])
    for root in (gopro / "train" / "GOPR0372_07_00", tmp_path / "Datasets" / "train" / "GoPro"):
        with pytest.raises(LayoutError, match="inside. a training split; only test splits"):
            find_samples(get_dataset("gopro"), root)
    # a user's own folder further up may have any name
    mine = tmp_path / "training" / "experiments" / "data"
    build_gopro(mine, rng)
    assert len(find_samples(get_dataset("gopro"), mine / "GOPRO_Large")) == 4
    root = tmp_path / "Rain100L"
    pairs_in(root, rng, [("input/1.png", "target/1.png")])
    save(root / "input" / "2.png", picture(rng))
    with pytest.raises(LayoutError, match="1 of 2 images .* no ground truth"):
        find_samples(get_dataset("rain100l"), root)


@pytest.mark.parametrize("damage", ["empty", "truncated", "text"])
def test_a_damaged_sidd_mat_file_is_a_layout_error(tmp_path, damage):
    root, *_ = build_sidd(tmp_path, np.random.default_rng(0))
    gt = root / "ValidationGtBlocksSrgb.mat"
    data = gt.read_bytes()
    gt.write_bytes({"empty": b"", "truncated": data[:len(data) // 2], "text": b"not a mat file\n" * 20}[damage])
    result = CliRunner().invoke(app, ["bench", "-d", "sidd", "-r", str(root), "-p", str(tmp_path / "p")])
    assert result.exit_code == 2 and "Traceback" not in result.output and "internal error" not in result.output
    assert "ValidationGtBlocksSrgb.mat: not a readable MATLAB v5 file" in result.output


def test_cbsd68s_noisy_folders_are_not_taken_for_the_clean_set(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "CBSD68"   # the release: original_png/ and noisy5/ ... noisy50/
    for folder in ("original_png", "noisy50"):
        save(root / folder / "0000.png", picture(rng))
    assert [s.rel for s in find_samples(get_dataset("cbsd68"), root)] == ["original_png/0000.png"]
    with pytest.raises(LayoutError, match="noisy50/ holds noisy copies"):
        find_samples(get_dataset("cbsd68"), root / "noisy50")


def test_rsblur_needs_its_test_list(tmp_path):
    root, *_ = build_rsblur(tmp_path, np.random.default_rng(0))
    (root / "RSBlur_real_test.txt").unlink()
    with pytest.raises(LayoutError, match="RSBlur_real_test.txt"):
        find_samples(get_dataset("rsblur"), root)


def test_synthetic_noise_is_the_papers_seeded_unclipped_draw():
    clean = picture(np.random.default_rng(0))
    clean[:4] = 255  # white rows: noise must go above 1, unclipped
    noisy = add_gaussian_noise(clean, 50)
    np.random.seed(0)  # what Restormer's test script does before each image
    ref = np.float32(clean) / 255.0
    ref += np.random.normal(0, 50 / 255.0, ref.shape)
    assert noisy.dtype == np.float32 and np.array_equal(noisy, ref)
    assert noisy.max() > 1.0 and noisy.min() < clean.min() / 255.0
    assert np.array_equal(add_gaussian_noise(clean, 50), noisy)  # the same every time


# -- scoring mode through the CLI, with an independent reference per convention ---------------

# What the literature does, written out here independently of the table under test:
# (channel, SSIM kind). Deraining: MATLAB Y (Restormer's evaluate_PSNR_SSIM.m); DPDD: skimage
# defaults (Restormer's defocus script); SOTS and desnowing: SSIM on pooled images (IRNeXt's
# and SFNet's eval.py); the rest: RGB, Wang's Gaussian SSIM.
LITERATURE = {name: ("rgb", "gaussian") for name in BUILDERS}
LITERATURE.update({n: ("y", "gaussian") for n in ("rain100l", "rain100h", "test100")})
LITERATURE.update({n: ("rgb", "pooled") for n in ("sots-indoor", "sots-outdoor", "csd", "srrs", "snow100k")})
LITERATURE["dpdd"] = ("rgb", "uniform")


def reference(name: str, pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    color, kind = LITERATURE[name]
    gauss = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    if color == "y":
        yp, yt = metrics.rgb_to_y(pred), metrics.rgb_to_y(target)
        return sk_psnr(yt, yp, data_range=255), sk_ssim(yt, yp, data_range=255, **gauss)
    p = sk_psnr(target, pred, data_range=255)
    if kind == "uniform":
        return p, sk_ssim(target, pred, data_range=255, channel_axis=-1)
    if kind == "pooled":
        h, w = pred.shape[:2]
        H, W = ((h + 32) // 32) * 32, ((w + 32) // 32) * 32
        r = max(1, round(min(H, W) / 256))

        def pool(a):
            t = torch.from_numpy(a.astype(np.float64) / 255).permute(2, 0, 1)[None]
            return torch.nn.functional.adaptive_avg_pool2d(t, (int(H / r), int(W / r)))[0].permute(1, 2, 0).numpy()

        return p, sk_ssim(pool(target), pool(pred), data_range=1.0, channel_axis=-1, **gauss)
    return p, sk_ssim(target, pred, data_range=255, channel_axis=-1, **gauss)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_scoring_mode_through_the_cli(tmp_path, name):
    rng = np.random.default_rng(RNG_SEED)
    root, pairs, groups, extra = BUILDERS[name](tmp_path / "data", rng)
    preds = tmp_path / "preds"
    expected = {}
    for rel, tgt in pairs.items():
        target = target_array(root, tgt)
        if name.startswith("sots"):  # a restored hazy image has the hazy image's size
            h, w = load(root / rel).shape[:2]
            dh, dw = (target.shape[0] - h) // 2, (target.shape[1] - w) // 2
            target = target[dh:dh + h, dw:dw + w]
        pred = np.roll(target, 1, axis=1) if name == "rsblur" else degrade(rng, target)
        out = preds / rel
        if name == "gopro":  # a folder run on GOPRO_Large/test mirrors from below test/
            out = preds / Path(rel).relative_to("test")
        if out.suffix in (".jpg", ".tif"):  # any image suffix with the same stem is accepted
            out = out.with_suffix(".png")
        save(out, pred)
        expected[rel] = reference(name, pred, target) if name != "rsblur" else None
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["bench", "-d", name, "-r", str(root), "-p", str(preds),
                                      "--json", str(report), "--csv", str(tmp_path / "r.csv")] + extra)
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["count"] == len(pairs) and data["failed"] == [] and data["mode"] == "predictions"
    got = {i["path"]: i for i in data["images"]}
    assert set(got) == set(pairs)
    if name == "rsblur":  # ECC alignment undoes the 1-pixel shift the plain PSNR suffers from
        for rel, tgt in pairs.items():
            target = load(root / tgt)
            assert got[rel]["psnr"] > sk_psnr(target, np.roll(target, 1, axis=1), data_range=255) + 10
    else:
        for rel, (p, s) in expected.items():
            assert got[rel]["psnr"] == pytest.approx(p, abs=1e-4)
            assert got[rel]["ssim"] == pytest.approx(s, abs=1e-5)
        assert data["psnr"] == pytest.approx(np.mean([p for p, _ in expected.values()]), abs=1e-4)
        assert data["ssim"] == pytest.approx(np.mean([s for _, s in expected.values()]), abs=1e-5)
    for g, d in data["groups"].items():
        members = [r for r, gg in groups.items() if gg == g]
        assert d["count"] == len(members)
        assert d["psnr"] == pytest.approx(np.mean([got[r]["psnr"] for r in members]))
    assert set(data["groups"]) == set(groups.values())
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert rows[0] == "path,group,psnr,ssim,seconds,megapixels" and len(rows) == len(pairs) + 1
    assert "ours: predictions" in result.stdout


def test_published_numbers_are_shown_beside_ours(tmp_path):
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_gopro(tmp_path / "data", rng)
    for rel, tgt in pairs.items():
        save(tmp_path / "p" / rel, load(root / tgt))  # perfect predictions: PSNR is infinite
    result = CliRunner().invoke(app, ["bench", "-d", "gopro", "-r", str(root), "-p", str(tmp_path / "p"),
                                      "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "IRNeXt (published)" in result.stdout and "33.16" in result.stdout and "0.962" in result.stdout
    data = json.loads((tmp_path / "r.json").read_text())  # strict JSON: infinity is written as null
    assert data["psnr"] is None and data["ssim"] == pytest.approx(1.0)
    root, *_ = clean_set("Urban100")(tmp_path / "u", rng)
    for sigma, shown in (("50", True), ("25", False)):
        result = CliRunner().invoke(app, ["bench", "-d", "urban100", "-r", str(root), "-p", str(root),
                                          "--sigma", sigma])
        assert result.exit_code == 0, result.output
        assert ("CLG-INet (published)" in result.stdout and "28.45" in result.stdout) is shown


def test_missing_predictions_are_reported_and_fail_the_run(tmp_path):
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_test100(tmp_path / "data", rng)
    rels = sorted(pairs)
    save(tmp_path / "p" / rels[0], load(root / pairs[rels[0]]))
    result = CliRunner().invoke(app, ["bench", "-d", "test100", "-r", str(root), "-p", str(tmp_path / "p"),
                                      "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 1
    assert rels[1] in result.stderr and "no restored image" in result.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["count"] == 1 and [f["path"] for f in data["failed"]] == [rels[1]]


def test_limit_scores_the_first_n(tmp_path):
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_rain100l(tmp_path / "data", rng)
    result = CliRunner().invoke(app, ["bench", "-d", "rain100l", "-r", str(root), "-p", str(root),
                                      "--limit", "2", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert [i["path"] for i in data["images"]] == ["rainy/rain-001.png", "rainy/rain-002.png"]
    assert all(math.isfinite(i["psnr"]) for i in data["images"])


def test_the_docs_table_states_each_datasets_convention():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "bench.md").read_text()
    rows = [line.split("|")[1:-1] for line in doc.splitlines() if line.startswith("| `")]
    table = {}
    for cells in rows:
        if len(cells) == 7:  # the datasets table: name(s), task, layouts, channel, SSIM, outputs, source
            for name in cells[0].replace("`", "").split(","):
                table[name.strip()] = [c.strip() for c in cells]
    assert set(table) == set(DATASETS)
    kinds = {"gaussian": "Gaussian", "uniform": "uniform", "pooled": "pooled"}
    for name, spec in DATASETS.items():
        _, task, _, channel, ssim_kind, outputs, _ = table[name]
        conv = spec.convention
        assert task.startswith(spec.task)
        assert channel.startswith("Y" if conv.color == "y" else "RGB") and ("ECC" in channel) == conv.align
        assert ssim_kind.startswith(kinds[conv.ssim])
        assert outputs == ("8-bit" if conv.quantize else "float")


def test_the_docs_list_the_published_numbers():
    from restorecli.bench.datasets import PUBLISHED
    doc = (Path(__file__).resolve().parents[1] / "docs" / "bench.md").read_text()
    for name, entries in PUBLISHED.items():
        for p in entries:
            ssim = "-" if p.ssim is None else f"{p.ssim:g}"
            assert any(f"`{name}`" in line and f"| {p.model} | {p.psnr:.2f} | {ssim} |" in line
                       for line in doc.splitlines()), (name, p)


# -- predictions must be matched unambiguously -------------------------------------------------

def bench_json(root: Path, preds: Path, out: Path, name: str = "gopro", *extra: str):
    result = CliRunner().invoke(app, ["bench", "-d", name, "-r", str(root), "-p", str(preds),
                                      "--json", str(out), *extra])
    return result, json.loads(out.read_text())


def test_a_missing_prediction_is_never_taken_from_another_input(tmp_path):
    """GoPro frames repeat their names across scenes (and RSBlur's are all real_blur.png): with
    one restored frame missing, the other scene's frame of the same name must not be scored."""
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_gopro(tmp_path / "data", rng)
    preds = tmp_path / "preds"  # a folder run on GOPRO_Large/test: the tree starts below test/
    for rel, tgt in pairs.items():
        save(preds / Path(rel).relative_to("test"), load(root / tgt))
    missing = "test/GOPR0384_11_00/blur/000002.png"
    (preds / Path(missing).relative_to("test")).unlink()
    save(preds / "GOPR0384_11_00" / "sharp" / "000002.png", picture(rng))  # a folder run writes these too
    result, data = bench_json(root, preds, tmp_path / "r.json")
    assert result.exit_code == 1
    assert [f["path"] for f in data["failed"]] == [missing]
    assert "no restored image" in data["failed"][0]["error"]
    assert data["count"] == len(pairs) - 1

    root, pairs, _, _ = build_rsblur(tmp_path / "rs", rng)
    preds = tmp_path / "rs_preds"
    for rel, tgt in pairs.items():
        save(preds / rel, load(root / tgt))
    gone = sorted(pairs)[0]
    (preds / gone).unlink()
    result, data = bench_json(root, preds, tmp_path / "rs.json", "rsblur")
    assert result.exit_code == 1 and [f["path"] for f in data["failed"]] == [gone]


def test_a_deeper_predictions_tree_must_lead_to_the_roots_own_folder(tmp_path):
    """Bench one scene (--root .../test/GOPR0384_11_00): outputs of a run on a folder above it
    (test/GOPR0384_11_00/blur/x.png) are its own, another scene's (GOPR0410_11_00/blur/x.png)
    are not, though the file names are the same."""
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_gopro(tmp_path / "data", rng)
    scene = root / "test" / "GOPR0384_11_00"
    for name, scenes in (("mine", ("GOPR0384_11_00", "GOPR0410_11_00")), ("other", ("GOPR0410_11_00",))):
        for rel, tgt in pairs.items():
            if Path(rel).parts[1] in scenes:
                save(tmp_path / name / rel, load(root / tgt))
    result, data = bench_json(scene, tmp_path / "mine", tmp_path / "m.json")
    assert result.exit_code == 0 and data["count"] == 2
    result, data = bench_json(scene, tmp_path / "other", tmp_path / "o.json")
    assert result.exit_code == 1 and data["count"] == 0
    assert [f["path"] for f in data["failed"]] == ["blur/000001.png", "blur/000002.png"]


def test_sots_crops_the_target_to_the_inputs_size_not_the_predictions(tmp_path):
    """SOTS ground truths are larger than the hazy images and centre-cropped to them (FFA-Net):
    a prediction of the hazy image's size is scored against that crop; one that a tool cut to
    another size (top-left, to a multiple of 16) is a size error, not a misaligned score."""
    rng = np.random.default_rng(0)
    root = tmp_path / "SOTS" / "indoor"
    gt = picture(rng, 68, 68)
    save(root / "gt" / "1400.png", gt)
    save(root / "hazy" / "1400_1.png", degrade(rng, gt[2:66, 2:66]))
    save(tmp_path / "exact" / "hazy" / "1400_1.png", gt[2:66, 2:66])
    save(tmp_path / "cut" / "hazy" / "1400_1.png", gt[2:50, 2:50])
    result, data = bench_json(root, tmp_path / "exact", tmp_path / "e.json", "sots-indoor")
    assert result.exit_code == 0 and data["count"] == 1 and data["images"][0]["psnr"] is None   # identical
    result, data = bench_json(root, tmp_path / "cut", tmp_path / "c.json", "sots-indoor")
    assert result.exit_code == 1 and data["count"] == 0
    assert "the restored image is 48x48x3 but the target is 64x64x3" in data["failed"][0]["error"]


def test_a_flat_predictions_folder_is_used_only_where_names_are_unique(tmp_path):
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_sots_outdoor(tmp_path / "sots", rng)
    flat = tmp_path / "flat"
    for rel, tgt in pairs.items():
        save(flat / Path(rel).with_suffix(".png").name, degrade(rng, load(root / tgt)))
    result, data = bench_json(root, flat, tmp_path / "s.json", "sots-outdoor")
    assert result.exit_code == 0, result.output
    assert data["count"] == len(pairs)

    root, pairs, _, _ = build_gopro(tmp_path / "gopro", rng)
    flat = tmp_path / "flat_gopro"  # 000001.png could be either scene's frame: none is guessed
    for rel, tgt in pairs.items():
        save(flat / Path(rel).name, load(root / tgt))
    result, data = bench_json(root, flat, tmp_path / "g.json")
    assert result.exit_code == 1 and data["count"] == 0 and len(data["failed"]) == len(pairs)


def test_a_prediction_at_the_inputs_own_path_wins(tmp_path):
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_sots_indoor(tmp_path / "data", rng)
    preds = tmp_path / "preds"
    for rel, tgt in pairs.items():
        target = load(root / tgt)
        crop = target[2:38, 2:42]
        save(preds / rel, crop)  # perfect, at the full relative path
        save(preds / "elsewhere" / rel, degrade(rng, crop))  # a deeper tree that also fits
    result, data = bench_json(root, preds, tmp_path / "r.json", "sots-indoor")
    assert result.exit_code == 0, result.output
    assert all(i["psnr"] is None for i in data["images"])  # identical: infinite PSNR, the exact path won


# -- --save and the reports never write into the dataset --------------------------------------

def test_save_refuses_the_datasets_own_files(tmp_path):
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_gopro(tmp_path / "data", rng)
    before = {p: p.read_bytes() for p in root.rglob("*.png")}
    for args in (["--save", str(root), "--overwrite"],  # the dataset root: blur/x.png is the input
                 ["--json", str(root / sorted(pairs.values())[0])]):  # a ground-truth file
        result = CliRunner().invoke(app, ["bench", "-d", "gopro", "-r", str(root), *args])
        assert result.exit_code == 2, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "would overwrite the dataset's" in errors[0], result.stderr
    assert {p: p.read_bytes() for p in root.rglob("*.png")} == before

    root, pairs, _, _ = build_sots_outdoor(tmp_path / "sots", rng)  # .jpg inputs are saved as .png
    hazy = root / "test"
    result = CliRunner().invoke(app, ["bench", "-d", "sots-outdoor", "-r", str(root), "--save", str(root)])
    assert result.exit_code == 2 and "beside the dataset's test input" in result.stderr, result.output
    assert sorted(p.name for p in (hazy / "hazy").iterdir()) == sorted(Path(r).name for r in pairs)
    # a new folder among the dataset's own (test/ holds hazy/ and gt/) is refused as well
    result = CliRunner().invoke(app, ["bench", "-d", "sots-outdoor", "-r", str(root), "--save", str(hazy / "mine")])
    assert result.exit_code == 2 and f"inside the dataset's folder {hazy.resolve()}" in result.stderr, result.output
    assert not (hazy / "mine").exists()


# -- layouts ---------------------------------------------------------------------------------

def test_a_gopro_scene_without_ground_truth_is_refused_by_name(tmp_path):
    import shutil
    rng = np.random.default_rng(0)
    root, *_ = build_gopro(tmp_path / "data", rng)
    shutil.rmtree(root / "test" / "GOPR0410_11_00" / "sharp")
    with pytest.raises(LayoutError, match="GOPR0410_11_00.*no sharp/"):
        find_samples(get_dataset("gopro"), root)
    result = CliRunner().invoke(app, ["bench", "-d", "gopro", "-r", str(root), "-p", str(root)])
    assert result.exit_code == 2 and "GOPR0410_11_00" in result.stderr
    (root / "test" / "GOPR0384_11_00" / "sharp" / "000002.png").unlink()  # one file: refused alike
    shutil.rmtree(root / "test" / "GOPR0410_11_00")
    with pytest.raises(LayoutError, match="GOPR0384_11_00.*no ground truth"):
        find_samples(get_dataset("gopro"), root)


def test_rain100_in_jorders_release_layout(tmp_path):
    """JORDER's release: rain_data_test_<Light|Heavy>/rain/X2/norain-Nx2.png with norain/norain-N.png."""
    rng = np.random.default_rng(0)
    for name, kind in (("rain100l", "Light"), ("rain100h", "Heavy")):
        root = tmp_path / name
        folder = root / f"rain_data_test_{kind}"
        pairs_in(folder, rng, [(f"rain/X2/norain-{i}x2.png", f"norain/norain-{i}.png") for i in (1, 2, 10)])
        for base in (root, folder):  # the folder itself, or the one holding it
            samples = find_samples(get_dataset(name), base)
            assert [s.input_path for s in samples] == [folder / "rain" / "X2" / f"norain-{i}x2.png"
                                                       for i in (1, 2, 10)]
            assert [s.target_path for s in samples] == [folder / "norain" / f"norain-{i}.png" for i in (1, 2, 10)]
    with pytest.raises(LayoutError):  # the Light set is not Rain100H
        find_samples(get_dataset("rain100h"), tmp_path / "rain100l" / "rain_data_test_Light")


# -- messages --------------------------------------------------------------------------------

def test_notes_are_whole_lines_when_stderr_is_not_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_gopro(tmp_path / "data", rng)
    result = CliRunner().invoke(app, ["bench", "-d", "gopro", "-r", str(root), "-p", str(root / "test")])
    lines = result.stderr.splitlines()
    assert any(line.startswith("note: 4 test images found") and line.endswith("published ones")
               for line in lines), result.stderr


def test_a_missing_weights_file_is_a_usage_error(tmp_path):
    rng = np.random.default_rng(0)
    root, *_ = build_gopro(tmp_path / "data", rng)
    result = CliRunner().invoke(app, ["bench", "-d", "gopro", "-r", str(root), "-w", "nonexist.safetensors"])
    assert result.exit_code == 2 and "weights file not found: nonexist.safetensors" in result.stderr


# -- the releases as unzipped (review of each dataset's public layout) -----------------------

def test_sots_indoor_in_the_reside_release_nesting(tmp_path):
    """RESIDE's SOTS unzips to SOTS/indoor/nyuhaze500/{gt,hazy} (and SOTS/outdoor/{gt,hazy}); the
    ground truth keeps a 10-pixel border the hazy image has not (640x480 vs 620x460)."""
    rng = np.random.default_rng(0)
    base = tmp_path / "SOTS" / "indoor" / "nyuhaze500"
    for n in ("1400", "1401"):
        gt = picture(rng, 52, 52)
        save(base / "gt" / f"{n}.png", gt)
        save(base / "hazy" / f"{n}_1.png", degrade(rng, gt[10:42, 10:42]))
    for root in (tmp_path / "SOTS", tmp_path / "SOTS" / "indoor", base):
        samples = find_samples(get_dataset("sots-indoor"), root)
        assert [s.input_path for s in samples] == [base / "hazy" / "1400_1.png", base / "hazy" / "1401_1.png"]
        assert [s.target_path for s in samples] == [base / "gt" / "1400.png", base / "gt" / "1401.png"]


def test_dpdd_labels_beside_inputc_under_restormers_datasets_root(tmp_path):
    """Restormer's download_data.py leaves Datasets/test/DPDD/{inputC,inputL,inputR,target} with
    indoor_labels.npy and outdoor_labels.npy beside inputC/: any root above it keeps the groups."""
    rng = np.random.default_rng(0)
    dpdd = tmp_path / "Datasets" / "test" / "DPDD"
    for n in ("1P0A1.png", "1P0A2.png"):
        for d in ("inputL", "inputR"):
            save(dpdd / d / n, picture(rng))
    pairs_in(dpdd, rng, [(f"inputC/{n}", f"target/{n}") for n in ("1P0A1.png", "1P0A2.png")])
    np.save(dpdd / "indoor_labels.npy", np.array([2]))
    np.save(dpdd / "outdoor_labels.npy", np.array([1]))
    for root in (tmp_path / "Datasets", tmp_path / "Datasets" / "test", dpdd):
        samples = find_samples(get_dataset("dpdd"), root)
        assert [(Path(s.rel).name, s.group) for s in samples] == [("1P0A1.png", "outdoor"), ("1P0A2.png", "indoor")]


def save16(path: Path, a: np.ndarray) -> None:
    import cv2
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(a[..., ::-1]))


def test_dpdd_16bit_release_is_read_as_restormers_single_image_script_reads_it(tmp_path):
    """DPDD's PNGs are 16-bit. Restormer's test_single_image_defocus_deblur.py reads inputC and
    target with cv2.imread(path) (no IMREAD_UNCHANGED), which keeps the high byte, and scores
    the float output against target/255: the bench reads and scores them the same way."""
    import cv2
    rng = np.random.default_rng(0)
    root = tmp_path / "dd_dp_dataset_png"
    target16 = rng.integers(0, 65536, (32, 32, 3)).astype(np.uint16)
    target16[0, 0] = [255, 511, 32895]  # v >> 8 and round(v / 257) differ here
    save16(root / "test_c" / "target" / "1P0A1.png", target16)
    save16(root / "test_c" / "source" / "1P0A1.png", np.roll(target16, 1, axis=0))
    [s] = find_samples(get_dataset("dpdd"), root)
    cv_target = cv2.imread(str(root / "test_c" / "target" / "1P0A1.png"))[..., ::-1]
    assert s.target().dtype == np.uint8 and np.array_equal(s.target(), cv_target)
    assert np.array_equal(s.target(), (target16 >> 8).astype(np.uint8))
    assert s.input().dtype == np.uint8

    pred = degrade(rng, cv_target)
    save(tmp_path / "p" / "test_c" / "source" / "1P0A1.png", pred)
    result, data = bench_json(root, tmp_path / "p", tmp_path / "r.json", "dpdd")
    assert result.exit_code == 0, result.output
    ref_t, ref_p = cv_target.astype(np.float64) / 255, pred.astype(np.float64) / 255
    assert data["psnr"] == pytest.approx(10 * np.log10(1 / np.mean((ref_t - ref_p) ** 2)), abs=1e-6)
    assert data["ssim"] == pytest.approx(sk_ssim(ref_t, ref_p, data_range=1, channel_axis=-1), abs=1e-6)


def test_clean_sets_in_their_release_folders(tmp_path):
    """CBSD68 from its repository (CBSD68-dataset/CBSD68/original_png beside noisy5 ... noisy50)
    and Urban100 as the SR benchmarks ship it (Urban100/HR beside LR_bicubic/)."""
    rng = np.random.default_rng(0)
    repo = tmp_path / "CBSD68-dataset"
    for n in ("0000.png", "0001.png"):
        save(repo / "CBSD68" / "original_png" / n, picture(rng))
        save(repo / "CBSD68" / "noisy50" / n, picture(rng))
    samples = find_samples(get_dataset("cbsd68"), repo)
    assert [s.rel for s in samples] == ["CBSD68/original_png/0000.png", "CBSD68/original_png/0001.png"]
    urban = tmp_path / "Urban100"
    save(urban / "HR" / "img_001.png", picture(rng))
    save(urban / "LR_bicubic" / "X2" / "img_001x2.png", picture(rng, 16, 16))
    assert [s.rel for s in find_samples(get_dataset("urban100"), urban)] == ["HR/img_001.png"]


def test_desnowing_sets_under_the_folder_that_holds_them(tmp_path):
    """The IRNeXt/SFNet authors' packaging: <path>/{CSD,SRRS,Snow100K}/test2000/{Snow,Gt}."""
    rng = np.random.default_rng(0)
    for name, folder, gt in (("csd", "CSD", "1.tif"), ("srrs", "SRRS", "1.jpg"), ("snow100k", "Snow100K", "1.jpg")):
        pairs_in(tmp_path / folder, rng, [(f"test2000/Snow/1.{'tif' if name == 'csd' else 'png'}",
                                           f"test2000/Gt/{gt}")])
    for name, folder in (("csd", "CSD"), ("srrs", "SRRS"), ("snow100k", "Snow100K")):
        [s] = find_samples(get_dataset(name), tmp_path)
        assert s.input_path.parent.parent.parent == tmp_path / folder


def test_report_paths_are_checked_before_the_run_and_written_readable(tmp_path):
    """A --json/--csv that cannot be written is refused before any image is scored (the scores
    would be lost); reports get the umask's permissions; - puts one on stdout, the table on stderr."""
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_test100(tmp_path / "data", rng)
    preds = tmp_path / "p"
    for rel, tgt in pairs.items():
        save(preds / rel, degrade(rng, load(root / tgt)))
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    for args, code, message in (
            (["--json", str(tmp_path)], 2, "is a folder: give a file name"),
            (["--csv", str(a_file / "r.csv")], 2, "is not a folder"),
            (["--json", "-", "--csv", "-"], 2, "would both write to stdout")):
        result = CliRunner().invoke(app, ["bench", "-d", "test100", "-r", str(root), "-p", str(preds), *args])
        assert result.exit_code == code, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], result.stderr
        assert "ours: predictions" not in result.output  # refused before scoring
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(app, ["bench", "-d", "test100", "-r", str(root), "-p", str(preds),
                                          "--json", "-", "--csv", str(tmp_path / "new" / "r.csv")])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout is the JSON alone
    assert data["count"] == len(pairs)
    assert "ours: predictions" in result.stderr
    assert (tmp_path / "new" / "r.csv").stat().st_mode & 0o777 == 0o644
    # --quiet: the report on stdout, nothing on stderr (the table there is only a summary)
    result = CliRunner().invoke(app, ["bench", "-d", "test100", "-r", str(root), "-p", str(preds),
                                      "--json", "-", "-q"])
    assert result.exit_code == 0 and result.stderr == "" and json.loads(result.stdout)["count"] == len(pairs)


def test_save_refuses_existing_outputs_before_running(tmp_path):
    rng = np.random.default_rng(0)
    root, pairs, _, _ = build_test100(tmp_path / "data", rng)
    saved = tmp_path / "saved"
    from restorecli.bench.runner import save_paths
    first = save_paths(saved, find_samples(get_dataset("test100"), root))[0][1]
    first.parent.mkdir(parents=True)
    first.write_bytes(b"an earlier run's output")
    result = CliRunner().invoke(app, ["bench", "-d", "test100", "-r", str(root), "--save", str(saved),
                                      "--model", "unet-s"])
    assert result.exit_code == 2, result.output
    assert "1 of the 2 outputs exist already" in result.stderr and "--overwrite" in result.stderr
    assert first.read_bytes() == b"an earlier run's output"


def test_prenet_rain100_copies_are_found_from_any_folder_above_them(tmp_path):
    """PReNet's repository keeps datasets/test/Rain100{L,H}/rainy/rain-N.png with norain-N.png."""
    rng = np.random.default_rng(0)
    for name in ("Rain100L", "Rain100H"):
        pairs_in(tmp_path / "datasets" / "test" / name, rng,
                 [(f"rainy/rain-{i:03d}.png", f"norain-{i:03d}.png") for i in (1, 2)])
    for root in (tmp_path, tmp_path / "datasets", tmp_path / "datasets" / "test"):
        for name, folder in (("rain100l", "Rain100L"), ("rain100h", "Rain100H")):
            found = find_samples(get_dataset(name), root)
            assert [s.input_path.parent.parent.name for s in found] == [folder, folder]
            assert [s.target_path.name for s in found] == ["norain-001.png", "norain-002.png"]
    # the two sets share every file name: the folder given for the other one is refused, by name
    for name, folder, other in (("rain100l", "Rain100H", "rain100h"), ("rain100h", "Rain100L", "rain100l")):
        for root in (tmp_path / "datasets" / "test" / folder, tmp_path / "datasets" / "test" / folder / "rainy"):
            result = CliRunner().invoke(app, ["bench", "-d", name, "-r", str(root), "-p", str(tmp_path / "p")])
            assert result.exit_code == 2 and "Traceback" not in result.output, result.output
            assert f"goes through {folder}/" in result.output and f"--dataset {other}" in result.output


def test_sets_sharing_file_names_are_told_apart_by_their_folders(tmp_path):
    """CSD and SRRS both hold 2000 pairs, in the IRNeXt authors' packaging the same tree: the
    folder a root goes through names the set; the nearest such folder decides."""
    rng = np.random.default_rng(0)
    csd, *_ = build_csd(tmp_path, rng)
    srrs, *_ = build_srrs(tmp_path, rng)
    pairs_in(csd / "test2000", rng, [("Snow/3.tif", "Gt/3.tif")])
    for name, root, folder, other in (("csd", srrs, "SRRS", "srrs"), ("srrs", csd, "CSD", "csd")):
        result = CliRunner().invoke(app, ["bench", "-d", name, "-r", str(root), "-p", str(tmp_path / "p")])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert f"goes through {folder}/, the folder of" in result.output and f"--dataset {other}" in result.output
    nested = tmp_path / "SRRS_and_more" / "srrs" / "mirror"   # inside srrs/, far below a CSD-free path
    pairs_in(nested, rng, [("test2000/Snow/a.png", "test2000/Gt/a.jpg")])
    assert len(find_samples(get_dataset("srrs"), nested)) == 1


def test_sots_indoor_and_outdoor_are_not_scored_as_each_other(tmp_path):
    """Both hold 500 images, so a swapped --dataset would go unnoticed by the count; the hazy
    names tell them apart (indoor 1400_1.png, outdoor 0001_0.8_0.2.jpg)."""
    rng = np.random.default_rng(0)
    indoor, *_ = build_sots_indoor(tmp_path / "a", rng)
    outdoor, *_ = build_sots_outdoor(tmp_path / "b", rng)
    for name, root, other in (("sots-indoor", outdoor, "outdoor"), ("sots-outdoor", indoor / "indoor", "indoor")):
        result = CliRunner().invoke(app, ["bench", "-d", name, "-r", str(root), "-p", str(tmp_path / "p")])
        assert result.exit_code == 2, result.output
        assert f"named like SOTS {other}'s" in result.output and f"--dataset sots-{other}" in result.output
        assert "Traceback" not in result.output


def test_damaged_side_files_are_one_line_errors(tmp_path):
    """A DPDD label file that is not an index array, an RSBlur list that is not text: exit 2 and
    one line naming the file; a list saved with a byte-order mark (Notepad) is read as is."""
    rng = np.random.default_rng(0)
    dpdd, *_ = build_dpdd(tmp_path, rng)
    np.save(dpdd / "indoor_labels.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    rsblur, *_ = build_rsblur(tmp_path, rng)
    lst = rsblur / "RSBlur_real_test.txt"
    text = lst.read_text()
    lst.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert len(find_samples(get_dataset("rsblur"), rsblur)) == 2
    lst.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    for name, root, bad in (("dpdd", dpdd, "indoor_labels.npy"), ("rsblur", rsblur, "RSBlur_real_test.txt")):
        result = CliRunner().invoke(app, ["bench", "-d", name, "-r", str(root), "-p", str(tmp_path / "p")])
        assert result.exit_code == 2, result.output
        [line] = [ln for ln in result.output.splitlines() if ln.strip()]
        assert bad in line and "internal error" not in line
