"""User options to :func:`sigscore.score`: the one translation the CLI and the service share.

A command-line flag and an HTTP form field name the same options (method, method
parameters, tier, identifier type, minimum genes, ...). :func:`library_kwargs` turns them
into keyword arguments, leaving out what the user did not set, so that the library's
defaults and, for the index, the definition's own tier, coverage policy and method
parameters apply; :func:`score_options` makes the scoring call
(:func:`sigscore.index.options.score_or_index` adds the index). :func:`method_name` and
:func:`check_params` check a method and its parameters against the registry before any
file is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .. import scoring
from .methods import get_method


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


def as_argument(value: Any) -> Any:
    """A path as text (the library's loaders take names); loaded objects pass through."""
    return str(value) if isinstance(value, Path) else value


def score_options(
    data: Any, *, signatures: Any = None, method: str | None = None, **options: Any
) -> pd.DataFrame:
    """:func:`sigscore.score` with user options (those of :func:`library_kwargs`); the
    method defaults to singscore, ``signatures`` is a path or a loaded set."""
    kw = library_kwargs(**options)
    # looked up when called, so that a replaced ``sigscore.scoring.score`` is the one used
    return scoring.score(data, as_argument(signatures), method or scoring.DEFAULT_METHOD, **kw)


__all__ = [
    "as_argument",
    "check_params",
    "library_kwargs",
    "method_name",
    "score_options",
]
