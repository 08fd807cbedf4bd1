"""The training config: every setting in one TOML file, round-trips, refuses typos."""
import tomllib

import pytest

from restorecli.train.config import ConfigError, TrainConfig, config_from_dict, dump_toml, load_config


def test_defaults_round_trip_through_toml(tmp_path):
    cfg = TrainConfig()
    cfg.model.overrides = {"widths": [8, 16], "blocks": [1, 1]}
    cfg.degradation.params = {"sigma_range": [0.0, 55.0], "gray_prob": 0.2}
    cfg.val.settings = [{"sigma": 15}, {"sigma": 50}]
    cfg.run.name = 'quote " and \\ backslash'
    path = tmp_path / "c.toml"
    path.write_text(dump_toml(cfg))
    again = load_config(path)
    assert again == cfg
    assert dump_toml(again) == dump_toml(cfg)


def test_recipe_files_load():
    from pathlib import Path
    recipes = sorted(Path(__file__).resolve().parent.parent.joinpath("recipes").rglob("*.toml"))
    assert recipes, "recipes/ holds the default denoiser's config"
    for p in recipes:
        if p.name.endswith(".entry.toml"):  # the [[weights]] entry a run printed
            from restorecli.weights.registry import parse_registry
            (entry,) = parse_registry("format = 1\n" + p.read_text(), str(p))
            assert entry.embedded and len(entry.sha256) == 64
        else:
            load_config(p)


def test_overrides_and_errors(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[optim]\nlr = 0.01\ntotal_steps = 500\n[run]\nname = "x"\n')
    cfg = load_config(path, ["optim.lr=3e-4", "data.clean=['a', 'b']", "run.name=word"])
    assert cfg.optim.lr == 3e-4 and cfg.optim.total_steps == 500
    assert cfg.data.clean == ["a", "b"] and cfg.run.name == "word"
    with pytest.raises(ConfigError, match="unknown key 'lrr' in \\[optim\\]"):
        config_from_dict({"optim": {"lrr": 1}})
    with pytest.raises(ConfigError, match="unknown section"):
        config_from_dict({"optimizer": {}})
    with pytest.raises(ConfigError, match="loss"):
        config_from_dict({"optim": {"loss": "l2"}})
    with pytest.raises(ConfigError, match="expected an integer"):
        config_from_dict({"optim": {"total_steps": "many"}})
    path.write_bytes(b"\x89PNG\r\n\x1a\n")  # `restore train photo.png`: a user error, not a crash
    with pytest.raises(ConfigError, match="not a TOML config .not a UTF-8 text file"):
        load_config(path)
    path.write_text("[optim\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="init_skip needs"):
        config_from_dict({"model": {"init_skip": ["tail."]}})
    with pytest.raises(ConfigError, match="init_skip must be a list"):
        config_from_dict({"model": {"init": "w.safetensors", "init_skip": [""]}})
    path.write_text("# nothing but a comment\n")   # e.g. a failed `sed > recipe.toml`
    with pytest.raises(ConfigError, match="the config is empty"):
        load_config(path)
    assert tomllib.loads(dump_toml(TrainConfig()))["optim"]["loss"] == "charbonnier"


def test_losses():
    import torch

    from restorecli.train.trainer import _loss_fn

    def loss(name):
        cfg = config_from_dict({"optim": {"loss": name}})
        return _loss_fn(cfg)

    b = torch.zeros(2, 3, 8, 8)
    a = b.clone()
    a[0] += 0.1    # PSNR 20 dB
    a[1] += 0.01   # PSNR 40 dB
    assert loss("l1")(a, b).item() == pytest.approx(0.055)
    assert loss("charbonnier")(a, b).item() == pytest.approx(0.5 * (0.1 + 0.01), abs=1e-4)
    assert loss("psnr")(a, b).item() == pytest.approx(-30.0, abs=1e-3)  # the mean of -20 and -40
    with pytest.raises(ConfigError, match="'psnr'"):
        config_from_dict({"optim": {"loss": "mse"}})
