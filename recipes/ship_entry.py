#!/usr/bin/env python
"""Put a trained default into the shipped registry (weights.toml and its package copy).

Takes the [[weights]] entry `restore train` printed (recipes/NAME.entry.toml), marks it the
task's default, adds licence and training-data notes and, from a benchmarks/tasks_quality.py
--json file, the held-out scores; then replaces the entry of the same name in both
weights.toml files (or the entry named by --replaces, which is dropped; or appends it). The
weights file itself must already be in restorecli/weights/ (the recipes' -o puts it there,
or copy it).

    python recipes/ship_entry.py recipes/derain-unet-s.entry.toml \\
        --training-data "..." --bench /tmp/tasks.json
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from restorecli.ensemble import check_ensemble  # noqa: E402
from restorecli.train.config import _toml_str as _q  # noqa: E402  (the TOML string writer train uses)
from restorecli.weights.registry import parse_registry  # noqa: E402

REGISTRIES = [ROOT / "weights.toml", ROOT / "restorecli" / "weights.toml"]
BENCH_CMD = "python benchmarks/tasks_quality.py"


def _metric_blocks(groups: dict[tuple, dict], name_of, extras_of, dataset: str, command: str) -> str:
    """[[weights.metrics]] blocks, one per group of rows (method -> row) that has "ours"."""
    out = []
    for key, m in groups.items():
        if "ours" not in m:
            continue
        out += ["", "[[weights.metrics]]", f"name = {_q(name_of(*key))}",
                f"value = {m['ours']['psnr']:.2f}", 'unit = "dB"', f"ssim = {m['ours']['ssim']:.4f}",
                *extras_of(m), f"dataset = {_q(dataset)}", f"command = {_q(command)}"]
    return "\n".join(out)


def bench_metrics(rows: list[dict], task: str, command: str = BENCH_CMD) -> str:
    """Blocks from benchmarks/tasks_quality.py --json rows: ours per generator and level, with
    input and baseline beside it."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        if r["task"] == task:
            groups.setdefault((r["generator"], r["level"]), {})[r["method"]] = r

    def extras(m):
        out = [f"input = {m['input']['psnr']:.2f}"] if "input" in m else []
        if "baseline" in m:
            out += [f"baseline = {m['baseline']['psnr']:.2f}", f"baseline_method = {_q(m['baseline']['detail'])}"]
        return out

    return _metric_blocks(groups, lambda gen, level: f"PSNR {level} ({gen} generator)", extras,
                          "scikit-image astronaut/chelsea/coffee/rocket (held out), seeded degradation", command)


def denoise_metrics(rows: list[dict], command: str) -> str:
    """Blocks from benchmarks/denoise_quality.py --json rows: ours with BM3D beside it."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        groups.setdefault((r["mode"], r["sigma"]), {})[r["method"]] = r

    def extras(m):
        return [f"bm3d = {m['bm3d']['psnr']:.2f}", f"bm3d_ssim = {m['bm3d']['ssim']:.4f}"] if "bm3d" in m else []

    return _metric_blocks(groups, lambda mode, sigma: f"PSNR sigma {sigma:g} {mode}", extras,
                          "scikit-image astronaut/chelsea/coffee/rocket (held out), Gaussian noise seed 2024, 8-bit",
                          command)


def shipped_entry(text: str, license: str, training_data: str, metrics: str, ensemble: int = 1) -> tuple[str, str]:
    """(name, entry text): default = true, notes added, validation metrics replaced by ``metrics``."""
    head, _, rest = text.partition("\n[weights.training]")
    head = re.sub(r"^default = .*\n", "", head, flags=re.M).rstrip("\n")
    if ensemble > 1:
        head += f"\nensemble = {ensemble}"
    head += f"\ndefault = true\nlicense = {_q(license)}\ntraining_data = {_q(training_data)}\n"
    training = "[weights.training]" + rest
    if metrics:  # held-out benchmark scores replace the validation ones
        training = training.split("\n[[weights.metrics]]")[0].rstrip("\n") + "\n" + metrics + "\n"
    name = tomllib.loads(text)["weights"][0]["name"]
    return name, head + "\n" + training.rstrip("\n") + "\n"


def replace_in_registry(path: Path, name: str, entry: str, comment: str, replaces: str | None = None) -> None:
    """Put ``entry`` where the entry ``name`` (or ``replaces``, which is dropped) was, else at the end."""
    text = path.read_text()
    # a block: the comment lines right above a [[weights]] line, up to the next block
    starts = [m.start() for m in re.finditer(r"(?m)^(?:# .*\n)*\[\[weights\]\]\n", text)]
    header = text[:starts[0]] if starts else text
    blocks = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    new_block = f"# {comment}\n{entry.strip()}\n"
    names = {name} | ({replaces} if replaces else set())
    matched = [i for i, b in enumerate(blocks)
               if any(re.search(rf'(?m)^name = {re.escape(_q(n))}$', b) for n in names)]
    if matched:
        blocks[matched[0]] = new_block
        blocks = [b for i, b in enumerate(blocks) if i not in matched[1:]]
    else:
        blocks.append(new_block)
    # still a registry every command can load (one default per task, valid keys)
    parse_registry(header + "".join(blocks), origin=str(path))
    path.write_text(header.rstrip("\n") + "\n\n" + "\n".join(b.rstrip("\n") + "\n" for b in blocks))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("entry", type=Path)
    ap.add_argument("--license", default="MIT (trained by the restorecli authors)")
    ap.add_argument("--training-data", required=True)
    ap.add_argument("--bench", type=Path, help="rows from benchmarks/tasks_quality.py --json "
                    "(denoise: benchmarks/denoise_quality.py --json)")
    ap.add_argument("--bench-command", default=None, help="the command that made --bench, for the entry")
    ap.add_argument("--comment", default="")
    ap.add_argument("--ensemble", type=int, default=1, help="the entry's self-ensemble size (restorecli.ensemble)")
    ap.add_argument("--replaces", default=None, help="an entry this one replaces (removed from the registries)")
    args = ap.parse_args(argv)
    check_ensemble(args.ensemble)
    text = args.entry.read_text()
    task = tomllib.loads(text)["weights"][0]["task"]
    rows = json.loads(args.bench.read_text()) if args.bench else []
    if task == "denoise":
        metrics = denoise_metrics(rows, args.bench_command or "python benchmarks/denoise_quality.py --gray")
    else:
        metrics = bench_metrics(rows, task, args.bench_command or BENCH_CMD)
    name, entry = shipped_entry(text, args.license, args.training_data, metrics, args.ensemble)
    comment = args.comment or f"The default for {task}, trained in this repository (recipes/{name}.*)."
    for reg in REGISTRIES:
        replace_in_registry(reg, name, entry, comment, args.replaces)
    print(f"{name}: default for {task} in {', '.join(str(r.relative_to(ROOT)) for r in REGISTRIES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
