"""The ``restore`` console script: the CLI's imports (typer, rich, torch) take up to a second,
and a Ctrl-C or SIGTERM in that time must end the run as one during a command does, with
"interrupted" (130) or "terminated" (143) and no traceback. So this module imports nothing
heavy, sets both signals up first, and only then loads :mod:`restorecli.cli`."""
from __future__ import annotations

import os
import signal
import sys


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``) while the command runs: raised as Ctrl-C's KeyboardInterrupt
    is, so the same cleanup runs (no temporary output is left) and the run says it was stopped."""


def stop_code(e: KeyboardInterrupt) -> tuple[str, int]:
    """What a run stopped by ``e`` says, and its exit code (128 + the signal)."""
    if isinstance(e, Terminated):
        return "terminated", 128 + signal.SIGTERM
    return "interrupted", 128 + signal.SIGINT


class _Stop:
    signal: int | None = None  # the signal that stopped this run, if one did
    said = False  # "interrupted" / "terminated" is printed already


def _on_signal(signum, frame):
    _Stop.signal = signum
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def unsaid_stop() -> KeyboardInterrupt | None:
    """The signal that stopped this run, as its exception, when nothing said so yet (typer turns
    a Ctrl-C outside a command into a silent exit 130)."""
    if _Stop.signal is None or _Stop.said:
        return None
    return Terminated() if _Stop.signal == signal.SIGTERM else KeyboardInterrupt()


def said_stop() -> None:
    _Stop.said = True


def _stopped(e: KeyboardInterrupt) -> None:
    message, code = stop_code(e)
    if not _Stop.said:
        try:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)  # no interpreter shutdown: a second Ctrl-C there would print a traceback


def main() -> None:
    # SIGTERM's default would end the process at once with nothing said; Python's SIGINT handler
    # raises KeyboardInterrupt, as ours does, which also notes the signal. The commands install
    # their own SIGTERM handling while they run (restorecli.cli.app.user_errors) and put this back.
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_signal)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_signal)
    try:
        from .cli import main as cli_main

        cli_main()
    except KeyboardInterrupt as e:  # during start-up, or anywhere the commands did not catch it
        _stopped(e)


if __name__ == "__main__":  # pragma: no cover
    main()
