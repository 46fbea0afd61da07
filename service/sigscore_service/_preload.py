"""Imported once by the fork server (:mod:`sigscore_service.runner`): the modules every task
needs, so a forked child starts with them loaded. Imports and parsing only: no numba kernel
runs here (its thread pools must not exist in a process that forks).

Also preloaded: the modules a child re-imports as its ``__main__`` (the ``sigscore`` script,
uvicorn), which would otherwise be imported again in every child; and a fork hook that
makes each child die with the fork server from its first instruction on."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os

from . import runner

# First, before the seconds of imports: the fork server dies with its supervisor (the thread
# that started it, see runner.start_fork_server), without waiting for its pipe's end-of-file.
runner.die_with_parent()
# A panic in a native reader (polars) becomes an InputError at the reader boundary; without
# this, Rust would also print its backtrace (tens of lines) to the service log per request.
os.environ["RUST_BACKTRACE"] = "0"

from sigscore.scoring.methods import METHOD_NAMES, get_method  # noqa: E402
from sigscore.signatures import load_signatures  # noqa: E402

from . import worker  # noqa: E402

_MODULES = ("pyarrow.parquet", "sigscore.scoring", "sigscore.index", "sigscore.io",
            "sigscore.report", "sigscore_service.problems", "sigscore.cli",
            "uvicorn.main")  # fmt: skip

for _module in _MODULES:
    with contextlib.suppress(ImportError):  # optional ones (report); a moved module
        importlib.import_module(_module)
for _name in METHOD_NAMES:
    get_method(_name)
for _tier in ("core", "extended"):
    load_signatures(_tier)
with contextlib.suppress(Exception):
    worker._shipped_label()

_FORK_SERVER = os.getpid()


def _child_after_fork() -> None:
    runner.die_with_parent()
    if os.getppid() != _FORK_SERVER:  # the fork server died before prctl took effect
        os._exit(1)


os.register_at_fork(after_in_child=_child_after_fork)
# The fork server ends (SystemExit) when its supervisor dies: skip the seconds of interpreter
# finalisation the preloaded libraries cost (atexit runs last-registered first; it has nothing
# to flush). Forked children leave through os._exit and never run atexit handlers.
atexit.register(os._exit, 0)
