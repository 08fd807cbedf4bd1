"""[model] init: fine-tuning starts from trained weights; a noise-map model's weights start a
plain model of another task (the map's input channels dropped)."""
import pytest
import torch

from restorecli.checkpoint import CheckpointError, save_safetensors, transfer_weights
from restorecli.models import create_model
from restorecli.train.config import ConfigError
from restorecli.train.trainer import Trainer
from test_train import TINY, tiny_config


def test_noise_map_weights_start_a_plain_unet_that_equals_a_zero_map():
    torch.manual_seed(0)
    src = create_model("nlmunet-s", **TINY).eval()
    dst = create_model("unet-s", **TINY).eval()
    report = transfer_weights(dst, src.state_dict())
    # the head and each down-convolution take the map as an extra input channel
    assert "head.weight" in report["sliced"] and report["skipped"] == []
    assert len(report["sliced"]) == 2 and len(report["copied"]) == len(dst.state_dict()) - 2
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ref = src(torch.cat([x, torch.zeros(1, 1, 32, 32)], 1))
        assert torch.allclose(dst(x), ref, atol=1e-5)


def test_unrelated_weights_are_refused():
    dst = create_model("unet-s", **TINY)
    with pytest.raises(CheckpointError, match="no tensor"):
        transfer_weights(dst, {"foo.weight": torch.zeros(3, 3)})


def test_trainer_starts_from_an_init_file(tmp_path):
    torch.manual_seed(1)
    src = create_model("nlmunet-s", **TINY)
    path = save_safetensors(src.state_dict(), tmp_path / "init.safetensors", dtype=torch.float32)
    cfg = tiny_config(tmp_path, steps=4)
    cfg.model.init = str(path)
    tr = Trainer(cfg, quiet=True)
    for k, v in src.state_dict().items():
        assert torch.equal(tr.model.state_dict()[k], v), k
    cfg.model.init = "no-such-weights"
    with pytest.raises(ConfigError, match="neither a file nor a weights name"):
        Trainer(cfg, quiet=True)
