#!/usr/bin/env python
"""The README's before/after pictures: each file of examples/ restored by its task's
default weights (what `restore TASK examples/FILE` does), input left, output right.

    python benchmarks/example_figures.py            # writes docs/img/example-<task>.jpg
    python benchmarks/example_figures.py --tasks derain,dehaze
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from degradation_figures import label  # noqa: E402

EXAMPLES = {  # task -> file in examples/
    "denoise": "chelsea_noisy25.png",
    "derain": "rain.png",
    "deblur": "blur.png",
    "defocus": "defocus.png",
    "dehaze": "haze.png",
    "desnow": "snow.png",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(EXAMPLES))
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = ap.parse_args(argv)
    from restorecli import Restorer
    from restorecli.imageio import read_image
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        src = ROOT / "examples" / EXAMPLES[task]
        restorer = Restorer(task, device="cpu")
        img = read_image(src)
        out = restorer(img.pixels)  # uint8 in, uint8 out
        before = cv2.cvtColor(np.asarray(img.pixels), cv2.COLOR_RGB2BGR)
        after = cv2.cvtColor(np.asarray(out), cv2.COLOR_RGB2BGR)
        name = restorer.weights.name or restorer.spec.name
        strip = np.concatenate([label(before, f"input: examples/{src.name}"), np.full((before.shape[0], 4, 3), 255, np.uint8),
                                label(after, f"restore {task} ({name})")], 1)
        dst = Path(args.out) / f"example-{task}.jpg"
        cv2.imwrite(str(dst), strip, [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
