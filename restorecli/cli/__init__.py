"""The ``restore`` command. Thin: parsing, messages and progress; the work is in modules.

Each group of commands lives in its own module and registers itself on ``app``:
``tasks`` (denoise, derain, ...), ``weights``, ``bench``, ``train``.
"""
from __future__ import annotations

from .app import _register_commands, app, main

_register_commands()

__all__ = ["app", "main"]
