"""``restore denoise|derain|deblur|defocus|dehaze|desnow INPUT... [-o OUT]``.

One command per task, all built from the same parameter list; ``denoise`` adds
``--sigma``. The work (finding inputs, naming outputs, running) is in
:mod:`restorecli.batch`; this module parses, reports and sets exit codes.
"""
from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import TASKS
from .app import app, err, fail, quiet_hub_downloads, user_errors, weights_note
from . import options as opt

DESCRIPTIONS = {
    "denoise": ("Remove noise (Gaussian / sensor noise).",
                "restore denoise photo.png --sigma 25\n\nrestore denoise --sigma auto shots/ -o clean/"),
    "derain": ("Remove rain streaks.", "restore derain street.jpg\n\ncat x.png | restore derain - > y.png"),
    "deblur": ("Remove motion blur (camera shake).",
               "restore deblur shaky.jpg -o sharp.jpg\n\nrestore deblur --model irnext --weights gopro.pkl --tile 0 in.png"),
    "defocus": ("Remove defocus blur.", "restore defocus portrait.png --tile 512"),
    "dehaze": ("Remove haze and fog.", "restore dehaze hazy.jpg --model irnext --weights irnext-dehaze.safetensors"),
    "desnow": ("Remove falling snow.", "restore desnow winter/ -o winter_clean/"),
}

Inputs = Annotated[list[str], typer.Argument(
    metavar="INPUT",
    help="Image files, folders (searched recursively; the output tree mirrors them), or - for stdin.",
    show_default=False)]
Output = Annotated[Optional[str], typer.Option(
    "--output", "-o", rich_help_panel=opt.OUT,
    help="Output file, or folder for several inputs; - for stdout. Default: <stem>_<task>.<ext> "
         "beside a file, <folder>_<task>/ beside a folder, stdout for stdin.")]
BitDepth = Annotated[Optional[int], typer.Option(
    "--bit-depth", rich_help_panel=opt.OUT,
    help="8, 16 or 32 (float TIFF). Default: the input's depth.")]
Quality = Annotated[Optional[int], typer.Option(
    "--quality", rich_help_panel=opt.OUT, min=1, max=100,
    help="JPEG quality, or lossy WebP at this quality. Default: a JPEG input's own quality (at "
         "least 90) and chroma subsampling, else 95 with full chroma; WebP lossless, or lossy 95 "
         "from a lossy input. PNG, TIFF and BMP are lossless and ignore it.")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", rich_help_panel=opt.OUT,
    help="Replace existing outputs (without it a folder run skips them, so a rerun resumes).")]
MaxPixels = Annotated[int, typer.Option(
    "--max-pixels", rich_help_panel=opt.OUT, min=1, help="Refuse images with more pixels than this.")]
Sigma = Annotated[str, typer.Option(
    "--sigma", "-s", rich_help_panel=opt.RUN,
    help="Noise level in 0-255 units, or auto to estimate it from each image.")]


def run_task(task: str, inputs: list[str], output: str | None, model: str | None, weights: str | None,
             registry: Path | None, device: str, tile: str, tile_overlap: int, precision: str,
             bit_depth: int | None, overwrite: bool, max_pixels: int, quiet: bool, debug: bool,
             sigma: str = "auto", compile: bool = False, ensemble: int | None = None,
             quality: int | None = None) -> None:
    from ..batch import BatchRunner, image_suffixes, plan_jobs, preflight
    from ..restorer import Restorer

    if bit_depth not in (None, 8, 16, 32):
        raise fail(f"--bit-depth {bit_depth}: expected 8, 16 or 32", 2)
    jobs = plan_jobs(task, inputs, output, overwrite=overwrite)
    if not quiet:
        for message in jobs.notes:
            err.print(f"note: {message}", soft_wrap=True, markup=False)
    settings = dict(model=model, weights=weights, device=device, tile=tile, tile_overlap=tile_overlap,
                    precision=precision, sigma=sigma, registry=str(registry) if registry else None,
                    compile=compile, ensemble=ensemble)
    if not jobs.todo:  # report what cannot run without loading a network, a mistyped option first
        Restorer.check_options(task, **settings)
        BatchRunner(None, console=err, quiet=quiet).run(jobs)
        if not quiet and jobs.skipped:
            err.print(f"nothing to do: {jobs.skipped} output(s) exist already (use --overwrite to redo)",
                      soft_wrap=True)
        if not jobs.skipped and not jobs.failed:  # an empty or mistyped folder: not a success
            raise fail(f"no image files found in {', '.join(inputs)} (looked for "
                       f"{', '.join(sorted(image_suffixes()))})", 1)
        raise typer.Exit(1 if jobs.failed else 0)
    preflight(jobs, bit_depth)
    if jobs.to_stdout and sys.stdout is not None and sys.stdout.isatty():
        raise fail("refusing to write image data to a terminal: redirect stdout or pass -o FILE", 2)
    if any(j.source == "-" for j in jobs.todo) and sys.stdin is not None and sys.stdin.isatty():
        # it would wait, after loading a network, for an image nobody is going to type
        raise fail("- reads an image from stdin, which is a terminal here: pipe one in "
                   f"(cat photo.png | restore {task} -) or give a file", 2)

    started = time.perf_counter()
    if quiet:
        quiet_hub_downloads()
    restorer = Restorer(task, **settings)
    if task == "denoise" and str(sigma).lower() != "auto" and not restorer.conditioned_on_sigma and not quiet:
        err.print(f"note: {restorer.spec.name} is not conditioned on the noise level; --sigma has no effect",
                  soft_wrap=True, markup=False)
    if not quiet:
        weights_note(restorer)
    mismatch = _task_mismatch(task, restorer)
    if mismatch and not quiet:
        err.print(f"warning: {mismatch}", soft_wrap=True, markup=False)
    runner = BatchRunner(restorer, bit_depth=bit_depth, max_pixels=max_pixels, overwrite=overwrite,
                         console=err, quiet=quiet, debug=debug, quality=quality)
    result = runner.run(jobs)
    seconds = time.perf_counter() - started
    if not quiet:
        parts = [f"{result.done} restored"]
        if jobs.skipped:
            parts.append(f"{jobs.skipped} skipped (output exists)")
        if result.failed:
            parts.append(f"{result.failed} failed")
        err.print(f"{', '.join(parts)} in {seconds:.1f} s with {restorer.describe()}", soft_wrap=True,
                  markup=False)
    if result.failed:
        raise typer.Exit(1)


def _task_mismatch(task: str, restorer) -> str | None:
    """Weights made for another task still run (a user may mean it), but we say so."""
    w = restorer.weights
    trained_for = w.info.get("task")
    if trained_for and trained_for != task:
        what = w.name or (f"{w.path} (registered as {w.info['registered_as']})" if w.info.get("registered_as")
                          else w.path)
        return f"weights {what} were trained for {trained_for}, not {task}"
    spec = restorer.spec
    made = spec.family_default_for
    if w.name is None and made and "*" not in made and task not in made:
        return f"{w.path} is a {spec.name} checkpoint (the {', '.join(made)} configuration), used here for {task}"
    return None


def _signature(with_sigma: bool) -> inspect.Signature:
    P = inspect.Parameter
    params = [
        ("inputs", Inputs, inspect.Parameter.empty),
        ("output", Output, None),
        ("model", opt.Model, None),
        ("weights", opt.Weights, None),
        ("registry", opt.Registry, None),
        ("device", opt.Device, "auto"),
        ("tile", opt.Tile, "auto"),
        ("tile_overlap", opt.TileOverlap, 32),
        ("precision", opt.Precision, "fp32"),
        ("compile", opt.Compile, False),
        ("ensemble", opt.Ensemble, None),
        ("bit_depth", BitDepth, None),
        ("quality", Quality, None),
        ("overwrite", Overwrite, False),
        ("max_pixels", MaxPixels, 200_000_000),
        ("quiet", opt.Quiet, False),
        ("debug", opt.Debug, False),
    ]
    if with_sigma:
        params.insert(5, ("sigma", Sigma, "auto"))
    return inspect.Signature([P(n, P.KEYWORD_ONLY, annotation=a, default=d) for n, a, d in params])


def _make_command(task: str):
    def command(**kwargs):
        run_task(task, **kwargs)

    command.__name__ = task
    command.__signature__ = _signature(with_sigma=task == "denoise")  # type: ignore[attr-defined]
    summary, example = DESCRIPTIONS[task]
    command.__doc__ = summary
    return user_errors(command), summary, example


for _task in TASKS:
    _fn, _summary, _example = _make_command(_task)
    app.command(name=_task, help=_summary, epilog=f"Example:\n\n{_example}")(_fn)
