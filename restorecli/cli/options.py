"""Options shared by the commands that run a network, defined once."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

RUN = "Model and device"
OUT = "Output"

Model = Annotated[Optional[str], typer.Option(
    "--model", "-m", rich_help_panel=RUN,
    help="Architecture: a family (irnext, clginet, ...) resolved per task, or a configuration "
         "(irnext-deblur, irnext-dehaze, clginet, clginet-s, unet-s, nlmunet-s, asmunet-s-dcpres, ...). "
         "Default: the task's default weights' one (restore weights list shows them).")]
Weights = Annotated[Optional[str], typer.Option(
    "--weights", "-w", rich_help_panel=RUN,
    help="Weights: a registry name (restore weights list), a local .safetensors/.pth/.pkl file, "
         "hf://owner/repo\\[@revision]/file, or a Hub file URL.")]
Registry = Annotated[Optional[Path], typer.Option(
    "--registry", rich_help_panel=RUN, envvar="RESTORECLI_REGISTRY",
    help="An extra weights.toml whose entries add to or override the shipped ones.")]
Device = Annotated[str, typer.Option(
    "--device", rich_help_panel=RUN, help="auto, cpu, cuda, cuda:N or mps.")]
Tile = Annotated[str, typer.Option(
    "--tile", rich_help_panel=RUN,
    help="Tile side in pixels; 0 = whole image (as the authors evaluate); auto = whole when it "
         "fits in memory, else tiles sized from free memory.")]
TileOverlap = Annotated[int, typer.Option(
    "--tile-overlap", rich_help_panel=RUN, min=0, help="Overlap between tiles, in pixels.")]
Precision = Annotated[str, typer.Option(
    "--precision", rich_help_panel=RUN,
    help="fp32, fp16 (GPU) or bf16 (autocast: convolutions in half precision).")]
Compile = Annotated[bool, typer.Option(
    "--compile", rich_help_panel=RUN,
    help="Compile the network with torch.compile (needs a C++ compiler on the CPU, triton on "
         "CUDA): the first image of each size takes a minute or more to compile.")]
Ensemble = Annotated[Optional[int], typer.Option(
    "--ensemble", rich_help_panel=RUN, show_default=False,
    help="Self-ensemble: average the network over 1, 2, 4 or 8 flips/rotations of the image "
         "(that many times slower, a little better). Default: the registry entry's setting (the "
         "shipped defaults: denoise 8; derain, defocus, desnow 4; deblur, dehaze 1); 1 for weights "
         "given as a file or hf:// URI.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary on stderr.")]
