#!/usr/bin/env python
"""Put a trained default into the shipped registry (weights.toml and its package copy).

Takes the [[weights]] entry `restore train` printed (recipes/NAME.entry.toml), marks it the
task's default, adds licence and training-data notes and, from a benchmarks/tasks_quality.py
--json file, the held-out scores; then replaces the entry of the same name in both
weights.toml files (or appends it). The weights file itself must already be in
restorecli/weights/ (the recipes' -o puts it there).

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
from restorecli.train.config import _toml_str as _q  # noqa: E402  (the TOML string writer train uses)

REGISTRIES = [ROOT / "weights.toml", ROOT / "restorecli" / "weights.toml"]
BENCH_CMD = "python benchmarks/tasks_quality.py"


def bench_metrics(rows: list[dict], task: str) -> str:
    """[[weights.metrics]] blocks: ours per generator and level, with input and baseline beside it."""
    by: dict[tuple, dict] = {}
    for r in rows:
        if r["task"] == task:
            by.setdefault((r["generator"], r["level"]), {})[r["method"]] = r
    out = []
    for (gen, level), m in by.items():
        if "ours" not in m:
            continue
        out += ["", "[[weights.metrics]]", f"name = {_q(f'PSNR {level} ({gen} generator)')}",
                f"value = {m['ours']['psnr']:.2f}", 'unit = "dB"', f"ssim = {m['ours']['ssim']:.4f}"]
        if "input" in m:
            out.append(f"input = {m['input']['psnr']:.2f}")
        if "baseline" in m:
            out += [f"baseline = {m['baseline']['psnr']:.2f}", f"baseline_method = {_q(m['baseline']['detail'])}"]
        out += [f"dataset = {_q('scikit-image astronaut/chelsea/coffee/rocket (held out), seeded degradation')}",
                f"command = {_q(BENCH_CMD)}"]
    return "\n".join(out)


def shipped_entry(text: str, license: str, training_data: str, metrics: str) -> tuple[str, str]:
    """(name, entry text): default = true, notes added, validation metrics replaced by ``metrics``."""
    head, _, rest = text.partition("\n[weights.training]")
    head = re.sub(r"^default = .*\n", "", head, flags=re.M).rstrip("\n")
    head += f"\ndefault = true\nlicense = {_q(license)}\ntraining_data = {_q(training_data)}\n"
    training = "[weights.training]" + rest
    if metrics:  # held-out benchmark scores replace the validation ones
        training = training.split("\n[[weights.metrics]]")[0].rstrip("\n") + "\n" + metrics + "\n"
    name = tomllib.loads(text)["weights"][0]["name"]
    return name, head + "\n" + training.rstrip("\n") + "\n"


def replace_in_registry(path: Path, name: str, entry: str, comment: str) -> None:
    text = path.read_text()
    # a block: the comment lines right above a [[weights]] line, up to the next block
    starts = [m.start() for m in re.finditer(r"(?m)^(?:# .*\n)*\[\[weights\]\]\n", text)]
    header = text[:starts[0]] if starts else text
    blocks = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    new_block = f"# {comment}\n{entry.strip()}\n"
    found = False
    for i, b in enumerate(blocks):
        if re.search(rf'(?m)^name = {re.escape(_q(name))}$', b):
            blocks[i], found = new_block, True
    if not found:
        blocks.append(new_block)
    tomllib.loads(header + "".join(blocks))  # still valid TOML
    path.write_text(header.rstrip("\n") + "\n\n" + "\n".join(b.rstrip("\n") + "\n" for b in blocks))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("entry", type=Path)
    ap.add_argument("--license", default="MIT (trained by the restorecli authors)")
    ap.add_argument("--training-data", required=True)
    ap.add_argument("--bench", type=Path, help="rows from benchmarks/tasks_quality.py --json")
    ap.add_argument("--comment", default="")
    args = ap.parse_args(argv)
    text = args.entry.read_text()
    task = tomllib.loads(text)["weights"][0]["task"]
    metrics = bench_metrics(json.loads(args.bench.read_text()), task) if args.bench else ""
    name, entry = shipped_entry(text, args.license, args.training_data, metrics)
    comment = args.comment or f"The default for {task}, trained in this repository (recipes/{name}.*)."
    for reg in REGISTRIES:
        replace_in_registry(reg, name, entry, comment)
    print(f"{name}: default for {task} in {', '.join(str(r.relative_to(ROOT)) for r in REGISTRIES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
