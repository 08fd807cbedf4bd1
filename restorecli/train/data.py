"""Training data: clean photos (+ a synthetic degradation), paired folders, dead leaves.

Sources
-------
* ``builtin:train`` / ``builtin:val`` / ``builtin:test``: real photos shipped by
  scikit-image (its ``data`` folder; no download). The split is fixed here and is the
  one the quality benchmark relies on: the ``test`` photos are never trained or
  validated on.
* A folder of clean images (recursive), degraded on the fly by the task's degradation.
* Paired folders: ``ROOT`` holding a degraded and a clean sub-folder in one of the
  bench layouts (``input/target``, ``noisy/clean``, ``rain/norain``, ``blur/sharp``,
  ``hazy/GT``, ...), or explicitly ``DEGRADED_DIR::CLEAN_DIR``; files pair by stem.
* Dead-leaves images (:mod:`.deadleaves`), a pool generated from the seed.

Patches are random crops with a random flip / rot90 (the 8 dihedral transforms),
optionally from a randomly downscaled region (``scale_jitter``), drawn with one
``torch.Generator`` so a seed (and the generator state in a checkpoint) fixes them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import RestoreError
from .deadleaves import LUMA, DeadLeavesParams, color_palette, dead_leaves

__all__ = [
    "BUILTIN_SPLITS",
    "builtin_photo_paths",
    "load_image",
    "find_images",
    "find_pairs",
    "resolve_clean_sources",
    "PatchSampler",
    "DataError",
]

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}

# scikit-image's real photographs, split once and for all. "test" is held out for
# benchmarks/denoise_quality.py; "val" is the periodic validation during training.
# motorcycle_right is the other view of motorcycle_left (a stereo pair), so using it
# for validation makes validation a little optimistic but never touches the test set.
BUILTIN_SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "motorcycle_left.png", "retina.jpg", "hubble_deep_field.jpg", "ihc.png",  # color
        "camera.png", "coins.png", "moon.png", "brick.png", "grass.png", "gravel.png",  # gray
        "clock_motion.png", "cell.png",
    ),
    "val": ("motorcycle_right.png",),
    "test": ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"),
}

_PAIR_LAYOUTS = (
    ("input", "target"), ("input", "gt"), ("noisy", "clean"), ("noisy", "gt"), ("rain", "norain"),
    ("blur", "sharp"), ("hazy", "gt"), ("hazy", "clear"), ("snow", "gt"), ("synthetic", "gt"),
    ("lq", "hq"), ("degraded", "clean"), ("low", "high"),
)


class DataError(RestoreError, ValueError):
    """Training data that cannot be found or read."""


def builtin_photo_paths(split: str) -> list[Path]:
    if split not in BUILTIN_SPLITS:
        raise DataError(f"builtin:{split}: unknown split (known: {', '.join(BUILTIN_SPLITS)})")
    try:
        import skimage
    except ImportError:
        raise DataError("builtin photos come from scikit-image: pip install scikit-image") from None
    root = Path(os.path.dirname(skimage.__file__)) / "data"
    paths = [root / n for n in BUILTIN_SPLITS[split]]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"builtin:{split}: scikit-image lacks {', '.join(missing)} in {root}")
    return paths


def load_image(path: str | Path) -> np.ndarray:
    """float32 ``HxWx3`` RGB in [0, 1] (gray replicated; alpha dropped; 8/16-bit)."""
    path = Path(path)
    data = np.fromfile(str(path), dtype=np.uint8)
    im = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if im is None:
        raise DataError(f"{path}: cannot read the image")
    if im.dtype == np.uint8:
        scale = 255.0
    elif im.dtype == np.uint16:
        scale = 65535.0
    else:
        scale = 1.0
    im = im.astype(np.float32) / scale
    if im.ndim == 2:
        im = np.repeat(im[..., None], 3, axis=2)
    elif im.shape[2] == 4:
        im = cv2.cvtColor(im[..., :3], cv2.COLOR_BGR2RGB)
    elif im.shape[2] == 3:
        im = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
    elif im.shape[2] == 1:
        im = np.repeat(im, 3, axis=2)
    return np.ascontiguousarray(np.clip(im, 0, 1))


def find_images(root: str | Path) -> list[Path]:
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{root}: no such file or folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def resolve_clean_sources(sources: list[str]) -> list[Path]:
    paths: list[Path] = []
    for s in sources:
        if s.startswith("builtin:"):
            paths += builtin_photo_paths(s.split(":", 1)[1])
        else:
            found = find_images(s)
            if not found:
                raise DataError(f"{s}: no images found")
            paths += found
    return paths


def find_pairs(spec: str) -> list[tuple[Path, Path]]:
    """(degraded, clean) file pairs for ``ROOT`` (a known layout) or ``DEG::CLEAN``."""
    if "::" in spec:
        deg_dir, clean_dir = (Path(p) for p in spec.split("::", 1))
    else:
        root = Path(spec)
        if not root.is_dir():
            raise DataError(f"{root}: no such folder")
        subs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
        for d, c in _PAIR_LAYOUTS:
            if d in subs and c in subs:
                deg_dir, clean_dir = subs[d], subs[c]
                break
        else:
            raise DataError(f"{root}: no degraded/clean sub-folders found (looked for "
                            f"{', '.join(f'{d}/{c}' for d, c in _PAIR_LAYOUTS[:6])}, ...; "
                            f"or give DEGRADED::CLEAN)")
    clean = {p.relative_to(clean_dir).with_suffix("").as_posix(): p for p in find_images(clean_dir)}
    pairs = []
    for p in find_images(deg_dir):
        key = p.relative_to(deg_dir).with_suffix("").as_posix()
        if key in clean:
            pairs.append((p, clean[key]))
    if not pairs:
        raise DataError(f"{spec}: no degraded file has a clean file of the same name")
    return pairs


def _dihedral(x: np.ndarray, k: int) -> np.ndarray:
    if k & 4:
        x = x[:, ::-1]
    return np.rot90(x, k & 3)


@dataclass
class Batch:
    clean: torch.Tensor  # (N, 3, P, P) targets
    degraded: torch.Tensor | None  # (M, 3, P, P) for the first M samples (paired), else None


class PatchSampler:
    """Draws batches of patches. ``state_dict``/``load_state_dict`` carry its generator."""

    def __init__(self, clean: list[np.ndarray], pairs: list[tuple[np.ndarray, np.ndarray]],
                 patch_size: int, batch_size: int, seed: int, deadleaves_fraction: float = 0.0,
                 deadleaves_images: int = 0, deadleaves_size: int = 192, deadleaves_refresh: int = 0,
                 gray_fraction: float = 0.0, scale_jitter: float = 0.0, palette: np.ndarray | None = None,
                 exposure_prob: float = 0.0, exposure: tuple[float, float] = (0.25, 1.0)):
        self.p = int(patch_size)
        self.notes: list[str] = []  # what building it left out (build_sampler), for the run's log
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.gray_fraction = float(gray_fraction)
        self.scale_jitter = float(scale_jitter)
        self.exposure_prob = float(exposure_prob)
        self.log_exposure = (math.log(exposure[0]), math.log(exposure[1]))
        for im in clean:
            if min(im.shape[:2]) < self.p:
                raise DataError(f"a clean image of {im.shape[1]}x{im.shape[0]} is smaller than the patch size {self.p}")
        self.clean = clean
        self.pairs = pairs
        self.dl_fraction = float(deadleaves_fraction) if deadleaves_images > 0 else 0.0
        if not clean and not pairs and self.dl_fraction == 0:
            raise DataError("no training images: give clean or paired sources, or dead leaves")
        if not clean and not pairs:
            self.dl_fraction = 1.0
        self.dl_images = int(deadleaves_images)
        self.dl_size = max(int(deadleaves_size), self.p)
        self.dl_refresh = int(deadleaves_refresh)
        self.palette = palette
        self.generator = torch.Generator().manual_seed(self.seed)
        self.draws = 0
        self._dl_pool: list[np.ndarray] = []
        self._dl_epoch = -1
        # Sample images in proportion to their area (a big photo holds more patches).
        self._clean_w = np.array([im.shape[0] * im.shape[1] for im in clean], np.float64)
        self._pair_w = np.array([a.shape[0] * a.shape[1] for a, _ in pairs], np.float64)

    # -- dead leaves -------------------------------------------------------------------
    def _ensure_pool(self) -> None:
        epoch = self.draws // self.dl_refresh if self.dl_refresh > 0 else 0
        if epoch == self._dl_epoch or self.dl_fraction == 0:
            return
        rng = np.random.default_rng([self.seed, epoch, 7])
        pal = self.palette
        pool = []
        for i in range(self.dl_images):
            use_pal = pal if (pal is not None and len(pal) and i % 2 == 0) else None
            pool.append(dead_leaves(self.dl_size, int(rng.integers(0, 2**31)), DeadLeavesParams(),
                                    palette=use_pal))
        self._dl_pool, self._dl_epoch = pool, epoch

    # -- sampling ----------------------------------------------------------------------
    def _rand(self, n: int = 1) -> np.ndarray:
        return torch.rand(n, generator=self.generator, dtype=torch.float64).numpy()

    def _crop(self, ims: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        h, w = ims[0].shape[:2]
        u = self._rand(4)
        scale = 1.0 + self.scale_jitter * u[0]
        side = min(int(round(self.p * scale)), h, w)
        y = int(u[1] * (h - side + 1))
        x = int(u[2] * (w - side + 1))
        k = int(u[3] * 8)
        out = []
        for im in ims:
            c = im[y:y + side, x:x + side]
            if side != self.p:
                c = cv2.resize(c, (self.p, self.p), interpolation=cv2.INTER_AREA)
            out.append(np.ascontiguousarray(_dihedral(c, k)))
        return out

    def _pick(self, weights: np.ndarray) -> int:
        u = self._rand()[0]
        cdf = np.cumsum(weights) / weights.sum()
        return int(min(np.searchsorted(cdf, u, side="right"), len(weights) - 1))

    def next(self) -> Batch:
        self._ensure_pool()
        n = self.batch_size
        kinds = self._rand(n)
        paired_c, paired_d, synth = [], [], []
        for i in range(n):
            if self.dl_fraction and kinds[i] < self.dl_fraction:
                im = self._dl_pool[int(self._rand()[0] * len(self._dl_pool)) % len(self._dl_pool)]
                synth.append(self._crop((im,))[0])
                continue
            # real images: paired and clean share the rest in proportion to their areas
            tot_c, tot_p = self._clean_w.sum(), self._pair_w.sum()
            if self.pairs and (not self.clean or self._rand()[0] < tot_p / (tot_p + tot_c)):
                d, c = self.pairs[self._pick(self._pair_w)]
                dc, cc = self._crop((d, c))
                paired_d.append(dc)
                paired_c.append(cc)
            else:
                im = self._crop((self.clean[self._pick(self._clean_w)],))[0]
                if self.gray_fraction and self._rand()[0] < self.gray_fraction:
                    y = im @ LUMA
                    im = np.repeat(y[..., None], 3, axis=2)
                synth.append(im)
        if self.exposure_prob > 0:  # drawn only when used: older recipes keep their random stream
            u = self._rand(2 * len(synth)).reshape(-1, 2)
            lo, hi = self.log_exposure
            synth = [im * np.float32(math.exp(lo + (hi - lo) * g)) if d < self.exposure_prob else im
                     for im, (d, g) in zip(synth, u)]
        self.draws += 1

        def stack(lst):
            return torch.from_numpy(np.stack(lst)).permute(0, 3, 1, 2).contiguous()

        clean = stack(paired_c + synth)
        degraded = stack(paired_d) if paired_d else None
        return Batch(clean=clean, degraded=degraded)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "draws": self.draws}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.draws = int(state["draws"])
        self._dl_epoch = -1  # regenerate the pool of the restored epoch


def build_sampler(cfg, rank: int = 0) -> PatchSampler:
    """The sampler for a :class:`TrainConfig` (each DDP rank gets its own stream)."""
    d = cfg.data
    clean_paths = resolve_clean_sources(d.clean) if d.clean else []
    clean = [load_image(p) for p in clean_paths]
    notes = []
    small = [(p, im) for p, im in zip(clean_paths, clean) if min(im.shape[:2]) < d.patch_size]
    if small and len(small) < len(clean):  # a few narrow photos must not rule out larger patches;
        # if every one is too small, PatchSampler says so
        clean = [im for im in clean if min(im.shape[:2]) >= d.patch_size]
        names = ", ".join(f"{p.name} ({im.shape[1]}x{im.shape[0]})" for p, im in small[:3])
        more = f" and {len(small) - 3} more" if len(small) > 3 else ""
        notes.append(f"{len(small)} clean image(s) smaller than the patch size {d.patch_size} left out: "
                     f"{names}{more}")
    pairs = []
    for spec in d.paired:
        for a, b in find_pairs(spec):
            da, cb = load_image(a), load_image(b)
            if da.shape != cb.shape:
                raise DataError(f"{a} and {b} differ in size")
            pairs.append((da, cb))
    palette = color_palette([im for im in clean if not np.allclose(im[..., 0], im[..., 1])], seed=cfg.run.seed) \
        if clean else None
    sampler = PatchSampler(clean, pairs, d.patch_size, d.batch_size, seed=cfg.run.seed * 1000 + rank,
                           deadleaves_fraction=d.deadleaves_fraction, deadleaves_images=d.deadleaves_images,
                           deadleaves_size=d.deadleaves_size, deadleaves_refresh=d.deadleaves_refresh,
                           gray_fraction=d.gray_fraction, scale_jitter=d.scale_jitter, palette=palette,
                           exposure_prob=d.exposure_prob, exposure=tuple(d.exposure))
    sampler.notes = notes
    return sampler


def build_val_images(cfg) -> list[np.ndarray]:
    """Center crops of the validation photos plus dead-leaves images, fixed by the val seed."""
    v = cfg.val
    ims = [load_image(p) for p in resolve_clean_sources(v.clean)] if v.clean else []
    out = []
    for im in ims:
        h, w = im.shape[:2]
        c = min(v.crop, h, w) // 16 * 16
        y, x = (h - c) // 2, (w - c) // 2
        out.append(np.ascontiguousarray(im[y:y + c, x:x + c]))
    for i in range(v.deadleaves_images):
        out.append(dead_leaves(v.crop // 16 * 16, v.seed + i))
    return out
