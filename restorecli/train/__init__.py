"""``restore train``: configs, data, degradations, dead leaves and the training loop.

The pieces import lazily-heavy modules only when used; start from
:func:`restorecli.train.config.load_config` and :class:`restorecli.train.trainer.Trainer`.
"""
from .config import ConfigError, TrainConfig, load_config
from .degradations import create_degradation, list_degradations, register_degradation

__all__ = ["ConfigError", "TrainConfig", "load_config", "create_degradation", "list_degradations",
           "register_degradation"]
