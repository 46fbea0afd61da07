"""The ``sigscore`` command line.

Commands: ``score``, ``index``, ``signatures list|show|export``, ``reference build``,
``report``, ``demo``, ``serve``, ``worker``. Exit codes: 0 ok, 1 unexpected internal error, 2 usage
(bad option or combination), 3 bad input (unreadable or malformed file), 4 coverage too low
(no signature could be scored), 130 interrupted. Errors go to stderr as
``sigscore: error: <one or two sentences>``; a Python traceback is shown only for
unexpected errors and only with ``--verbose``.

Output files are chosen by extension (.csv, .tsv, .parquet, .json). With several inputs,
``-o`` naming a table file writes one combined table whose first column, ``input``, names
the file each row came from; ``-o`` naming a directory (an existing one or a path ending in
``/``; a new name without an extension is a usage error) writes one ``<input stem>.<command>.<format>`` file per
input (``--format``, default csv). Without ``-o`` the table goes to stdout as CSV.

The package: :mod:`.app` (the typer group and global options), :mod:`.errors` (messages,
exit codes), :mod:`.options` (shared options and their checks), :mod:`.inputs` (reading
files, signatures, definitions), :mod:`.output` (result targets; the writer is
:mod:`sigscore.io.results`) and :mod:`.commands` (one module a command group).

Research use only; not a diagnostic.
"""

from __future__ import annotations

from .app import app, main, reference_app, signatures_app
from .commands import demo, scoring, service, signatures
from .options import RegistryHelp, parse_params

# Registration order is the order of ``sigscore --help``.
app.command(cls=RegistryHelp)(scoring.score)
app.command(cls=RegistryHelp)(scoring.index)
app.command(cls=RegistryHelp)(scoring.report)
app.command()(demo.demo)
app.command()(service.serve)
app.command()(service.worker)
signatures_app.command("list")(signatures.signatures_list)
signatures_app.command("show")(signatures.signatures_show)
signatures_app.command("export")(signatures.signatures_export)
reference_app.command("build", cls=RegistryHelp)(scoring.reference_build)


def run() -> None:
    """Entry point for ``python -m sigscore.cli`` (and ``python -m sigscore``)."""
    app()


__all__ = ["app", "main", "parse_params", "run"]
