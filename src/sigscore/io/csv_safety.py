"""CSV/TSV formula-injection guard of :mod:`sigscore.io.results` (CLI and service alike).

Spreadsheet programs run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some also
one that starts with a tab or carriage return) as a formula, so a sample named
``=HYPERLINK("http://evil", "x")`` or a module named ``=cmd|' /C calc'!A0`` in a result
would execute when the CSV is opened. Following OWASP's rule, such *text* cells get a
leading single quote, which spreadsheets show as text. Numbers are never touched (a
negative score stays a number), and neither is text that is just a decimal number
(``-1.5`` evaluates to itself). Parquet and JSON outputs keep the names unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

#: first characters that make a spreadsheet treat a cell as a formula
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def neutralise_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_PREFIXES)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def _neutralise_index(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        return index.set_levels([_neutralise_index(lv) for lv in index.levels])
    if index.dtype != object and not pd.api.types.is_string_dtype(index.dtype):
        return index  # numeric labels: numbers stay numbers
    return pd.Index([neutralise_cell(v) for v in index], name=neutralise_cell(index.name))


def csv_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` ready for CSV/TSV: index labels, column names and text cells
    neutralised with :func:`neutralise_cell`; numeric columns are left as they are."""
    out = df.copy()
    out.attrs = {}
    out.index = _neutralise_index(out.index)
    out.columns = _neutralise_index(out.columns)
    for j in range(out.shape[1]):
        col = out.iloc[:, j]
        if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            out.isetitem(j, col.map(neutralise_cell))
    return out


__all__ = ["FORMULA_PREFIXES", "csv_safe_frame", "neutralise_cell"]
