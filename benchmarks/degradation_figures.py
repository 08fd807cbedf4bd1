#!/usr/bin/env python
"""The pictures of docs/degradations.md: for each degradation a strip
``clean | light | heavy | wide`` of one crop of examples/coffee.jpg (seeded), plus a
gallery of random camera-shake kernels.

    python benchmarks/degradation_figures.py            # writes docs/img/degrade-*.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from restorecli.train import synth  # noqa: E402
from restorecli.train.data import load_image  # noqa: E402

LEVELS = ("light", "heavy", "wide")


def label(tile: np.ndarray, text: str) -> np.ndarray:
    t = tile.copy()
    cv2.rectangle(t, (0, 0), (8 + 8 * len(text), 18), (0, 0, 0), -1)
    cv2.putText(t, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return t


def save_png(path: Path, bgr: np.ndarray) -> None:
    """A 256-colour palette PNG (a fifth of the bytes of an RGB one; fine for a figure)."""
    from PIL import Image
    rgb = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def to_bgr8(x: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.round(np.clip(x, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(ROOT / "examples" / "coffee.jpg"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--size", type=int, default=160, help="side of each panel (a downscaled crop)")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    im = load_image(args.image)
    h, w = im.shape[:2]
    side = min(h, w, 352)
    y0, x0 = (h - side) // 2 - 20, (w - side) // 2
    crop = cv2.resize(np.ascontiguousarray(im[y0:y0 + side, x0:x0 + side]), (args.size, args.size),
                      interpolation=cv2.INTER_AREA)
    crop = np.round(crop * 255) / 255
    for kind, (fn, _) in synth.SYNTHS.items():
        tiles = [label(to_bgr8(crop), "clean")]
        for level in LEVELS:
            y = fn(crop, np.random.default_rng([args.seed, LEVELS.index(level)]), level)
            tiles.append(label(to_bgr8(y), level))
        path = out / f"degrade-{kind}.png"
        save_png(path, np.hstack(tiles))
        print(path, path.stat().st_size // 1024, "KB")
    # camera-shake kernels, each scaled to its panel
    rng = np.random.default_rng(args.seed)
    ks = []
    for i in range(12):
        k = synth.shake_kernel(rng)
        big = cv2.resize(k / k.max(), (64, 64), interpolation=cv2.INTER_NEAREST)
        t = cv2.cvtColor((np.sqrt(big) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        cv2.putText(t, f"{k.shape[0]}px", (2, 62), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 200, 255), 1, cv2.LINE_AA)
        ks.append(cv2.copyMakeBorder(t, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(80, 80, 80)))
    path = out / "degrade-kernels.png"
    cv2.imwrite(str(path), np.vstack([np.hstack(ks[:6]), np.hstack(ks[6:])]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(path, path.stat().st_size // 1024, "KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
