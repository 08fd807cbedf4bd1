"""The weights' user errors: each message is one line, meant to be printed as it is."""
from __future__ import annotations

from ..errors import RestoreError

__all__ = ["WeightsError", "RegistryError", "UnknownWeightsError", "ChecksumError", "OfflineError", "HubError"]


class WeightsError(RestoreError):
    """Weights that cannot be found, fetched or verified (a one-line user message)."""

    exit_code = 1


class RegistryError(WeightsError):
    """A registry file that is malformed or does not validate (the message names file and line)."""

    exit_code = 2


class UnknownWeightsError(WeightsError):
    """``--weights NAME`` that is neither a registry entry nor a file (the message lists close names)."""

    exit_code = 2


class ChecksumError(WeightsError):
    """A file whose sha256 is not the recorded one: it is refused, never used."""


class OfflineError(WeightsError):
    """The Hub cannot be reached (offline mode or no network) and nothing usable is cached."""


class HubError(WeightsError):
    """The Hub answered, but not with the file (missing repo, revision or file; access denied)."""
