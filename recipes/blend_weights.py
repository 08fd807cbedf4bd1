#!/usr/bin/env python
"""Blend two weight files of one architecture in weight space: (1 - alpha) BASE + alpha TUNED,
where TUNED was fine-tuned from BASE (Wortsman et al., "Robust fine-tuning of zero-shot models",
CVPR 2022: such a blend often keeps what the fine-tuning taught and what it cost). Writes the
blend (fp16, like every embedded default) and prints a [[weights]] entry for it on stdout, as
`restore train` does, for recipes/ship_entry.py; the entry records both parents and alpha.

    python recipes/blend_weights.py BASE.safetensors TUNED.safetensors --alpha 0.5 \\
        --name NAME --from-entry recipes/TUNED.entry.toml > recipes/NAME.entry.toml
"""
from __future__ import annotations

import argparse
import hashlib
import re
import shlex
import sys
from pathlib import Path

from safetensors import safe_open

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from restorecli.checkpoint import CheckpointError, read_state_dict, save_safetensors  # noqa: E402
from restorecli.train.config import _toml_str as _q  # noqa: E402


def blend(base: Path, tuned: Path, alpha: float, out: Path) -> Path:
    try:
        a, b = read_state_dict(base), read_state_dict(tuned)
    except CheckpointError as e:
        raise SystemExit(str(e)) from None
    if set(a) != set(b) or any(a[k].shape != b[k].shape for k in a):
        raise SystemExit(f"{base} and {tuned} do not hold the same tensors: not one architecture")
    # floating tensors mixed in fp32 and stored in the base's dtype; integer buffers are the tuned file's
    mixed = {k: ((1 - alpha) * a[k].float() + alpha * b[k].float()).to(a[k].dtype)
             if a[k].is_floating_point() else b[k] for k in a}
    with safe_open(str(tuned), "pt") as f:  # the header's arch, which resolving a --weights file reads
        meta = {k: v for k, v in (f.metadata() or {}).items() if k in ("arch", "task", "conditioning")}
    meta["blend"] = f"(1 - {alpha:g}) {base.name} + {alpha:g} {tuned.name}"
    return save_safetensors(mixed, out, metadata=meta)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("tuned", type=Path)
    ap.add_argument("--alpha", type=float, required=True, help="the tuned file's share, in (0, 1)")
    ap.add_argument("--name", required=True, help="the blend's name (the entry's, and its embedded file's)")
    ap.add_argument("--out", type=Path, default=None, help="default: restorecli/weights/NAME.safetensors")
    ap.add_argument("--from-entry", type=Path, required=True,
                    help="the tuned run's entry (recipes/NAME.entry.toml): task, arch and training record")
    args = ap.parse_args(argv)
    if not 0.0 < args.alpha < 1.0:
        raise SystemExit(f"--alpha must be in (0, 1), got {args.alpha}")
    out = blend(args.base, args.tuned, args.alpha, args.out or ROOT / "restorecli" / "weights" / f"{args.name}.safetensors")
    data = out.read_bytes()
    text = args.from_entry.read_text()
    head, _, training = text.partition("\n[weights.training]\n")
    old_name = re.search(r'(?m)^name = "(.*)"$', head).group(1)
    head = re.sub(r"(?m)^name = .*$", f"name = {_q(args.name)}", head)
    head = re.sub(r"(?m)^embedded = .*$", f"embedded = {_q(f'weights/{args.name}.safetensors')}", head)
    head = re.sub(r"(?m)^sha256 = .*$", f"sha256 = {_q(hashlib.sha256(data).hexdigest())}", head)
    head = re.sub(r"(?m)^size = .*$", f"size = {len(data)}", head)
    command = "python recipes/blend_weights.py " + shlex.join(
        [str(args.base), str(args.tuned), "--alpha", f"{args.alpha:g}", "--name", args.name,
         "--from-entry", str(args.from_entry)])
    # the tuned run's record stays, under the blend's own command and parents
    training = re.sub(r"(?m)^command = (.*)$", r"tuned_command = \1", training, count=1)
    training = re.sub(r"(?m)^\[\[weights\.metrics\]\][\s\S]*", "", training).rstrip("\n") + "\n"
    print(head.rstrip("\n") + "\n\n[weights.training]\n"
          f"command = {_q(command)}\nblend_base = {_q(str(args.base))}\nblend_tuned = {_q(old_name)}\n"
          f"blend_alpha = {args.alpha:g}\n" + training, end="")
    print(f"wrote {out}: (1 - {args.alpha:g}) {args.base} + {args.alpha:g} {args.tuned}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
