"""Errors that are the user's to fix: the CLI prints them as one line, never a traceback."""


class RestoreError(Exception):
    """Base of every restorecli error meant for the user (``except RestoreError`` catches
    them all); ``exit_code`` 1 (an input or resource failed) or 2 (usage)."""

    exit_code = 1


class UsageError(RestoreError, ValueError):
    """Options that do not make sense together, or a value out of range."""

    exit_code = 2


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception class whose message is meant for the user as it is."""
    return (RestoreError,)
