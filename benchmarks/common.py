"""Helpers shared by the quality benchmarks: 8-bit image I/O, scores, a result cache."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

CACHE_DIR = Path(__file__).resolve().parent / ".cache"


def load_u8(path: Path) -> np.ndarray:
    """An 8-bit RGB photo."""
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def to_u8(x: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8, rounded as a saved file would be."""
    return np.clip(np.round(np.asarray(x, np.float64) * 255.0), 0, 255).astype(np.uint8)


def scores(out: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) of two uint8 images (RGB or gray), scikit-image's definitions."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    p = peak_signal_noise_ratio(clean, out, data_range=255)
    s = structural_similarity(clean, out, data_range=255, channel_axis=2 if clean.ndim == 3 else None)
    return float(p), float(s)


def source_digest(paths: Iterable[Path]) -> str:
    """A short hash of source files: cached results are dropped when the code that made them changes."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:12]


class Cache:
    """A JSON file of results (lists of numbers or strings) keyed by strings."""

    def __init__(self, name: str, enabled: bool = True, version: str = ""):
        self.path, self.enabled = CACHE_DIR / name, enabled
        data = json.loads(self.path.read_text()) if enabled and self.path.is_file() else {}
        # a different code version invalidates everything (files without one are kept)
        self.data = data if data.get("__version__", version) == version else {}
        if version:
            self.data["__version__"] = version

    def get(self, key: str, fn: Callable[[], object]):
        if self.enabled and key in self.data:
            return self.data[key]
        val = fn()
        if self.enabled:
            self.data[key] = val
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=0))
            tmp.replace(self.path)
        return val
