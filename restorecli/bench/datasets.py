"""The benchmark datasets: where each public release keeps its test split, and how papers score it.

:data:`DATASETS` is the one table: for each dataset its task, the directory layouts it is
found in (the release's own, and the re-packagings the model authors' code reads), and the
metric convention of the literature (:class:`Convention`). :data:`PUBLISHED` holds the
numbers the seeds' papers report. ``docs/bench.md`` shows both tables.

Only test splits are looked for; a root that matches no layout gets a message with the
expected trees.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

from ..errors import UsageError

if TYPE_CHECKING:  # numpy is imported where it is used: `restore --help` stays light
    import numpy as np

__all__ = [
    "Convention",
    "DatasetSpec",
    "Layout",
    "Published",
    "Sample",
    "DATASETS",
    "PUBLISHED",
    "LayoutError",
    "find_samples",
    "get_dataset",
    "add_gaussian_noise",
    "NOISE_SEED",
]

# The image files a layout picks up (matched case-insensitively).
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

# The seed of the synthetic-noise benchmarks: Restormer's test_gaussian_*_denoising.py call
# np.random.seed(0) before drawing each image's noise, as do most papers that follow it.
NOISE_SEED = 0


class LayoutError(UsageError):
    """The root does not hold the dataset in a known layout (the message shows the trees)."""


@dataclass(frozen=True)
class Convention:
    """How the literature scores a dataset.

    ``color``: ``"rgb"`` (mean over channels) or ``"y"`` (BT.601 luma, MATLAB ``rgb2ycbcr``).
    ``ssim``: ``"gaussian"`` (Wang et al.), ``"uniform"`` (7x7 box, scikit-image defaults) or
    ``"pooled"`` (Gaussian SSIM after DehazeFormer-style pooling, padding multiple
    ``pool_factor``). ``align``: ECC homography before scoring (RealBlur/RSBlur).
    ``quantize``: in model mode, outputs are rounded to the target's depth before scoring, as
    when papers score the PNGs they saved; otherwise the float output is scored, as the
    authors' Python evaluation does. ``high_byte``: 16-bit inputs and targets are read as
    8-bit keeping the high byte (``v >> 8``), as OpenCV's ``cv2.imread(path)`` does.
    """

    color: Literal["rgb", "y"] = "rgb"
    ssim: Literal["gaussian", "uniform", "pooled"] = "gaussian"
    pool_factor: int = 32
    align: bool = False
    crop_border: int = 0
    quantize: bool = False
    high_byte: bool = False
    source: str = ""

    def describe(self, mode: str = "model") -> str:
        parts = ["Y (BT.601)" if self.color == "y" else "RGB"]
        parts.append({"gaussian": "SSIM Gaussian 11x11",
                      "uniform": "SSIM 7x7 uniform",
                      "pooled": f"SSIM Gaussian on pooled images (pad {self.pool_factor})"}[self.ssim])
        if self.align:
            parts.append("ECC-aligned, masked")
        if self.crop_border:
            parts.append(f"border {self.crop_border} cropped")
        if self.high_byte:
            parts.append("16-bit files read as 8-bit (high byte, as cv2.imread)")
        if mode == "model":
            parts.append("outputs rounded to the target's depth" if self.quantize else "float outputs")
        return ", ".join(parts)


@dataclass
class Sample:
    """One test image pair.

    ``rel``: the degraded input's path relative to the root (POSIX), the key under which
    ``--predictions`` are looked up and ``--save`` writes. ``group``: a subset label
    (DPDD indoor/outdoor, HIDE close-ups/long-shot, Snow100K-S/M/L) or None.
    """

    rel: str
    input_path: Path | None
    target_path: Path | None
    group: str | None = None
    load_input: Callable[[], np.ndarray] | None = None  # for inputs that are not files (SIDD)
    load_target: Callable[[], np.ndarray] | None = None

    def input(self) -> np.ndarray:
        if self.load_input is not None:
            return self.load_input()
        return _read(self.input_path)

    def target(self) -> np.ndarray:
        if self.load_target is not None:
            return self.load_target()
        return _read(self.target_path)


def _read(path: Path | None) -> np.ndarray:
    from ..imageio import read_image
    assert path is not None
    return read_image(path).pixels


@dataclass(frozen=True)
class Layout:
    tree: str  # the expected tree, shown when a root matches nothing
    source: str  # where the layout is documented
    find: Callable[[Path], list[Sample] | None]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    task: str
    title: str
    count: int | None  # images in the full test split, when fixed
    convention: Convention
    layouts: tuple[Layout, ...]
    synthetic_noise: bool = False  # clean images; noise of --sigma added with NOISE_SEED
    center_crop_target: bool = False  # a target larger than the input is centre-cropped (SOTS)
    note: str = ""


@dataclass(frozen=True)
class Published:
    model: str  # "IRNeXt", "CLG-INet"
    psnr: float | None
    ssim: float | None
    source: str
    sigma: float | None = None  # for the synthetic-noise sets


# -- file helpers -----------------------------------------------------------------------------

def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")


def _images(d: Path | None) -> list[Path]:
    if d is None or not d.is_dir():
        return []
    return sorted((p for p in d.iterdir() if _is_image(p)), key=lambda p: _natural_key(p.name))


def _child(d: Path | None, *names: str) -> Path | None:
    """The sub-directory of ``d`` named any of ``names`` (case-insensitive), or None."""
    if d is None or not d.is_dir():
        return None
    wanted = [n.lower() for n in names]
    found = {p.name.lower(): p for p in d.iterdir() if p.is_dir()}
    for n in wanted:
        if n in found:
            return found[n]
    return None


def _path(root: Path, *parts: str) -> Path | None:
    """``root/parts...`` resolved case-insensitively, or None ('' stays at the level)."""
    d: Path | None = root
    for part in parts:
        for piece in part.split("/"):
            if piece:
                d = _child(d, piece)
    return d if d is not None and d.is_dir() else None


class _Index:
    """The images of a target directory, looked up by exact name, then by stem."""

    def __init__(self, d: Path):
        self.dir = d
        files = _images(d)
        self.by_name = {p.name.lower(): p for p in files}
        self.by_stem: dict[str, Path] = {}
        for p in files:
            self.by_stem.setdefault(p.stem.lower(), p)  # several suffixes: the first by name wins

    def find(self, names: list[str]) -> Path | None:
        for n in names:
            if n.lower() in self.by_name:
                return self.by_name[n.lower()]
        for n in names:
            stem = Path(n).stem.lower()
            if stem in self.by_stem:
                return self.by_stem[stem]
        return None


def _same(name: str) -> list[str]:
    return [name]


def _pairs(root: Path, inputs: Path, targets: Path, names: Callable[[str], list[str]] = _same,
           group: str | None = None) -> list[Sample] | None:
    """Pair every image in ``inputs`` with its target; None when ``inputs`` has no image."""
    files = _images(inputs)
    if not files or not targets.is_dir():
        return None
    index = _Index(targets)
    samples, missing = [], []
    for p in files:
        t = index.find(names(p.name))
        if t is None:
            missing.append(p.name)
            continue
        samples.append(Sample(rel=p.relative_to(root).as_posix(), input_path=p, target_path=t, group=group))
    if missing:
        raise LayoutError(f"{len(missing)} of {len(files)} images in {inputs} have no ground truth in "
                          f"{targets} (first: {missing[0]}; looked for {', '.join(names(missing[0]))})")
    return samples


def _dirs_pair(root: Path, bases: tuple[str, ...], inp: tuple[str, ...], tgt: tuple[str, ...],
               names: Callable[[str], list[str]] = _same) -> list[Sample] | None:
    """The first ``base/{inp,tgt}`` under root (bases '' = the root itself) that holds images."""
    for b in bases:
        base = _path(root, b)
        if base is None:
            continue
        i = next((d for d in (_path(base, n) for n in inp) if d is not None), None)
        t = next((d for d in (_path(base, n) for n in tgt) if d is not None), None)
        if i is not None and t is not None:
            found = _pairs(root, i, t, names)
            if found:
                return found
    return None


# -- per-dataset layouts ----------------------------------------------------------------------

def _restormer(names: tuple[str, ...]) -> Layout:
    """Restormer/MPRNet re-packaging: ``[test/]<Name>/{input,target}`` with equal names."""
    bases = tuple(f"test/{n}" for n in names) + names + ("test", "")
    return Layout(
        tree=f"ROOT/  (or ROOT/test/{names[0]}/)\n├── input/    degraded images\n└── target/   same file names",
        source="Restormer / MPRNet test sets (Datasets/test/<name>/{input,target})",
        find=lambda root: _dirs_pair(root, bases, ("input",), ("target",)),
    )


def _gopro_scenes(root: Path) -> list[Sample] | None:
    for b in ("test", "GOPRO_Large/test", ""):
        base = _path(root, b)
        if base is None:
            continue
        # A scene is a folder with blurred images in blur/; its ground truth is sharp/. A scene
        # without sharp/ is a damaged copy of the release, refused like a missing sharp/*.png
        # (not skipped: the means would silently leave it out).
        scenes = sorted((d for d in base.iterdir() if d.is_dir() and _images(_child(d, "blur"))),
                        key=lambda d: _natural_key(d.name))
        if scenes:
            out: list[Sample] = []
            for d in scenes:
                sharp = _child(d, "sharp")
                if sharp is None:
                    raise LayoutError(f"scene {d}: blur/ holds {len(_images(_child(d, 'blur')))} images but "
                                      "there is no sharp/ (the ground truth); restore it from the release")
                out += _pairs(root, _child(d, "blur"), sharp) or []
            return out or None
    return None


def _hide(root: Path) -> list[Sample] | None:
    for b in ("", "HIDE_dataset"):
        base = _path(root, b)
        test, gt = _child(base, "test"), _child(base, "GT")
        if test is None or gt is None:
            continue
        out: list[Sample] = []
        for sub in ("test-close-ups", "test-long-shot"):
            d = _child(test, sub)
            if d is not None:
                out += _pairs(root, d, gt, group=sub.replace("test-", "")) or []
        if out:
            return out
    return None


RSBLUR_LIST = "RSBlur_real_test.txt"


def _rsblur(root: Path) -> list[Sample] | None:
    # The release (RSBlur.zip) is RSBlur/<day>/<scene>/{real_blur/real_blur.png, gt/gt_sharp.png};
    # the test split is the list datalist/RSBlur/RSBlur_real_test.txt of github.com/rimchang/RSBlur,
    # lines "RSBlur/<day>/<scene>/gt/gt_sharp.png RSBlur/<day>/<scene>/real_blur/real_blur.png".
    lists = [p for p in (root / RSBLUR_LIST, root / "datalist" / "RSBlur" / RSBLUR_LIST,
                         root.parent / RSBLUR_LIST) if p.is_file()]
    data = _path(root, "RSBlur")
    inside = data is None and any(d.is_dir() and re.fullmatch(r"\d{4}", d.name) for d in root.iterdir())
    if data is None and not inside:
        return None
    if not lists:
        raise LayoutError(f"{root}: the RSBlur test split is the list {RSBLUR_LIST} (datalist/RSBlur/ in "
                          "github.com/rimchang/RSBlur); put it in the root, then rerun")
    try:  # utf-8-sig: a list saved by Notepad starts with a byte-order mark
        lines = lists[0].read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LayoutError(f"{lists[0]}: not a readable text list ({type(e).__name__}: {e})") from None
    out = []
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise LayoutError(f"{lists[0]}:{n}: expected '<gt path> <blurred path>', got {line!r}")
        gt_rel, blur_rel = parts
        if inside:  # the root is the RSBlur folder itself: drop the leading "RSBlur/"
            gt_rel, blur_rel = (p.split("/", 1)[1] if p.startswith("RSBlur/") else p for p in (gt_rel, blur_rel))
        gt, blur = root / gt_rel, root / blur_rel
        if not blur.is_file() or not gt.is_file():
            raise LayoutError(f"{lists[0]}:{n}: {blur_rel if not blur.is_file() else gt_rel} is not under {root}")
        out.append(Sample(rel=blur_rel, input_path=blur, target_path=gt))
    return out or None


def _dpdd_labels(root: Path, samples: list[Sample]) -> list[Sample]:
    """Indoor/outdoor groups from Restormer's indoor_labels.npy / outdoor_labels.npy, if present.

    Each holds 1-based indices into the naturally sorted list of the test images. They are
    looked for beside the inputs' folder (Restormer's ``Datasets/test/DPDD/``), in each folder
    from there up to the root, and beside the root.
    """
    samples.sort(key=lambda s: _natural_key(Path(s.rel).name))
    d = samples[0].input_path.parent.parent  # inputC/.. or test_c/..
    dirs = [d]
    while d != root and root in d.parents:
        d = d.parent
        dirs.append(d)
    for d in dict.fromkeys(dirs + [root.parent, root / "DPDD", root.parent.parent]):
        files = {k: d / f"{k}_labels.npy" for k in ("indoor", "outdoor")}
        if all(f.is_file() for f in files.values()):
            for group, f in files.items():
                import numpy as np
                try:
                    idx = np.load(f, allow_pickle=False).astype(int).ravel()
                except (OSError, ValueError, TypeError, EOFError) as e:
                    raise LayoutError(f"{f}: not an array of image indices ({e}); delete it to score "
                                      "without the indoor/outdoor groups") from None
                if idx.size and (idx.min() < 1 or idx.max() > len(samples)):
                    raise LayoutError(f"{f}: indices out of range for {len(samples)} test images")
                for i in idx:
                    samples[i - 1].group = group
            break
    return samples


def _dpdd_restormer(root: Path) -> list[Sample] | None:
    found = _dirs_pair(root, ("test/DPDD", "DPDD", "test", ""), ("inputC",), ("target",))
    return _dpdd_labels(root, found) if found else None


def _dpdd_release(root: Path) -> list[Sample] | None:
    found = _dirs_pair(root, ("", "dd_dp_dataset_png"), ("test_c/source",), ("test_c/target",))
    return _dpdd_labels(root, found) if found else None


def _sots_names(name: str) -> list[str]:
    # indoor hazy 1400_1.png -> gt 1400.png; outdoor hazy 0001_0.8_0.2.jpg -> gt 0001.png
    stem = Path(name).stem.split("_")[0]
    return [stem + ".png", stem + ".jpg", stem + Path(name).suffix]


# hazy file names: indoor <gt>_<k> (1400_1.png), outdoor <gt>_<A>_<beta> (0001_0.8_0.2.jpg)
_SOTS_HAZY = {"indoor": re.compile(r"\d+_\d+"), "outdoor": re.compile(r"\d+_[\d.]+_[\d.]+")}


def _sots_pairs(kind: str, root: Path, bases: tuple[str, ...]) -> list[Sample] | None:
    found = _dirs_pair(root, bases, ("hazy",), ("gt", "clear"), _sots_names)
    other = "outdoor" if kind == "indoor" else "indoor"
    # the two sets hold 500 images each: a swapped --dataset would be scored without a word
    if found and all(_SOTS_HAZY[other].fullmatch(Path(s.rel).stem) for s in found):
        raise LayoutError(f"--root {root}: its hazy images are named like SOTS {other}'s "
                          f"({Path(found[0].rel).name}); use --dataset sots-{other}")
    return found


def _sots(kind: str) -> Layout:
    # RESIDE's SOTS.zip: SOTS/indoor/nyuhaze500/{gt,hazy}, SOTS/outdoor/{gt,hazy}
    nested = ("nyuhaze500",) if kind == "indoor" else ()
    bases = tuple(b for k in (kind, f"SOTS/{kind}") for b in (k,) + tuple(f"{k}/{n}" for n in nested))
    bases += nested + ("test", "")
    return Layout(
        tree=(f"ROOT/  (SOTS/{kind}{'/nyuhaze500' if nested else ''}, or SOTS with {kind}/ inside, "
              f"or reside-{kind}/test)\n"
              f"├── hazy/   {'1400_1.png ...' if kind == 'indoor' else '0001_0.8_0.2.jpg ...'}\n"
              f"└── gt/     {'1400.png ...' if kind == 'indoor' else '0001.png ...'}"),
        source="RESIDE SOTS release; IRNeXt Dehazing README (reside-*/test/{hazy,gt})",
        find=lambda root: _sots_pairs(kind, root, bases),
    )


def _rain_names(name: str) -> list[str]:
    # rain-001.png -> norain-001.png (Rain100L/H as distributed with PReNet)
    out = [name]
    if name.lower().startswith("rain"):
        out.insert(0, "no" + name)
    return out


def _jorder_names(name: str) -> list[str]:
    # rain/X2/norain-1x2.png -> norain/norain-1.png (JORDER's release)
    p = Path(name)
    m = re.fullmatch(r"(.+?)x2", p.stem, flags=re.IGNORECASE)
    return ([m.group(1) + p.suffix] if m else []) + [name]


def _derain_jorder(light_or_heavy: str) -> Callable[[Path], list[Sample] | None]:
    """JORDER's release (Yang et al., CVPR 2017): ``rain_data_test_<Light|Heavy>/rain/X2/norain-Nx2.png``
    with ``norain/norain-N.png``; Rain100L is the Light set, Rain100H the Heavy one."""
    folder = f"rain_data_test_{light_or_heavy}"

    def find(root: Path) -> list[Sample] | None:
        for b in ("", folder):
            base = _path(root, b)
            rain, norain = _child(base, "rain"), _child(base, "norain")
            if rain is None or norain is None:
                continue
            inputs = _child(rain, "X2")
            if not _images(inputs):  # some copies hold rain/norain-Nx2.png directly
                files = _images(rain)
                inputs = rain if files and all(p.stem.lower().endswith("x2") for p in files) else None
            if inputs is not None:
                return _pairs(root, inputs, norain, _jorder_names)
        return None

    return find


def _derain_prenet(names: tuple[str, ...]) -> Callable[[Path], list[Sample] | None]:
    """PReNet's copy: ``datasets/test/<Name>/rainy/rain-001.png`` with ``norain-001.png``
    beside ``rainy/`` (or in ``norain/``); the root may be any folder on that path."""
    bases = ("",) + tuple(f"{pre}{n}" for pre in ("", "test/", "datasets/test/") for n in names)

    def find(root: Path) -> list[Sample] | None:
        for b in bases:
            base = _path(root, b)
            if base is None:
                continue
            for inp in ("rainy", "rain"):
                i = _child(base, inp)
                if i is None:
                    continue
                for t in (_child(base, "norain"), base):
                    if t is not None:
                        found = _pairs(root, i, t, _rain_names)
                        if found:
                            return found
        return None

    return find


def _derain(names: tuple[str, ...], light_or_heavy: str) -> tuple[Layout, ...]:
    return (
        _restormer(names),
        Layout(tree=f"ROOT/  (rain_data_test_{light_or_heavy}, or the folder holding it)\n"
                    "├── rain/X2/   norain-1x2.png ...\n└── norain/    norain-1.png ...",
               source=f"{names[0]} as released by JORDER (rain_data_test_{light_or_heavy})",
               find=_derain_jorder(light_or_heavy)),
        Layout(tree=f"ROOT/  (or ROOT/[datasets/][test/]{names[0]}/)\n├── rainy/        rain-001.png ...\n└── norain-001.png ...  (or norain/norain-001.png)",
               source=f"{names[0]} as distributed by PReNet (rainy/rain-N, norain-N)",
               find=_derain_prenet(names)),
    )


def _desnow_pairs(root: Path, bases: tuple[str, ...]) -> list[Sample] | None:
    return _dirs_pair(root, bases, ("Snow", "synthetic"), ("Gt", "gt"))


def _snow100k(root: Path) -> list[Sample] | None:
    subsets = []
    if re.fullmatch(r"snow100k-[sml]", root.name.lower()):
        subsets = [root]
    else:
        for dirpath, dirnames, _ in os.walk(root):
            depth = len(Path(dirpath).relative_to(root).parts)
            dirnames[:] = sorted(d for d in dirnames if not d.lower().startswith(("train", "all")))
            hits = [d for d in dirnames if re.fullmatch(r"snow100k-[sml]", d.lower())]
            subsets += [Path(dirpath) / d for d in hits]
            dirnames[:] = [d for d in dirnames if d not in hits]  # nothing to find inside a subset
            if depth >= 7:
                dirnames[:] = []
    out: list[Sample] = []
    for d in sorted(set(subsets), key=lambda p: "SML".index(p.name[-1].upper())):
        i, t = _child(d, "synthetic"), _child(d, "gt")
        if i is not None and t is not None:
            out += _pairs(root, i, t, group=d.name) or []
    return out or None


def _clean_images(names: tuple[str, ...]) -> Callable[[Path], list[Sample] | None]:
    def find(root: Path) -> list[Sample] | None:
        subs = ("original_png", "HR")  # CBSD68's repository; the SR benchmarks' Urban100/HR
        for b in (("",) + names + tuple(f"test/{n}" for n in names) + subs
                  + tuple(f"{n}/{sub}" for n in names for sub in subs)):
            base = _path(root, b)
            files = _images(base)
            if files:
                if re.fullmatch(r"noisy\d*", base.name.lower()):  # CBSD68's noisy5 ... noisy50
                    raise LayoutError(f"--root {root}: {base.name}/ holds noisy copies; these sets are scored "
                                      "from the clean images (original_png/ in CBSD68), with --sigma's noise")
                return [Sample(rel=p.relative_to(root).as_posix(), input_path=p, target_path=p) for p in files]
        return None
    return find


def _clean_layout(names: tuple[str, ...], source: str) -> Layout:
    return Layout(tree=f"ROOT/  (or ROOT/{names[0]}/, ROOT/test/{names[0]}/)\n└── *.png | *.tif   clean images",
                  source=source, find=_clean_images(names))


SIDD_NOISY, SIDD_GT = "ValidationNoisyBlocksSrgb", "ValidationGtBlocksSrgb"


def _one_line_of(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


def _loadmat_array(path: Path, key: str) -> np.ndarray:
    import numpy as np
    try:
        from scipy.io import loadmat
    except ImportError:
        raise UsageError("the SIDD .mat files need scipy: pip install scipy "
                         "(or pip install 'restorecli[bench]')") from None
    try:
        data = loadmat(str(path))
    except MemoryError:
        raise
    except Exception as e:  # scipy's MatReadError (empty, truncated), ValueError, zlib errors, ...
        raise LayoutError(f"{path}: not a readable MATLAB v5 file ({_one_line_of(e)})") from None
    if key in data:
        arr = data[key]
    else:
        arrays = [v for k, v in data.items() if not k.startswith("__") and isinstance(v, np.ndarray)]
        if len(arrays) != 1:
            raise LayoutError(f"{path}: no variable {key!r}")
        arr = arrays[0]
    if arr.ndim != 5 or arr.shape[-1] != 3:
        raise LayoutError(f"{path}: expected blocks of shape images x blocks x H x W x 3, got {arr.shape}")
    return arr


def _sidd(root: Path) -> list[Sample] | None:
    for b in ("", "test/SIDD", "SIDD"):
        base = _path(root, b)
        if base is None:
            continue
        noisy, gt = base / f"{SIDD_NOISY}.mat", base / f"{SIDD_GT}.mat"
        if noisy.is_file() and gt.is_file():
            blocks: dict[str, np.ndarray] = {}

            def get(which: str, path: Path, key: str) -> np.ndarray:
                if which not in blocks:
                    blocks[which] = _loadmat_array(path, key)
                return blocks[which]

            shape = get("gt", gt, SIDD_GT).shape
            out = []
            for i in range(shape[0]):
                for k in range(shape[1]):
                    out.append(Sample(
                        # Restormer's test_real_denoising_SIDD.py saves block (i, k) as '%04d_%02d.png'
                        rel=f"{i + 1:04d}_{k + 1:02d}.png", input_path=None, target_path=None,
                        load_input=lambda i=i, k=k: get("noisy", noisy, SIDD_NOISY)[i, k],
                        load_target=lambda i=i, k=k: get("gt", gt, SIDD_GT)[i, k]))
            if get("noisy", noisy, SIDD_NOISY).shape != shape:
                raise LayoutError(f"{noisy.name} and {gt.name} hold blocks of different shapes")
            return out
    return None


# -- the table ------------------------------------------------------------------------------

_SRC_MIMO = "IRNeXt/MIMO-UNet eval.py: PSNR of the clamped float output (skimage)"
_DEBLUR = Convention(source=_SRC_MIMO + "; SSIM as Wang et al.")
_DEHAZE = Convention(ssim="pooled", pool_factor=32,
                     source="IRNeXt Dehazing/*/eval.py: PSNR of the float output; SSIM (pytorch_msssim) "
                            "after adaptive average pooling to about 256 px, padding multiple 32")
_DERAIN = Convention(color="y", quantize=True,
                     source="Restormer Deraining/evaluate_PSNR_SSIM.m: rgb2ycbcr Y of the saved 8-bit images, "
                            "Wang's ssim_index")
_DESNOW = Convention(ssim="pooled", pool_factor=32,
                     source="c-yn SFNet/FocalNet desnowing eval.py (IRNeXt's authors): as their dehazing; "
                            "padding multiple 32 as IRNeXt pads")
_NOISE = Convention(quantize=True,
                    source="Restormer test/evaluate_gaussian_color_denoising.py: noise seed 0 per image, "
                           "PSNR of the saved 8-bit outputs")
_SIDD = Convention(source="Restormer test_real_denoising_SIDD.py + evaluate_sidd.m: per 256x256 block, "
                          "float output (MATLAB's 3-D SSIM is not reproduced: per-channel Wang SSIM here)")

_DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec("gopro", "deblur", "GoPro test", 1111, _DEBLUR, (
        Layout(tree="ROOT/  (GOPRO_Large, or its test/)\n└── test/\n    └── GOPR0384_11_00/ ...\n"
                    "        ├── blur/    000001.png ...\n        └── sharp/   same names",
               source="GOPRO_Large release (Nah et al.)", find=_gopro_scenes),
        Layout(tree="ROOT/  (or ROOT/test/)\n├── blur/\n└── sharp/   same names",
               source="MIMO-UNet/IRNeXt preprocessing (flattened test/{blur,sharp})",
               find=lambda root: _dirs_pair(root, ("test", ""), ("blur",), ("sharp",))),
        _restormer(("GoPro",)),
    )),
    DatasetSpec("hide", "deblur", "HIDE test", 2025, _DEBLUR, (
        Layout(tree="ROOT/  (HIDE_dataset)\n├── test/\n│   ├── test-close-ups/   *.png\n"
                    "│   └── test-long-shot/   *.png\n└── GT/                   same names",
               source="HIDE release (Shen et al., HA_deblur)", find=_hide),
        _restormer(("HIDE",)),
    )),
    DatasetSpec("rsblur", "deblur", "RSBlur real test", 3360,
                Convention(align=True, quantize=True,
                           source="RSBlur evaluation/evaluate_RSBlur.py: ECC homography alignment, masked PSNR/SSIM"),
                (Layout(tree="ROOT/\n├── RSBlur_real_test.txt   (datalist/RSBlur/ of github.com/rimchang/RSBlur)\n"
                             "└── RSBlur/0001/000022/\n    ├── real_blur/real_blur.png\n    └── gt/gt_sharp.png",
                        source="RSBlur release + its test list (Rim et al., ECCV 2022)", find=_rsblur),)),
    DatasetSpec("dpdd", "defocus", "DPDD single-image test", 76,
                Convention(ssim="uniform", high_byte=True,
                           source="Restormer test_single_image_defocus_deblur.py: the 16-bit PNGs read "
                                  "with cv2.imread (8-bit, high byte), PSNR of the float output, "
                                  "skimage SSIM with its defaults (7x7 uniform)"),
                (Layout(tree="ROOT/  (or ROOT/test/DPDD/)\n├── inputC/   *.png\n├── target/   same names\n"
                             "└── indoor_labels.npy, outdoor_labels.npy   (optional: the scene split)",
                        source="Restormer Defocus_Deblurring test set", find=_dpdd_restormer),
                 Layout(tree="ROOT/  (dd_dp_dataset_png)\n└── test_c/\n    ├── source/\n    └── target/",
                        source="DPDD release (Abuolaim & Brown)", find=_dpdd_release))),
    DatasetSpec("sots-indoor", "dehaze", "SOTS indoor", 500, _DEHAZE, (_sots("indoor"),),
                center_crop_target=True),
    DatasetSpec("sots-outdoor", "dehaze", "SOTS outdoor", 500, _DEHAZE, (_sots("outdoor"),),
                center_crop_target=True),
    DatasetSpec("rain100l", "derain", "Rain100L", 100, _DERAIN, _derain(("Rain100L",), "Light")),
    DatasetSpec("rain100h", "derain", "Rain100H", 100, _DERAIN, _derain(("Rain100H",), "Heavy")),
    # 98 pairs: the copy MPRNet and Restormer distribute and score (MSPFN's convention, swz30/MPRNet#23)
    DatasetSpec("test100", "derain", "Test100", 98, _DERAIN, (_restormer(("Test100",)),)),
    DatasetSpec("csd", "desnow", "CSD test", 2000, _DESNOW, (
        Layout(tree="ROOT/  (CSD)\n└── Test/\n    ├── Snow/   1.tif ...\n    └── Gt/     same names",
               source="CSD release (Chen et al., HDCW-Net)",
               find=lambda root: _desnow_pairs(root, ("Test", "CSD/Test", ""))),
        Layout(tree="ROOT/\n└── test2000/\n    ├── Snow/\n    └── Gt/", source="IRNeXt authors' desnowing README",
               find=lambda root: _desnow_pairs(root, ("test2000", "CSD/test2000"))),
    )),
    DatasetSpec("srrs", "desnow", "SRRS test", 2000, _DESNOW, (
        Layout(tree="ROOT/\n└── test2000/\n    ├── Snow/   *.png\n    └── Gt/     same stems (.jpg)",
               source="IRNeXt authors' desnowing README and data_load.py (gt = stem + .jpg)",
               find=lambda root: _desnow_pairs(root, ("test2000", "SRRS/test2000", "Test", "test", ""))),
    ), note="SRRS's own release layout is not documented publicly; the authors' re-packaging is supported"),
    DatasetSpec("snow100k", "desnow", "Snow100K test (S, M, L)", None, _DESNOW, (
        Layout(tree="ROOT/  (Snow100K-testset; any depth)\n└── .../test/\n    ├── Snow100K-S/\n"
                    "    │   ├── synthetic/   *.jpg\n    │   └── gt/          same names\n"
                    "    ├── Snow100K-M/ ...\n    └── Snow100K-L/ ...",
               source="Snow100K release (Liu et al., DesnowNet)", find=_snow100k),
        Layout(tree="ROOT/\n└── test2000/\n    ├── Snow/\n    └── Gt/", source="IRNeXt authors' desnowing README",
               find=lambda root: _desnow_pairs(root, ("test2000", "Snow100K/test2000"))),
    )),
    DatasetSpec("sidd", "denoise", "SIDD validation blocks", 1280, _SIDD, (
        Layout(tree=f"ROOT/  (or ROOT/test/SIDD/)\n├── {SIDD_NOISY}.mat\n└── {SIDD_GT}.mat",
               source="SIDD benchmark validation data (MATLAB v5 .mat)", find=_sidd),
    )),
    DatasetSpec("cbsd68", "denoise", "CBSD68", 68, _NOISE,
                (_clean_layout(("CBSD68",), "Restormer Denoising/Datasets/test/CBSD68; CBSD68 release original_png/"),),
                synthetic_noise=True),
    DatasetSpec("kodak24", "denoise", "Kodak24", 24, _NOISE,
                (_clean_layout(("Kodak", "Kodak24"), "Restormer Denoising/Datasets/test/Kodak"),),
                synthetic_noise=True),
    DatasetSpec("urban100", "denoise", "Urban100", 100, _NOISE,
                (_clean_layout(("Urban100",), "Restormer Denoising/Datasets/test/Urban100"),),
                synthetic_noise=True),
    DatasetSpec("mcmaster", "denoise", "McMaster", 18, _NOISE,
                (_clean_layout(("McMaster",), "Restormer Denoising/Datasets/test/McMaster"),),
                synthetic_noise=True),
)

DATASETS: dict[str, DatasetSpec] = {d.name: d for d in _DATASETS}

# The seeds' published numbers (PSNR dB, SSIM), for the table beside ours. Only numbers we
# are confident of are listed; SSIM None where the paper gives none (or we could not check it).
_IRNEXT = "IRNeXt (Cui et al., ICML 2023), main results tables; values as quoted in issue 6, not re-read from the PDF"
_CLGINET = "CLG-INet (Jiang et al., ACM MM 2023), as quoted in ../shared/spec/clginet.md"
PUBLISHED: dict[str, tuple[Published, ...]] = {
    "gopro": (Published("IRNeXt", 33.16, 0.962, _IRNEXT),),
    "sots-indoor": (Published("IRNeXt", 41.21, 0.996, _IRNEXT),),
    "sots-outdoor": (Published("IRNeXt", 39.18, 0.996, _IRNEXT),),
    "sidd": (Published("CLG-INet", 40.15, None, _CLGINET),),
    "urban100": (Published("CLG-INet", 28.45, None, _CLGINET, sigma=50),),
}


def get_dataset(name: str) -> DatasetSpec:
    key = name.strip().lower()
    if key not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")
    return DATASETS[key]


def published_for(name: str, sigma: float | None = None) -> list[Published]:
    return [p for p in PUBLISHED.get(name, ()) if p.sigma is None or (sigma is not None and p.sigma == sigma)]


# The folder names each dataset's releases use. Sets that share their file names and sizes
# (Rain100L/H: rain-001.png in every release; CSD/SRRS: 2000 pairs each) are told apart only by
# these, so a root whose path goes through another set's folder is refused, not scored as this one.
_DATASET_FOLDERS = {
    "gopro": r"gopro(_large)?", "hide": r"hide(_dataset)?", "rsblur": r"rsblur", "dpdd": r"dpdd|dd_dp_dataset_png",
    "rain100l": r"rain100l|rain_data_(test|train)_light", "rain100h": r"rain100h|rain_data_(test|train)_heavy",
    "test100": r"test100", "csd": r"csd", "srrs": r"srrs", "snow100k": r"snow100k([_-].*)?",
    "sidd": r"sidd", "cbsd68": r"cbsd68", "kodak24": r"kodak(24)?", "urban100": r"urban100", "mcmaster": r"mcmaster",
}
# Training splits as the releases name them, looked for in the root and the two folders above it
# (GOPRO_Large/train/GOPR0372_07_00, Datasets/train/GoPro); further up, a user's own folder names.
_TRAIN_FOLDER = re.compile(r"(train|training|trainset|train_set|training_set|rain_data_train_(light|heavy))")


def _check_root_is_this_test_set(spec: DatasetSpec, root: Path) -> None:
    parts = Path(os.path.abspath(root)).parts[1:]
    if any(_TRAIN_FOLDER.fullmatch(p.lower()) for p in parts[-3:]) or root.name.lower().startswith("train"):
        raise LayoutError(f"--root {root}: that is (inside) a training split; only test splits are scored")
    for part in reversed(parts):  # the nearest folder that names a dataset decides
        named = [n for n, pattern in _DATASET_FOLDERS.items() if re.fullmatch(pattern, part.lower())]
        if named:
            if spec.name not in named:
                other = DATASETS[named[0]]
                raise LayoutError(f"--root {root}: its path goes through {part}/, the folder of "
                                  f"{other.title}; use --dataset {other.name}")
            return


def find_samples(spec: DatasetSpec, root: str | os.PathLike) -> list[Sample]:
    """The test pairs of ``spec`` under ``root``, from the first layout that matches."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LayoutError(f"--root {root}: not a directory")
    _check_root_is_this_test_set(spec, root)
    for layout in spec.layouts:
        found = layout.find(root)
        if found:
            if spec.convention.high_byte:
                for s in found:
                    _read_high_byte(s)
            return found
    trees = "\n\n".join(f"{l.source}:\n{l.tree}" for l in spec.layouts)
    raise LayoutError(f"--root {root} does not hold {spec.title} in a known layout. Expected one of:\n\n{trees}")


def _high_byte(a: np.ndarray) -> np.ndarray:
    """A 16-bit image as 8-bit the way ``cv2.imread(path)`` gives it (the high byte); others as they are."""
    import numpy as np
    return (a >> 8).astype(np.uint8) if a.dtype == np.uint16 else a


def _read_high_byte(s: Sample) -> None:
    load_input, load_target = s.load_input, s.load_target
    in_path, tgt_path = s.input_path, s.target_path
    s.load_input = lambda: _high_byte(load_input() if load_input is not None else _read(in_path))
    s.load_target = lambda: _high_byte(load_target() if load_target is not None else _read(tgt_path))


def add_gaussian_noise(clean: np.ndarray, sigma: float, seed: int = NOISE_SEED) -> np.ndarray:
    """The papers' synthetic input: float32 ``clean/255 + N(0, sigma/255)``, not clipped.

    Draws as ``np.random.seed(seed); np.random.normal(0, sigma/255, shape)`` does
    (Restormer's test_gaussian_color_denoising.py), on the image in RGB channel order.
    """
    import numpy as np

    from ..metrics import data_range_of
    x = np.asarray(clean).astype(np.float32) / np.float32(data_range_of(clean))
    noise = np.random.RandomState(seed).normal(0.0, sigma / 255.0, x.shape)
    return (x + noise).astype(np.float32)
