"""Scoring methods: one module per method, each exposing ``SPEC`` (:class:`MethodSpec`).

Modules are imported lazily so that ``import sigscore`` stays fast and a method's heavy
dependencies (numba kernels) load only when used.
"""

from __future__ import annotations

import importlib

from ...errors import UsageError
from ._base import GeneStats, IndexedSet, MethodSpec

METHOD_NAMES: tuple[str, ...] = (
    "ssgsea",
    "gsva",
    "zscore",
    "plage",
    "singscore",
    "aucell",
    "ucell",
    "module_score",
    "mean",
)

_cache: dict[str, MethodSpec] = {}


def get_method(name: str) -> MethodSpec:
    """Return the registered method ``name``; unknown names list the valid ones."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in METHOD_NAMES:
        raise UsageError(f"unknown method {name!r}; valid methods: {', '.join(METHOD_NAMES)}")
    if key not in _cache:
        _cache[key] = importlib.import_module(f"{__name__}.{key}").SPEC
    return _cache[key]


def available_methods() -> dict[str, MethodSpec]:
    """All registered methods, in registry order."""
    return {name: get_method(name) for name in METHOD_NAMES}


__all__ = [
    "METHOD_NAMES",
    "GeneStats",
    "IndexedSet",
    "MethodSpec",
    "available_methods",
    "get_method",
]
