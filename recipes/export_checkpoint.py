#!/usr/bin/env python
"""Write the EMA weights of a training checkpoint as a safetensors file (fp16), to score a
run before it ends:

    python recipes/export_checkpoint.py runs/NAME/checkpoints/step_0001885.pt /tmp/w.safetensors
    python recipes/export_checkpoint.py runs/NAME /tmp/w.safetensors     # its latest checkpoint
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from restorecli.checkpoint import save_safetensors  # noqa: E402


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = Path(args[0]), Path(args[1])
    run_dir = src if src.is_dir() else src.parent.parent
    if src.is_dir():
        src = src / "checkpoints" / (src / "checkpoints" / "last.txt").read_text().strip()
    state = torch.load(src, map_location="cpu", weights_only=True)
    arch = tomllib.loads((run_dir / "config.toml").read_text())["model"]["name"]
    weights = state["ema"] or state["model"]
    save_safetensors(weights, dst, metadata={"arch": arch, "step": str(state["step"])}, dtype=torch.float16)
    print(f"{dst}: {arch}, step {state['step']} ({'EMA' if state['ema'] else 'raw'} weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
