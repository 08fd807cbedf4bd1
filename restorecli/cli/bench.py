"""``restore bench``: score a model (or another tool's outputs) on a paper benchmark."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import options as opt
from .app import app, err, note, quiet_hub_downloads, user_errors, weights_note

from ..bench.datasets import DATASETS

DATA = "Benchmark"

Dataset = Annotated[str, typer.Option(
    "--dataset", "-d", rich_help_panel=DATA, show_default=False,
    help=f"One of: {', '.join(DATASETS)}.")]
Root = Annotated[Path, typer.Option(
    "--root", "-r", rich_help_panel=DATA, show_default=False,
    help="The dataset folder as released (e.g. GOPRO_Large, SOTS/indoor); a wrong one shows the expected tree.")]
PredictionsDir = Annotated[Optional[Path], typer.Option(
    "--predictions", "-p", rich_help_panel=DATA,
    help="Score restored images from any tool instead of running a model: a folder with them at the "
         "inputs' relative paths under --root (what a folder run of restore writes).")]
Sigma = Annotated[Optional[float], typer.Option(
    "--sigma", "-s", rich_help_panel=DATA,
    help="Noise level (0-255) added to cbsd68/kodak24/urban100/mcmaster, seed 0 per image; also what a "
         "noise-conditioned model is given.")]
Limit = Annotated[Optional[int], typer.Option(
    "--limit", "-n", rich_help_panel=DATA, min=1, help="Score only the first N images.")]
Save = Annotated[Optional[Path], typer.Option(
    "--save", rich_help_panel=opt.OUT, help="Keep the restored images here, in the inputs' tree.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", rich_help_panel=opt.OUT,
                                         help="Replace existing files under --save.")]
JsonOut = Annotated[Optional[Path], typer.Option(
    "--json", rich_help_panel=opt.OUT, help="Write the means and every image's scores as JSON (- for stdout: the table goes to stderr).")]
CsvOut = Annotated[Optional[Path], typer.Option(
    "--csv", rich_help_panel=opt.OUT, help="Write every image's scores as CSV (- for stdout: the table goes to stderr).")]

EXAMPLE = ("restore bench --dataset gopro --root ~/data/GOPRO_Large --model irnext --weights gopro.pkl\n\n"
           "restore bench -d sots-indoor -r SOTS/indoor --predictions results/ --json sots.json\n\n"
           "restore bench -d urban100 -r Urban100 --sigma 50 --model clginet --weights clg.safetensors")


@app.command(help="Score a model, or another tool's outputs, on a paper benchmark (PSNR, SSIM, speed).",
             epilog=f"Examples:\n\n{EXAMPLE}")
@user_errors
def bench(
    dataset: Dataset,
    root: Root,
    predictions: PredictionsDir = None,
    model: opt.Model = None,
    weights: opt.Weights = None,
    registry: opt.Registry = None,
    device: opt.Device = "auto",
    tile: opt.Tile = "0",
    tile_overlap: opt.TileOverlap = 32,
    precision: opt.Precision = "fp32",
    ensemble: opt.Ensemble = None,
    sigma: Sigma = None,
    limit: Limit = None,
    save: Save = None,
    overwrite: Overwrite = False,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    quiet: opt.Quiet = False,
    debug: opt.Debug = False,
) -> None:
    from ..bench.datasets import find_samples, get_dataset
    from ..bench.runner import check_outputs_outside_dataset, check_report_path, run_bench, save_paths
    from ..errors import RestoreError, UsageError

    spec = get_dataset(dataset)
    if sigma is not None and not 0 <= sigma <= 255:
        raise UsageError(f"--sigma {sigma:g}: expected a value between 0 and 255")
    if predictions is not None:
        used = [n for n, v in (("--model", model), ("--weights", weights), ("--save", save),
                                ("--ensemble", ensemble)) if v is not None]
        if used:
            raise UsageError(f"--predictions scores existing images: {', '.join(used)} "
                             f"{'does' if len(used) == 1 else 'do'} not apply")
    elif spec.synthetic_noise and sigma is None:
        raise UsageError(f"{spec.name} is scored with synthetic noise: pass --sigma (15, 25 or 50 in the papers)")
    if spec.synthetic_noise and predictions is not None and sigma is None and not quiet:
        note("no --sigma given; the published numbers shown are for a sigma, so none are shown")

    dataset_samples = find_samples(spec, root)
    if spec.count is not None and len(dataset_samples) != spec.count and not quiet:
        note(f"{len(dataset_samples)} test images found; the full {spec.title} has {spec.count}, "
             "so the means are not comparable with published ones")
    samples = dataset_samples[:limit] if limit is not None else dataset_samples
    # Before any model is loaded: no output may land on (or, for --save, among) the dataset's files.
    reports = [(name, path) for name, path in (("--json", json_out), ("--csv", csv_out))
               if path is not None and str(path) != "-"]
    check_outputs_outside_dataset([(f"{name} {path}", path) for name, path in reports], dataset_samples)
    if str(json_out) == "-" and str(csv_out) == "-":
        raise UsageError("--json - and --csv - would both write to stdout: give one of them a file")
    for name, path in reports:
        check_report_path(name, path)
    if save is not None:
        saved = save_paths(save, samples)
        check_outputs_outside_dataset(saved, dataset_samples, folders=True)
        existing = [p for _, p in saved if os.path.lexists(p)]
        if existing and not overwrite:
            raise UsageError(f"--save {save}: {len(existing)} of the {len(saved)} outputs exist already "
                             f"(e.g. {existing[0]}): pass --overwrite, or another folder")

    restorer = None
    if predictions is None:
        from ..restorer import Restorer
        if quiet:
            quiet_hub_downloads()
        restorer = Restorer(spec.task, model=model, weights=weights, device=device, tile=tile,
                            tile_overlap=tile_overlap, precision=precision,
                            sigma=sigma if sigma is not None else "auto",
                            registry=str(registry) if registry else None, ensemble=ensemble)
        if not quiet:
            weights_note(restorer)
            if sigma is not None and not spec.synthetic_noise and not restorer.conditioned_on_sigma:
                note(f"--sigma {sigma:g} has no effect: {spec.name} adds no noise and "
                     f"{restorer.spec.name} takes no noise level")
            err.print(f"{spec.title}: {len(samples)} images, {spec.task} with {restorer.describe()}",
                      markup=False, highlight=False, soft_wrap=True)
    elif not quiet:
        err.print(f"{spec.title}: scoring {len(samples)} images from {predictions}", markup=False,
                  highlight=False, soft_wrap=True)

    progress = _progress(len(samples)) if not quiet and err.is_terminal else None
    failures_shown = 0

    def on_image(sample, result, failure):
        nonlocal failures_shown
        if failure is not None and not quiet and failures_shown < 20:
            failures_shown += 1
            err.print("[bold red]error:[/] ", end="")
            err.print(f"{failure.path}: {failure.message}", markup=False, highlight=False, soft_wrap=True)
        if progress is not None:
            progress.advance()

    try:
        report = run_bench(spec, samples, restorer=restorer, predictions=predictions, save=save,
                           overwrite=overwrite, sigma=sigma, on_image=on_image, debug=debug,
                           dataset=dataset_samples)
    finally:
        if progress is not None:
            progress.close()

    # The table first: a report that cannot be written (a disk filled meanwhile) loses nothing
    # on screen. With a report on stdout, the table goes to stderr (a summary: not with --quiet).
    report_on_stdout = "-" in (str(json_out), str(csv_out))
    if not (quiet and report_on_stdout):
        _print_table(report, to_stderr=report_on_stdout)
    for path, write in ((json_out, report.write_json), (csv_out, report.write_csv)):
        if path is not None:
            try:
                write(path)
            except OSError as e:
                raise RestoreError(f"cannot write {path}: {(e.strerror or str(e)).lower()}") from None
    if report.failures:
        if not quiet:
            err.print(f"{len(report.failures)} of {len(samples)} images failed; the means are over the "
                      f"{report.count} scored", soft_wrap=True)
        raise typer.Exit(1)


class _progress:
    def __init__(self, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        self.p = Progress(TextColumn("images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=err, transient=True)
        self.p.start()
        self.task = self.p.add_task("images", total=total)

    def advance(self) -> None:
        self.p.advance(self.task)

    def close(self) -> None:
        self.p.stop()


def _fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "-"
    return "inf" if v == float("inf") else f"{v:.{digits}f}"


def _print_table(report, to_stderr: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    spec = report.dataset
    title = spec.title + (f", sigma {report.sigma:g}" if report.sigma is not None else "")
    table = Table(title=title, caption=spec.convention.describe(report.mode), title_justify="left",
                  caption_justify="left")
    table.add_column("")
    table.add_column("PSNR (dB)", justify="right")
    table.add_column("SSIM", justify="right")
    table.add_column("images", justify="right")
    timed = report.seconds_per_image is not None
    if timed:
        table.add_column("s / image", justify="right")
        table.add_column("s / MP", justify="right")
    ours = report.model_name or "predictions"
    row = [f"ours: {ours}", _fmt(report.psnr, 2), _fmt(report.ssim, 4), str(report.count)]
    if timed:
        row += [_fmt(report.seconds_per_image, 3), _fmt(report.seconds_per_megapixel, 3)]
    table.add_row(*row)
    for group, g in report.groups().items():
        row = [f"  {group}", _fmt(g["psnr"], 2), _fmt(g["ssim"], 4), str(g["count"])]
        table.add_row(*(row + ["", ""] if timed else row))
    for p in report.published:
        row = [f"{p.model} (published)", _fmt(p.psnr, 2), _fmt(p.ssim, 3), ""]
        table.add_row(*(row + ["", ""] if timed else row), style="dim")
    (err if to_stderr else Console(highlight=False)).print(table, highlight=False)
