"""The weights.toml registry: the shipped file, validation messages, layering, defaults, local files."""
from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

import restorecli.weights.registry as registry_mod
from restorecli.weights import (ChecksumError, RegistryError, UnknownWeightsError, WeightsError, load_registry,
                                resolve_weights)
from restorecli.weights.registry import add_entry_to_file, entry_to_toml, parse_registry
from restorecli.weights.resolve import entry_where

ROOT = Path(__file__).resolve().parents[1]
SHA = "ab" * 32


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No user registry, no RESTORECLI_REGISTRY, offline: nothing here touches the network."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("RESTORECLI_REGISTRY", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)


def entry(name="e1", **kw) -> dict:
    out = {"name": name, "task": "dehaze", "arch": "irnext-dehaze", "repo_id": "lab/repo",
           "filename": "model.safetensors", "sha256": SHA}
    out.update(kw)
    return {k: v for k, v in out.items() if v is not None}


def toml_file(path: Path, *entries: dict, head: str = "") -> Path:
    path.write_text(head + "\n".join(entry_to_toml(e) for e in entries), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the shipped file

def test_shipped_registry_is_the_top_level_one_and_is_packaged():
    top = ROOT / "weights.toml"
    packaged = ROOT / "restorecli" / "weights.toml"
    assert top.read_bytes() == packaged.read_bytes(), "keep weights.toml and restorecli/weights.toml identical"
    assert registry_mod.shipped_registry_path() == packaged.resolve()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "weights.toml" in data["tool"]["setuptools"]["package-data"]["restorecli"]


def test_shipped_registry_is_truthful():
    """Every shipped entry resolves on a fresh machine (embedded, hash-checked) or names a Hub repo."""
    entries = parse_registry(registry_mod.shipped_registry_path().read_text(), "weights.toml")
    defaults = [e.task for e in entries if e.default]
    assert len(defaults) == len(set(defaults))
    for e in entries:
        assert e.path is None, f"{e.name}: a shipped entry cannot point at a local file"
        assert e.embedded or e.repo_id, e.name
        if e.embedded:
            data = e.embedded_path.read_bytes()
            assert hashlib.sha256(data).hexdigest() == e.sha256, f"{e.name}: embedded file does not match"
        if e.repo_id:
            assert "drive.google" not in e.repo_id


def test_no_default_gives_the_import_route():
    # every task has an embedded default (unet-s / nlmunet-s); IRNeXt has none shipped
    with pytest.raises(WeightsError) as e:
        resolve_weights("derain", model="irnext")
    msg = str(e.value)
    assert msg.startswith("no default weights for 'derain' with --model irnext yet: pass --weights FILE")
    assert "restore weights import FILE.pkl --arch irnext-deblur --name NAME --task derain" in msg
    with pytest.raises(WeightsError, match="--arch irnext-dehaze .* --task dehaze"):
        resolve_weights("dehaze", model="irnext")


# ----------------------------------------------------------------------------- messages

def test_malformed_toml_names_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[weights]]\nname = "x"\ntask = dehaze\n')
    with pytest.raises(RegistryError) as e:
        load_registry(bad)
    assert str(e.value).startswith(f"{bad}:3:8: malformed TOML: Invalid value")
    bad.write_text('[[weights]]\nname = "x')
    with pytest.raises(RegistryError, match=rf"{bad}:2:\d+: malformed TOML: Unterminated string"):
        load_registry(bad)


@pytest.mark.parametrize("fields, key, message", [
    (entry(arch="irnext-dehase"), "arch", "unknown arch 'irnext-dehase' (did you mean irnext-dehaze"),
    (entry(task="dehazing"), "task", "unknown task 'dehazing' (did you mean"),
    (entry(sha256=None), None, "missing 'sha256'"),
    (entry(sha256="ABC"), "sha256", "'sha256' must be 64 lowercase hexadecimal digits"),
    (entry(name=None), None, "entry #2: missing 'name'"),
    (entry(name="my/weights"), "name", "'name' may hold letters"),
    (entry(repo_id=None, filename=None), None, "no place to get the file from"),
    (entry(repo_id="just-a-name"), "repo_id", "is not of the form owner/repo"),
    (entry(filename=None), None, "'repo_id' needs 'filename'"),
    (entry(default="yes"), "default", "'default' must be true or false"),
    (entry(defualt=True), "defualt", "unknown key 'defualt' (did you mean 'default'?)"),
    (entry(embedded="/abs/x.safetensors"), "embedded", "'embedded' '/abs/x.safetensors' must be a path relative"),
    (entry(config={"num_blocks": 3}), "config", "config key 'num_blocks' is not an option of irnext-dehaze"),
    (entry(config={"run": {"name": "x"}, "model": {"name": "x"}}), "config", "put a training config under"),
    (entry(metrics=[{"name": "PSNR"}]), "[[weights.metrics]]", "each metric needs 'name'"),
])
def test_validation_messages_name_file_and_line(tmp_path, fields, key, message):
    reg = toml_file(tmp_path / "reg.toml", entry("ok-entry"), fields)
    lines = reg.read_text().splitlines()
    header = [i for i, t in enumerate(lines) if t == "[[weights]]"][1]  # the second entry
    line = header + 1 if key is None else next(
        i + 1 for i, t in enumerate(lines) if i > header and (t.startswith(f"{key} =") or t == key))
    with pytest.raises(RegistryError) as e:
        load_registry(reg)
    assert str(e.value).startswith(f"{reg}:{line}: "), str(e.value)
    assert message in str(e.value)


def test_two_defaults_duplicates_and_unknown_top_level_keys(tmp_path):
    reg = toml_file(tmp_path / "reg.toml", entry("a", default=True), entry("b", default=True))
    with pytest.raises(RegistryError, match=r"two defaults for task 'dehaze' in one file: 'a' \(line 1\) and 'b'"):
        load_registry(reg)
    reg = toml_file(tmp_path / "reg.toml", entry("a"), entry("a"))
    with pytest.raises(RegistryError, match=r"reg.toml:\d+: entry 'a': duplicate name: already defined at line 1"):
        load_registry(reg)
    reg = toml_file(tmp_path / "reg.toml", entry("a"), head='[[weight]]\nname = "x"\n\n')
    with pytest.raises(RegistryError, match=r"reg.toml:1: unknown top-level key 'weight' \(entries go under"):
        load_registry(reg)
    with pytest.raises(RegistryError, match="registry file not found: .*nope.toml .from --registry"):
        load_registry(tmp_path / "nope.toml")
    with pytest.raises(RegistryError, match=r"is a folder, not a registry file .from --registry"):
        load_registry(tmp_path)


def test_unknown_name_lists_close_names(tmp_path):
    reg = toml_file(tmp_path / "reg.toml", entry("irnext-dehaze-its"), entry("irnext-dehaze-ots"),
                    entry("other"))
    with pytest.raises(UnknownWeightsError) as e:
        resolve_weights("dehaze", weights="irnext-dehaze-itz", registry=reg)
    assert "no weights named 'irnext-dehaze-itz'" in str(e.value)
    assert "Did you mean: irnext-dehaze-its, irnext-dehaze-ots?" in str(e.value)
    with pytest.raises(UnknownWeightsError, match=r"Did you mean: irnext-dehaze-ots\?"):
        resolve_weights("dehaze", weights="ots", registry=reg)  # substring match
    with pytest.raises(WeightsError, match="weights file not found: missing.pkl"):
        resolve_weights("dehaze", weights="missing.pkl", registry=reg)
    with pytest.raises(UnknownWeightsError, match="--weights is empty"):   # --weights "$UNSET"
        resolve_weights("dehaze", weights="", registry=reg)


# ----------------------------------------------------------------------------- layering

def test_layering_order_and_overrides_by_name(tmp_path, monkeypatch):
    shipped = toml_file(tmp_path / "shipped.toml", entry("a", revision="shipped"), entry("b", revision="shipped"),
                        entry("c", revision="shipped"), entry("d", revision="shipped"))
    monkeypatch.setattr(registry_mod, "shipped_registry_path", lambda: shipped)
    user = registry_mod.user_registry_path()
    assert user == tmp_path / "config" / "restorecli" / "weights.toml"  # XDG_CONFIG_HOME honoured
    user.parent.mkdir(parents=True)
    toml_file(user, entry("b", revision="user"), entry("c", revision="user"), entry("d", revision="user"))
    env1 = toml_file(tmp_path / "env1.toml", entry("c", revision="env"), entry("d", revision="env"))
    env2 = toml_file(tmp_path / "env2.toml", entry("e", revision="env2"))
    monkeypatch.setenv("RESTORECLI_REGISTRY", f"{env1}:{env2}")
    explicit = toml_file(tmp_path / "explicit.toml", entry("d", revision="explicit"))

    reg = load_registry(explicit)
    assert [reg.get(n).revision for n in "abcde"] == ["shipped", "user", "env", "explicit", "env2"]
    assert reg.sources == [shipped, user, env1, env2, explicit]
    # an option that defaults to $RESTORECLI_REGISTRY (as the task commands' --registry does)
    # does not read the files twice
    assert load_registry(f"{env1}:{env2}").sources == [shipped, user, env1, env2]


def test_defaults_later_file_wins_and_model_selects(tmp_path, monkeypatch):
    a = toml_file(tmp_path / "a.toml", entry("haze-a", default=True),
                  entry("deblur-a", task="deblur", arch="irnext-deblur", default=True))
    b = toml_file(tmp_path / "b.toml", entry("haze-b", default=True),
                  entry("haze-deblur-arch", arch="irnext-deblur"))
    reg = load_registry([a, b])
    assert reg.default_for("dehaze").name == "haze-b"
    assert reg.default_for("deblur").name == "deblur-a"
    assert reg.default_for("derain").name == "derain-unet-s6"  # the shipped one
    assert reg.default_for("derain", "irnext") is None
    assert reg.default_for("dehaze", "irnext").name == "haze-b"  # family of the default's arch
    assert reg.default_for("dehaze", "irnext-deblur").name == "haze-deblur-arch"  # the only such arch
    assert reg.default_for("dehaze", "clginet") is None
    c = toml_file(tmp_path / "c.toml", entry("x1", arch="irnext-deblur"), entry("x2", arch="irnext-deblur"))
    with pytest.raises(WeightsError, match="several weights for 'dehaze' with --model irnext-deblur"):
        load_registry([a, b, c]).default_for("dehaze", "irnext-deblur")
    with pytest.raises(WeightsError, match="no default weights for 'dehaze' with --model clginet yet"):
        resolve_weights("dehaze", model="clginet", registry=[a, b])


# ----------------------------------------------------------------------------- local and embedded files

def test_local_path_entry_is_verified(tmp_path):
    (tmp_path / "w").mkdir()
    data = b"weights" * 100
    (tmp_path / "w" / "x.safetensors").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    reg = toml_file(tmp_path / "reg.toml", entry("local-ok", repo_id=None, filename=None, path="w/x.safetensors",
                                                  sha256=sha, config={"num_res": 4}))
    got = resolve_weights("dehaze", weights="local-ok", registry=reg)
    assert got.path == tmp_path / "w" / "x.safetensors"  # relative to the registry file
    assert (got.arch, got.config, got.info["source"], got.info["verified"]) == \
        ("irnext-dehaze", {"num_res": 4}, "local", True)

    (tmp_path / "w" / "x.safetensors").write_bytes(data + b"!")
    with pytest.raises(ChecksumError, match="'local-ok' .local file.: sha256 mismatch, refusing to use"):
        resolve_weights("dehaze", weights="local-ok", registry=reg)
    (tmp_path / "w" / "x.safetensors").unlink()
    with pytest.raises(WeightsError, match="'local-ok': file not found: .*x.safetensors .entry at .*reg.toml:1"):
        resolve_weights("dehaze", weights="local-ok", registry=reg)


def test_embedded_entry_comes_before_the_hub(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    (pkg / "weights").mkdir(parents=True)
    data = b"embedded weights"
    (pkg / "weights" / "d.safetensors").write_bytes(data)
    shipped = registry_mod.shipped_registry_path()
    monkeypatch.setattr(registry_mod, "PACKAGE_DIR", pkg)
    monkeypatch.setattr(registry_mod, "shipped_registry_path", lambda: shipped)
    reg = toml_file(tmp_path / "reg.toml", entry("emb", embedded="weights/d.safetensors",
                                                  sha256=hashlib.sha256(data).hexdigest(), default=True),
                    entry("gone", repo_id=None, filename=None, embedded="weights/gone.safetensors"))
    got = resolve_weights("dehaze", registry=reg)  # HF_HUB_OFFLINE=1: no network needed
    assert got.path == pkg / "weights" / "d.safetensors" and got.info["source"] == "embedded"
    assert entry_where(load_registry(reg).get("emb")) == "embedded"
    with pytest.raises(WeightsError, match="embedded file .*gone.safetensors is missing from this installation"):
        resolve_weights("dehaze", weights="gone", registry=reg)


# ----------------------------------------------------------------------------- writing entries

def test_entry_to_toml_round_trips_and_add_refuses_duplicates(tmp_path):
    fields = entry("round-trip", path='C:\\weights\\a "b".safetensors', license="CC BY-NC 4.0 – ünï",
                   config={"num_res": 4}, size=123,
                   metrics=[{"name": "PSNR", "value": 41.5, "unit": "dB", "dataset": "SOTS-indoor",
                             "command": "restore bench dehaze --weights round-trip"}])
    text = entry_to_toml(fields, comments=["a comment"])
    (got,) = parse_registry(text, tmp_path / "x.toml")
    assert got.to_fields() == {**fields, "revision": "main"}
    assert got.metric_text() == "PSNR 41.50 dB (SOTS-indoor)"

    target = tmp_path / "new" / "user.toml"
    add_entry_to_file(target, entry("first"))
    add_entry_to_file(target, entry("second", default=True))
    assert [e.name for e in load_registry(target) if e.origin == target] == ["first", "second"]
    with pytest.raises(RegistryError, match="already an entry named 'first'"):
        add_entry_to_file(target, entry("first"))
    with pytest.raises(RegistryError, match="two defaults for task 'dehaze'"):
        add_entry_to_file(target, entry("third", default=True))
    assert [e.name for e in parse_registry(target.read_text(), target)] == ["first", "second"]


def test_trainer_style_metrics_table_is_accepted(tmp_path):
    text = entry_to_toml(entry("trained", repo_id=None, filename="d.safetensors",
                               embedded="weights/d.safetensors")) + \
        '[weights.metrics]\npsnr_sigma25 = 30.25\nssim_sigma25 = 0.871\ncommand = "restore train x.toml"\n'
    (got,) = parse_registry(text, tmp_path / "x.toml")
    assert [m["name"] for m in got.metrics] == ["psnr_sigma25", "ssim_sigma25"]
    assert got.metrics[0]["command"] == "restore train x.toml"
    assert got.metric_text() == "psnr_sigma25 30.25"


def test_cli_list_with_an_unknown_task_is_a_usage_error():
    from typer.testing import CliRunner

    from restorecli.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["weights", "list", "--task", "dehze"], catch_exceptions=False)
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("error: --task 'dehze': expected one of denoise, derain") and r.stderr.count("\n") == 1
    r = runner.invoke(app, ["weights", "list", "--task", "dehaze"], catch_exceptions=False)
    assert r.exit_code == 0 and "dehaze" in r.stdout


def test_cli_list_json_is_for_scripts():
    """--json: the shipped entries as a JSON list on stdout, one default per task, sizes in bytes."""
    import json

    from typer.testing import CliRunner

    from restorecli import TASKS
    from restorecli.cli import app

    r = CliRunner().invoke(app, ["weights", "list", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    defaults = {row["task"]: row for row in rows if row["default"]}
    assert sorted(defaults) == sorted(TASKS)
    shipped = load_registry()
    for task, row in defaults.items():
        entry = shipped.default_for(task)
        assert row["name"] == entry.name and row["sha256"] == entry.sha256 and row["where"] == "embedded"
        assert row["size_bytes"] == entry.embedded_path.stat().st_size and row["ensemble"] == entry.ensemble
    r = CliRunner().invoke(app, ["weights", "list", "--json", "--task", "derain"], catch_exceptions=False)
    assert {row["task"] for row in json.loads(r.stdout)} == {"derain"}


def test_the_ensemble_help_states_the_shipped_defaults():
    """--ensemble's help names each shipped default's self-ensemble: it must follow weights.toml."""
    from restorecli.cli import options
    text = options.Ensemble.__metadata__[0].help
    start = text.index("shipped defaults: ") + len("shipped defaults: ")
    stated = text[start:text.index(")", start)]
    claimed = {}
    for part in stated.split(";"):
        *tasks, n = part.replace(",", " ").split()
        claimed.update({t: int(n) for t in tasks})
    reg = load_registry()
    shipped = {e.task: e.ensemble for e in reg.entries.values() if e.default}
    assert claimed == shipped
