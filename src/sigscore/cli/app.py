"""The typer application: the ``sigscore`` group, its sub-groups and global options.

Commands are registered on these in :mod:`sigscore.cli` (the package), from the modules
under :mod:`sigscore.cli.commands`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from .errors import STATE, App

DISCLAIMER = "Research use only; not a diagnostic."

app = App(
    name="sigscore",
    help="Score IL-6/STAT3 sorafenib-resistance programmes in HCC expression data. " + DISCLAIMER,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
signatures_app = typer.Typer(
    help="List, show and export the shipped signatures.", no_args_is_help=True
)
reference_app = typer.Typer(help="Build reference cohorts for percentiles.", no_args_is_help=True)
app.add_typer(signatures_app, name="signatures")
app.add_typer(reference_app, name="reference")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sigscore {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Full detail; tracebacks for internal errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Score IL-6/STAT3 sorafenib-resistance programmes. Research use only; not a diagnostic."""
    STATE.verbose = verbose
