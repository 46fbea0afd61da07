"""``python -m sigscore``: the same as the ``sigscore`` command."""

from .cli import run

run()
