"""The scripts under recipes/ that make shipped files: recipes/blend_weights.py."""
import hashlib
import importlib.util
import tomllib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from restorecli.checkpoint import save_safetensors
from restorecli.weights.registry import parse_registry

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "recipes" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ENTRY = '''[[weights]]
name = "dehaze-tuned"
task = "dehaze"
arch = "asmunet-s-dcpres"
embedded = "weights/dehaze-tuned.safetensors"
sha256 = "00"
size = 1

[weights.training]
command = "restore train recipes/dehaze-tuned.toml"
steps = 10

[weights.training.config]
run = { name = "dehaze-tuned", task = "dehaze" }

[[weights.metrics]]
name = "PSNR levellight"
value = 30.0
unit = "dB"
'''


def test_blend_weights_writes_the_weighted_mean_and_an_entry_naming_both_parents(tmp_path, capsys):
    base = {"a.weight": torch.zeros(2, 3, dtype=torch.float16), "n.count": torch.tensor([3])}
    tuned = {"a.weight": torch.full((2, 3), 4.0, dtype=torch.float16), "n.count": torch.tensor([5])}
    save_safetensors(base, tmp_path / "base.safetensors", metadata={"arch": "asmunet-s-dcpres"})
    save_safetensors(tuned, tmp_path / "tuned.safetensors", metadata={"arch": "asmunet-s-dcpres", "step": "10"})
    (tmp_path / "tuned.entry.toml").write_text(ENTRY)
    out = tmp_path / "mix.safetensors"
    rc = _script("blend_weights").main([str(tmp_path / "base.safetensors"), str(tmp_path / "tuned.safetensors"),
                                        "--alpha", "0.25", "--name", "dehaze-mix", "--out", str(out),
                                        "--from-entry", str(tmp_path / "tuned.entry.toml")])
    assert rc == 0
    mixed = load_file(out)
    assert mixed["a.weight"].dtype == torch.float16 and torch.all(mixed["a.weight"] == 1.0)
    assert mixed["n.count"].item() == 5  # integer buffers are the tuned file's, not averaged
    text = capsys.readouterr().out
    entry = tomllib.loads(text)["weights"][0]
    assert entry["name"] == "dehaze-mix" and entry["embedded"] == "weights/dehaze-mix.safetensors"
    assert entry["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() and entry["size"] == out.stat().st_size
    tr = entry["training"]
    assert (tr["blend_tuned"], tr["blend_alpha"], tr["steps"]) == ("dehaze-tuned", 0.25, 10)
    assert tr["tuned_command"] == "restore train recipes/dehaze-tuned.toml" and "blend_weights.py" in tr["command"]
    assert "metrics" not in entry  # validation scores of the tuned run do not describe the blend
    parse_registry(text, origin="blend")


def test_blend_weights_refuses_files_of_different_architectures(tmp_path):
    save_safetensors({"a": torch.zeros(2)}, tmp_path / "a.safetensors")
    save_safetensors({"a": torch.zeros(3)}, tmp_path / "b.safetensors")
    (tmp_path / "e.toml").write_text(ENTRY)
    with pytest.raises(SystemExit, match="not one architecture"):
        _script("blend_weights").main([str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"),
                                       "--alpha", "0.5", "--name", "x", "--out", str(tmp_path / "x.safetensors"),
                                       "--from-entry", str(tmp_path / "e.toml")])
