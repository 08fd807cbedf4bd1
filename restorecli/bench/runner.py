"""Running a benchmark: model mode (restore each input, time it, score it) and scoring mode
(score restored images made by any tool), with per-image records and the means.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np

from ..errors import RestoreError, UsageError
from .. import metrics
from .datasets import DatasetSpec, Published, Sample, add_gaussian_noise, published_for

__all__ = ["ImageScore", "Failure", "BenchReport", "score_pair", "run_bench", "Predictions",
           "check_outputs_outside_dataset", "save_paths"]


@dataclass
class ImageScore:
    path: str
    psnr: float
    ssim: float
    seconds: float | None = None  # model mode: time of the restoration call
    megapixels: float = 0.0
    group: str | None = None


@dataclass
class Failure:
    path: str
    message: str


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


@dataclass
class BenchReport:
    dataset: DatasetSpec
    mode: str  # "model" or "predictions"
    images: list[ImageScore] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    sigma: float | None = None
    model: str | None = None  # what ran (model mode): architecture, weights, device, precision
    model_name: str | None = None  # its short name, for the table
    published: list[Published] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.images)

    @property
    def psnr(self) -> float | None:
        return _mean([i.psnr for i in self.images])

    @property
    def ssim(self) -> float | None:
        return _mean([i.ssim for i in self.images])

    @property
    def seconds_per_image(self) -> float | None:
        timed = [i.seconds for i in self.images if i.seconds is not None]
        return float(np.mean(timed)) if timed else None

    @property
    def seconds_per_megapixel(self) -> float | None:
        timed = [i for i in self.images if i.seconds is not None]
        mp = sum(i.megapixels for i in timed)
        return sum(i.seconds for i in timed) / mp if timed and mp > 0 else None

    def groups(self) -> dict[str, dict[str, float | int | None]]:
        names = sorted({i.group for i in self.images if i.group is not None})
        out = {}
        for g in names:
            members = [i for i in self.images if i.group == g]
            out[g] = {"psnr": _mean([i.psnr for i in members]), "ssim": _mean([i.ssim for i in members]),
                      "count": len(members)}
        return out

    def to_dict(self) -> dict:
        conv = self.dataset.convention
        return {
            "dataset": self.dataset.name,
            "task": self.dataset.task,
            "mode": self.mode,
            "model": self.model,
            "sigma": self.sigma,
            "convention": {"color": conv.color, "ssim": conv.ssim, "pool_factor": conv.pool_factor,
                           "align": conv.align, "crop_border": conv.crop_border,
                           "quantize": conv.quantize, "high_byte": conv.high_byte, "source": conv.source},
            "psnr": _finite(self.psnr),
            "ssim": _finite(self.ssim),
            "seconds_per_image": self.seconds_per_image,
            "seconds_per_megapixel": self.seconds_per_megapixel,
            "count": self.count,
            "failed": [{"path": f.path, "error": f.message} for f in self.failures],
            "groups": {g: {k: _finite(v) for k, v in d.items()} for g, d in self.groups().items()},
            "published": [{"model": p.model, "psnr": p.psnr, "ssim": p.ssim, "source": p.source}
                          for p in self.published],
            "images": [{"path": i.path, "psnr": _finite(i.psnr), "ssim": _finite(i.ssim),
                        **({"seconds": i.seconds} if i.seconds is not None else {}),
                        **({"group": i.group} if i.group is not None else {})} for i in self.images],
        }

    def write_json(self, path: str | Path) -> None:
        _write_report(path, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")

    def write_csv(self, path: str | Path) -> None:
        import io
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "group", "psnr", "ssim", "seconds", "megapixels"])
        for i in self.images:
            w.writerow([i.path, i.group or "", f"{i.psnr:.6f}", f"{i.ssim:.8f}",
                        "" if i.seconds is None else f"{i.seconds:.6f}", f"{i.megapixels:.6f}"])
        _write_report(path, buf.getvalue())


def _finite(v):
    """JSON has no infinity: identical images (PSNR = inf) are written as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _write_report(path: str | Path, text: str) -> None:
    """A report file, written atomically (replacing an older one); ``-`` is stdout."""
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from ..imageio import write_file_atomic
    write_file_atomic(Path(path).expanduser(), text.encode("utf-8"), overwrite=True)


def check_report_path(option: str, path: str | Path) -> None:
    """Before a run, refuse a report path that could not be written after it (the scores
    would be lost): a folder, a path under a file, a folder we may not write in."""
    p = Path(path).expanduser()
    if os.path.isdir(p):
        raise UsageError(f"{option} {path} is a folder: give a file name (e.g. {p / ('scores' + p.suffix)})")
    folder = p.parent
    while not os.path.exists(folder) and folder != folder.parent:
        folder = folder.parent
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: {folder} is not a folder")
    if folder == p.parent:  # the real test: create (and remove) a file there
        try:
            fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=folder)
        except OSError as e:
            raise RestoreError(f"{option} {path}: cannot write in {folder}: {(e.strerror or str(e)).lower()}") from None
        os.close(fd)
        os.unlink(probe)
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise RestoreError(f"{option} {path}: cannot create folders in {folder}: permission denied")


# -- scoring ----------------------------------------------------------------------------------

def _center_crop(target: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """torchvision CenterCrop of ``target`` to ``shape[:2]`` (FFA-Net's SOTS loaders)."""
    th, tw = target.shape[:2]
    h, w = shape[:2]
    if (th, tw) == (h, w) or th < h or tw < w:
        return target
    top, left = int(round((th - h) / 2.0)), int(round((tw - w) / 2.0))
    return target[top:top + h, left:left + w]


def _describe_shape(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]}" + (f"x{a.shape[2]}" if a.ndim == 3 else " grey")


def score_pair(spec: DatasetSpec, pred: np.ndarray, target: np.ndarray,
               input_shape: tuple[int, ...] | None = None) -> tuple[float, float]:
    """PSNR and SSIM of one restored image against its target, by the dataset's convention.
    ``input_shape``: the degraded input's, to which a larger target is centre-cropped where the
    dataset does that (SOTS); the prediction must then have that size (default: its own)."""
    conv = spec.convention
    if spec.center_crop_target:
        target = _center_crop(target, pred.shape if input_shape is None else input_shape)
    if pred.ndim == 3 and pred.shape[2] == 1:
        pred = pred[..., 0]
    if target.ndim == 3 and target.shape[2] == 1:
        target = target[..., 0]
    if pred.shape != target.shape:
        raise RestoreError(f"the restored image is {_describe_shape(pred)} but the target is "
                           f"{_describe_shape(target)}")
    if conv.align:
        zr, xr, cr, _ = metrics.align_ecc(pred, target)
        return metrics.psnr_masked(zr, xr, cr), metrics.ssim_masked(zr, xr, cr)
    y = conv.color == "y"
    p = metrics.psnr(pred, target, crop_border=conv.crop_border, y_channel=y)
    if conv.ssim == "pooled":
        s = metrics.ssim_pooled(pred, target, conv.pool_factor)
    else:
        s = metrics.ssim(pred, target, crop_border=conv.crop_border, y_channel=y, window=conv.ssim)
    return p, s


class Predictions:
    """Finds the restored image for an input's relative path in a predictions folder.

    The folder holds the restored images in the inputs' tree, from any level: a folder run
    on ``ROOT/test`` writes ``scene/blur/x.png`` for the input ``test/scene/blur/x.png``, one
    on ``SOTS`` writes ``indoor/hazy/x.png`` for ``hazy/x.png`` under ``SOTS/indoor``. Any
    image suffix is accepted (``x.jpg`` may come back as ``x.png``).

    A match must be unambiguous. The image at the input's own relative path is taken first.
    Otherwise an image with the same stem *fits* an input when the shorter of their folder
    paths is the tail of the longer one (the trees aligned at some level); it is taken only
    when it fits this input and no other one of ``rels``, and is the only such image (the
    exact file name breaking a tie with a changed suffix). So when ``GOPR0384_11_00/blur/
    000002.png`` is missing, ``GOPR0385_11_01/blur/000002.png`` is never scored in its place.
    """

    def __init__(self, root: str | Path, rels: list[str] | None = None, dataset_root: Path | None = None):
        from ..imageio import IMAGE_SUFFIXES
        self.root = Path(root).expanduser()
        # Folders a deeper predicted tree may add before an input's own: the dataset root's own
        # path, from some level (a run on GOPRO_Large/ wrote test/GOPR0384_11_00/blur/x.png for
        # the root GOPRO_Large/test/GOPR0384_11_00); None: any (the root is not known).
        self.root_tails: set[tuple[str, ...]] | None = None
        if dataset_root is not None:
            self.root_tails = set()
            for path in (os.path.abspath(dataset_root), os.path.realpath(dataset_root)):
                parts = Path(path).parts[1:]
                self.root_tails.update(parts[k:] for k in range(len(parts) + 1))
        if not self.root.is_dir():
            raise UsageError(f"--predictions {self.root}: not a directory")
        suffixes = {s.lower() for s in IMAGE_SUFFIXES}
        # (stem, folders) -> file names; (stem, any tail of the folders) -> the files' folders
        self.files: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        self.by_tail: dict[tuple[str, tuple[str, ...]], list[tuple[str, ...]]] = {}
        for dirpath, dirnames, files in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            folders = Path(dirpath).relative_to(self.root).parts
            for f in sorted(files):
                if not f.startswith(".") and Path(f).suffix.lower() in suffixes:
                    stem = Path(f).stem
                    if (stem, folders) not in self.files:
                        for k in range(len(folders) + 1):
                            self.by_tail.setdefault((stem, folders[k:]), []).append(folders)
                    self.files.setdefault((stem, folders), []).append(f)
        # The inputs, the same way: which inputs a predicted image could belong to.
        self.inputs: dict[tuple[str, tuple[str, ...]], int] = {}
        self.inputs_by_tail: dict[tuple[str, tuple[str, ...]], int] = {}
        for rel in dict.fromkeys(rels or ()):
            stem, folders = self._split(rel)
            self.inputs[(stem, folders)] = self.inputs.get((stem, folders), 0) + 1
            for k in range(len(folders) + 1):
                key = (stem, folders[k:])
                self.inputs_by_tail[key] = self.inputs_by_tail.get(key, 0) + 1

    @staticmethod
    def _split(rel: str) -> tuple[str, tuple[str, ...]]:
        parts = PurePosixPath(rel).parts
        return Path(parts[-1]).stem, tuple(parts[:-1])

    def _fits(self, stem: str, folders: tuple[str, ...]) -> list[tuple[str, ...]]:
        """Folders of the predicted images named ``stem`` that fit an input in ``folders``."""
        found = [f for f in self.by_tail.get((stem, folders), [])   # deeper trees ending in the input's folders
                 if self.root_tails is None or f[:len(f) - len(folders)] in self.root_tails]
        for k in range(1, len(folders) + 1):  # shallower trees: a tail of the input's folders
            if (stem, folders[k:]) in self.files:
                found.append(folders[k:])
        return found

    def _inputs_fitting(self, stem: str, folders: tuple[str, ...]) -> int:
        """How many inputs a predicted image at ``folders`` could be the restored one of."""
        n = self.inputs_by_tail.get((stem, folders), 0)  # inputs deeper than the image
        n += sum(self.inputs.get((stem, folders[k:]), 0) for k in range(1, len(folders) + 1))
        return n

    def _pick(self, folders: tuple[str, ...], name: str, rel: str) -> Path:
        names = self.files[(Path(name).stem, folders)]
        if name in names:
            return self.root.joinpath(*folders, name)
        if len(names) > 1:
            raise RestoreError(f"{len(names)} restored images could be the one for {rel} "
                               f"({', '.join('/'.join(folders + (n,)) for n in names[:3])}): keep one")
        return self.root.joinpath(*folders, names[0])

    def locate(self, rel: str) -> Path | None:
        stem, folders = self._split(rel)
        name = PurePosixPath(rel).name
        if (stem, folders) in self.files:  # the input's own relative path
            return self._pick(folders, name, rel)
        mine = [f for f in self._fits(stem, folders) if f != folders and self._inputs_fitting(stem, f) <= 1]
        if not mine:
            return None
        if len(mine) > 1:
            exact = [f for f in mine if name in self.files[(stem, f)]]
            if len(exact) == 1:
                return self.root.joinpath(*exact[0], name)
            raise RestoreError(f"{len(mine)} restored images could be the one for {rel} "
                               f"({', '.join('/'.join(f + (self.files[(stem, f)][0],)) for f in mine[:3])}): "
                               "give --predictions the folder that mirrors --root")
        return self._pick(mine[0], name, rel)

    def expected(self, rel: str) -> Path:
        return self.root / rel


# -- running ----------------------------------------------------------------------------------

def _read_pixels(path: Path) -> np.ndarray:
    from ..imageio import read_image
    return read_image(path).pixels


def _resolved(path: Path) -> Path:
    return Path(os.path.normcase(os.path.abspath(os.path.realpath(path))))


def check_outputs_outside_dataset(outputs: list[tuple[str, Path]], dataset: list[Sample],
                                  folders: bool = False) -> None:
    """Refuse (usage error) an output that is one of the dataset's input or target files, or,
    with ``folders``, one that would land in a folder holding them (a new file there would
    become a test image of the next run). ``outputs``: (option, path) pairs."""
    files: dict[Path, tuple[str, Path]] = {}
    dirs: dict[Path, tuple[str, Path]] = {}
    for s in dataset:
        for path, what in ((s.input_path, "test input"), (s.target_path, "ground truth")):
            if path is not None:
                r = _resolved(path)
                files.setdefault(r, (what, path))
                dirs.setdefault(r.parent, (what, path))
    # the folder holding all the dataset's files (SOTS/outdoor for hazy/ and gt/): nothing is
    # written anywhere under it, not even in a new subfolder
    top = Path(os.path.commonpath(list(dirs))) if folders and dirs else None
    if top is not None and top == Path(top.anchor):  # files spread over the whole tree: no one folder
        top = None
    for option, out in outputs:
        r = _resolved(out)
        if r in files:
            what, path = files[r]
            raise UsageError(f"{option} would overwrite the dataset's {what} {path}; the dataset is never "
                             "written to: choose a path outside it")
        if folders and r.parent in dirs:
            what, path = dirs[r.parent]
            raise UsageError(f"{option} would write {out} beside the dataset's {what} {path}, where it "
                             "would join the dataset; choose a folder outside it")
        if top is not None and top in r.parents:
            raise UsageError(f"{option} would write {out} inside the dataset's folder {top}; the dataset "
                             "is never written to: choose a folder outside it")


def save_paths(save: str | Path, samples: list[Sample]) -> list[tuple[str, Path]]:
    """Where --save keeps each sample's output, as (option, path) pairs."""
    root = Path(save).expanduser()
    return [(f"--save {save}", _save_path(root, s.rel)) for s in samples]


def run_bench(spec: DatasetSpec, samples: list[Sample], *, restorer=None, predictions: str | Path | None = None,
              save: str | Path | None = None, overwrite: bool = False, sigma: float | None = None,
              on_image: Callable[[Sample, ImageScore | None, Failure | None], None] | None = None,
              debug: bool = False, dataset: list[Sample] | None = None) -> BenchReport:
    """Score ``samples``: with ``restorer`` (model mode) or from ``predictions`` (scoring mode).

    One image that fails (unreadable, wrong size, missing prediction) is recorded in
    ``failures`` and the rest still run. ``dataset``: all the test pairs, when ``samples`` is
    part of them (``--limit``): predictions are told apart among all of them, and ``--save``
    may write over none of their files.
    """
    from ..errors import user_error_types

    if (restorer is None) == (predictions is None):
        raise UsageError("give either a model to run or --predictions to score, not both")
    dataset = samples if dataset is None else dataset
    if save is not None:
        check_outputs_outside_dataset(save_paths(save, samples), dataset, folders=True)
    if spec.synthetic_noise and restorer is not None and sigma is None:
        raise UsageError(f"{spec.name} adds synthetic noise: pass --sigma (e.g. 15, 25 or 50)")
    report = BenchReport(dataset=spec, mode="model" if restorer is not None else "predictions",
                         sigma=sigma if spec.synthetic_noise else None,
                         published=published_for(spec.name, sigma if spec.synthetic_noise else None))
    if restorer is not None:
        report.model = restorer.describe() if hasattr(restorer, "describe") else type(restorer).__name__
        report.model_name = getattr(getattr(restorer, "spec", None), "name", None) or report.model
    preds = (Predictions(predictions, [s.rel for s in dataset], dataset_root=_dataset_root(dataset))
             if predictions is not None else None)
    save_root = Path(save).expanduser() if save is not None else None
    known = user_error_types()
    warmed = False

    for sample in samples:
        try:
            if preds is not None:
                path = preds.locate(sample.rel)
                if path is None:
                    raise RestoreError(f"no restored image at {preds.expected(sample.rel)}")
                pred = _read_pixels(path)
                target = sample.target()
                # the target is cut to the input's size, not the prediction's (which may be wrong)
                input_shape = sample.input().shape if spec.center_crop_target else None
                seconds = None
                megapixels = pred.shape[0] * pred.shape[1] / 1e6
            else:
                dest = _save_path(save_root, sample.rel) if save_root is not None else None
                if dest is not None and dest.exists() and not overwrite:
                    raise RestoreError(f"{dest} exists (pass --overwrite to replace it)")
                if not warmed:
                    _warm_up(restorer, sample, spec, sigma)
                    warmed = True
                pred, target, seconds, restored, depth = _restore(restorer, sample, spec, sigma)
                input_shape = None   # the model keeps the input's size
                megapixels = pred.shape[0] * pred.shape[1] / 1e6
                if dest is not None:
                    _save(dest, restored, depth, overwrite)
            p, s = score_pair(spec, pred, target, input_shape)
            result = ImageScore(sample.rel, p, s, seconds, megapixels, sample.group)
            report.images.append(result)
            if on_image:
                on_image(sample, result, None)
        except known as e:
            failure = Failure(sample.rel, str(e))
            report.failures.append(failure)
            if on_image:
                on_image(sample, None, failure)
        except Exception as e:  # noqa: BLE001 - one bad image must not stop the benchmark
            if debug:
                raise
            failure = Failure(sample.rel, f"{type(e).__name__}: {e}")
            report.failures.append(failure)
            if on_image:
                on_image(sample, None, failure)
    return report


def _dataset_root(samples: list[Sample]) -> Path | None:
    """The folder the samples' relative paths start from (None when no input file shows it)."""
    for s in samples:
        if s.input_path is not None:
            rel = PurePosixPath(s.rel).parts
            parts = Path(s.input_path).parts
            if len(parts) > len(rel) and parts[-len(rel):] == rel:
                return Path(*parts[:-len(rel)])
    return None


def _model_input(sample: Sample, spec: DatasetSpec, sigma: float | None
                 ) -> tuple[np.ndarray, np.dtype, np.ndarray | None]:
    """The float32 array the model restores, the input's depth, and the target if already read."""
    from ..imageio import to_float
    raw = sample.input()
    if spec.synthetic_noise:
        return add_gaussian_noise(raw, float(sigma)), raw.dtype, raw  # the clean image is the target
    return to_float(raw), raw.dtype, None


def _warm_up(restorer, sample: Sample, spec: DatasetSpec, sigma: float | None) -> None:
    """One untimed pass on a small crop, so one-off start-up costs (CUDA context, kernel
    selection, the CPU's allocator) are not billed to the first image."""
    x, _, _ = _model_input(sample, spec, sigma)
    m = max(int(getattr(restorer, "size_multiple", 1)), 1)
    side = max(m, 64 - 64 % m)
    restorer(np.ascontiguousarray(x[:side, :side]))


def _restore(restorer, sample: Sample, spec: DatasetSpec, sigma: float | None
             ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.dtype]:
    """(what is scored, target, seconds, float output, input depth) for one sample."""
    from ..imageio import from_float
    x, depth, target = _model_input(sample, spec, sigma)
    started = time.perf_counter()
    y = restorer(x, sigma=sigma) if sigma is not None else restorer(x)
    seconds = time.perf_counter() - started
    if target is None:
        target = sample.target()
    scored = y
    if spec.convention.quantize and not np.issubdtype(target.dtype, np.floating):
        scored = from_float(y, target.dtype)  # scored as the PNG the authors would have saved
    return scored, target, seconds, y, depth


LOSSY_SUFFIXES = (".jpg", ".jpeg", ".webp")


def _save_path(save_root: Path, rel: str) -> Path:
    """Where --save keeps an output: the input's relative path, as PNG if the input was lossy."""
    dest = save_root / rel
    return dest.with_suffix(".png") if dest.suffix.lower() in LOSSY_SUFFIXES else dest


def _save(dest: Path, restored: np.ndarray, depth: np.dtype, overwrite: bool) -> None:
    """Write a restored (float) image at the input's depth."""
    from ..imageio import Image, from_float, write_image
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(np.dtype(depth), 32)
    pixels = from_float(restored, np.dtype(depth)) if bits != 32 else restored.astype(np.float32)
    if dest.exists() and not overwrite:
        raise RestoreError(f"{dest} exists (pass --overwrite to replace it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_image(dest, Image(pixels=pixels, bit_depth=bits), bit_depth=bits, overwrite=overwrite)
