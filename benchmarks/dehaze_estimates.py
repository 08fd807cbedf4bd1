"""Where a dehazer's error comes from: its transmission ``t`` or its light ``A``.

For the held-out photos under the benchmark's haze (benchmarks/tasks_quality.py: same seeds,
both generators), prints the network's ``A`` and mean ``t``, and for the foreign fog, whose
truth is recoverable (it blends towards a gray ``fog`` with opacity ``alpha``: ``t = 1 - alpha``,
``A = fog``), the PSNR of the inversion ``(I - A) / t + A`` with the true ``A``, the true ``t``,
and both. Then a probe: the photos darkened by a gain and hazed with a known light of 0.85,
and the network's light for them.

    python benchmarks/dehaze_estimates.py [--weights FILE]      # default: the shipped dehazer
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_u8, scores, to_u8  # noqa: E402
from foreign_degradations import haze as foreign_haze  # noqa: E402
from tasks_quality import TASKS, degrade_set  # noqa: E402

from restorecli import Restorer  # noqa: E402
from restorecli.train import synth  # noqa: E402
from restorecli.train.data import builtin_photo_paths  # noqa: E402


def foreign_truth(x: np.ndarray, rng_of, level: str) -> tuple[np.ndarray, float]:
    """(t, A) of the foreign fog: its draws do not depend on the image, so hazing black and
    white images with the same seed gives ``fog * alpha`` and ``1 - alpha + fog * alpha``."""
    black = foreign_haze(np.zeros_like(x), rng_of(), level)[..., 0]
    white = foreign_haze(np.ones_like(x), rng_of(), level)[..., 0]
    alpha = 1.0 - white + black
    return 1.0 - alpha, float(black.max() / max(float(alpha.max()), 1e-6))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="a dehaze weights file (default: the shipped one)")
    ap.add_argument("--seed", type=int, default=8080, help="tasks_quality.py's degradation seed")
    args = ap.parse_args(argv)
    model = Restorer("dehaze", weights=args.weights, device="cpu").model
    photos = {p.stem: load_u8(p) for p in builtin_photo_paths("test")}
    ti = list(TASKS).index("dehaze")

    def estimate(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            t, A = model.estimate_at_scale(torch.from_numpy(y).permute(2, 0, 1)[None])
        return t[0, 0].numpy(), A.flatten().numpy()

    def inverted(y, t, A, clean) -> float:
        return scores(to_u8((y - A) / np.maximum(t[..., None], 0.05) + A), clean)[0]

    for gen in ("ours", "foreign"):
        for li, level in enumerate(("light", "heavy")):
            hazy = degrade_set("dehaze", level, photos, args.seed, gen)
            for i, k in enumerate(sorted(photos)):
                y = hazy[k].astype(np.float32) / 255.0
                t, A = estimate(y)
                line = (f"{gen:7s} {level:5s} {k:10s} network {inverted(y, t, A, photos[k]):5.2f} dB  "
                        f"A {np.round(A, 2)}  mean t {t.mean():.2f}")
                if gen == "foreign":
                    x = photos[k].astype(np.float32) / 255.0
                    t_true, a_true = foreign_truth(
                        x, lambda: np.random.default_rng([args.seed, ti, li, i, 1]), level)
                    A_true = np.full(3, a_true, np.float32)
                    line += (f" | true A {a_true:.2f}, mean t {t_true.mean():.2f}; with the true A "
                             f"{inverted(y, t, A_true, photos[k]):5.2f}, true t {inverted(y, t_true, A, photos[k]):5.2f}, "
                             f"both {inverted(y, t_true, A_true, photos[k]):5.2f}")
                print(line, flush=True)
    print("probe: photo x gain, hazed with A = 0.85 over a random depth (seed 0)")
    for k, im in sorted(photos.items()):
        x = im.astype(np.float32) / 255.0
        d = synth.random_depth(*x.shape[:2], np.random.default_rng(0))
        for gain in (1.0, 0.5, 0.3):
            row = [f"beta {beta}: A {np.round(estimate(np.clip(synth.haze_from_depth(x * gain, d, beta, 0.85), 0, 1))[1], 2)}"
                   for beta in (0.3, 1.5)]
            print(f"  {k:10s} gain {gain}: " + ", ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
