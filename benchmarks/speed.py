#!/usr/bin/env python
"""Speed, memory and hardware efficiency of the restoration networks, through ``Restorer``.

For each architecture, precision and image size it runs ``Restorer.restore_tensor`` (the
path the CLI and the Python API take: device, precision, padding, tiling) and reports

* seconds per image (best and median of the repeats) and megapixels per second;
* peak memory: on the CPU the process's peak RSS (``VmHWM``, reset just before each
  timed run and read right after it, so it is the peak *during* the runs, not during
  the reference convolution; it includes the Python interpreter, torch and the
  weights), and its growth over the RSS just before; on CUDA
  ``torch.cuda.max_memory_allocated``;
* achieved GFLOP/s: the network's FLOPs (PyTorch's ``FlopCounterMode`` on a copy
  built on the meta device, for exactly the tensors the Restorer runs: the padded
  image, or every tile) over the measured time, and that as a fraction of what a
  plain channels-last 3x3 convolution (64 -> 64 channels, fp32, at the same
  resolution as the network's input, capped at 1024x1024) reaches in the same
  process, with the same threads, measured right before and after every run (the
  faster of the two; the ratio is the median over the repeats). With one thread on
  the CPU (the default) both are timed in process CPU time, so other load on the
  machine changes the seconds but hardly the ratio; else in wall time;
* for half precisions, the PSNR of the output against the fp32 output for the same
  input (a real photo: scikit-image's chelsea, astronaut and coffee, resized).

Each measurement runs in its own subprocess, so peak RSS is that measurement's.
A size is ``256`` (square), ``HxW`` or ``24mp`` (4000x6000, tiled by ``--tile auto``
like any image the Restorer gets). Sizes of several megapixels are slow on a CPU for
the big networks: a size is skipped when the throughput measured at the previous size
predicts more than ``--max-seconds`` (reported as skipped, with the estimate).

Weights: the task's registered default when it is of that architecture (the default
denoiser ``nlmunet-s``), else seeded random weights with IRNeXt's filter gains made
non-zero (as the tests do). Speed does not depend on the values (denormals are
flushed, as the CLI does); the bf16 PSNR does, so read it for random weights as a
measure of numerical error, not of trained quality.

    python benchmarks/speed.py                                   # everything (about 30 min on 2 cores)
    python benchmarks/speed.py --archs irnext-deblur --sizes 512 --precisions fp32
    python benchmarks/speed.py --json speed.json --markdown speed.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARCH_TASK = {"irnext-deblur": "deblur", "irnext-dehaze": "dehaze", "clginet": "deblur",
             "clginet-s": "deblur", "nlmunet-s": "denoise", "wienerunet-s": "defocus",
             "wienerunet-s-dg": "defocus", "wienerunet-s-mix": "defocus"}
DEFAULT_ARCHS = ("irnext-deblur", "irnext-dehaze", "clginet", "clginet-s", "nlmunet-s")
DEFAULT_SIZES = ("256", "512", "1024", "24mp")
PHOTOS = ("chelsea", "astronaut", "coffee")
REF_CAP = 1024  # the reference convolution's side is capped here (memory)


# --------------------------------------------------------------------------- helpers

def parse_size(text: str) -> tuple[int, int]:
    t = text.strip().lower()
    if t.endswith("mp"):
        mp = float(t[:-2])
        w = int(round((mp * 1e6 * 1.5) ** 0.5))  # 3:2, as cameras shoot
        h = int(round(w / 1.5))
        return h, w
    if "x" in t:
        h, w = t.split("x")
        return int(h), int(w)
    return int(t), int(t)


def size_label(h: int, w: int, text: str) -> str:
    return text if text.endswith("mp") else (f"{h}" if h == w else f"{h}x{w}")


def _status(field: str) -> int:
    """A /proc/self/status memory field, in bytes (0 where there is no procfs)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak_rss() -> bool:
    try:  # Linux >= 4.0: writing 5 resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def photo(index: int, h: int, w: int):
    """A real photo resized to cover ``h x w`` and centre-cropped, 1x3xHxW float in [0, 1]."""
    import numpy as np
    import torch
    from PIL import Image

    import skimage.data
    img = Image.fromarray(getattr(skimage.data, PHOTOS[index % len(PHOTOS)])())
    scale = max(h / img.height, w / img.width)
    img = img.resize((max(w, round(img.width * scale)), max(h, round(img.height * scale))),
                     Image.Resampling.BICUBIC)
    top, left = (img.height - h) // 2, (img.width - w) // 2
    arr = np.asarray(img.convert("RGB"))[top:top + h, left:left + w]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div_(255)[None]


def model_flops(arch: str, h: int, w: int, batch: int = 1) -> int:
    """FLOPs of one forward pass at ``h x w`` (FlopCounterMode, meta device: no compute)."""
    import torch
    from restorecli.models import create_model, get_spec
    from restorecli.models.clginet import count_macs

    spec = get_spec(arch)
    with torch.device("meta"):
        model = create_model(arch).eval()
    # what the caller gives: the image and the conditioning maps (not the maps a model makes itself)
    return 2 * count_macs(model, h, w, batch, channels=spec.in_channels + len(spec.conditioning))


def random_weights(arch: str, folder: Path) -> Path:
    import torch
    from restorecli.checkpoint import save_safetensors
    from restorecli.models import create_model

    path = folder / f"{arch}.safetensors"
    if not path.exists():
        torch.manual_seed(0)
        model = create_model(arch)
        with torch.no_grad():  # IRNeXt's filter gains start at zero: make the filters matter
            for key, p in model.named_parameters():
                if key.endswith(("lamb_l", "lamb_h", "inside_all")):
                    p.normal_(0, 0.5)
        save_safetensors(model.state_dict(), path, metadata={"arch": arch})
    return path


def default_weights(arch: str) -> str | None:
    """The task's registered default weights when they are of this architecture."""
    try:
        from restorecli.weights import resolve_weights
        resolved = resolve_weights(ARCH_TASK[arch], None, None)
    except Exception:
        return None
    return str(resolved.path) if resolved.arch == arch and resolved.path else None


# --------------------------------------------------------------------------- worker

def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def conv_reference(device, h: int, w: int):
    """A timer for a plain channels-last 3x3 convolution, 64 -> 64, fp32, at h x w."""
    import torch

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval().to(device, memory_format=torch.channels_last)
    flops = 2 * 64 * 64 * 9 * h * w

    @torch.inference_mode()
    def measure() -> tuple[float, float]:  # GFLOP/s by wall and by CPU time, the better of two calls
        # The input is made here and freed on return, so that the network's runs have the
        # memory to themselves (their peak is read between these calls).
        x = torch.full((1, 64, h, w), 0.5, device=device).contiguous(memory_format=torch.channels_last)
        wall = cpu = float("inf")
        for _ in range(2):
            _sync(device)
            t, c = time.perf_counter(), time.process_time()
            conv(x)
            _sync(device)
            wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
        return flops / wall / 1e9, flops / max(cpu, 1e-9) / 1e9

    measure()  # warm-up: oneDNN picks its kernel on the first call
    return measure


def worker(job: dict) -> dict:
    import numpy as np
    import torch

    from restorecli import Restorer
    from restorecli.tiling import tile_grid

    torch.set_num_threads(job["threads"])
    torch.set_flush_denormal(True)  # as the CLI does
    h, w = job["h"], job["w"]
    kwargs = dict(model=job["arch"], weights=job["weights"], device=job["device"], tile=job["tile"],
                  precision=job["precision"])
    if job.get("compile"):
        kwargs["compile"] = True
    restorer = Restorer(ARCH_TASK[job["arch"]], **kwargs)
    device = restorer.device
    if job.get("variant"):  # --ablation: IRNeXt as before issue 7 (NCHW, unfused), or channels-last only
        from restorecli.models.irnext import IRNeXt
        IRNeXt.channels_last = job["variant"] == "channels-last"
        restorer.model.fuse = False
    x = photo(job["photo"], h, w)

    # Warm-up (oneDNN kernel choice, allocator, compile): the image itself when small,
    # else a 256x256 crop (which runs whole).
    t0 = time.perf_counter()
    restorer.restore_tensor(x if h * w <= 512 * 512 else x[..., :256, :256].contiguous())
    warmup_s = time.perf_counter() - t0
    tile = restorer._plan_tile(x)
    m = restorer.size_multiple
    side_h, side_w = (h, w) if tile == 0 else tile_grid(h, w, tile, restorer.tile_overlap, m)[2:]
    fh, fw = side_h + (-side_h) % m, side_w + (-side_w) % m  # what the network runs on
    n_tiles = restorer.tiles_for(h, w)
    reference = conv_reference(device, min(fh, REF_CAP), min(fw, REF_CAP))

    times, cpu_times, refs, cpu_refs = [], [], [], []
    y = None
    peak = rss_before = 0
    peak_reset = device.type == "cuda"
    for _ in range(job["repeats"]):
        before = reference()
        y = None  # the previous output is not part of this run's memory
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        rss_before = rss_before or _status("VmRSS")
        peak_reset = _reset_peak_rss() or peak_reset
        _sync(device)
        t, c = time.perf_counter(), time.process_time()
        y = restorer.restore_tensor(x)
        _sync(device)
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
        peak = max(peak, torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _status("VmHWM"))
        after = reference()
        refs.append(max(before[0], after[0]))
        cpu_refs.append(max(before[1], after[1]))
    if job.get("out") and y is not None:
        np.save(job["out"], y[0].numpy())
    return dict(times=times, cpu_times=cpu_times, ref_gflops=refs, cpu_ref_gflops=cpu_refs, warmup_s=warmup_s, tile=tile, tiles=n_tiles,
                forward_hw=[fh, fw], ref_hw=[min(fh, REF_CAP), min(fw, REF_CAP)], device=str(device),
                peak_bytes=peak, rss_before=rss_before, peak_is_run_only=peak_reset,
                weights=restorer.describe(), bytes_per_pixel_spec=restorer.spec.bytes_per_pixel)


# --------------------------------------------------------------------------- parent

def machine() -> dict:
    import torch

    cpu = platform.processor()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    info = dict(cpu=cpu, cpus=os.cpu_count(), torch=torch.__version__, python=platform.python_version(),
                load=os.getloadavg() if hasattr(os, "getloadavg") else None,
                mem_gb=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1))
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def psnr(a, b) -> float:
    import numpy as np
    mse = float(np.mean((np.clip(a, 0, 1).astype(np.float64) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def run_one(job: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f"timed out after {timeout:.0f} s")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return dict(error=(p.stderr.strip().splitlines() or ["failed"])[-1])
    return json.loads(lines[-1])


def summarise(job: dict, res: dict) -> dict:
    row = dict(arch=job["arch"], precision=job["precision"] + ("+compile" if job.get("compile") else "")
               + (f" ({job['variant']})" if job.get("variant") else ""),
               size=job["label"], h=job["h"], w=job["w"])
    if "error" in res or "skipped" in res:
        return {**row, **res}
    fh, fw = res["forward_hw"]
    flops = model_flops(job["arch"], fh, fw) * res["tiles"]
    times = res["times"]
    # The ratio uses CPU time when one thread runs on the CPU: other processes on the machine
    # then lengthen the wall time of the network and of the reference by different amounts
    # (the load changes within an 11 s run), but not the CPU time each gets. Else wall time.
    by_cpu = job["threads"] == 1 and res["device"] == "cpu"
    ratios = ([(flops / t) / (r * 1e9) for t, r in zip(res["cpu_times"], res["cpu_ref_gflops"])] if by_cpu
              else [(flops / t) / (r * 1e9) for t, r in zip(times, res["ref_gflops"])])
    wall_ratios = [(flops / t) / (r * 1e9) for t, r in zip(times, res["ref_gflops"])]
    best, med = min(times), statistics.median(times)
    mp = job["h"] * job["w"] / 1e6
    return {**row, "tile": res["tile"], "tiles": res["tiles"], "seconds_best": best, "seconds_median": med,
            "mp_per_s": mp / med, "gflop": flops / 1e9, "gflops": flops / med / 1e9,
            "ref_gflops": statistics.median(res["ref_gflops"]), "ratio": statistics.median(ratios),
            "ratios": ratios, "ratio_by": "cpu time" if by_cpu else "wall time",
            "wall_ratio": statistics.median(wall_ratios), "cpu_seconds": res["cpu_times"],
            "tiled_pixels_per_pixel": fh * fw * res["tiles"] / (job["h"] * job["w"]),
            "peak_rss_gb" if res["device"] == "cpu" else "peak_alloc_gb": res["peak_bytes"] / 2 ** 30,
            "rss_before_gb": res["rss_before"] / 2 ** 30, "warmup_s": res["warmup_s"], "times": times,
            # peak growth over the RSS before the runs, per image pixel (what --tile auto plans with)
            "bytes_per_pixel": (res["peak_bytes"] - (res["rss_before"] if res["device"] == "cpu" else 0))
            / (job["h"] * job["w"]) if res["peak_is_run_only"] else None,
            "weights": res["weights"], "device": res["device"]}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['mem_gb']} GB; torch {m['torch']}; "
             f"{report['threads']} thread(s); load average before/after: "
             f"{' '.join(f'{v:.1f}' for v in report['load_before'])} / "
             f"{' '.join(f'{v:.1f}' for v in report['load_after'])}.",
             "", f"Command: `{report['command']}`", "",
             "| network | precision | size | tiles | s (best / median) | MP/s | GFLOP | GFLOP/s | "
             "÷ conv ref | peak RSS GB | bytes/px | PSNR vs fp32 | tiling overhead |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["results"]:
        head = f"| {r['arch']} | {r['precision']} | {r['size']} |"
        if "error" in r or "skipped" in r:
            lines.append(f"{head} {r.get('skipped') or 'error: ' + r['error']} | | | | | | | | | |")
            continue
        tiles = "whole" if r["tiles"] == 1 else f"{r['tiles']} ({r['tiled_pixels_per_pixel']:.2f}x px)"
        mem = r.get("peak_rss_gb", r.get("peak_alloc_gb"))
        ps, bpp, ov = r.get("psnr_vs_fp32"), r.get("bytes_per_pixel"), r.get("tiling_overhead")
        lines.append(f"{head} {tiles} | {r['seconds_best']:.2f} / {r['seconds_median']:.2f} | "
                     f"{r['mp_per_s']:.3f} | {r['gflop']:.0f} | {r['gflops']:.1f} | {r['ratio']:.2f} | "
                     f"{mem:.2f} | {'' if bpp is None or r['tiles'] > 1 else f'{bpp:.0f}'} | "
                     f"{'' if ps is None else f'{ps:.1f} dB'} | {'' if ov is None else f'{100 * ov:+.0f}%'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", default=None, help="comma-separated (default: all of " + ", ".join(DEFAULT_ARCHS) + ")")
    ap.add_argument("--sizes", default=",".join(DEFAULT_SIZES), help="e.g. 256,512,1024,24mp or 768x1024")
    ap.add_argument("--precisions", default=None, help="default: fp32,bf16 on the CPU; fp32,fp16,bf16 on CUDA")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: robust on a shared machine)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs (default: 3 up to 512x512, else 1)")
    ap.add_argument("--tile", default="auto", help="the Restorer's --tile (default auto, as users run)")
    ap.add_argument("--compile", action="store_true", help="also measure fp32 with torch.compile")
    ap.add_argument("--ablation", action="store_true",
                    help="also measure IRNeXt in fp32 as it was before (NCHW, unfused: 'plain') and "
                         "with channels-last features only")
    ap.add_argument("--max-seconds", type=float, default=300.0,
                    help="skip a size whose predicted time exceeds this (default 300)")
    ap.add_argument("--weights", action="append", default=[], metavar="ARCH=FILE",
                    help="weights for an architecture (default: the task default of that arch, else random)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    import torch
    from restorecli.devices import resolve_device
    from restorecli.models import list_models

    device = resolve_device(args.device)
    known = set(list_models())
    archs = [a.strip() for a in args.archs.split(",")] if args.archs else [a for a in DEFAULT_ARCHS if a in known]
    for a in archs:
        if a not in ARCH_TASK or a not in known:
            ap.error(f"unknown architecture {a!r}: expected some of {', '.join(ARCH_TASK)}")
    precisions = (args.precisions.split(",") if args.precisions
                  else ["fp32", "fp16", "bf16"] if device.type == "cuda" else ["fp32", "bf16"])
    sizes = [(parse_size(s), s.strip().lower()) for s in args.sizes.split(",")]
    given = dict(kv.split("=", 1) for kv in args.weights)

    report = dict(machine=machine(), threads=args.threads, device=str(device),
                  command="python benchmarks/" + " ".join([Path(__file__).name, *(argv if argv is not None else sys.argv[1:])]),
                  load_before=list(os.getloadavg()), results=[])
    tmp = Path(tempfile.mkdtemp(prefix="restorecli-speed-"))
    for arch in archs:
        weights = given.get(arch) or default_weights(arch) or str(random_weights(arch, tmp))
        variants = [(p, False, None) for p in precisions] + ([("fp32", True, None)] if args.compile else [])
        if args.ablation and arch.startswith("irnext"):
            variants += [("fp32", False, "plain"), ("fp32", False, "channels-last")]
        for precision, compiled, variant in variants:
            rate = None  # MP/s at the previous size, to predict the next
            whole = None  # seconds per pixel of the largest untiled run, for the tiling overhead
            for (h, w), text in sizes:
                label = size_label(h, w, text)
                repeats = args.repeats or (3 if h * w <= 512 * 512 else 1)
                job = dict(arch=arch, precision=precision, compile=compiled, variant=variant, h=h, w=w, label=label,
                           tile=args.tile, threads=args.threads, device=args.device, weights=weights,
                           repeats=repeats, photo=sizes.index(((h, w), text)),
                           out=str(tmp / f"{arch}-{precision}-{variant}-{compiled}-{label}.npy")
                           if h * w <= 1024 * 1024 else None)
                predicted = h * w / 1e6 / rate * (repeats + 0.2) if rate else None
                if predicted and predicted > args.max_seconds:
                    res = dict(skipped=f"skipped: ~{predicted:.0f} s predicted (> --max-seconds {args.max_seconds:.0f})")
                else:
                    print(f"{arch} {precision}{'+compile' if compiled else ''} {variant or ''} {label} ...",
                          file=sys.stderr, flush=True)
                    res = run_one(job, timeout=max(600.0, 4 * (predicted or 0) + 300))
                row = summarise(job, res)
                if "mp_per_s" in row:
                    rate = row["mp_per_s"] / 1.2  # tiles add overlap; be pessimistic
                    # CPU seconds with one thread (robust to other load, as for the ratio), else wall
                    secs = statistics.median(row["cpu_seconds"] if row["ratio_by"] == "cpu time" else row["times"])
                    if row["tiles"] == 1:
                        whole = secs / (h * w)
                    elif whole:  # overlap recomputation + blending, against untiled time per pixel
                        row["tiling_overhead"] = secs / (h * w) / whole - 1
                    ref = tmp / f"{arch}-fp32-None-False-{label}.npy"
                    if (precision != "fp32" or compiled or variant) and job["out"] and ref.exists():
                        import numpy as np
                        row["psnr_vs_fp32"] = psnr(np.load(job["out"]), np.load(ref))
                    print(f"  {row['seconds_median']:.2f} s, {row['mp_per_s']:.3f} MP/s, ratio {row['ratio']:.2f}, "
                          f"peak {row.get('peak_rss_gb', row.get('peak_alloc_gb')):.2f} GB", file=sys.stderr)
                else:
                    print(f"  {row.get('skipped') or row.get('error')}", file=sys.stderr)
                report["results"].append(row)
    report["load_after"] = list(os.getloadavg())
    for f in tmp.glob("*.npy"):
        f.unlink()
    text = markdown(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
