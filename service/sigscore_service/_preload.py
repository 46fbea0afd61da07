"""Imported once by the fork server (:mod:`sigscore_service.runner`): the modules every task
needs, so a forked child starts with them loaded. Imports and parsing only: no numba kernel
runs here (its thread pools must not exist in a process that forks)."""

from __future__ import annotations

import contextlib
import importlib

from sigscore.methods import METHOD_NAMES, get_method
from sigscore.signatures import load_signatures

from . import worker

_MODULES = ("pyarrow.parquet", "sigscore.scoring", "sigscore.index", "sigscore.readers",
            "sigscore.io", "sigscore.report", "sigscore_service.problems")  # fmt: skip

for _module in _MODULES:
    with contextlib.suppress(ImportError):  # optional ones (report); a moved module
        importlib.import_module(_module)
for _name in METHOD_NAMES:
    get_method(_name)
for _tier in ("core", "extended"):
    load_signatures(_tier)
with contextlib.suppress(Exception):
    worker._shipped_label()
