#!/usr/bin/env python
"""The dehazer's overview size, on the validation photo (how ``ESTIMATE_SIDE`` in
restorecli/models/asmunet.py was chosen; never the held-out photos).

asmunet estimates ``t`` and ``A`` on an overview of the image no larger than ``estimate_side``
px and brings ``t`` back by a fast guided filter (radius, eps at the overview's size). This
scores each setting on ``builtin:val`` (motorcycle_right) under our haze at the light and heavy
presets, 6 seeds each, uint8 in and out, mean PSNR in dB; side 0 is full resolution.

    python benchmarks/dehaze_overview.py                          # the default dehazer
    python benchmarks/dehaze_overview.py --weights runs/x/x.safetensors --sides 0,128,192,256
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_u8, scores, to_u8  # noqa: E402
from restorecli import Restorer  # noqa: E402
from restorecli.train import synth  # noqa: E402
from restorecli.train.data import builtin_photo_paths  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="a dehaze weights file (default: the registry's default)")
    ap.add_argument("--sides", default="0,96,128,192,256", help="overview sides to try (0: full resolution)")
    ap.add_argument("--radius", type=int, default=4, help="the guided upsampling's radius at the overview's size")
    ap.add_argument("--eps", type=float, default=1e-3)
    ap.add_argument("--seeds", type=int, default=6)
    args = ap.parse_args(argv)
    sides = [int(v) for v in args.sides.split(",") if v.strip()]
    photos = {p.stem: load_u8(p) for p in builtin_photo_paths("val")}
    r = Restorer("dehaze", weights=args.weights, device="cpu", tile=0)
    if not hasattr(r.model, "estimate_side"):
        raise SystemExit(f"{r.spec.name} does not estimate on an overview")
    print(f"{r.weights.name or r.weights.path} ({r.spec.name}); photos: {', '.join(photos)}; "
          f"{args.seeds} seeds per preset; guided upsampling r={args.radius}, eps={args.eps:g}")
    print("| overview side | light | heavy |\n|---:|---:|---:|")
    rows = {side: {"light": [], "heavy": []} for side in sides}
    for level in ("light", "heavy"):
        for k in sorted(photos):
            for seed in range(args.seeds):
                rng = np.random.default_rng([77, seed])
                hazy = to_u8(synth.haze(photos[k].astype(np.float32) / 255.0, rng, level))
                for side in sides:
                    r.model.estimate_side, r.model.upsample_radius, r.model.upsample_eps = side, args.radius, args.eps
                    rows[side][level].append(scores(np.asarray(r(hazy)), photos[k])[0])
    for side in sides:
        print(f"| {side or 'full'} | {np.mean(rows[side]['light']):.2f} | {np.mean(rows[side]['heavy']):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
