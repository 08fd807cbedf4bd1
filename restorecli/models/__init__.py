"""Architectures and their registry."""
from .registry import (
    ModelSpec,
    UnknownModelError,
    create_model,
    get_spec,
    list_families,
    list_models,
    register_model,
)

__all__ = [
    "ModelSpec",
    "UnknownModelError",
    "create_model",
    "get_spec",
    "list_families",
    "list_models",
    "register_model",
]
