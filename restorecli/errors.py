"""Errors that are the user's to fix: the CLI prints them as one line, never a traceback."""


class RestoreError(Exception):
    """A user-facing failure; ``exit_code`` 1 (an input or resource failed) or 2 (usage)."""

    exit_code = 1


class UsageError(RestoreError):
    """Options that do not make sense together, or a value out of range."""

    exit_code = 2


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception class whose message is meant for the user as it is."""
    from .checkpoint import CheckpointError
    from .models.registry import UnknownModelError
    from .weights import WeightsError

    types: list[type[BaseException]] = [RestoreError, CheckpointError, WeightsError, UnknownModelError]
    try:
        from .imageio import ImageError
        types.append(ImageError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)
