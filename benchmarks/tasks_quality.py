#!/usr/bin/env python
"""Derain, deblur, defocus, dehaze, desnow on held-out photos: degraded input vs a tuned
classical baseline vs the task's default network (issue 8).

Photos: scikit-image's ``builtin:test`` split (astronaut, chelsea, coffee, rocket;
restorecli/train/data.py), never trained or validated on. Each photo is degraded by
the task's generator (restorecli/train/synth.py) at the ``light`` and ``heavy`` presets
with numpy seeds derived from ``--seed`` (training draws its seeds from a torch
generator, so these exact degradations are never trained on), then rounded to uint8
as users' files are. Every method gets that uint8 image; its output is rounded to uint8
before PSNR/SSIM against the clean 8-bit photo (full image, RGB, skimage).

Methods
Generators: ``ours`` (what training uses, other seeds) and ``foreign``
(benchmarks/foreign_degradations.py: other tools' recipes, never trained on), to see
whether a network generalises beyond our generator.

  input          the degraded image itself
  baseline       the classical method of the task (restorecli/baselines.py) with its
                 parameters picked from a grid to maximise the mean PSNR of this very
                 set, per task and level (an upper bound of the method here):
                 dehaze: dark channel prior + guided filter; deblur, defocus: unsharp
                 masking; derain, desnow: the better of a median and a bilateral filter
  ours           the task's default weights through restorecli.Restorer (only when the
                 registry has a default for the task, or --weights TASK=FILE)

    python benchmarks/tasks_quality.py                  # the table in docs/degradations.md
    python benchmarks/tasks_quality.py --tasks derain,dehaze --levels heavy
    python benchmarks/tasks_quality.py --weights derain=runs/x/x.safetensors
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from restorecli import baselines as B  # noqa: E402
from restorecli.ensemble import ENSEMBLE_SIZES  # noqa: E402
from restorecli.train import synth  # noqa: E402
from restorecli.train.data import BUILTIN_SPLITS, builtin_photo_paths  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import Cache, load_u8, scores, source_digest, to_u8  # noqa: E402

TASKS = {  # task -> synth kind
    "derain": "rain",
    "deblur": "motion_blur",
    "defocus": "defocus",
    "dehaze": "haze",
    "desnow": "snow",
}


def degrade_set(task: str, level: str, photos: dict[str, np.ndarray], seed: int,
                generator: str = "ours", **params) -> dict[str, np.ndarray]:
    """The seeded uint8 degraded copies of the photos for one task, level and generator
    (``params``: keyword switches of a foreign generator, e.g. ``scene_gain=False`` for rain)."""
    ti, li = list(TASKS).index(task), ("light", "heavy", "wide").index(level)
    if generator == "ours":
        fn = synth.SYNTHS[TASKS[task]][0]
    else:
        from foreign_degradations import FOREIGN
        fn = FOREIGN[task]
    out = {}
    for i, k in enumerate(sorted(photos)):
        rng = np.random.default_rng([seed, ti, li, i] + ([] if generator == "ours" else [1]))
        out[k] = to_u8(fn(photos[k].astype(np.float32) / 255.0, rng, level, **params))
    return out


def tune(method: str, degraded: dict[str, np.ndarray], clean: dict[str, np.ndarray]):
    """(best params, per-image scores) of ``method`` over its grid, by mean PSNR."""
    fn = B.BASELINES[method]
    best = None
    for params in B.grid(method):
        vals = [scores(to_u8(fn(degraded[k].astype(np.float32) / 255.0, **params)), clean[k])
                for k in sorted(clean)]
        m = float(np.mean([v[0] for v in vals]))
        if best is None or m > best[0]:
            best = (m, params, vals)
    return best[1], best[2]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--levels", default="light,heavy")
    ap.add_argument("--seed", type=int, default=8080)
    ap.add_argument("--methods", default="input,baseline,ours")
    ap.add_argument("--generators", default="ours,foreign",
                    help="ours (restorecli/train/synth.py) and/or foreign (benchmarks/foreign_degradations.py)")
    ap.add_argument("--weights", action="append", default=[], metavar="TASK=FILE",
                    help="weights for 'ours' on a task (default: the registry's default for it)")
    ap.add_argument("--ensemble", type=int, default=None, choices=ENSEMBLE_SIZES,
                    help="geometric self-ensemble size for 'ours' (1, 2, 4, 8; default: each entry's own)")
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--no-cache", action="store_true", help="recompute the tuned baselines")
    ap.add_argument("--reuse", default=None, metavar="JSON",
                    help="add the rows of an earlier --json run for methods not run now (e.g. the tuned "
                         "baselines, ~1 h); its input rows must equal this run's (same degradations)")
    args = ap.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    levels = [v.strip() for v in args.levels.split(",") if v.strip()]
    generators = [g.strip() for g in args.generators.split(",") if g.strip()]
    methods = {m.strip() for m in args.methods.split(",") if m.strip()}
    weights = dict(w.split("=", 1) for w in args.weights)
    for t in tasks:
        if t not in TASKS:
            raise SystemExit(f"unknown task {t!r} (known: {', '.join(TASKS)})")

    photos = {p.stem: load_u8(p) for p in builtin_photo_paths("test")}
    # the baselines' grid searches are the slow part; they depend only on this code
    code = [HERE / "foreign_degradations.py", ROOT / "restorecli/train/synth.py", ROOT / "restorecli/baselines.py"]
    cache = Cache("tasks_quality.json", not args.no_cache, version=source_digest(code))
    rows = []
    for task in tasks:
        restorer, note = None, ""
        if "ours" in methods:
            try:
                from restorecli import Restorer
                restorer = Restorer(task, weights=weights.get(task), device="cpu", tile="auto",
                                    ensemble=args.ensemble)
                w = restorer.weights
                note = f"{w.name or w.path} ({restorer.spec.name})" + (
                    f" x{restorer.ensemble}" if restorer.ensemble > 1 else "")
            except Exception as e:  # no default weights for the task yet
                note = f"no weights ({type(e).__name__}: {str(e).splitlines()[0][:80]})"
            print(f"{task}: ours = {note}", file=sys.stderr)
        for gen, level in [(g, lv) for g in generators for lv in levels]:
            t0 = time.time()
            deg = degrade_set(task, level, photos, args.seed, gen)
            res: dict[str, tuple[str, list]] = {}
            if "input" in methods:
                res["input"] = ("", [scores(deg[k], photos[k]) for k in sorted(photos)])
            if "baseline" in methods:
                best = None
                for m in B.TASK_BASELINES[task]:
                    params, vals = cache.get(f"{task}|{gen}|{level}|{args.seed}|{m}",
                                             lambda m=m: list(tune(m, deg, photos)))
                    if best is None or np.mean([v[0] for v in vals]) > np.mean([v[0] for v in best[2]]):
                        best = (m, params, vals)
                m, params, vals = best
                desc = m + " (" + ", ".join(f"{k}={v:g}" for k, v in params.items()) + ")"
                res["baseline"] = (desc, vals)
            if restorer is not None:
                vals = []
                for k in sorted(photos):
                    out = np.asarray(restorer(deg[k]))  # uint8 in, uint8 out
                    vals.append(scores(out if out.dtype == np.uint8 else to_u8(out), photos[k]))
                res["ours"] = (note, vals)
            for method, (desc, vals) in res.items():
                rows.append({"task": task, "generator": gen, "level": level, "method": method, "detail": desc,
                             "psnr": float(np.mean([v[0] for v in vals])),
                             "ssim": float(np.mean([v[1] for v in vals])),
                             "per_image_psnr": {k: round(v[0], 3) for k, v in zip(sorted(photos), vals)}})
            print(f"done {task} {gen} {level} ({time.time() - t0:.0f} s)", file=sys.stderr)

    if args.reuse:
        rows = _merge(rows, json.loads(Path(args.reuse).read_text()), methods)

    print(f"Held-out photos (scikit-image, never trained on): {', '.join(BUILTIN_SPLITS['test'])}; "
          f"degradation seed {args.seed}; uint8 in and out; mean over the 4 photos.\n")
    print("| task | generator | level | method | PSNR (dB) | SSIM |")
    print("|---|---|---|---|---:|---:|")
    for r in rows:
        name = r["method"] + (f": {r['detail']}" if r["detail"] else "")
        print(f"| {r['task']} | {r['generator']} | {r['level']} | {name} | {r['psnr']:.2f} | {r['ssim']:.4f} |")
    if any(r["method"] == "ours" for r in rows) and any(r["method"] == "baseline" for r in rows):
        print("\nOne row per setting; margin = ours - max(input, baseline) (issue 8's bar: >= 2 dB):\n")
        print(_wide_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def _merge(rows: list[dict], earlier: list[dict], methods: set[str]) -> list[dict]:
    """``rows`` plus the ``earlier`` rows of the same settings for methods not run now."""
    key = lambda r: (r["task"], r["generator"], r["level"])  # noqa: E731
    now = {key(r): r for r in rows if r["method"] == "input"}
    settings = {key(r) for r in rows}
    for r in earlier:
        if r["method"] == "input" and key(r) in now and abs(r["psnr"] - now[key(r)]["psnr"]) > 1e-6:
            raise SystemExit(f"--reuse: the input of {' '.join(key(r))} differs from this run's "
                             f"({r['psnr']:.4f} vs {now[key(r)]['psnr']:.4f} dB): other degradations")
    extra = [r for r in earlier if key(r) in settings and r["method"] not in methods]
    order = {k: i for i, k in enumerate(dict.fromkeys(key(r) for r in rows))}
    return sorted(rows + extra, key=lambda r: order[key(r)])  # stable: each setting's rows together


def _wide_table(rows: list[dict]) -> str:
    """The docs/README table: input, tuned baseline and ours side by side, and ours' margin."""
    by: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by.setdefault((r["task"], r["generator"], r["level"]), {})[r["method"]] = r
    lines = ["| task | generator | level | input PSNR / SSIM | tuned baseline PSNR / SSIM | baseline (tuned parameters) "
             "| default (ours) PSNR / SSIM | margin (dB) |", "|---|---|---|---:|---:|---|---:|---:|"]
    for (task, gen, level), m in by.items():
        cell = {k: (f"{m[k]['psnr']:.2f} / {m[k]['ssim']:.4f}" if k in m else "-") for k in ("input", "baseline", "ours")}
        floor = max(m[k]["psnr"] for k in ("input", "baseline") if k in m)
        margin = f"{m['ours']['psnr'] - floor:+.2f}" if "ours" in m else "-"
        detail = m["baseline"]["detail"] if "baseline" in m else ""
        lines.append(f"| {task} | {gen} | {level} | {cell['input']} | {cell['baseline']} | {detail} "
                     f"| {cell['ours']} | {margin} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
