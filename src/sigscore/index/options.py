"""User options to library calls: the one translation the CLI and the service share.

A command-line flag and an HTTP form field name the same options (method, method
parameters, tier, identifier type, minimum genes, ...). :func:`library_kwargs` turns them
into the keyword arguments of :func:`sigscore.score` and
:func:`~sigscore.index.resistance_index`, leaving out what the user did not set, so that
the library's defaults and an index definition's own tier, coverage policy and method
parameters apply; :func:`score_or_index` makes the call. :func:`method_name` and
:func:`check_params` check a method and its parameters against the registry before any
file is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .. import scoring
from ..errors import UsageError
from ..scoring.methods import get_method
from .api import resistance_index

#: shipped signature tiers; ``extended`` is the default, so it is never passed on
TIERS = ("core", "extended")


def method_name(method: str | None) -> str | None:
    """The registered name of ``method`` (case, ``-`` and spaces forgiven); None stays None.

    An unknown name is a :class:`~sigscore.errors.UsageError` listing the valid ones.
    """
    return None if method is None else get_method(method).name


def check_params(method: str | None, params: Mapping[str, Any] | None) -> None:
    """Parameters the method does not have are a UsageError naming the valid ones."""
    if method is not None and params:
        get_method(method).params(**params)


def library_kwargs(
    *,
    params: Mapping[str, Any] | None = None,
    tier: str | None = None,
    id_type: str | None = None,
    min_genes: int | None = None,
    progress: bool | None = None,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments for :func:`sigscore.score` / ``resistance_index`` from user options.

    Unset options (None, tier ``extended``, id_type ``auto``) are left out: the library's
    defaults then apply, and for the index the definition's tier and coverage policy.
    ``min_genes`` becomes ``coverage_policy={"min_genes": n}``; method ``params`` are
    passed as keywords.
    """
    kw: dict[str, Any] = dict(params or {})
    if id_type and id_type != "auto":
        kw["id_type"] = id_type
    if tier and tier != "extended":
        kw["tier"] = tier
    if min_genes is not None:
        kw["coverage_policy"] = {"min_genes": int(min_genes)}
    if progress is not None:
        kw["progress"] = progress
    if chunk_size is not None:
        kw["chunk_size"] = chunk_size
    return kw


def _arg(value: Any) -> Any:
    """A path as text (the library's loaders take names); loaded objects pass through."""
    return str(value) if isinstance(value, Path) else value


def score_or_index(
    data: Any,
    *,
    index: bool = False,
    signatures: Any = None,
    method: str | None = None,
    reference: Any = None,
    definition: Any = None,
    **options: Any,
) -> pd.DataFrame:
    """Module scores (:func:`sigscore.score`) or, with ``index``, the resistance index.

    ``signatures``, ``reference`` and ``definition`` are paths or loaded objects;
    ``options`` are those of :func:`library_kwargs`. Without ``index``, the method defaults
    to singscore and a reference or definition is a UsageError (they belong to the index).
    """
    kw = library_kwargs(**options)
    if index:
        return resistance_index(
            data,
            signatures=_arg(signatures),
            method=method,
            reference=_arg(reference),
            definition=_arg(definition),
            **kw,
        )
    if reference is not None or definition is not None:
        raise UsageError("definition and reference apply to the index; set index=true")
    # looked up when called, so that a replaced ``sigscore.scoring.score`` is the one used
    return scoring.score(data, _arg(signatures), method or scoring.DEFAULT_METHOD, **kw)


__all__ = ["TIERS", "check_params", "library_kwargs", "method_name", "score_or_index"]
