"""The weights' user errors: each message is one line, meant to be printed as it is."""
from __future__ import annotations

from ..errors import RestoreError

__all__ = ["WeightsError", "RegistryError", "UnknownWeightsError", "HubAddressError", "ChecksumError",
           "OfflineError", "HubUnreachableError", "HubError", "HubNotFoundError", "TransferError"]


class WeightsError(RestoreError):
    """Weights that cannot be found, fetched or verified (a one-line user message)."""

    exit_code = 1


class RegistryError(WeightsError):
    """A registry file that is malformed or does not validate (the message names file and line)."""

    exit_code = 2


class UnknownWeightsError(WeightsError):
    """``--weights NAME`` that is neither a registry entry nor a file (the message lists close names)."""

    exit_code = 2


class HubAddressError(WeightsError):
    """A malformed ``hf://`` address (a usage error: the message shows the expected form)."""

    exit_code = 2


class ChecksumError(WeightsError):
    """A file whose sha256 is not the recorded one: it is refused, never used."""


class OfflineError(WeightsError):
    """The Hub cannot be reached (offline mode or no network) and nothing usable is cached."""


class HubUnreachableError(OfflineError):
    """The Hub did not answer (no network, a timeout, a server error): ``reason`` says how."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class HubError(WeightsError):
    """The Hub answered, but not with the file (missing repo, revision or file; access denied),
    or the server is not a Hub."""


class HubNotFoundError(HubError):
    """The repo was found but the revision, or the file at that revision, is not there."""


class TransferError(WeightsError):
    """A download that started but did not finish (connection cut, short read)."""
