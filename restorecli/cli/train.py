"""``restore train CONFIG``: train a restoration network from a TOML config (see docs/training.md)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .app import app, err, user_errors


@app.command(
    epilog="Example: [bold]restore train recipes/denoise-nlmunet-s.toml[/]  "
           "(resume: add [bold]--resume[/]; two processes: "
           "[bold]torchrun --nproc-per-node 2 -m restorecli.train CONFIG[/])",
)
@user_errors
def train(
    config: Path = typer.Argument(..., help="TOML config holding every setting (see recipes/)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's latest checkpoint."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Continue from this checkpoint file."),
    set_: List[str] = typer.Option([], "--set", help="Override a setting: section.key=value (repeatable)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Where to write the weights (default: RUN_DIR/NAME.safetensors)."),
    fp32: bool = typer.Option(False, "--fp32", help="Store float32 weights (default: fp16 storage)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name for the printed weights.toml entry."),
    embedded: Optional[str] = typer.Option(None, "--embedded",
                                           help="Package path for the entry's `embedded` key."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors."),
) -> None:
    """Train a network for a task; print its weights.toml entry (sha256, config, metrics) on stdout."""
    import torch

    from ..train.config import load_config
    from ..train.trainer import Trainer, weights_entry

    cfg = load_config(config, set_)
    trainer = Trainer(cfg, console=err, quiet=quiet)
    result = trainer.fit(resume=checkpoint if checkpoint else resume, export_path=output,
                         export_dtype=torch.float32 if fp32 else torch.float16)
    if trainer.dist.main:
        args = sys.argv[1:]
        if args and args[0] == "train":  # `restore train ...`; `python -m restorecli.train ...` has no verb
            args = args[1:]
        cmd = "restore train " + " ".join(shlex.quote(a) for a in args) if args else f"restore train {config}"
        if not quiet:
            err.print(f"wrote {result.weights} (sha256 {result.sha256}) after {result.step} steps", soft_wrap=True,
                      markup=False)
        sys.stdout.write(weights_entry(cfg, result, name=name, embedded=embedded, command=cmd))
        sys.stdout.flush()
