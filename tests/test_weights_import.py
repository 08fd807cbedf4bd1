"""``restore weights import``: the authors' ``.pkl`` -> checked fp32 safetensors + a registry entry."""
from __future__ import annotations

import argparse
import hashlib
import tomllib
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from restorecli.checkpoint import load_weights
from restorecli.cli import app
from restorecli.models import create_model
from restorecli.weights import load_registry, resolve_weights
from restorecli.weights.importer import import_checkpoint


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("RESTORECLI_REGISTRY", raising=False)


@pytest.fixture(scope="module")
def authors_model() -> torch.nn.Module:
    """irnext-dehaze with every tensor random (filter gains and BatchNorm statistics too)."""
    torch.manual_seed(3)
    model = create_model("irnext-dehaze")
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if key.endswith(("lamb_l", "lamb_h", "inside_all")):
                t.normal_(0, 0.5)
            elif key.endswith("running_mean"):
                t.normal_(0, 0.1)
            elif key.endswith("running_var"):
                t.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture
def authors_pkl(tmp_path, authors_model) -> Path:
    path = tmp_path / "IRNeXt-ITS.pkl"
    torch.save({"model": authors_model.state_dict()}, path)  # as the authors' train.py saves it
    return path


def invoke(args: list[str]):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_import_round_trips_to_identical_outputs(tmp_path, authors_pkl, authors_model):
    out, reg = tmp_path / "its.safetensors", tmp_path / "lab.toml"
    result = invoke(["weights", "import", authors_pkl, "--arch", "irnext-dehaze", "-o", out,
                     "--name", "its", "--task", "dehaze", "--registry", reg])
    assert result.exit_code == 0, result.stderr

    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    printed = tomllib.loads(result.stdout)["weights"]  # stdout is a ready [[weights]] entry
    assert len(printed) == 1
    assert printed[0] | {} == {
        "name": "its", "task": "dehaze", "arch": "irnext-dehaze", "path": str(out.resolve()), "sha256": sha,
        "size": out.stat().st_size, "source_file": "IRNeXt-ITS.pkl",
        "source_sha256": hashlib.sha256(authors_pkl.read_bytes()).hexdigest()}
    assert sha in result.stderr
    assert load_registry(reg).get("its").to_fields() == printed[0]

    with safe_open(str(out), framework="pt") as f:
        assert f.metadata()["arch"] == "irnext-dehaze"
        dtypes = {f.get_tensor(k).dtype for k in f.keys() if not k.endswith("num_batches_tracked")}
    assert dtypes == {torch.float32}

    resolved = resolve_weights("dehaze", weights="its", registry=reg)
    assert (resolved.path, resolved.arch, resolved.info["source"]) == (out.resolve(), "irnext-dehaze", "local")
    assert resolve_weights("dehaze", weights=str(out)).arch == "irnext-dehaze"  # a plain file, detected

    imported = load_weights(create_model(resolved.arch), resolved.path).eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(imported(x), authors_model(x))


def test_import_into_the_wrong_arch_is_refused_and_writes_nothing(tmp_path, authors_pkl):
    reg = tmp_path / "lab.toml"
    result = invoke(["weights", "import", authors_pkl, "--arch", "irnext-deblur", "--name", "x",
                     "--registry", reg])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "not a checkpoint of irnext-deblur: missing keys" in errors[0]
    assert "it looks like irnext-dehaze" in errors[0]
    assert not reg.exists() and not (tmp_path / "data").exists()
    assert result.stdout == ""


def test_an_architecture_trained_per_task_needs_task(tmp_path):
    """unet-s is every task's network here: without --task the entry would land on some
    task's default (it did: denoise's) and run there without a word."""
    torch.manual_seed(0)
    ckpt = tmp_path / "mine.pth"
    torch.save(create_model("unet-s").state_dict(), ckpt)
    result = invoke(["weights", "import", ckpt, "--arch", "unet-s", "--name", "d2", "--default"])
    assert result.exit_code == 1 and "--task is needed: unet-s is trained per task" in result.stderr
    assert not (tmp_path / "config").exists() and not (tmp_path / "data").exists()
    result = invoke(["weights", "import", ckpt, "--arch", "unet-s", "--name", "d2", "--default", "--task", "deblur"])
    assert result.exit_code == 0, result.stderr
    assert resolve_weights("deblur").name == "d2" and resolve_weights("denoise").name != "d2"


def test_import_refuses_overwrites_and_duplicate_names_before_the_work(tmp_path, authors_pkl):
    out = tmp_path / "its.safetensors"
    assert invoke(["weights", "import", authors_pkl, "--arch", "irnext-dehaze", "-o", out]).exit_code == 0
    again = invoke(["weights", "import", authors_pkl, "--arch", "irnext-dehaze", "-o", out])
    assert again.exit_code == 1 and "already exists; pass --overwrite" in again.stderr
    assert invoke(["weights", "import", authors_pkl, "--arch", "irnext-dehaze", "-o", out,
                   "--overwrite"]).exit_code == 0

    # --name without -o: into $XDG_DATA_HOME, entry into the user registry ($XDG_CONFIG_HOME)
    first = invoke(["weights", "import", authors_pkl, "--arch", "irnext", "--task", "dehaze",
                    "--name", "its", "--default"])
    assert first.exit_code == 0, first.stderr
    user = tmp_path / "config" / "restorecli" / "weights.toml"
    assert (tmp_path / "data" / "restorecli" / "weights" / "its.safetensors").is_file()
    assert resolve_weights("dehaze").name == "its"  # the user registry's default for dehaze
    text = user.read_text()
    dup = invoke(["weights", "import", authors_pkl, "--arch", "irnext-dehaze", "-o", tmp_path / "other.safetensors",
                  "--name", "its"])
    assert dup.exit_code == 2 and "already an entry named 'its'" in dup.stderr
    assert not (tmp_path / "other.safetensors").exists() and user.read_text() == text


def test_import_reads_other_wrappers_and_never_unpickles_objects(tmp_path, authors_model):
    wrapped = tmp_path / "ddp.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in authors_model.state_dict().items()}}, wrapped)
    got = import_checkpoint(wrapped, "irnext-dehaze", tmp_path / "ddp.safetensors")
    assert got.arch == "irnext-dehaze" and got.task == "dehaze"
    assert got.sha256 == hashlib.sha256(got.path.read_bytes()).hexdigest()

    hostile = tmp_path / "hostile.pkl"
    torch.save({"model": authors_model.state_dict(), "args": argparse.Namespace(lr=1)}, hostile)
    result = invoke(["weights", "import", hostile, "--arch", "irnext-dehaze"])
    assert result.exit_code == 1
    assert "never unpickled" in result.stderr
    assert not hostile.with_suffix(".safetensors").exists()
