"""The Python API the CLI also uses: ``Restorer(task)(image) -> image``."""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import warnings
from typing import Callable

import numpy as np
import torch

from . import TASKS
from .checkpoint import load_weights
from .devices import check_precision, free_memory, is_out_of_memory, precision_context, resolve_device
from .ensemble import check_ensemble, self_ensemble
from .errors import RestoreError, UsageError
from .imageio import from_float, to_float
from .models import get_spec
from .noise import estimate_sigma
from .tiling import choose_tile, count_tiles, run_tiled, run_whole
from .weights import ResolvedWeights, resolve_weights

__all__ = ["Restorer", "TileSetting"]

log = logging.getLogger(__name__)

TileSetting = int | str  # a tile side in pixels, 0 for untiled, or "auto"

# On the CPU, tiles beyond a few GB buy no speed and risk swapping; cap the budget. It covers
# the tiles' activations and the image's own float input and output buffers, so a run's peak
# RSS stays near it plus the interpreter and weights (a 24 MP photo: under 3 GB).
CPU_BUDGET_CAP = 2 << 30
# Share of free memory a run may plan to use (the rest: allocator slack, other processes).
BUDGET_SHARE = {"cuda": 0.7, "mps": 0.5, "cpu": 0.5}


def _check_dtype(pixels: np.ndarray) -> None:
    if pixels.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise UsageError(f"unsupported pixel type {pixels.dtype}: expected uint8, uint16 or float32")


class Restorer:
    """Restore images for one task with one network.

    >>> r = Restorer("dehaze", model="irnext", weights="irnext-dehaze.pkl", tile=0)
    >>> clean = r(hazy)          # HxWx3 or HxW, uint8/uint16/float32 -> same

    ``tile``: ``"auto"`` (whole image when it fits in memory, else tiles sized from
    free memory), ``0`` (always whole, padded as the authors evaluate), or a side
    in pixels. ``sigma`` (denoise): the noise level in 0-255 units, or ``"auto"``
    to estimate it from each image. ``ensemble``: average the network over 1, 2, 4 or 8
    flips/rotations of the input (that many times the work, a little more quality); ``None``
    takes the weights entry's ``ensemble`` (the default denoiser's is 8), else 1.
    """

    def __init__(
        self,
        task: str,
        model: str | None = None,
        weights: str | None = None,
        device: str = "auto",
        tile: TileSetting = "auto",
        tile_overlap: int = 32,
        precision: str = "fp32",
        sigma: float | str | None = "auto",
        batch_size: int | None = None,
        registry: str | None = None,
        compile: bool = False,
        ensemble: int | None = None,
    ):
        # before any download or build
        self.task, self.device, self.tile, self.tile_overlap, self.sigma = self._checked_settings(
            task, device, tile, tile_overlap, sigma, ensemble)
        self.batch_size = batch_size

        self.weights: ResolvedWeights
        self.weights, self.spec, self.precision, net = self._load_network(
            task, model, weights, registry, self.device, self.tile, self.tile_overlap, precision)
        self.model = net.eval().to(self.device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.compile = self._check_compile(compile, self.device)
        # What _run calls: the module, or its torch.compile'd wrapper (compiled on the first
        # call for each input shape: the tile shape, and its transpose under an x8 ensemble).
        self._net = torch.compile(self.model) if self.compile else self.model
        self.ensemble = check_ensemble(self.weights.info.get("ensemble", 1) if ensemble is None else ensemble)
        self._ensembled = self_ensemble(self._net, self.ensemble)
        self.last_sigma: float | None = None  # what --sigma auto found, for messages
        self.last_tile: int = 0  # tile side actually used in the last call (0: whole)
        self._told_whole = False  # warned once that --tile is not used (whole_image_only models)

    # -- options -------------------------------------------------------------------
    @classmethod
    def _checked_settings(cls, task: str, device, tile: TileSetting, tile_overlap: int,
                          sigma: float | str | None, ensemble: int | None) -> tuple:
        """The settings that need no weights, checked: (task, device, tile, overlap, sigma)."""
        if task not in TASKS:
            raise UsageError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
        device = resolve_device(str(device) if isinstance(device, torch.device) else device)
        tile = cls._check_tile(tile)
        if isinstance(tile_overlap, bool) or not isinstance(tile_overlap, int) or tile_overlap < 0:
            raise UsageError(f"--tile-overlap {tile_overlap!r}: expected a whole number of pixels, 0 or more")
        cls._check_overlap(tile, int(tile_overlap), 1)  # exact once the network's size multiple is known
        sigma = cls._check_sigma(sigma)
        if ensemble is not None:
            check_ensemble(ensemble)
        return task, device, tile, int(tile_overlap), sigma

    @classmethod
    def check_options(cls, task: str, model: str | None = None, weights: str | None = None,
                      device: str = "auto", tile: TileSetting = "auto", tile_overlap: int = 32,
                      precision: str = "fp32", sigma: float | str | None = "auto",
                      registry: str | None = None, compile: bool = False,
                      ensemble: int | None = None) -> None:
        """Raise what constructing a Restorer with these arguments would raise for a mistake in
        them, without downloading anything or running the network (it is built, to check that
        the weights load; weights not downloaded yet are fine).
        The CLI calls it when no image is left to restore (every output exists), so a mistyped
        option is still reported as one."""
        from .weights import OfflineError

        task, dev, tile, overlap, _ = cls._checked_settings(task, device, tile, tile_overlap, sigma, ensemble)
        cls._check_compile(compile, dev)
        try:
            cls._load_network(task, model, weights, registry, dev, tile, overlap, precision, allow_download=False)
        except OfflineError:  # a Hub file not fetched yet: the run would download it
            check_precision(dev, precision)

    @classmethod
    def _load_network(cls, task: str, model: str | None, weights: str | None, registry: str | None,
                      device: torch.device, tile: TileSetting, overlap: int, precision: str,
                      allow_download: bool = True) -> tuple:
        """Resolve the weights, check what depends on their architecture, build the network and
        load them: (resolved weights, spec, precision, network on the CPU)."""
        resolved = resolve_weights(task, model, weights, registry=registry, allow_download=allow_download)
        spec = get_spec(resolved.arch)
        cls._check_overlap(tile, overlap, spec.size_multiple)
        precision = check_precision(device, precision, spec.precisions)
        net = spec.build(**resolved.config)
        load_weights(net, resolved.path, spec.name)
        return resolved, spec, precision, net

    @staticmethod
    def _check_tile(tile: TileSetting) -> TileSetting:
        if isinstance(tile, bool) or not isinstance(tile, (int, str)):
            raise UsageError(f"--tile {tile!r}: expected a size in pixels, 0 (whole image) or auto")
        if isinstance(tile, str):
            t = tile.strip().lower()
            if t == "auto":
                return "auto"
            if not t.isdigit():
                raise UsageError(f"--tile {tile!r}: expected a size in pixels, 0 (whole image) or auto")
            tile = int(t)
        if tile < 0:
            raise UsageError(f"--tile {tile}: expected a size in pixels, 0 (whole image) or auto")
        if 0 < tile < 32:
            raise UsageError(f"--tile {tile}: too small; use at least 32 (or 0 for the whole image)")
        return int(tile)

    @staticmethod
    def _check_overlap(tile: TileSetting, overlap: int, multiple: int) -> None:
        """An explicit --tile must leave room for the overlap asked: the tiler would lower it
        silently. (With --tile auto the tile is ours to choose, so lowering it is fine.)"""
        if tile == "auto" or tile == 0:
            return
        from .tiling import max_overlap, tile_side

        most = max_overlap(int(tile), multiple)
        if overlap > most:
            side = tile_side(int(tile), multiple)
            half = "half the tile" if side == tile else \
                f"half the {side}-px tiles used; sides are multiples of {multiple}"
            raise UsageError(f"--tile-overlap {overlap} is too large for --tile {tile}: at most {most} ({half})")

    @staticmethod
    def _check_compile(compile: bool, device: torch.device) -> bool:
        if not isinstance(compile, bool):
            raise UsageError(f"compile={compile!r}: expected True or False")
        if not compile:
            return False
        if device.type not in ("cpu", "cuda"):
            raise UsageError(f"--compile: torch.compile is supported here on cpu and cuda, not {device.type}")
        if device.type == "cpu" and not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "clang++", "c++")):
            raise UsageError("--compile on the CPU needs a C++ compiler (g++ or clang++) on the PATH")
        if device.type == "cuda" and importlib.util.find_spec("triton") is None:
            raise UsageError("--compile on CUDA needs the triton package")
        return True

    @staticmethod
    def _check_sigma(sigma: float | str | None) -> float | str | None:
        if sigma is None or (isinstance(sigma, str) and sigma.strip().lower() == "auto"):
            return "auto" if sigma is not None else None
        try:
            value = float(sigma)
        except (TypeError, ValueError):
            raise UsageError(f"--sigma {sigma!r}: expected a number (0-255 scale) or auto") from None
        if not 0 <= value <= 255:
            raise UsageError(f"--sigma {value:g}: expected a value between 0 and 255")
        return value

    @property
    def size_multiple(self) -> int:
        return self.spec.size_multiple

    @property
    def conditioned_on_sigma(self) -> bool:
        return "sigma" in self.spec.conditioning

    # -- running -------------------------------------------------------------------
    def __call__(self, image: np.ndarray, sigma: float | str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Restore an ``HxW`` or ``HxWxC`` array (C = 1 or 3; uint8, uint16 or float32)."""
        image = np.asarray(image)
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
            raise UsageError(f"expected an HxW or HxWx3 image, got shape {image.shape}"
                             " (pass alpha separately: it is not restored)")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise UsageError(f"the image is empty (shape {image.shape})")
        if image.dtype.kind == "f" and not np.isfinite(image).all():
            raise UsageError("the image holds NaN or infinite values")
        _check_dtype(image)
        x = np.ascontiguousarray(to_float(image))
        # HxWxC memory seen as 1xCxHxW: a channels-last view, no copy (tiles are copied out).
        t = torch.from_numpy(x)
        t = (t[None] if x.ndim == 2 else t.permute(2, 0, 1))[None]
        y = self.restore_tensor(t, sigma=sigma, progress=progress)[0].numpy()
        y = y[0] if image.ndim == 2 else y.transpose(1, 2, 0)
        return y.astype(image.dtype, copy=False) if image.dtype.kind == "f" else from_float(y, image.dtype)

    def resolve_sigma(self, x: torch.Tensor, sigma: float | str | None = None) -> float | None:
        """The sigma (0-255 units) the network is conditioned on for image ``x`` (1xCxHxW)."""
        if not self.conditioned_on_sigma:
            return None
        s = self._check_sigma(sigma) if sigma is not None else self.sigma
        if s is None or s == "auto":
            s = estimate_sigma(x[0].permute(1, 2, 0).float().numpy())
        return float(s)

    @torch.inference_mode()
    def restore_tensor(self, x: torch.Tensor, sigma: float | str | None = None,
                       progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Restore a ``1 x C x H x W`` float tensor in [0, 1]; returns the same, on the CPU."""
        if x.dim() != 4 or x.shape[0] != 1:
            raise UsageError(f"restore_tensor takes 1 x C x H x W, got {tuple(x.shape)}")
        x = x.float().cpu()
        channels = x.shape[1]
        want = self.spec.in_channels
        if channels == want:
            y = self._run(x, sigma, progress)
        elif channels == 1 and want == 3:
            # Grey through a colour network: three equal channels in, their mean out.
            y = self._run(x.expand(-1, 3, -1, -1).contiguous(), sigma, progress).mean(1, keepdim=True)
        elif channels == 3 and want == 1:
            y = torch.cat([self._run(x[:, c:c + 1], sigma, progress) for c in range(3)], dim=1)
        else:
            raise UsageError(f"{self.spec.name} takes {want}-channel images, got {channels} channels")
        return y.clamp_(0.0, 1.0)

    def _run(self, x: torch.Tensor, sigma, progress) -> torch.Tensor:
        s = self.resolve_sigma(x, sigma)
        self.last_sigma = s

        def with_map(batch: torch.Tensor) -> torch.Tensor:
            if s is None:
                return batch
            return torch.cat([batch, torch.full_like(batch[:, :1], s / 255.0)], dim=1)

        def forward(batch: torch.Tensor) -> torch.Tensor:
            with precision_context(self.device, self.precision):
                out = self._ensembled(with_map(batch))
            return out.float()

        # A network with an image-wide estimate (asmunet's atmospheric light) makes it once from
        # an overview of the whole image, so that all tiles share it instead of each its own.
        whole_image_hook = getattr(self.model, "set_whole_image", None)

        tile = self._plan_tile(x)
        while True:
            try:
                self.last_tile = tile
                if tile == 0:
                    if progress:
                        progress(0, 1)
                    y = run_whole(forward, x.to(self.device), self.size_multiple).float().cpu()
                    if progress:
                        progress(1, 1)
                    return y
                if whole_image_hook is not None:
                    with precision_context(self.device, self.precision):
                        whole_image_hook(with_map(self._overview(x, tile)))
                try:
                    return run_tiled(forward, x, tile, self.tile_overlap, self.size_multiple,
                                     batch_size=self._batch_for(tile), device=self.device, progress=progress)
                finally:
                    if whole_image_hook is not None:
                        whole_image_hook(None)
            except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
                if not is_out_of_memory(e):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                side = max(x.shape[-2:]) if tile == 0 else tile
                smaller = (side // 2) - (side // 2) % self.size_multiple
                if self.tile != "auto" or smaller < max(64, self.size_multiple):
                    raise RestoreError(f"out of memory on {self.device} with "
                                       f"{'the whole image' if tile == 0 else f'--tile {tile}'}; "
                                       "try a smaller --tile") from None
                log.info("out of memory with tile %s; retrying with %s", tile or "whole", smaller)
                tile = smaller

    def _overview(self, x: torch.Tensor, tile: int) -> torch.Tensor:
        """``x`` area-downscaled to fit one tile (sides multiples of the size multiple), on the device."""
        h, w = x.shape[-2:]
        m = self.size_multiple
        f = min(1.0, tile / max(h, w))
        size = [max(m, int(round(d * f)) // m * m) for d in (h, w)]
        small = torch.nn.functional.interpolate(x, size=size, mode="area")
        return small.to(self.device)

    # -- memory planning -----------------------------------------------------------
    def memory_budget(self) -> int:
        budget = int(free_memory(self.device) * BUDGET_SHARE.get(self.device.type, 0.5))
        if self.device.type == "cpu":
            budget = min(budget, CPU_BUDGET_CAP)
        return budget

    def bytes_per_pixel(self) -> float:
        bpp = self.spec.bytes_per_pixel
        return bpp / 2 if self.precision in ("fp16", "bf16") and self.device.type == "cuda" else bpp

    def _plan_tile(self, x: torch.Tensor) -> int:
        h, w = x.shape[-2:]
        if getattr(self.model, "whole_image_only", False):
            # The network sees only an overview (asmunet); its full-size work is elementwise.
            # Tiles would each estimate their own haze and show seams, and save no memory.
            if self.tile not in ("auto", 0) and (self.tile < h or self.tile < w) and not self._told_whole:
                self._told_whole = True
                # a warning, not a log line: the CLI names the file with it and --quiet drops it
                warnings.warn(f"{self.spec.name} estimates from an overview of the whole image and needs "
                              f"little memory (at most {self.bytes_per_pixel():g} bytes/pixel): "
                              f"--tile {self.tile} not used", stacklevel=2)
            return 0
        if self.tile != "auto":
            return int(self.tile) if self.tile and (self.tile < h or self.tile < w) else 0
        budget = self.memory_budget()
        if self.device.type == "cpu":  # the float input and output live through the run
            budget -= 4 * (self.spec.in_channels + self.spec.out_channels) * h * w
        return choose_tile(h, w, self.bytes_per_pixel(), max(budget, 0), self.size_multiple)

    def _batch_for(self, tile: int) -> int:
        if self.batch_size:
            return self.batch_size
        if self.device.type == "cpu":
            return 1  # the CPU gains nothing from batching tiles; keep memory low
        per_tile = tile * tile * self.bytes_per_pixel()
        return int(max(1, min(8, self.memory_budget() // max(per_tile, 1))))

    def tiles_for(self, h: int, w: int) -> int:
        """How many tiles an ``h x w`` image will be cut into (1: whole)."""
        tile = self._plan_tile(torch.empty(1, 1, h, w, device="meta"))
        return 1 if tile == 0 else count_tiles(h, w, tile, self.tile_overlap, self.size_multiple)

    def describe(self) -> str:
        src = self.weights.name or str(self.weights.path)
        extras = "".join([", compiled" if self.compile else "",
                          f", x{self.ensemble} self-ensemble" if self.ensemble > 1 else ""])
        return f"{self.spec.name} ({src}) on {self.device}, {self.precision}{extras}"
