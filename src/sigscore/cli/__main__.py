"""``python -m sigscore.cli``: the same as the ``sigscore`` command."""

from . import run

run()
