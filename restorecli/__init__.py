"""restorecli: image restoration from the command line and from Python.

>>> from restorecli import Restorer
>>> out = Restorer("denoise")(noisy_uint8_array)
"""
__version__ = "0.1.0"

TASKS = ("denoise", "derain", "deblur", "defocus", "dehaze", "desnow")


def __getattr__(name):
    # Lazy: `import restorecli` stays cheap (the CLI's --help must not import torch).
    if name == "Restorer":
        from .restorer import Restorer
        return Restorer
    if name in ("create_model", "list_models"):
        from . import models
        return getattr(models, name)
    raise AttributeError(name)


__all__ = ["Restorer", "create_model", "list_models", "TASKS", "__version__"]
