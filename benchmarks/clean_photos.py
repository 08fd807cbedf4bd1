"""What each task's default does to a photo with nothing to restore. A user runs `restore
derain` on a photo that turns out to be dry, or a whole folder of which only some shots
are rainy: the network should leave the rest nearly as it was. Prints, per task, the PSNR
and SSIM of the output against its own (clean) input, their mean and worst photo, and the
mean brightness shift (output minus input, 0-255 levels). An output equal to its input
counts as 100 dB in the mean. Photos: the held-out four of
tasks_quality.py, and/or any folder of images.

    python benchmarks/clean_photos.py [--tasks derain,deblur] [--photos DIR] [--weights TASK=FILE]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_u8, scores  # noqa: E402

from restorecli import TASKS, Restorer  # noqa: E402
from restorecli.imageio import IMAGE_SUFFIXES  # noqa: E402
from restorecli.train.data import builtin_photo_paths  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--photos", default="builtin:test",
                    help="builtin:test (the benchmark's held-out four) or a folder of images")
    ap.add_argument("--weights", action="append", default=[], metavar="TASK=FILE",
                    help="weights for a task (default: the registry's default)")
    ap.add_argument("--ensemble", type=int, default=None, help="self-ensemble size (default: each entry's)")
    args = ap.parse_args(argv)
    if args.photos == "builtin:test":
        paths = builtin_photo_paths("test")
    else:
        paths = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    photos = {p.stem: load_u8(p) for p in paths}
    weights = dict(w.split("=", 1) for w in args.weights)
    print(f"photos: {', '.join(photos)} ({args.photos})\n")
    print("| task | weights | PSNR out vs in, mean / worst (dB) | SSIM mean / worst | worst photo | brightness shift |")
    print("|---|---|---:|---:|---|---:|")
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        restorer = Restorer(task, weights=weights.get(task), device="cpu", tile="auto", ensemble=args.ensemble)
        psnr, ssim, shift = {}, {}, []
        for name, img in photos.items():
            out = np.asarray(restorer(img))
            psnr[name], ssim[name] = scores(out, img)
            psnr[name] = min(psnr[name], 100.0)  # identical: inf
            shift.append(float(out.astype(np.float64).mean() - img.astype(np.float64).mean()))
        worst = min(psnr, key=psnr.get)
        label = f"{restorer.weights.name or restorer.weights.path} x{restorer.ensemble}"
        print(f"| {task} | {label} | {np.mean(list(psnr.values())):.2f} / {psnr[worst]:.2f} | "
              f"{np.mean(list(ssim.values())):.4f} / {min(ssim.values()):.4f} | {worst} | "
              f"{np.mean(shift):+.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
