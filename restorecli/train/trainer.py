"""The training loop behind ``restore train``.

AdamW with linear warm-up then cosine decay, L1 or Charbonnier loss, an EMA of the
weights, periodic validation PSNR (of the EMA weights), checkpoints every few
minutes that ``--resume`` continues exactly (model, EMA, optimizer, step, every
random stream), deterministic seeds, rich progress (loss, PSNR, steps/s, ETA) on a
terminal and plain lines otherwise. Under ``torchrun`` it trains with
DistributedDataParallel: gloo on CPU, nccl on GPUs; each rank draws its own patches
(seeded by rank), and rank 0 validates, checkpoints and exports.

The result is the EMA weights as a safetensors file (fp16 storage by default) whose
metadata carries the config and the metrics, and a ready ``[[weights]]`` entry.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import read_state_dict, save_safetensors, transfer_weights
from ..models import create_model
from .config import ConfigError, TrainConfig, config_from_dict, config_to_dict, dump_toml
from .data import build_sampler, build_val_images
from .degradations import create_degradation, default_degradation

__all__ = ["Trainer", "TrainResult", "lr_at", "psnr", "add_conditioning", "weights_entry", "sha256_file"]


# ------------------------------------------------------------------------------ helpers

def lr_at(step: int, cfg: TrainConfig, train_seconds: float = 0.0) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then cosine.

    ``[optim] schedule = "steps"``: the cosine runs over ``total_steps`` (reproducible).
    ``"time"``: it runs over the wall-time budget ``[run] max_minutes`` (``train_seconds``
    spent so far), for a fixed-time run on a shared machine whose speed is not known in
    advance; the warm-up stays in steps.
    """
    o = cfg.optim
    if o.schedule == "time":
        t = min(max(train_seconds / (60.0 * cfg.run.max_minutes), 0.0), 1.0)
        warm = min(1.0, (step + 1) / o.warmup_steps) if o.warmup_steps else 1.0
        return warm * (o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + math.cos(math.pi * t)))
    if o.warmup_steps and step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    t = (step - o.warmup_steps) / max(1, o.total_steps - o.warmup_steps)
    t = min(max(t, 0.0), 1.0)
    return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + math.cos(math.pi * t))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1] (``a`` clamped first)."""
    mse = F.mse_loss(a.clamp(0, 1).float(), b.float()).item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def estimate_loss(t: torch.Tensor, A: torch.Tensor, known: dict[str, torch.Tensor]) -> torch.Tensor:
    """L1 of a transmission estimate (N x 1 x H x W) and a light estimate (N x 3 x 1 x 1) from
    the truth (:class:`restorecli.train.synth.Haze`'s conditioning dict), the light only
    where a sample has haze."""
    if "transmission" not in known:
        raise ConfigError("[optim] estimate_weight needs a degradation that knows its transmission and light (haze)")
    loss_t = (t.float() - known["transmission"].float()).abs().mean()
    w = known["light_known"].float()
    err_a = (A.float().flatten(1) - known["light"].float()).abs().mean(1)
    return loss_t + (w * err_a).sum() / w.sum().clamp(min=1.0)


def add_conditioning(x: torch.Tensor, cond: dict[str, torch.Tensor], names: tuple[str, ...]) -> torch.Tensor:
    """Concatenate a constant per-sample map for each conditioning name after the image."""
    if not names:
        return x
    maps = []
    for name in names:
        if name not in cond:
            raise ConfigError(f"the model needs a {name!r} conditioning input that the degradation does not give")
        v = cond[name].to(x.device, x.dtype).view(-1, 1, 1, 1)
        maps.append(v.expand(x.shape[0], 1, x.shape[2], x.shape[3]))
    return torch.cat([x, *maps], 1)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _loss_fn(cfg: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if cfg.optim.loss == "l1":
        return lambda a, b: (a - b).abs().mean()
    if cfg.optim.loss == "psnr":
        # -PSNR per sample, averaged: the gradient of log(MSE) is dMSE / MSE, so a lightly
        # degraded sample (small error) counts as much as a heavy one. The floor caps it at 80 dB.
        return lambda a, b: 10.0 * torch.log10(((a - b) ** 2).flatten(1).mean(1) + 1e-8).mean()
    eps2 = cfg.optim.charbonnier_eps ** 2
    return lambda a, b: torch.sqrt((a - b) ** 2 + eps2).mean()


class EMA:
    """Exponential moving average of parameters and buffers (float32 copies)."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        self.decay, self.warmup = decay, warmup
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if v.dtype.is_floating_point:
                s.mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                s.copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k in self.shadow:
            self.shadow[k].copy_(state[k])


# ------------------------------------------------------------------------------ distributed

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.initialised:
            torch.distributed.barrier()


def init_distributed(device_kind: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")), initialised=True)


def pick_device(name: str, dist: Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and dist.world > 1:
        name = f"cuda:{dist.local_rank}"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("[run] device asks for CUDA but no CUDA device is available")
        torch.cuda.set_device(dev)
    return dev


# ------------------------------------------------------------------------------ the trainer

@dataclass
class TrainResult:
    step: int
    out_dir: Path
    weights: Path | None
    sha256: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


class Trainer:
    def __init__(self, cfg: TrainConfig, console=None, quiet: bool = False):
        self.cfg = cfg.validate()
        self.quiet = quiet
        if console is None:
            from rich.console import Console
            console = Console(stderr=True, highlight=False)
        self.console = console
        dev_kind = "cuda" if (cfg.run.device.startswith("cuda") or
                              (cfg.run.device == "auto" and torch.cuda.is_available())) else "cpu"
        self.dist = init_distributed(dev_kind)
        self.device = pick_device(cfg.run.device, self.dist)
        if cfg.run.threads > 0:
            torch.set_num_threads(cfg.run.threads)
        torch.manual_seed(cfg.run.seed)  # identical initial weights on every rank
        self.model = create_model(cfg.model.name, **cfg.model.overrides)
        self.spec = self.model.spec
        if cfg.model.init:
            self._init_from(cfg.model.init)
        m = self.spec.size_multiple
        if cfg.data.patch_size % m:
            raise ConfigError(f"[data] patch_size {cfg.data.patch_size} must be a multiple of "
                              f"{m} for {cfg.model.name}")
        self.model.to(self.device)
        if cfg.model.channels_last:
            self.model.to(memory_format=torch.channels_last)
        deg_name = cfg.degradation.name or default_degradation(cfg.run.task)
        self.degradation = create_degradation(deg_name, **cfg.degradation.params)
        if cfg.data.paired and self.spec.conditioning:
            raise ConfigError(f"{cfg.model.name} is conditioned on {', '.join(self.spec.conditioning)}, "
                              "which paired folders do not give; use clean images + a degradation")
        self.sampler = build_sampler(cfg, rank=self.dist.rank)
        if self.dist.main and not quiet:
            for message in self.sampler.notes:
                self.console.print(f"note: {message}", markup=False, highlight=False, soft_wrap=True)
        self.deg_gen = torch.Generator().manual_seed(cfg.run.seed * 1000 + 500 + self.dist.rank)
        self.ema = EMA(self.model, cfg.ema.decay, cfg.ema.warmup) if cfg.ema.decay > 0 else None
        decay, no_decay = [], []
        for n, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.optim.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))
        self.net: nn.Module = self.model
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.net = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.loss_fn = _loss_fn(cfg)
        self.physics_weight = float(cfg.optim.physics_weight)
        self.estimate_weight = float(cfg.optim.estimate_weight)
        for key, w in (("physics_weight", self.physics_weight), ("estimate_weight", self.estimate_weight)):
            if w > 0 and not hasattr(self.model, "estimate_at_scale"):
                raise ConfigError(f"[optim] {key} needs a network that estimates transmission and light "
                                  f"(asmunet-*), not {cfg.model.name}")
        self.step = 0
        self.train_seconds = 0.0  # wall time spent training, summed over resumes
        self.history: list[dict[str, Any]] = []
        self.out_dir = cfg.out_dir
        self.ckpt_dir = self.out_dir / "checkpoints"
        self._val_images = build_val_images(cfg) if self.dist.main and cfg.val.every_steps > 0 else []
        self.last_val: dict[str, float] = {}

    def _init_from(self, source: str) -> None:
        """``[model] init``: start from a weights file or a weights.toml name (same on every rank)."""
        path = Path(source).expanduser()
        if not path.is_file():
            from ..weights.registry import load_registry
            from ..weights.resolve import locate_entry
            reg = load_registry()
            if source not in reg:
                raise ConfigError(f"[model] init = {source!r}: neither a file nor a weights name")
            path, _ = locate_entry(reg.get(source))
        skip = self.cfg.model.init_skip
        unmatched = [p for p in skip if not any(k.startswith(p) for k in self.model.state_dict())]
        if unmatched:
            raise ConfigError(f"[model] init_skip: {', '.join(map(repr, unmatched))} match no parameter of {self.cfg.model.name}")
        report = transfer_weights(self.model, read_state_dict(path), skip=skip)
        if self.dist.main:
            self.console.print(f"init from {source}: {len(report['copied'])} tensors copied, "
                               f"{len(report['sliced'])} sliced, {len(report['padded'])} padded, {len(report['skipped'])} left fresh")

    # -- one step ----------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(input, target, the synthetic part's conditioning dict: what the degradation knows of
        its samples, the last rows of the batch)."""
        b = self.sampler.next()
        clean = b.clean
        m = 0 if b.degraded is None else b.degraded.shape[0]
        parts_in, parts_tgt = [], []
        if m:
            parts_in.append(b.degraded)
            parts_tgt.append(clean[:m])
        cond: dict[str, torch.Tensor] = {}
        if clean.shape[0] > m:
            deg, tgt, cond = self.degradation(clean[m:], self.deg_gen)
            parts_in.append(deg)
            parts_tgt.append(tgt)
        x = torch.cat(parts_in).to(self.device)
        y = torch.cat(parts_tgt).to(self.device)
        x = add_conditioning(x, cond, self.spec.conditioning)
        if self.cfg.model.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y, {k: v.to(self.device) for k, v in cond.items()}

    def train_step(self) -> tuple[float, float]:
        self.net.train()
        lr = lr_at(self.step, self.cfg, self.train_seconds)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        x, y, known = self._batch()
        if self.physics_weight > 0 or self.estimate_weight > 0:  # through forward, so that DDP syncs the gradients
            out, t, A = self.net(x, return_estimates=True)
        else:
            out = self.net(x)
        loss = self.loss_fn(out, y)
        if self.physics_weight > 0:
            rehazed = y.float() * t + A * (1.0 - t)
            loss = loss + self.physics_weight * self.loss_fn(rehazed, x[:, :3].float())
        if self.estimate_weight > 0:
            loss = loss + self.estimate_weight * estimate_loss(t, A, known)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model, self.step)
        self.step += 1
        return loss.item(), psnr(out.detach(), y)

    # -- validation --------------------------------------------------------------------
    def eval_model(self) -> nn.Module:
        """A copy of the model holding the EMA weights (the model itself without EMA)."""
        if self.ema is None:
            return self.model
        m = create_model(self.cfg.model.name, **self.cfg.model.overrides).to(self.device)
        m.load_state_dict({k: v.to(m.state_dict()[k].dtype) for k, v in self.ema.state_dict().items()})
        return m

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if not self._val_images:
            return {}
        model = self.eval_model().eval()
        gen = torch.Generator()
        out: dict[str, float] = {}
        allv = []
        for setting in self.cfg.val.settings:
            deg = self.degradation.fixed(**setting)
            gen.manual_seed(self.cfg.val.seed)
            vals, inputs = [], []
            for im in self._val_images:
                clean = torch.from_numpy(im).permute(2, 0, 1)[None]
                x, y, cond = deg(clean, gen)
                inputs.append(psnr(x.clamp(0, 1), y))  # the degraded input's own score: the floor
                x = add_conditioning(x, cond, self.spec.conditioning).to(self.device)
                pred = model(x).clamp(0, 1).cpu()
                vals.append(psnr(pred, y))
            suffix = "_".join(f"{k}{v}" for k, v in setting.items())
            out["val_psnr_" + suffix] = float(np.mean(vals))
            out["input_psnr_" + suffix] = float(np.mean(inputs))
            allv += vals
        out["val_psnr"] = float(np.mean(allv))
        return out

    # -- checkpoints -------------------------------------------------------------------
    def _gather(self, obj: Any) -> list[Any]:
        if self.dist.world == 1:
            return [obj]
        objs: list[Any] = [None] * self.dist.world
        torch.distributed.all_gather_object(objs, obj)
        return objs

    def save_checkpoint(self) -> Path | None:
        streams = self._gather({"sampler": self.sampler.state_dict(), "deg_gen": self.deg_gen.get_state()})
        if not self.dist.main:
            return None
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self.step,
            "train_seconds": self.train_seconds,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "optimizer": self.optimizer.state_dict(),
            "streams": streams,
            "config": dump_toml(self.cfg),
            "history": json.dumps(self.history),
            "world": self.dist.world,
        }
        path = self.ckpt_dir / f"step_{self.step:07d}.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        (self.ckpt_dir / "last.txt").write_text(path.name + "\n")
        ckpts = sorted(self.ckpt_dir.glob("step_*.pt"))
        for old in ckpts[:-max(1, self.cfg.checkpoint.keep)]:
            old.unlink(missing_ok=True)
        return path

    def latest_checkpoint(self) -> Path | None:
        last = self.ckpt_dir / "last.txt"
        if last.is_file():
            p = self.ckpt_dir / last.read_text().strip()
            if p.is_file():
                return p
        ckpts = sorted(self.ckpt_dir.glob("step_*.pt"))
        return ckpts[-1] if ckpts else None

    def load_checkpoint(self, path: str | Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.history = json.loads(state.get("history", "[]"))
        streams = state["streams"]
        if len(streams) == self.dist.world:
            mine = streams[self.dist.rank]
            self.sampler.load_state_dict(mine["sampler"])
            self.deg_gen.set_state(mine["deg_gen"])
        else:  # a different world size: fresh streams, offset by the step so none repeat
            if self.dist.main:
                self.console.print(f"resuming a {len(streams)}-process run on {self.dist.world}: "
                                   "new random streams")
            self.sampler.generator.manual_seed(self.cfg.run.seed * 1000 + self.dist.rank + 7919 * self.step)
            self.deg_gen.manual_seed(self.cfg.run.seed * 1000 + 500 + self.dist.rank + 7919 * self.step)

    # -- export ------------------------------------------------------------------------
    def export(self, path: str | Path, dtype: torch.dtype = torch.float16,
               metrics: dict[str, float] | None = None) -> tuple[Path, str]:
        state = self.ema.state_dict() if self.ema is not None else self.model.state_dict()
        meta = {
            "arch": self.cfg.model.name,
            "task": self.cfg.run.task,
            "step": str(self.step),
            "config": dump_toml(self.cfg),
            "metrics": json.dumps(metrics or {}),
            "conditioning": ",".join(self.spec.conditioning),
        }
        p = save_safetensors(state, path, metadata=meta, dtype=dtype)
        return p, sha256_file(p)

    # -- the loop ----------------------------------------------------------------------
    def fit(self, resume: bool | str | Path = False, export_path: str | Path | None = None,
            export_dtype: torch.dtype = torch.float16) -> TrainResult:
        cfg = self.cfg
        if resume:
            ck = Path(resume) if not isinstance(resume, bool) else self.latest_checkpoint()
            if ck is None:
                raise ConfigError(f"--resume: no checkpoint in {self.ckpt_dir}")
            self.load_checkpoint(ck)
            if self.dist.main:
                self.console.print(f"resumed from {ck} at step {self.step}")
        if self.dist.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.toml").write_text(dump_toml(cfg))
        total = cfg.optim.total_steps
        start_step, t0, cpu0 = self.step, time.monotonic(), time.process_time()
        base_seconds = self.train_seconds
        last_ckpt = time.monotonic()
        stopped_early = False
        log_path = self.out_dir / "metrics.jsonl"
        ema_loss = ema_psnr = None
        progress = None
        use_bar = (self.dist.main and cfg.log.progress and not self.quiet and self.console.is_terminal)
        if use_bar:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            progress = Progress(TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]}  PSNR {task.fields[psnr]} dB  "
                                           "val {task.fields[val]}  {task.fields[rate]} steps/s"),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                console=self.console, transient=False)
            progress.start()
            task_id = progress.add_task("train", total=total, completed=self.step,
                                        loss="-", psnr="-", val="-", rate="-")

        def log_line(rec: dict[str, Any]) -> None:
            if not self.dist.main:
                return
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")

        if cfg.run.max_minutes > 0 and self.train_seconds >= 60 * cfg.run.max_minutes:
            total = self.step  # the time budget is spent already (e.g. --resume to export)
            stopped_early = True
        try:
            while self.step < total:
                loss, p = self.train_step()
                ema_loss = loss if ema_loss is None else 0.95 * ema_loss + 0.05 * loss
                ema_psnr = p if ema_psnr is None else 0.95 * ema_psnr + 0.05 * p
                elapsed = time.monotonic() - t0
                rate = (self.step - start_step) / max(elapsed, 1e-9)
                do_val = cfg.val.every_steps > 0 and (self.step % cfg.val.every_steps == 0 or self.step == total)
                if do_val:
                    if self.dist.main:
                        self.last_val = self.validate()
                        rec = {"step": self.step, "time_s": round(elapsed, 1),
                               "cpu_s": round(time.process_time() - cpu0, 1), **self.last_val}
                        self.history.append(rec)
                        log_line(rec)
                        if not use_bar and not self.quiet:
                            self.console.print("val  " + "  ".join(f"{k}={v:.2f}" for k, v in self.last_val.items())
                                               + f"  (step {self.step})",
                                               soft_wrap=True)
                    self.dist.barrier()
                if self.dist.main and self.step % cfg.log.every_steps == 0:
                    eta = (total - self.step) / max(rate, 1e-9)
                    if cfg.run.max_minutes > 0:
                        eta = min(eta, 60 * cfg.run.max_minutes - base_seconds - elapsed)
                    rec = {"step": self.step, "loss": round(ema_loss, 5), "psnr": round(ema_psnr, 3),
                           "lr": lr_at(self.step - 1, cfg, self.train_seconds), "steps_per_s": round(rate, 4),
                           "eta_s": round(eta), "time_s": round(elapsed, 1),
                           "train_s": round(base_seconds + elapsed, 1),
                           "cpu_s": round(time.process_time() - cpu0, 1)}
                    log_line(rec)
                    if not use_bar and not self.quiet:
                        self.console.print(f"step {self.step}/{total}  loss {ema_loss:.4f}  PSNR {ema_psnr:.2f} dB  "
                                           f"lr {rec['lr']:.2e}  {rate:.3f} steps/s  ETA {eta / 60:.1f} min", soft_wrap=True)
                if progress is not None:
                    progress.update(task_id, completed=self.step, loss=f"{ema_loss:.4f}", psnr=f"{ema_psnr:.2f}",
                                    val=f"{self.last_val.get('val_psnr', float('nan')):.2f}", rate=f"{rate:.2f}")
                # checkpoint by steps or minutes (rank 0's clock decides for everyone)
                if self.dist.main:
                    by_steps = cfg.checkpoint.every_steps > 0 and self.step % cfg.checkpoint.every_steps == 0
                    by_time = cfg.checkpoint.every_minutes > 0 and \
                        time.monotonic() - last_ckpt >= 60 * cfg.checkpoint.every_minutes
                    over = cfg.run.max_minutes > 0 and base_seconds + elapsed >= 60 * cfg.run.max_minutes
                    due = torch.tensor([float(by_steps or by_time) + 2.0 * over, base_seconds + elapsed],
                                       dtype=torch.float64)
                else:
                    due = torch.zeros(2, dtype=torch.float64)
                if self.dist.world > 1:
                    torch.distributed.broadcast(due, 0)
                flag = int(due[0].item())
                self.train_seconds = float(due[1].item())  # rank 0's clock, the same on every rank
                if flag & 1 or flag & 2:
                    self.save_checkpoint()
                    last_ckpt = time.monotonic()
                if flag & 2:
                    stopped_early = True
                    if self.dist.main:
                        self.console.print(f"stopping at step {self.step}: [run] max_minutes reached")
                    break
            else:
                if self.step > start_step:
                    self.save_checkpoint()
        finally:
            if progress is not None:
                progress.stop()
        result = TrainResult(step=self.step, out_dir=self.out_dir, weights=None, sha256=None,
                             stopped_early=stopped_early)
        if self.dist.main:
            fresh = self.history and self.history[-1].get("step") == self.step and "val_psnr" in self.history[-1]
            metrics = dict(self.last_val) if fresh and self.last_val else (
                self.validate() if cfg.val.every_steps > 0 else {})
            result.metrics = metrics
            path = Path(export_path) if export_path else self.out_dir / f"{cfg.run.name}.safetensors"
            result.weights, result.sha256 = self.export(path, export_dtype, metrics)
        self.dist.barrier()
        return result


def weights_entry(cfg: TrainConfig, result: TrainResult, name: str | None = None,
                  embedded: str | None = None, command: str | None = None, default: bool = False,
                  metrics: list[dict[str, Any]] | None = None) -> str:
    """A ready ``[[weights]]`` TOML entry in weights.toml's format (see that file's header).

    ``metrics`` defaults to the final validation PSNRs (dataset: the config's validation
    images); the training config goes under ``[weights.training]`` (free metadata), as
    ``config`` is reserved for create_model overrides.
    """
    from .config import _toml_str, _toml_value

    name = name or cfg.run.name
    size = Path(result.weights).stat().st_size if result.weights and Path(result.weights).is_file() else None
    lines = ["[[weights]]", f"name = {_toml_str(name)}", f"task = {_toml_str(cfg.run.task)}",
             f"arch = {_toml_str(cfg.model.name)}"]
    if embedded:
        lines.append(f"embedded = {_toml_str(embedded)}")
    elif result.weights:
        lines.append(f"path = {_toml_str(str(result.weights))}")
    lines.append(f'sha256 = "{result.sha256}"')
    if default:
        lines.append("default = true")
    if size:
        lines.append(f"size = {size}")
    if cfg.model.overrides:
        lines.append(f"config = {_toml_value(cfg.model.overrides)}")
    if metrics is None:
        val_set = ", ".join(cfg.val.clean + ([f"{cfg.val.deadleaves_images} dead-leaves images"]
                                             if cfg.val.deadleaves_images else []))
        inputs = {k[len("input_psnr"):]: v for k, v in result.metrics.items() if k.startswith("input_psnr")}
        metrics = [{"name": f"PSNR {k[len('val_psnr_'):]}" if k.startswith("val_psnr_") else "PSNR",
                    "value": round(v, 3), "unit": "dB", "dataset": f"validation ({val_set})",
                    **({"input": round(inputs[k[len("val_psnr"):]], 3)} if k[len("val_psnr"):] in inputs else {}),
                    **({"command": command} if command else {})}
                   for k, v in result.metrics.items() if k.startswith("val_psnr")]
    lines += ["", "[weights.training]"]
    if command:
        lines.append(f"command = {_toml_str(command)}")
    lines.append(f"steps = {result.step}")
    lines += ["", "[weights.training.config]"]
    for section, values in config_to_dict(cfg).items():
        lines.append(f"{section} = {_toml_value(values)}")
    for m in metrics:
        lines += ["", "[[weights.metrics]]"] + [f"{k} = {_toml_value(v)}" for k, v in m.items()]
    return "\n".join(lines) + "\n"
