"""Which weights a run uses: the ``weights.toml`` registry, the Hugging Face Hub, imports.

>>> from restorecli.weights import resolve_weights
>>> w = resolve_weights("dehaze", weights="hf://my-lab/irnext-dehaze/model.safetensors")
>>> w.path, w.arch, w.info["sha256"]

Modules: :mod:`.registry` (the TOML files), :mod:`.hub` (``hf://``, cache, downloads),
:mod:`.resolve` (``--weights`` -> a verified file), :mod:`.importer` (authors' checkpoints ->
safetensors), :mod:`.hashing`. Files shipped inside the package (``embedded`` entries) live
in this directory as ``*.safetensors``.
"""
from __future__ import annotations

from .errors import ChecksumError, HubError, OfflineError, RegistryError, UnknownWeightsError, WeightsError
from .hashing import sha256_file
from .hub import HubRef, hub_cache_dir, is_hub_address, is_offline, parse_hf_uri
from .registry import (Registry, WeightEntry, load_registry, shipped_registry_path, user_registry_path)
from .resolve import ResolvedWeights, entry_files, entry_where, locate_entry, resolve_weights

__all__ = [
    "ResolvedWeights",
    "WeightsError",
    "RegistryError",
    "UnknownWeightsError",
    "ChecksumError",
    "OfflineError",
    "HubError",
    "resolve_weights",
    "locate_entry",
    "entry_files",
    "entry_where",
    "Registry",
    "WeightEntry",
    "load_registry",
    "shipped_registry_path",
    "user_registry_path",
    "HubRef",
    "is_hub_address",
    "parse_hf_uri",
    "hub_cache_dir",
    "is_offline",
    "sha256_file",
]
