"""Shared fixtures: weight files of real architectures (random, seeded) and test images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restorecli.checkpoint import save_safetensors
from restorecli.models import create_model

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

torch.set_num_threads(min(2, torch.get_num_threads()))


def active_model(name: str, seed: int = 0) -> torch.nn.Module:
    """A registered model with seeded random weights that make every branch matter
    (IRNeXt's filter gains start at zero, which would make its filters identities)."""
    torch.manual_seed(seed)
    model = create_model(name)
    with torch.no_grad():
        for key, p in model.named_parameters():
            if key.endswith(("lamb_l", "lamb_h", "inside_all")):
                p.normal_(0, 0.5)
    return model.eval()


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights")


def _weights(weights_dir: Path, name: str) -> Path:
    path = weights_dir / f"{name}.safetensors"
    if not path.exists():
        save_safetensors(active_model(name).state_dict(), path, metadata={"arch": name})
    return path


@pytest.fixture(scope="session")
def dehaze_weights(weights_dir) -> Path:
    return _weights(weights_dir, "irnext-dehaze")


@pytest.fixture(scope="session")
def deblur_weights(weights_dir) -> Path:
    return _weights(weights_dir, "irnext-deblur")


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photograph (examples/coffee.jpg, CC0), HxWx3 uint8."""
    from PIL import Image

    return np.asarray(Image.open(EXAMPLES / "coffee.jpg").convert("RGB"))


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two 8-bit images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def held_out_crop(stem: str, rows: slice, cols: slice) -> np.ndarray:
    """A crop of one of the photos no training or validation of ours uses (builtin:test)."""
    from PIL import Image

    from restorecli.train.data import builtin_photo_paths
    path = [p for p in builtin_photo_paths("test") if p.stem == stem][0]
    return np.asarray(Image.open(path).convert("RGB"))[rows, cols]
