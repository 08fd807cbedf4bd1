"""Where the derainer loses on the benchmark's foreign rain: the streaks, or the scene change
that comes with them. The foreign rain (benchmarks/foreign_degradations.py, the OpenCV /
albumentations "add rain" recipe) also box-blurs the scene (3x3) and dims it (x0.9 light,
x0.75 heavy); a derainer removes streaks and is not asked to sharpen or relight. For the
held-out photos under the benchmark's exact draws (tasks_quality.py's seeds), prints the PSNR
of the input and of the network's output with parts of the recipe taken away, and the
ceiling of a perfect streak remover: the blurred, dimmed scene without streaks.

    python benchmarks/foreign_rain_parts.py [--weights FILE] [--ensemble N]
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
from tasks_quality import degrade_set  # noqa: E402

from restorecli import Restorer  # noqa: E402
from restorecli.train.data import builtin_photo_paths  # noqa: E402

VARIANTS = {  # name: the foreign rain's keyword switches
    "full recipe (the benchmark)": {},
    "streaks + scene blur": {"scene_gain": False},
    "streaks + scene dim": {"scene_blur": False},
    "streaks only": {"scene_blur": False, "scene_gain": False},
    "scene blur + dim, no streaks": {"streaks": False},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None, help="derain weights (default: the shipped default)")
    ap.add_argument("--ensemble", type=int, default=None, help="self-ensemble size (default: the entry's)")
    ap.add_argument("--seed", type=int, default=8080, help="tasks_quality.py's degradation seed")
    args = ap.parse_args(argv)
    photos = {p.stem: load_u8(p) for p in builtin_photo_paths("test")}
    restorer = Restorer("derain", weights=args.weights, device="cpu", tile="auto", ensemble=args.ensemble)
    print(f"derain: {restorer.weights.name or restorer.weights.path} x{restorer.ensemble}; "
          f"foreign rain, seed {args.seed}; mean PSNR over {', '.join(sorted(photos))}\n")
    print("| level | variant | input (dB) | ours (dB) |")
    print("|---|---|---:|---:|")
    for level in ("light", "heavy"):
        for name, switches in VARIANTS.items():
            deg = degrade_set("derain", level, photos, args.seed, "foreign", **switches)
            inp = np.mean([scores(deg[k], photos[k])[0] for k in sorted(photos)])
            out = np.mean([scores(np.asarray(restorer(deg[k])), photos[k])[0] for k in sorted(photos)])
            print(f"| {level} | {name} | {inp:.2f} | {out:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
