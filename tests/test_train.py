"""restore train: a few steps write a loadable safetensors file; --resume continues exactly;
two CPU processes train with DistributedDataParallel (gloo)."""
import json
import os
import socket
import tomllib

import numpy as np
import pytest
import torch

from restorecli.checkpoint import load_weights, read_state_dict
from restorecli.models import create_model
from restorecli.train.config import TrainConfig
from restorecli.train.data import PatchSampler, find_pairs
from restorecli.train.trainer import Trainer, lr_at, weights_entry

TINY = {"widths": [8, 16], "blocks": [1, 1]}


def tiny_config(tmp_path, steps=6) -> TrainConfig:
    cfg = TrainConfig()
    cfg.run.name = "tiny"
    cfg.run.out_dir = str(tmp_path / "run")
    cfg.run.seed = 3
    cfg.model.name = "nlmunet-s"
    cfg.model.overrides = dict(TINY)
    cfg.data.clean = []
    cfg.data.deadleaves_fraction = 1.0
    cfg.data.deadleaves_images = 2
    cfg.data.deadleaves_size = 48
    cfg.data.patch_size = 32
    cfg.data.batch_size = 2
    cfg.optim.total_steps = steps
    cfg.optim.warmup_steps = 2
    cfg.val.every_steps = 0
    cfg.val.clean = []
    cfg.checkpoint.every_minutes = 0
    cfg.log.progress = False
    return cfg


def test_few_steps_write_loadable_weights_and_entry(tmp_path):
    cfg = tiny_config(tmp_path, steps=4)
    cfg.val.every_steps = 2
    cfg.val.deadleaves_images = 1
    cfg.val.crop = 32
    cfg.val.settings = [{"sigma": 25}]
    tr = Trainer(cfg, quiet=True)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    res = tr.fit()
    assert res.step == 4 and res.weights.is_file()
    assert any(not torch.equal(before[k], v) for k, v in tr.model.state_dict().items())
    sd = read_state_dict(res.weights)
    assert all(v.dtype == torch.float16 for v in sd.values())
    model = load_weights(create_model("nlmunet-s", **TINY), res.weights)
    out = model(torch.rand(1, 4, 32, 32))
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()
    assert 0 < res.metrics["val_psnr_sigma25"] < 60
    assert 18 < res.metrics["input_psnr_sigma25"] < 22  # noisy input at sigma 25: ~20.2 dB
    entry = tomllib.loads(weights_entry(cfg, res, name="tiny-test", command="restore train c.toml"))
    w = entry["weights"][0]
    assert w["sha256"] == res.sha256 and w["arch"] == "nlmunet-s" and w["config"] == TINY
    assert w["training"]["config"]["optim"]["total_steps"] == 4
    assert w["metrics"][0]["command"] == "restore train c.toml"
    assert [m["input"] for m in w["metrics"] if m["name"] == "PSNR sigma25"] == [round(res.metrics["input_psnr_sigma25"], 3)]
    from restorecli.weights.registry import parse_registry  # the weights loader accepts it
    text = weights_entry(cfg, res, name="tiny-test", embedded="weights/tiny.safetensors")
    (e,) = parse_registry("format = 1\n" + text, "test.toml")
    assert e.name == "tiny-test" and e.sha256 == res.sha256
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("val_psnr" in r for r in lines)


def test_resume_continues_from_the_same_step_with_the_same_state(tmp_path):
    straight = Trainer(tiny_config(tmp_path / "a", steps=6), quiet=True)
    straight.fit()

    cfg = tiny_config(tmp_path / "b", steps=6)
    first = Trainer(cfg, quiet=True)
    for _ in range(3):
        first.train_step()
    first.save_checkpoint()
    first.train_step()  # progress after the checkpoint is lost, as in a crash

    resumed = Trainer(cfg, quiet=True)
    resumed.load_checkpoint(resumed.latest_checkpoint())
    assert resumed.step == 3
    assert resumed.sampler.draws == 3
    res = resumed.fit(resume=True)
    assert res.step == 6
    for k, v in straight.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k], atol=1e-6), k
    for k, v in straight.ema.state_dict().items():
        assert torch.allclose(v, resumed.ema.state_dict()[k], atol=1e-6), k


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig()
    cfg.optim.lr, cfg.optim.min_lr, cfg.optim.warmup_steps, cfg.optim.total_steps = 1e-3, 1e-5, 10, 110
    lrs = [lr_at(s, cfg) for s in range(110)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lr_at(110, cfg) == pytest.approx(1e-5)
    assert lr_at(60, cfg) == pytest.approx((1e-3 + 1e-5) / 2)


def test_photos_smaller_than_the_patch_are_left_out_with_a_note(tmp_path):
    """One narrow photo (a 683x169 panorama) must not rule out 192-px patches for the rest; if
    every photo is too small that is still an error."""
    from PIL import Image as PILImage

    from restorecli.train.data import DataError, build_sampler

    rng = np.random.default_rng(0)
    for name, (h, w) in (("big.png", (64, 80)), ("wide.png", (20, 90)), ("tall.png", (70, 24))):
        PILImage.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(tmp_path / name)
    cfg = TrainConfig()
    cfg.data.clean = [str(tmp_path)]
    cfg.data.patch_size, cfg.data.batch_size, cfg.data.deadleaves_fraction = 32, 2, 0.0
    sampler = build_sampler(cfg)
    assert [im.shape[:2] for im in sampler.clean] == [(64, 80)]
    assert sampler.notes == ["2 clean image(s) smaller than the patch size 32 left out: "
                             "tall.png (24x70), wide.png (90x20)"]
    assert sampler.next().clean.shape == (2, 3, 32, 32)
    cfg.data.patch_size = 96  # none is large enough: the run cannot start
    with pytest.raises(DataError, match="smaller than the patch size 96"):
        build_sampler(cfg)


def test_patches_are_seeded_and_augmented(tmp_path):
    rng = np.random.default_rng(0)
    ims = [rng.random((40, 50, 3)).astype(np.float32)]
    a = PatchSampler(ims, [], 16, 4, seed=1)
    b = PatchSampler(ims, [], 16, 4, seed=1)
    x, y = a.next().clean, b.next().clean
    assert torch.equal(x, y) and x.shape == (4, 3, 16, 16)
    # every patch is some crop of the image under one of the 8 flips/rotations
    src = torch.from_numpy(ims[0]).permute(2, 0, 1)
    for p in x:
        found = False
        for k in range(8):
            q = p.flip(-1) if k & 4 else p
            q = torch.rot90(q, -(k & 3), dims=(1, 2)) if (k & 3) else q
            if q.shape[1:] != (16, 16):
                continue
            for i in range(40 - 15):
                for j in range(50 - 15):
                    if torch.equal(src[:, i:i + 16, j:j + 16], q):
                        found = True
                        break
                if found:
                    break
            if found:
                break
        assert found


def test_paired_folders(tmp_path):
    from PIL import Image
    for sub in ("input", "target"):
        (tmp_path / sub).mkdir()
        for n in ("a", "b"):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / sub / f"{n}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "input" / "orphan.png")
    pairs = find_pairs(str(tmp_path))
    assert [(p.name, q.parent.name) for p, q in pairs] == [("a.png", "target"), ("b.png", "target")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from pathlib import Path
    cfg = tiny_config(Path(tmp), steps=3)
    tr = Trainer(cfg, quiet=True)
    assert tr.dist.world == world and tr.dist.rank == rank
    first = tr.sampler.next().clean  # each rank draws its own patches
    tr.sampler.draws = 0
    res = tr.fit()
    torch.save({"state": tr.model.state_dict(), "first": first, "step": res.step},
               os.path.join(tmp, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_two_cpu_processes_train_with_ddp(tmp_path):
    import torch.multiprocessing as mp
    mp.start_processes(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["step"] == r1["step"] == 3
    assert not torch.equal(r0["first"], r1["first"])
    for k, v in r0["state"].items():  # DDP kept the replicas identical
        assert torch.equal(v, r1["state"][k]), k
    assert (tmp_path / "run" / "tiny.safetensors").is_file()  # rank 0 exported
    assert list((tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    assert not list((tmp_path / "run" / "checkpoints").glob("*.tmp"))


def test_time_schedule_follows_the_budget():
    cfg = TrainConfig()
    cfg.run.max_minutes = 10.0
    cfg.optim.schedule = "time"
    cfg.optim.lr, cfg.optim.min_lr, cfg.optim.warmup_steps = 1e-3, 0.0, 5
    assert lr_at(0, cfg, 0.0) == pytest.approx(2e-4)  # warm-up stays in steps
    assert lr_at(100, cfg, 300.0) == pytest.approx(5e-4)  # half the budget: half the cosine
    assert lr_at(100, cfg, 600.0) == pytest.approx(0.0)


def test_cli_train_prints_a_weights_entry(tmp_path):
    from typer.testing import CliRunner

    from restorecli.cli import app
    from restorecli.train.config import dump_toml

    cfg = tiny_config(tmp_path, steps=3)
    path = tmp_path / "c.toml"
    path.write_text(dump_toml(cfg))
    out = tmp_path / "w.safetensors"
    res = CliRunner().invoke(app, ["train", str(path), "--quiet", "-o", str(out), "--name", "cli-test"])
    assert res.exit_code == 0, res.output
    entry = tomllib.loads(res.stdout)["weights"][0]
    assert entry["name"] == "cli-test" and out.is_file()
    from restorecli.train.trainer import sha256_file
    assert entry["sha256"] == sha256_file(out)
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nloss = 'l3'\n")
    res = CliRunner().invoke(app, ["train", str(bad)])
    assert res.exit_code == 2 and "loss" in res.output


def test_resume_with_the_time_budget_spent_only_exports(tmp_path):
    cfg = tiny_config(tmp_path, steps=10)
    first = Trainer(cfg, quiet=True)
    first.train_step()
    first.train_step()
    first.train_seconds = 120.0
    first.save_checkpoint()
    cfg.run.max_minutes = 1.0
    again = Trainer(cfg, quiet=True)
    res = again.fit(resume=True)
    assert res.step == 2 and res.stopped_early and res.weights.is_file()
    for k, v in first.ema.state_dict().items():
        assert torch.equal(v.half(), read_state_dict(res.weights)[k]), k


def test_exposure_darkens_a_share_of_patches_by_gains_in_range_and_keeps_old_streams():
    """[data] exposure_prob / exposure: that share of the unpaired patches is the same crop times
    one gain in [lo, hi]; off (0), the random stream is the one recipes had before."""
    from restorecli.train.config import ConfigError, TrainConfig

    ims = [np.full((40, 50, 3), 0.8, np.float32)]
    plain = PatchSampler(ims, [], 16, 64, seed=1)
    off = PatchSampler(ims, [], 16, 64, seed=1, exposure_prob=0.0, exposure=(0.1, 0.2))
    assert torch.equal(plain.next().clean, off.next().clean) and torch.equal(plain.next().clean, off.next().clean)
    dim = PatchSampler(ims, [], 16, 64, seed=1, exposure_prob=0.5, exposure=(0.25, 0.5)).next().clean
    gains = dim.flatten(1).mean(1) / 0.8
    assert torch.allclose(dim.flatten(1).std(1), torch.zeros(64), atol=1e-6)   # one gain per patch
    darkened = gains < 0.999
    assert 16 <= int(darkened.sum()) <= 48
    assert float(gains[darkened].min()) >= 0.25 - 1e-6 and float(gains[darkened].max()) <= 0.5 + 1e-6
    assert torch.allclose(gains[~darkened], torch.ones(int((~darkened).sum())))
    for bad in ([0.0, 1.0], [0.5, 0.25], [0.5]):
        cfg = TrainConfig()
        cfg.data.exposure, cfg.data.exposure_prob = bad, 0.5
        with pytest.raises(ConfigError, match="exposure"):
            cfg.validate()
