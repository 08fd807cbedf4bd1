#!/usr/bin/env python
"""Quality of the default denoiser on held-out real photos vs tuned NLM and BM3D.

Photos: scikit-image's ``builtin:test`` split (astronaut, chelsea, coffee, rocket;
restorecli/train/data.py), which no training or validation of ours uses. For each
sigma, Gaussian noise from a fixed seed is added to the 8-bit photo, then clipped
and rounded to uint8, as users' noisy files are. Every method gets that uint8 file
and its output is rounded to uint8 before PSNR/SSIM against the clean 8-bit photo.

Methods
  ours           the task's default weights (or --weights), told the true sigma
  ours (auto)    the same with --sigma auto (the noise estimate)
  NLM (tuned)    cv2.fastNlMeansDenoisingColored, h = hColor picked per sigma from a
                 grid to maximise the mean PSNR on this very set (an upper bound for NLM)
  BM3D           bm3d.bm3d_rgb (CBM3D, opponent colour space) with the true sigma

Needs the ``bench`` extra (``pip install -e .[bench]``: bm3d, scikit-image).
Classical results are cached in benchmarks/.cache (delete it to recompute).

    python benchmarks/denoise_quality.py                 # the table in docs/training.md
    python benchmarks/denoise_quality.py --gray          # also the gray versions
    python benchmarks/denoise_quality.py --weights runs/x/x.safetensors --methods ours
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from restorecli.train.data import BUILTIN_SPLITS, builtin_photo_paths  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Cache, load_u8, scores  # noqa: E402

NLM_GRID = (0.45, 0.55, 0.65, 0.75, 0.85, 1.0, 1.15, 1.3)  # h / sigma


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def nlm(noisy: np.ndarray, h: float) -> np.ndarray:
    if noisy.ndim == 2:
        return cv2.fastNlMeansDenoising(noisy, None, h, 7, 21)
    bgr = cv2.cvtColor(noisy, cv2.COLOR_RGB2BGR)
    out = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def bm3d_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d
    z = noisy.astype(np.float64) / 255.0
    out = bm3d.bm3d_rgb(z, sigma / 255.0) if z.ndim == 3 else bm3d.bm3d(z, sigma / 255.0)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sigmas", default="15,25,50")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--methods", default="ours,ours-auto,nlm,bm3d")
    ap.add_argument("--weights", default=None, help="weights for 'ours' (default: the registry's denoise default)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--ensemble", type=int, default=None,
                    help="self-ensemble size for 'ours' (1, 2, 4, 8; default: the weights entry's)")
    ap.add_argument("--gray", action="store_true", help="also run on the gray (luma) versions")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    cache = Cache("denoise_quality.json", not args.no_cache)

    paths = builtin_photo_paths("test")
    photos = {p.stem: load_u8(p) for p in paths}
    modes = ["color"] + (["gray"] if args.gray else [])
    restorer = None
    if any(m.startswith("ours") for m in methods):
        from restorecli import Restorer
        restorer = Restorer("denoise", model=args.model, weights=args.weights, device="cpu", tile="auto",
                            ensemble=args.ensemble)
        w = restorer.weights
        print(f"ours: {restorer.describe()}, {w.path}", file=sys.stderr)

    rows = []  # (mode, sigma, method, psnr, ssim, seconds)
    for mode in modes:
        for sigma in sigmas:
            clean = {k: (to_gray(v) if mode == "gray" else v) for k, v in photos.items()}
            noisy = {k: add_noise(c, sigma, args.seed + int(sigma) * 1000 + i)
                     for i, (k, c) in enumerate(sorted(clean.items()))}
            tag = f"{mode}|s{sigma:g}|seed{args.seed}"
            digest = hashlib.sha256(b"".join(noisy[k].tobytes() for k in sorted(noisy))).hexdigest()[:12]
            tag += f"|{digest}"
            res = {"noisy": [scores(noisy[k], clean[k]) for k in sorted(clean)]}
            times = {"noisy": 0.0}
            for m in methods:
                t0 = time.time()
                if m in ("ours", "ours-auto"):
                    vals = []
                    for k in sorted(clean):
                        out = restorer(noisy[k], sigma=sigma if m == "ours" else "auto")
                        vals.append(scores(out, clean[k]))
                    res[m] = vals
                elif m == "nlm":
                    best = None
                    for f in NLM_GRID:
                        h = round(f * sigma, 2)
                        vals = [cache.get(f"nlm|{tag}|{k}|h{h}", lambda k=k, h=h: scores(nlm(noisy[k], h), clean[k]))
                                for k in sorted(clean)]
                        if best is None or np.mean([v[0] for v in vals]) > np.mean([v[0] for v in best[1]]):
                            best = (h, vals)
                    res[f"nlm (h={best[0]:g})"] = best[1]
                    m = f"nlm (h={best[0]:g})"
                elif m == "bm3d":
                    res[m] = [cache.get(f"bm3d|{tag}|{k}", lambda k=k: scores(bm3d_denoise(noisy[k], sigma), clean[k]))
                              for k in sorted(clean)]
                else:
                    raise SystemExit(f"unknown method {m!r}")
                times[m] = time.time() - t0
            for m, vals in res.items():
                rows.append({"mode": mode, "sigma": sigma, "method": m,
                             "psnr": float(np.mean([v[0] for v in vals])),
                             "ssim": float(np.mean([v[1] for v in vals])),
                             "per_image_psnr": {k: round(v[0], 3) for k, v in zip(sorted(clean), vals)}})
            print(f"done {mode} sigma {sigma:g}", file=sys.stderr)

    print(f"Held-out photos (scikit-image, never trained on): {', '.join(BUILTIN_SPLITS['test'])}; "
          f"noise seed {args.seed}, 8-bit clipped + quantised.\n")
    print("| image | sigma | method | PSNR (dB) | SSIM |")
    print("|---|---:|---|---:|---:|")
    for r in rows:
        name = "ours" if r["method"] == "ours" else r["method"]
        print(f"| {r['mode']} | {r['sigma']:g} | {name} | {r['psnr']:.2f} | {r['ssim']:.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
