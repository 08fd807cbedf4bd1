"""Files, folders and pipes: which inputs a run has, where each result goes, and the loop.

Rules (the CLI's documented behaviour):

* ``-``: read stdin; write stdout (in the input's format) unless ``-o FILE``.
* one file: ``-o FILE``, ``-o DIR/`` (same name inside), or ``<stem>_<task>.<ext>`` beside it.
  An existing output is an error unless ``--overwrite`` (with several inputs, e.g. a shell glob,
  it is skipped instead, as in folders, so a rerun resumes). A file without an image extension gets
  that of its content's format in the names made from its own (``scan`` holding a PNG:
  ``scan_denoise.png``, ``DIR/scan.png``; ``shot.jfif``: ``shot_denoise.jpg``); one that is
  not an image of a supported format (``notes.txt``, a GIF) is reported and the rest run.
* folders (recursive, image suffixes only, hidden entries skipped, symlinked subfolders not
  followed): the output tree mirrors the input tree under ``-o DIR`` or ``<folder>_<task>/``
  beside the folder (as named: a symlink's own name). Existing outputs are skipped, so a rerun
  resumes. A folder or input that cannot be read is reported, like a bad file; so is an entry
  that is not a regular file (a FIFO named ``x.png`` would block the run).
* several inputs with ``-o``: ``-o`` is a folder; each folder keeps its own name inside it.
* An output never replaces an input, its own or another of the same run.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import RestoreError, UsageError

__all__ = ["Job", "JobPlan", "plan_jobs", "BatchRunner", "STDIO"]

STDIO = "-"
# The tile overlap (the default) below which a run notes that seams may show. Measured against a
# whole-image run (deblur-unet-s4, a 384-px crop of astronaut, CPU), max difference / PSNR:
# tile 128 with overlap 16: 58/255, 44.4 dB; 32: 27/255, 54.6 dB; 64: 4/255, 63.7 dB.
SEAMLESS_OVERLAP = 32


@dataclass
class Job:
    source: str  # a path, or "-" for stdin
    dest: str  # a path, or "-" for stdout
    display: str  # how messages name the input
    error: str | None = None  # a planning error (e.g. output exists): reported, not run


@dataclass
class JobPlan:
    todo: list[Job] = field(default_factory=list)
    failed: list[Job] = field(default_factory=list)
    skipped: int = 0
    notes: list[str] = field(default_factory=list)  # said on stderr before the run
    # Images inside an input folder that the run leaves out (they are in its output folder):
    # not inputs, but never replaced either (they may be originals, not earlier outputs).
    kept: set[str] = field(default_factory=set)

    @property
    def to_stdout(self) -> bool:
        return any(j.dest == STDIO for j in self.todo)


def image_suffixes() -> frozenset[str]:
    from .imageio import IMAGE_SUFFIXES
    return frozenset(s.lower() for s in IMAGE_SUFFIXES)


def _scan(folder: Path, exclude: Path | None, unreadable: list[tuple[str, str]]) -> list[Path]:
    """Image files under ``folder``; folders that cannot be listed, and entries that are not
    regular files (FIFOs, devices: reading one would block or never end), go to ``unreadable``
    as (path, message): os.walk would skip the folders without a word."""
    suffixes = image_suffixes()
    found: list[Path] = []

    def cannot_list(e: OSError) -> None:
        unreadable.append((str(e.filename), f"cannot read this folder: {_reason(e)}"))

    for root, dirs, files in os.walk(folder, onerror=cannot_list):
        rootp = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or (rootp / d).resolve() != exclude))
        for f in sorted(files):
            if f.startswith(".") or Path(f).suffix.lower() not in suffixes:
                continue
            kind = _special_kind(rootp / f)
            if kind:
                unreadable.append((str(rootp / f), f"not a regular file ({kind}): skipped"))
                continue
            if os.path.islink(rootp / f) and not os.path.exists(rootp / f):
                unreadable.append((str(rootp / f), f"a broken symbolic link (to {os.readlink(rootp / f)})"))
                continue
            found.append(rootp / f)
    return found


def _special_kind(path: Path) -> str | None:
    """"a FIFO", "a device", "a socket" for such entries (links followed), else None (a
    regular file, or one that cannot be looked at: reading it reports why)."""
    import stat
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def _unreachable(path: Path) -> str | None:
    """Why ``path`` cannot be looked at (e.g. it is in a folder we may not enter), or None;
    a path that does not exist is not unreachable. (Path.exists() raises on these.)"""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        return _reason(e)
    return None


def _path_text(p: Path) -> str:
    """``str(p)``, except that a file named ``-`` stays ``./-``: ``Path("./-")`` prints as ``-``,
    which the rest of the run would take for stdin or stdout."""
    text = str(p)
    return os.path.join(os.curdir, text) if text == STDIO else text


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def plan_jobs(task: str, inputs: list[str], output: str | None, overwrite: bool = False) -> JobPlan:
    """Map inputs to outputs; raises UsageError for impossible combinations."""
    plan = JobPlan()
    if not inputs:
        raise UsageError("no input given (a file, a folder, or - for stdin)")
    # Path("") is ".": an empty argument (an unset shell variable) would restore the whole
    # current folder, or write into it.
    if any(p == "" for p in inputs):
        raise UsageError("empty input path (give a file, a folder, or - for stdin)")
    if output == "":
        raise UsageError("empty output path for -o (give a file, a folder, or - for stdout)")
    if STDIO in inputs:
        if len(inputs) > 1:
            raise UsageError("- (stdin) cannot be combined with other inputs")
        dest = output if output is not None else STDIO
        if dest != STDIO and (os.path.isdir(dest) or dest.endswith(("/", os.sep))):
            raise UsageError(f"-o {dest} is a folder; with stdin give an output file (or - for stdout)")
        job = Job(STDIO, dest, "<stdin>")
        if dest != STDIO and os.path.exists(dest) and not overwrite:  # known before reading stdin
            job.error = f"output {dest} exists (pass --overwrite to replace it)"
            plan.failed.append(job)
        else:
            plan.todo.append(job)
        return plan
    if output == STDIO:
        if len(inputs) != 1 or os.path.isdir(inputs[0]):
            raise UsageError("-o - (stdout) takes exactly one input image")

    from .imageio import ImageError, suffix_from_content

    # os.path's exists/isdir, not Path's: those raise PermissionError for a path inside a
    # folder we may not enter; such an input is reported like an unreadable file.
    paths = [Path(p) for p in inputs]
    blocked = {p: why for p in paths if (why := _unreachable(p))}
    missing = [str(p) for p in paths if p not in blocked and not os.path.exists(p)]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    several = len(paths) > 1 or os.path.isdir(paths[0])
    out = Path(output) if output not in (None, STDIO) else None
    if several and out is not None and os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"-o {output}: several inputs need an output folder, and this is a file")
    if several and out is not None and not os.path.exists(out) and out.suffix.lower() in image_suffixes():
        raise UsageError(f"-o {output}: several inputs need an output folder, not an image file name")
    if out is not None and several:
        out_resolved = out.resolve()
    else:
        out_resolved = None

    for p in paths:
        if p in blocked:
            plan.failed.append(Job(str(p), "", str(p), blocked[p]))
        elif os.path.isdir(p):
            # Named as given (a symlink keeps its own name): abspath, not resolve.
            here = Path(os.path.abspath(p))
            root = out if out is not None else here.parent / f"{here.name}_{task}"
            if out is not None and len(paths) > 1:
                root = out / here.name
            exclude = out_resolved if out_resolved is not None else root.resolve()
            unreadable: list[tuple[str, str]] = []
            if exclude is not None and exclude != Path(os.path.abspath(p)).resolve():
                with contextlib.suppress(ValueError):
                    inside = exclude.relative_to(Path(p).resolve())
                    left_out = _scan(Path(p) / inside, None, []) if os.path.isdir(Path(p) / inside) else []
                    plan.kept.update(str(f) for f in left_out)
                    left = len(left_out)
                    if left:
                        plan.notes.append(f"the output folder {p / inside} is inside the input folder {p}: "
                                          f"its {left} image(s) are not restored (outputs are never re-read "
                                          "as inputs); choose an output folder outside the inputs to include them")
            for src in _scan(p, exclude, unreadable):
                dest = root / src.relative_to(p)
                _add(plan, src, dest, display=str(src), skip_existing=True, overwrite=overwrite)
            for entry, why in unreadable:
                plan.failed.append(Job(entry, "", entry, why))
        else:
            if output == STDIO:
                plan.todo.append(Job(_path_text(p), STDIO, str(p)))
                continue
            into_folder = out is not None and (several or os.path.isdir(out)
                                               or str(output).endswith(("/", os.sep)))
            if out is not None and not into_folder:
                dest = out
            elif kind := _special_kind(p):  # <(cat x.png): read once, so not sniffed for a name
                plan.failed.append(Job(_path_text(p), "", str(p), f"this is {kind}: name its output with "
                                       "-o FILE (or -o - for stdout)"))
                continue
            else:  # named after the input; one without an image extension takes its content's format's
                known = p.suffix.lower() in image_suffixes()
                try:
                    suffix = p.suffix if known else suffix_from_content(p)
                except ImageError as e:  # not an image (notes.txt, a GIF): reported, the rest runs
                    plan.failed.append(Job(str(p), "", str(p), str(e)))
                    continue
                dest = out / (p.stem + suffix) if into_folder else p.with_name(f"{p.stem}_{task}{suffix}")
            _add(plan, p, dest, display=str(p), skip_existing=several, overwrite=overwrite)
    _refuse_clashes(plan)
    _keep_inputs(plan)
    return plan


def _keep_inputs(plan: JobPlan) -> None:
    """No output may replace another input of the same run (``a.png a_deblur.png --overwrite``:
    the first one's output is the second one's input), nor an image the run left out because it
    lies in the output folder inside an input folder (``photos -o photos/sub --overwrite``)."""
    sources: dict[Path, str] = {}
    for job in plan.todo + plan.failed:
        if job.source != STDIO:
            with contextlib.suppress(OSError):
                sources.setdefault(Path(job.source).resolve(), job.display)
    kept = set()
    for path in plan.kept:
        with contextlib.suppress(OSError):
            kept.add(Path(path).resolve())
    for job in list(plan.todo):
        if job.dest == STDIO:
            continue
        with contextlib.suppress(OSError):
            dest = Path(job.dest).resolve()
            other = sources.get(dest)
            if other is not None:
                job.error = f"its output {job.dest} would replace the input {other}"
            elif dest in kept:
                job.error = (f"its output would replace {job.dest}, an image inside the input folder that "
                             "this run leaves out (it may be an original): choose an output folder outside "
                             "the inputs, or delete the earlier outputs first")
            else:
                continue
            plan.todo.remove(job)
            plan.failed.append(job)


def _refuse_clashes(plan: JobPlan) -> None:
    """Two inputs must never write the same output (the second would replace the first)."""
    seen: dict[Path, str] = {}
    for job in plan.todo:
        key = Path(job.dest).resolve() if job.dest != STDIO else None
        if key is None:
            continue
        if key in seen:
            raise UsageError(f"{seen[key]} and {job.display} would both be written to {job.dest}; "
                             "give them different names or separate runs")
        seen[key] = job.display


def preflight(plan: JobPlan, bit_depth: int | None) -> None:
    """Check what can be checked before a network is loaded: output formats, the depth they
    can hold, and that output folders can be written. Raises UsageError / RestoreError."""
    from .imageio import ImageFormatError, check_output_depth, format_from_path

    checked_dirs: set[Path] = set()
    for job in plan.todo:
        if job.dest == STDIO:
            continue
        dest = Path(job.dest)
        try:
            fmt = format_from_path(dest)
            if bit_depth is not None:
                check_output_depth(fmt, bit_depth)
        except ImageFormatError as e:
            raise UsageError(f"{job.dest}: {e}") from None
        folder = dest.parent
        while not os.path.exists(folder) and folder != folder.parent:
            folder = folder.parent
        if folder in checked_dirs:
            continue
        checked_dirs.add(folder)
        if not os.path.isdir(folder):
            raise RestoreError(f"cannot write {dest}: {folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise RestoreError(f"cannot write {dest}: no permission to write in {folder}")


def _add(plan: JobPlan, src: Path, dest: Path, display: str, skip_existing: bool, overwrite: bool) -> None:
    source, target = _path_text(src), _path_text(dest)
    if _same_file(src, dest):
        plan.failed.append(Job(source, target, display, "the output would replace the input (choose "
                               "another -o, or leave -o out to write <name>_<task> beside it)"))
    elif kind := _special_kind(dest):  # /dev/null, a FIFO: never replaced by a file, even with --overwrite
        plan.failed.append(Job(source, target, display, f"output {target} is {kind}, not a regular file "
                               "(for standard output use -o -)"))
    elif os.path.exists(dest) and not overwrite:
        if skip_existing:
            plan.skipped += 1
        else:
            plan.failed.append(Job(source, target, display,
                                   f"output {target} exists (pass --overwrite to replace it)"))
    else:
        plan.todo.append(Job(source, target, display))


class _EmptyStdin(UsageError):
    """Nothing on stdin: it ends the run as a usage error (exit 2), not as one failed image."""


@dataclass
class BatchResult:
    done: int = 0
    failed: int = 0
    seconds: float = 0.0


class BatchRunner:
    """Runs a plan through a Restorer: read, restore, write atomically; one bad file
    is reported and the rest still run."""

    def __init__(self, restorer, bit_depth: int | None = None, max_pixels: int | None = None,
                 overwrite: bool = False, console=None, quiet: bool = False, debug: bool = False,
                 quality: int | None = None):
        self.restorer = restorer
        self.bit_depth = bit_depth
        self.quality = quality  # JPEG / lossy WebP; None: imageio's policy
        self.max_pixels = max_pixels
        self.overwrite = overwrite
        self.console = console
        self.quiet = quiet
        self.debug = debug
        self._overlap_noted = False
        self._quality_noted = False

    def _say(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def _error(self, job: Job, message: str) -> None:
        from rich.markup import escape

        if self.console is not None:
            # names are not markup: "shot [edited].png" keeps its brackets
            self.console.print(f"[bold red]error:[/] {escape(job.display)}: ", end="", soft_wrap=True)
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def _warnings_named(self, job: Job):
        """Python warnings raised for one image (Pillow's "Corrupt EXIF data", EXIF too large for
        a JPEG, ...) as one line naming the file, not two lines of source code and a path."""
        import warnings

        with warnings.catch_warnings(record=True) as caught:  # the filters in force still apply
            try:
                yield
            finally:
                if not self.quiet:
                    for message in dict.fromkeys(" ".join(str(w.message).split()) for w in caught):
                        self._say(f"warning: {job.display}: {message}")

    def run(self, plan: JobPlan) -> BatchResult:
        from .errors import user_error_types

        result = BatchResult()
        for job in plan.failed:
            self._error(job, job.error or "failed")
            result.failed += 1
        show_progress = (not self.quiet and self.console is not None and self.console.is_terminal)
        progress = _Progress(self.console, len(plan.todo)) if show_progress else None
        started = time.perf_counter()
        known = user_error_types()
        try:
            for job in plan.todo:
                if progress:
                    progress.start_file(job.display)
                try:
                    with self._warnings_named(job):
                        self.run_one(job, progress)
                    result.done += 1
                except _EmptyStdin:  # the run's only job, and the command line's mistake: exit 2
                    raise
                except known as e:
                    self._error(job, str(e))
                    result.failed += 1
                except MemoryError:
                    self._error(job, "out of memory (try a smaller --tile)")
                    result.failed += 1
                except Exception as e:  # one bad file must not stop a folder run
                    if self.debug:
                        import traceback
                        traceback.print_exc()
                    self._error(job, f"internal error: {type(e).__name__}: {e}")
                    result.failed += 1
                if progress:
                    progress.end_file()
        finally:
            if progress:
                progress.close()
        result.seconds = time.perf_counter() - started
        return result

    def run_one(self, job: Job, progress: "_Progress | None" = None) -> None:
        from .imageio import (Image, alpha_is_opaque, check_output_alpha, check_output_depth, check_output_size, encode_image,
                              format_from_path, from_float, read_image, to_float, write_image)

        if job.source == STDIO and sys.stdin is None:
            raise _EmptyStdin("standard input is closed: pipe an image in, or give a file")
        source = sys.stdin.buffer.read() if job.source == STDIO else job.source
        if job.source == STDIO and not source:
            raise _EmptyStdin("no image data on standard input")
        img = read_image(source, max_pixels=self.max_pixels)
        # What only the image shows, checked before the network runs on it.
        out_format = img.format if job.dest == STDIO else format_from_path(job.dest)
        check_output_size(out_format, img.width, img.height)
        if img.alpha is not None and out_format == "JPEG" and alpha_is_opaque(img.alpha):
            img.alpha = None  # an alpha channel with nothing transparent: nothing is lost
        if img.alpha is not None:
            check_output_alpha(out_format)
        if self.bit_depth is not None:  # stdout's format is the input's: known only now
            check_output_depth(out_format, self.bit_depth)
        if (self.quality is not None and out_format not in ("JPEG", "WEBP") and not self.quiet
                and not self._quality_noted):
            self._quality_noted = True  # a folder of mixed formats: said once, not per file
            self._say(f"note: --quality applies to JPEG and WebP outputs; {out_format} is written "
                      f"losslessly ({job.display})")
        if img.pixels.dtype.kind == "f" and not self.quiet:
            share = out_of_range_share(img.pixels)
            if share:
                self._say(f"warning: {job.display}: {_percent(share)} of the pixels have values outside "
                          "0-1, which are clipped (the networks take 0-1)")
        depth = self.bit_depth or img.bit_depth
        dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[depth]
        pixels = to_float(img.pixels)
        tiles = self.restorer.tiles_for(*pixels.shape[:2])
        overlap = self.restorer.tile_overlap
        if tiles > 1 and overlap < SEAMLESS_OVERLAP and not self.quiet and not self._overlap_noted:
            self._overlap_noted = True
            self._say(f"note: --tile-overlap {overlap} is small for these networks, whose view spans "
                      f"more than that: seams may show between tiles (a larger overlap narrows them; "
                      f"the default is {SEAMLESS_OVERLAP})")
        if progress:
            progress.set_tiles(tiles)
        restored = self.restorer(pixels, progress=progress.tile_done if progress else None)
        if self.restorer.last_sigma is not None and self.restorer.sigma == "auto" and not self.quiet:
            self._say(f"{job.display}: estimated noise sigma {self.restorer.last_sigma:.1f}")
        alpha = img.alpha
        if alpha is not None and alpha.dtype != dtype:
            alpha = from_float(to_float(alpha), dtype)
        out = Image(pixels=from_float(restored, dtype), alpha=alpha, format=img.format, bit_depth=depth,
                    exif=img.exif, icc_profile=img.icc_profile, extra=dict(img.extra))
        if img.extra.get("n_frames", 1) > 1 and not self.quiet:
            self._say(f"note: {job.display} has {img.extra['n_frames']} frames/pages; only the first is restored")
        if job.dest == STDIO:
            write_stdout(encode_image(out, format=img.format, bit_depth=self.bit_depth, quality=self.quality))
        else:
            dest = Path(job.dest)
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise RestoreError(f"cannot create folder {dest.parent}: {e.strerror or e}") from None
            # bit_depth only when asked: otherwise the format may lower the input's depth
            # (16-bit PNG in, JPEG out) instead of refusing it.
            write_image(dest, out, bit_depth=self.bit_depth, overwrite=self.overwrite, quality=self.quality)


def write_stdout(data: bytes) -> None:
    """Write all of ``data`` to stdout, or raise RestoreError. A write may take only part of
    it (at a file-size limit it returns a short count, and only the next one fails)."""
    if sys.stdout is None:
        raise RestoreError("standard output is closed")
    out = sys.stdout.buffer
    view = memoryview(data)
    try:
        while view:
            n = out.write(view)
            if not n:  # 0, or None from a non-blocking stream: nothing taken
                raise RestoreError(f"cannot write to standard output: it stopped taking data after "
                                   f"{len(data) - len(view):,} of {len(data):,} bytes")
            view = view[n:]
        out.flush()
    except OSError as e:
        raise RestoreError(f"cannot write to standard output: {e.strerror or e}") from None


def out_of_range_share(pixels: np.ndarray) -> float:
    """The share of pixels with a value outside [0, 1] in any channel (float images)."""
    bad = (pixels < 0) | (pixels > 1)
    if bad.ndim == 3:
        bad = bad.any(axis=2)
    return float(bad.mean())


def _percent(share: float) -> str:
    return "under 0.1%" if share < 0.001 else f"{share:.1%}"


def eta_seconds(elapsed: float | None, done: float, total: float | None) -> float | None:
    """Seconds left at the rate measured since the start: ``elapsed / done`` per step."""
    if total is None or elapsed is None or done <= 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


def _eta_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        """Time left from the steps (tiles, files) done so far and the time they took.
        (rich's own estimate keeps only the last 30 s of samples, so with CPU tiles that
        take longer than that it never shows one.)"""

        def render(self, task) -> Text:
            left = 0.0 if task.finished else eta_seconds(task.elapsed, task.completed, task.total)
            if left is None:
                return Text("-:--:--", style="progress.remaining")
            m, sec = divmod(int(round(left)), 60)
            return Text(f"{m // 60:d}:{m % 60:02d}:{sec:02d}", style="progress.remaining")

    return EtaColumn()


class _Progress:
    """Rich progress on stderr: files, and tiles within the current file, with an ETA
    from measured tiles per second."""

    def __init__(self, console, total_files: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), _eta_column(), console=console, transient=False)
        self.progress.start()
        self.files = self.progress.add_task("files", total=total_files)
        self.tiles = None

    def start_file(self, name: str) -> None:
        label = name if len(name) <= 40 else "…" + name[-39:]
        self.tiles = self.progress.add_task(f"  {label}", total=1)

    def set_tiles(self, n: int) -> None:
        if self.tiles is not None:
            self.progress.update(self.tiles, total=n, completed=0)

    def tile_done(self, done: int, total: int) -> None:
        if self.tiles is not None:
            self.progress.update(self.tiles, total=total, completed=done)

    def end_file(self) -> None:
        if self.tiles is not None:
            self.progress.remove_task(self.tiles)
            self.tiles = None
        self.progress.advance(self.files)

    def close(self) -> None:
        self.progress.stop()
