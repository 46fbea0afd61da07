"""User options to module scores or the index: the call the CLI and the service worker share.

The options themselves are translated once, by :mod:`sigscore.scoring.options`
(:func:`~sigscore.scoring.options.library_kwargs`); this adds the index and its reference
and definition.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import UsageError
from ..scoring.options import as_argument, library_kwargs, score_options
from .api import resistance_index


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
    ``options`` are those of :func:`~sigscore.scoring.options.library_kwargs`. Without
    ``index``, the method defaults to singscore and a reference or definition is a
    UsageError (they belong to the index).
    """
    if not index:
        if reference is not None or definition is not None:
            raise UsageError("definition and reference apply to the index; set index=true")
        return score_options(data, signatures=signatures, method=method, **options)
    return resistance_index(
        data,
        signatures=as_argument(signatures),
        method=method,
        reference=as_argument(reference),
        definition=as_argument(definition),
        **library_kwargs(**options),
    )


__all__ = ["score_or_index"]
