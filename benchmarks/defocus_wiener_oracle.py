#!/usr/bin/env python
"""How far a bank of Wiener deconvolutions can take the held-out defocus, given an oracle.

For each held-out photo under the benchmark's seeded defocus (benchmarks/tasks_quality.py's
exact degradations, our generator and the foreign one), this deconvolves the uint8 input with
each PSF of a family (pill-boxes of radius r, or Gaussians of sigma r / 2) and each
regularisation weight lambda of a grid, with the filter wienerunet's bank uses
(restorecli/models/wienerunet.py: Laplacian prior, reflect padding), and keeps the best PSNR
against the clean photo: the PSF and lambda are picked *knowing the answer*, so this is a
ceiling of what choosing among the bank's outputs could give, not a method. It is what made
the case for wienerunet-s (session 12): light defocus, where the plain U-Net gained 0.3 dB over
unsharp masking, has 1.2-3.3 dB more in it.

``--pick sparsity`` picks blind instead, the classical way (Krishnan, Tay & Fergus, CVPR 2011):
at the bank's own lambda (2e-3 r^2) the radius whose output has the lowest L1/L2 ratio of its
luminance gradients (blur lowers the ratio's numerator less than its denominator, ringing
raises it), to see how much of the oracle's gain a no-reference choice keeps.

    python benchmarks/defocus_wiener_oracle.py                 # both families, all four rows
    python benchmarks/defocus_wiener_oracle.py --family disk --levels light
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import load_u8, to_u8  # noqa: E402
from tasks_quality import degrade_set  # noqa: E402

from restorecli.models.wienerunet import WienerBank  # noqa: E402
from restorecli.train.data import builtin_photo_paths  # noqa: E402

RADII = (0.8, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0, 8.0)
LAMBDAS = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def bank_for(family: str, lam: float | None) -> WienerBank:
    """Every radius of RADII at one lambda (lam0 is per r^2, so undo it), or at the bank's own
    starting lambdas (None)."""
    lam0 = 2e-3 if lam is None else 1.0
    if family == "disk":
        bank = WienerBank(radii=RADII, lam0=lam0)
    else:
        bank = WienerBank(radii=(), sigmas=tuple(r / 2 for r in RADII), lam0=lam0)
    if lam is not None:
        with torch.no_grad():
            bank.log_lambda.fill_(math.log(lam))
    return bank


def gradient_sparsity(rgb: np.ndarray) -> float:
    """L1 / L2 of the luminance's horizontal and vertical differences (lower: sharper, cleaner)."""
    lum = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    g = np.concatenate([np.diff(lum, axis=0).ravel(), np.diff(lum, axis=1).ravel()])
    return float(np.abs(g).sum() / (np.sqrt((g ** 2).sum()) + 1e-12))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="disk,gauss", help="disk and/or gauss")
    ap.add_argument("--levels", default="light,heavy")
    ap.add_argument("--generators", default="ours,foreign")
    ap.add_argument("--seed", type=int, default=8080, help="tasks_quality.py's seed")
    ap.add_argument("--pick", default="oracle", choices=("oracle", "sparsity"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    photos = {p.stem: load_u8(p) for p in builtin_photo_paths("test")}
    command = " ".join(["python benchmarks/defocus_wiener_oracle.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"Command: `{command}`")
    print()
    print(f"| PSFs | generator | level | input PSNR | {args.pick} pick PSNR | per photo: PSNR (r, lambda) |")
    print("| --- | --- | --- | ---: | ---: | --- |")
    for family in args.family.split(","):
        banks = ({lam: bank_for(family, lam) for lam in LAMBDAS} if args.pick == "oracle"
                 else {None: bank_for(family, None)})
        for gen in args.generators.split(","):
            for level in args.levels.split(","):
                degraded = degrade_set("defocus", level, photos, args.seed, gen)
                inputs, best = [], []
                for k in sorted(photos):
                    inputs.append(psnr(degraded[k], photos[k]))
                    y = torch.from_numpy(degraded[k]).permute(2, 0, 1)[None].float() / 255.0
                    top = (-math.inf, None, None)
                    for lam, bank in banks.items():
                        with torch.no_grad():
                            out = bank(y)[0].clamp(0, 1).numpy()
                        for i, r in enumerate(RADII):
                            rgb = to_u8(out[3 * i:3 * i + 3].transpose(1, 2, 0))
                            s = psnr(rgb, photos[k])
                            key = s if args.pick == "oracle" else -gradient_sparsity(rgb)
                            if key > top[0]:
                                top = (key, (r, lam if lam is not None else 2e-3 * r * r), s)
                    best.append(top)
                per = ", ".join(f"{k} {s:.2f} ({r:g}, {lam:.2g})" for k, (_, (r, lam), s) in zip(sorted(photos), best))
                print(f"| {family} | {gen} | {level} | {np.mean(inputs):.2f} | "
                      f"{np.mean([b[2] for b in best]):.2f} | {per} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
