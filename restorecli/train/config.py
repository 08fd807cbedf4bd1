"""The training configuration: one TOML file holds every setting, so a run is one command.

Sections mirror the dataclasses below (``[run]``, ``[model]``, ``[data]``,
``[degradation]``, ``[optim]``, ``[ema]``, ``[val]``, ``[checkpoint]``, ``[log]``).
Unknown keys are refused with the section and key named, so a typo does not silently
train something else. :func:`dump_toml` writes a config back; loading that gives
the same config (the checkpoint and the ``[[weights]]`` entry carry it).
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = ["TrainConfig", "ConfigError", "load_config", "dump_toml", "config_from_dict", "config_to_dict"]


class ConfigError(UsageError, ValueError):
    """A config file or value that cannot be used; the message names the file/section/key."""


@dataclass
class RunConfig:
    name: str = "run"
    task: str = "denoise"
    out_dir: str = "runs/{name}"  # {name} is replaced by run.name
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch.set_num_threads on CPU; 0 leaves torch's default
    max_minutes: float = 0.0  # stop (and save) after this wall time; 0 = no limit


@dataclass
class ModelConfig:
    name: str = "nlmunet-s"  # a create_model name
    overrides: dict[str, Any] = field(default_factory=dict)
    channels_last: bool = True
    # Start from trained weights (fine-tuning): a weights file or a weights.toml name. Tensors
    # that fit are copied; extra input channels (a noise map) are dropped; the rest stay fresh.
    init: str = ""
    # Keys (or key prefixes, e.g. "tail.") left at their fresh initialisation although
    # ``init`` has them: a head whose outputs change meaning in the new architecture.
    init_skip: list[str] = field(default_factory=list)


@dataclass
class DataConfig:
    # Real clean photos: "builtin:train" (the scikit-image photos of our train split)
    # and/or folders of clean images (searched recursively).
    clean: list[str] = field(default_factory=lambda: ["builtin:train"])
    # Paired folders: each "ROOT" holding degraded/clean sub-folders in one of the
    # bench layouts (input/target, noisy/clean, rain/norain, ...), or "DEG::CLEAN".
    paired: list[str] = field(default_factory=list)
    deadleaves_fraction: float = 0.5  # share of patches drawn from dead-leaves images
    deadleaves_images: int = 96  # pool size, regenerated every `deadleaves_refresh` steps
    deadleaves_size: int = 192
    deadleaves_refresh: int = 0  # 0 = never
    gray_fraction: float = 0.0  # share of clean RGB patches turned gray (data side)
    patch_size: int = 96
    batch_size: int = 8
    scale_jitter: float = 0.0  # random downscale of source patches by up to this factor (1 + j)
    # Exposure: a share of the unpaired patches (target and, through the degradation, input)
    # darkened by a gain drawn log-uniformly in `exposure`, as dusk, shade and underexposed
    # photos are. A dehazer that saw only well-exposed scenes takes a dark scene's brightest
    # pixels for the haze's light (dehaze-asmunet-s-dcpres: A 0.40 for a true 0.85 at gain 0.3).
    exposure_prob: float = 0.0
    exposure: list[float] = field(default_factory=lambda: [0.25, 1.0])


@dataclass
class DegradationConfig:
    name: str = ""  # a registered degradation; "" = the task's default
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    lr: float = 2e-3
    min_lr: float = 1e-5
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    warmup_steps: int = 100
    total_steps: int = 2000  # with schedule = "time": an upper bound on the steps
    schedule: str = "steps"  # steps | time (cosine over [run] max_minutes of training)
    grad_clip: float = 1.0  # 0 = off
    loss: str = "charbonnier"  # l1 | charbonnier | psnr (mean over samples of -PSNR: light and
    #                           heavy degradations weigh alike, as in a benchmark's mean PSNR)
    charbonnier_eps: float = 1e-3
    # Weight of a scattering-model loss for networks that estimate transmission and light
    # (asmunet): the clean target re-hazed with the estimates, J t + A (1 - t), against the hazy
    # input, by the same loss. It reaches t directly, without the division by t that makes the
    # image loss weak on thin haze and unstable on dense haze. 0 = off.
    physics_weight: float = 0.0
    # Weight of a loss on the estimates themselves for such networks: L1 from the transmission
    # and light the synthetic haze was made with (restorecli.train.synth.Haze). The image loss
    # hardly tells a light from a dim one under thin haze, where (I - A) / t + A barely depends
    # on A; the network then picks the light from the scene (a dusk photo: 0.55 for a true 0.8).
    # Needs synthetic haze only (no [data] paired). 0 = off.
    estimate_weight: float = 0.0


@dataclass
class EMAConfig:
    decay: float = 0.999  # 0 = no EMA
    warmup: bool = True  # decay ramps up as min(decay, (1 + step) / (10 + step))


@dataclass
class ValConfig:
    every_steps: int = 200
    # Clean validation images: "builtin:val", folders, and dead-leaves images.
    clean: list[str] = field(default_factory=lambda: ["builtin:val"])
    deadleaves_images: int = 2
    crop: int = 192
    # One validation pass per entry, with the degradation's random parameters pinned.
    settings: list[dict[str, Any]] = field(default_factory=lambda: [{"sigma": 15}, {"sigma": 25}, {"sigma": 50}])
    seed: int = 1234


@dataclass
class CheckpointConfig:
    every_minutes: float = 5.0
    every_steps: int = 0  # 0 = by time only
    keep: int = 2


@dataclass
class LogConfig:
    every_steps: int = 20
    progress: bool = True  # rich progress bar on a terminal (plain lines otherwise)


@dataclass
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    val: ValConfig = field(default_factory=ValConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def out_dir(self) -> Path:
        return Path(self.run.out_dir.replace("{name}", self.run.name))

    def validate(self) -> "TrainConfig":
        o = self.optim
        if o.loss not in ("l1", "charbonnier", "psnr"):
            raise ConfigError(f"[optim] loss must be 'l1', 'charbonnier' or 'psnr', got {o.loss!r}")
        for key in ("physics_weight", "estimate_weight"):
            if getattr(o, key) < 0:
                raise ConfigError(f"[optim] {key} must be >= 0, got {getattr(o, key)}")
        if o.estimate_weight > 0 and self.data.paired:
            raise ConfigError("[optim] estimate_weight needs synthetic haze, whose transmission and light are known; "
                              "[data] paired folders have neither")
        ex = list(self.data.exposure)
        if len(ex) != 2 or not 0 < ex[0] <= ex[1] or not 0 <= self.data.exposure_prob <= 1:
            raise ConfigError(f"[data] exposure must be [lo, hi] with 0 < lo <= hi and exposure_prob in [0, 1], "
                              f"got {ex} and {self.data.exposure_prob}")
        if o.total_steps <= 0 or o.warmup_steps < 0 or o.warmup_steps >= o.total_steps:
            raise ConfigError("[optim] needs total_steps > warmup_steps >= 0")
        if o.schedule not in ("steps", "time"):
            raise ConfigError(f"[optim] schedule must be 'steps' or 'time', got {o.schedule!r}")
        if o.schedule == "time" and self.run.max_minutes <= 0:
            raise ConfigError('[optim] schedule = "time" needs [run] max_minutes > 0')
        if not (0 <= self.ema.decay < 1):
            raise ConfigError("[ema] decay must be in [0, 1)")
        skip = self.model.init_skip
        if not isinstance(skip, list) or not all(isinstance(k, str) and k for k in skip):
            raise ConfigError('[model] init_skip must be a list of parameter names or prefixes, e.g. ["tail."]')
        if skip and not self.model.init:
            raise ConfigError("[model] init_skip needs [model] init (the weights it keeps some tensors from)")
        if self.data.patch_size <= 0 or self.data.batch_size <= 0:
            raise ConfigError("[data] patch_size and batch_size must be positive")
        if not (0 <= self.data.deadleaves_fraction <= 1):
            raise ConfigError("[data] deadleaves_fraction must be in [0, 1]")
        if self.data.deadleaves_fraction < 1 and not (self.data.clean or self.data.paired):
            raise ConfigError("[data] no clean or paired sources: add some or set deadleaves_fraction = 1")
        return self


def _section_classes() -> dict[str, type]:
    return {f.name: type(getattr(TrainConfig(), f.name)) for f in fields(TrainConfig)}


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return list(value)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    return value


def config_from_dict(data: dict[str, Any], source: str = "config") -> TrainConfig:
    cfg = TrainConfig()
    classes = _section_classes()
    for section, values in data.items():
        if section not in classes:
            raise ConfigError(f"{source}: unknown section [{section}] (known: {', '.join(classes)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        obj = getattr(cfg, section)
        known = {f.name for f in fields(obj)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown key {key!r} in [{section}] (known: {', '.join(sorted(known))})")
            setattr(obj, key, _coerce(value, getattr(obj, key), f"{source}: [{section}] {key}"))
    return cfg.validate()


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a TOML config; ``overrides`` are ``section.key=TOML-value`` strings (``optim.lr=1e-3``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a TOML config (not a UTF-8 text file; recipes/*.toml are examples)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    if not data and not overrides:
        raise ConfigError(f"{path}: the config is empty (recipes/*.toml are complete examples)")
    for item in overrides or []:
        apply_override(data, item)
    return config_from_dict(data, str(path))


def apply_override(data: dict[str, Any], item: str) -> None:
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"override {item!r}: expected section.key=value, e.g. optim.lr=1e-3")
    dotted, raw = item.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word: a string
    data.setdefault(section, {})[key] = value


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


# ----------------------------------------------------------------------------- TOML writing

def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_str(k)


def _toml_str(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }" if v else "{}"
    raise ConfigError(f"cannot write {type(v).__name__} to TOML")


def dump_toml(data: dict[str, Any] | TrainConfig, prefix: str = "") -> str:
    """TOML text for nested tables of plain values (sections as ``[prefix.section]``)."""
    if isinstance(data, TrainConfig):
        data = config_to_dict(data)
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []
    for k, v in data.items():
        if isinstance(v, dict) and not prefix:  # sections; nested plain dicts stay inline
            tables.append((k, v))
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    out = "\n".join(lines)
    for k, v in tables:
        name = f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k)
        body = dump_toml(v, name)
        out += ("\n\n" if out else "") + f"[{name}]" + ("\n" + body if body else "")
    return out.strip("\n") + ("\n" if not prefix else "")
