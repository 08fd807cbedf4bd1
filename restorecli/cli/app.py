"""The Typer application, the stderr console, and the one place user errors become messages."""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import traceback
import warnings
from typing import Annotated, Callable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..launch import Terminated, said_stop, stop_code, unsaid_stop

app = typer.Typer(
    name="restore",
    help="Restore photos: denoise, derain, deblur, defocus, dehaze, desnow (IRNeXt, CLG-INet).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Progress, messages and summaries go to stderr; stdout carries only results asked for.
err = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def note(message: str) -> None:
    """A one-line note on stderr (never wrapped: a pipe or a log gets it whole)."""
    err.print(f"note: {message}", markup=False, highlight=False, soft_wrap=True)


def weights_note(restorer) -> None:
    """What resolving the weights had to say (e.g. a cached Hub copy used while the Hub is out of reach)."""
    message = getattr(restorer, "weights", None) and restorer.weights.info.get("note")
    if message:
        note(message)


def quiet_hub_downloads() -> None:
    """--quiet: no huggingface_hub progress bar either."""
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()


def stopped(e: KeyboardInterrupt) -> typer.Exit:
    """Say "interrupted" (Ctrl-C) or "terminated" (SIGTERM) and return the Exit to raise (130 / 143)."""
    message, code = stop_code(e)
    err.print(message)
    said_stop()
    return typer.Exit(code)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While a command runs, SIGTERM raises :class:`Terminated` (by default it ends the process
    at once: a write's hidden temp file stays, and nothing is said). Not on import: a program
    using the library keeps its own SIGTERM handling."""
    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return
    pid = os.getpid()

    def terminated(signum, frame):
        if os.getpid() != pid:  # a forked child (a data-loader worker) ends as it did before
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler set outside Python, which cannot be put back
            signal.signal(signal.SIGTERM, previous)


def user_errors(fn: F) -> F:
    """Turn the user's errors into a one-line message and an exit code (``--debug``: traceback);
    Ctrl-C and SIGTERM stop the command with "interrupted" (130) or "terminated" (143 = 128+15)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..errors import user_error_types

        debug = bool(kwargs.get("debug", False))
        try:
            with _sigterm_as_interrupt():
                return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt as e:
            raise stopped(e) from None
        except user_error_types() as e:
            if debug:
                traceback.print_exc()
            raise fail(str(e), getattr(e, "exit_code", 1)) from None
        except Exception as e:  # a bug: still one line unless --debug
            if debug:
                traceback.print_exc()
                raise typer.Exit(1)
            raise fail(f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)")

    return wrapper  # type: ignore[return-value]


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__
        print(f"restorecli {__version__}")
        raise typer.Exit(0)


@app.callback()
def _setup(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                 help="Print the version and exit.")] = False) -> None:
    """Restore photos: denoise, derain, deblur, defocus, dehaze, desnow (IRNeXt, CLG-INet)."""
    # numpy first: torch's C start-up imports it and swallows any exception raised meanwhile,
    # so a Ctrl-C in that moment was lost (the run went on) or left numpy half-imported.
    # (typer would turn a Ctrl-C here into a silent exit 130: it is said, as in a command.)
    try:
        import numpy  # noqa: F401
        import torch
    except KeyboardInterrupt as e:
        raise stopped(e) from None

    # Denormal floats (common in barely trained or random networks) make CPU kernels
    # many times slower and carry no visible signal in an image: flush them to zero.
    torch.set_flush_denormal(True)
    # tifffile logs what it finds wrong in a file as a bare stderr line (even with -q); we
    # report those problems ourselves, as one-line errors.
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    # huggingface_hub logs its retries and fallbacks (a dozen lines for one cut-short
    # download) and warns about the cache layout; Hub problems are our one-line errors.
    # HF_HUB_VERBOSITY, when set, still decides.
    if not os.environ.get("HF_HUB_VERBOSITY"):
        from huggingface_hub.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        warnings.filterwarnings("ignore", module=r"huggingface_hub(\.|$)")


def _register_commands() -> None:
    from . import tasks  # noqa: F401  (denoise, derain, ...)
    import importlib

    for name in ("weights", "bench", "train", "info"):
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{name}":
                raise


def _click_error_types() -> tuple[type[Exception], type[Exception]]:
    """click's ClickException and UsageError as this typer uses them (recent typers vendor click)."""
    mro = {c.__name__: c for c in typer.BadParameter.__mro__}
    return mro["ClickException"], mro["UsageError"]


def _file_taken_for_an_option(args: list[str]) -> str | None:
    """The first argument before ``--`` that starts with a dash and names an existing file."""
    for arg in args:
        if arg == "--":
            return None
        if arg.startswith("-") and arg != "-" and not arg.startswith("--") and os.path.isfile(arg):
            return arg
    return None


def main() -> None:
    """The ``restore`` command. Click's own usage errors (an unknown option, a bad value, a
    missing argument) are one line too, like ours, not typer's framed panel wrapped at 80 columns."""
    click_error, usage_error = _click_error_types()
    try:
        code = app(prog_name="restore", standalone_mode=False)
    except click_error as e:
        message = e.format_message()
        if type(e).__name__ == "NoArgsIsHelpError":  # no arguments: the help (rich prints it itself)
            if message:
                print(message, file=sys.stderr)
            sys.exit(e.exit_code)
        ctx = getattr(e, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if isinstance(e, usage_error) and ctx else ""
        dashed = _file_taken_for_an_option(sys.argv[1:]) if type(e).__name__ == "NoSuchOption" else None
        if dashed:  # `restore deblur -dash.png`: click reads "-d"
            hint = f" ({dashed} is a file: write ./{dashed} or put -- before it)"
        fail(" ".join(message.split()) + hint)
        sys.exit(e.exit_code)
    except typer.Abort:  # click's wrapping of a Ctrl-C outside a command's own handling (we never prompt)
        sys.exit(stopped(KeyboardInterrupt()).exit_code)
    if (stop := unsaid_stop()) is not None:
        sys.exit(stopped(stop).exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
