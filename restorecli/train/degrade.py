"""``python -m restorecli.train.degrade KIND INPUT OUTPUT``: one seeded synthetic degradation
(rain, motion_blur, defocus, haze, snow; restorecli/train/synth.py) applied to an image file,
written as 8 bits. It makes the examples/ images and the pictures in docs/degradations.md::

    python -m restorecli.train.degrade rain photo.jpg rainy.png --level heavy --seed 1
"""
from __future__ import annotations

import cv2
import numpy as np

from . import synth
from .data import load_image


def main(argv: list[str] | None = None) -> int:
    """Degrade one image file."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m restorecli.train.degrade",
                                 description="Degrade an image with a seeded synthetic degradation "
                                             "(rain, motion_blur, defocus, haze, snow).")
    ap.add_argument("kind", choices=sorted(synth.SYNTHS))
    ap.add_argument("input")
    ap.add_argument("output", help="written as 8-bit (PNG keeps it lossless)")
    ap.add_argument("--level", default="wide", help="wide (default), light or heavy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crop", default=None, metavar="X,Y,W,H", help="crop the input first")
    ap.add_argument("--max-side", type=int, default=0, help="downscale the input so its longer side is at most this")
    args = ap.parse_args(argv)
    x = load_image(args.input)
    if args.crop:
        cx, cy, cw, ch = (int(v) for v in args.crop.split(","))
        x = np.ascontiguousarray(x[cy:cy + ch, cx:cx + cw])
    if args.max_side and max(x.shape[:2]) > args.max_side:
        s = args.max_side / max(x.shape[:2])
        x = cv2.resize(x, (round(x.shape[1] * s), round(x.shape[0] * s)), interpolation=cv2.INTER_AREA)
    x = np.round(x * 255.0) / 255.0  # start from the 8-bit picture, as a user's file is
    y = synth.SYNTHS[args.kind][0](x, np.random.default_rng(args.seed), args.level)
    out = cv2.cvtColor(np.round(y * 255.0).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ext = "." + args.output.rsplit(".", 1)[-1] if "." in args.output else ".png"
    ok, buf = cv2.imencode(ext, out)
    if not ok:
        raise SystemExit(f"{args.output}: cannot encode {ext}")
    buf.tofile(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
