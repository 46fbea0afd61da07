"""Error plumbing of the command line: messages on stderr, exit codes, held warnings.

Exit codes: 0 ok, 1 unexpected internal error, 2 usage (bad option or combination), 3 bad
input (unreadable or malformed file), 4 coverage too low (no signature could be scored),
130 interrupted, 141 stdout closed early. Errors go to stderr as
``sigscore: error: <one or two sentences>``, worded for the command line
(:meth:`~sigscore.errors.SigscoreError.message_for` ``"cli"``: flags, not keywords); a
Python traceback is shown only for unexpected errors and only with ``--verbose``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

from ..errors import SigscoreError

F = TypeVar("F", bound=Callable[..., Any])


def _click_module() -> Any:
    """The click typer runs on (recent typer vendors it as ``typer._click``)."""
    try:
        from typer import _click as click_mod
    except ImportError:
        import click as click_mod
    return click_mod


class App(typer.Typer):
    """Typer app whose command-line usage errors read like every other error (exit 2).

    Only the console script goes through ``__call__``; test runners call the command
    directly and get click's standard handling (same exit codes).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        click_mod = _click_module()
        exc_mod = click_mod.exceptions
        command = typer.main.get_command(self)
        try:
            rv = command.main(*args, standalone_mode=False, **kwargs)
        except getattr(exc_mod, "NoArgsIsHelpError", ()) as exc:
            typer.echo(exc.format_message(), err=True)
            sys.exit(2)
        except exc_mod.UsageError as exc:
            where = getattr(getattr(exc, "ctx", None), "command_path", None)
            hint = f" See '{where} --help'." if where else ""
            say("error", exc.format_message().rstrip(".") + "." + hint)
            sys.exit(exc.exit_code)
        except exc_mod.ClickException as exc:
            say("error", exc.format_message())
            sys.exit(exc.exit_code)
        except exc_mod.Exit as exc:
            sys.exit(exc.exit_code)
        except exc_mod.Abort:
            say("error", "aborted")
            sys.exit(1)
        # standalone_mode=False returns the exit code of typer.Exit instead of exiting
        sys.exit(rv if isinstance(rv, int) else 0)


class _State:
    def __init__(self) -> None:
        self.verbose = False
        self.pending: list[str] = []  # warnings held until the command ends (see _show_warning)


STATE = _State()


def say(kind: str, message: str) -> None:
    """One message on stderr, ``sigscore: <kind>: <message>``."""
    typer.echo(f"sigscore: {kind}: {message}", err=True)


def info(message: str) -> None:
    """Detail shown only with ``--verbose``."""
    if STATE.verbose:
        typer.echo(message, err=True)


def _first_sentences(message: str, verbose: bool) -> str:
    """Messages may carry a table after a newline (coverage); keep it for --verbose only."""
    text = str(message).strip()
    if verbose or "\n" not in text:
        return text
    head = text.split("\n", 1)[0].rstrip()
    return head + " (run with --verbose for details)"


def _show_warning(message: Any, category: type[Warning], *_args: Any, **_kw: Any) -> None:
    """Warnings print at once with --verbose; otherwise they wait for the command's outcome."""
    if not issubclass(category, UserWarning):
        if STATE.verbose:
            say("warning", str(message))
        return  # library deprecation chatter is not for the command line
    if STATE.verbose:
        say("warning", str(message))
    elif str(message) not in STATE.pending:
        STATE.pending.append(str(message))


def flush_warnings(show: bool) -> None:
    if show:
        for msg in STATE.pending:
            say("warning", msg)
    STATE.pending = []


def handle_errors(func: F) -> F:
    """Run a command, turning every exception into a plain message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            STATE.pending = []
            try:
                result = func(*args, **kwargs)
                flush_warnings(True)
                return result
            except (typer.Exit, typer.Abort, SystemExit):
                flush_warnings(True)
                raise
            except SigscoreError as exc:
                # e.g. a coverage error repeats what the per-module warnings said: one message
                flush_warnings(False)
                say("error", _first_sentences(exc.message_for("cli"), STATE.verbose))
                if STATE.verbose and exc.__cause__ is not None:
                    traceback.print_exception(exc.__cause__, file=sys.stderr)
                raise typer.Exit(exc.exit_code) from None
            except BrokenPipeError:
                # stdout closed early (`sigscore ... | head`): stop quietly, as `cat` would.
                with contextlib.suppress(OSError):
                    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
                raise typer.Exit(141) from None
            except KeyboardInterrupt:
                say("error", "interrupted")
                raise typer.Exit(130) from None
            except MemoryError:
                say(
                    "error",
                    "out of memory. Try a smaller --chunk-size, or score the file in parts.",
                )
                raise typer.Exit(1) from None
            except OSError as exc:
                # Reading a file the OS refuses (missing, permissions, a directory) is bad input.
                where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
                say("error", f"{where}{exc.strerror or exc}.")
                if STATE.verbose:
                    traceback.print_exc(file=sys.stderr)
                raise typer.Exit(3) from None
            except Exception as exc:
                if STATE.verbose:
                    traceback.print_exc(file=sys.stderr)
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                say(
                    "error",
                    f"unexpected internal error ({type(exc).__name__}: {first}). "
                    "Run again with --verbose for the full traceback and report it.",
                )
                raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def report_written(paths: Sequence[Path]) -> None:
    """Held warnings, then ``sigscore: wrote <path>`` for each file written."""
    flush_warnings(True)
    for p in paths:
        typer.echo(f"sigscore: wrote {p}", err=True)
