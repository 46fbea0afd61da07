"""Columnar binary tables: Parquet and Arrow/Feather (read with polars; footer checked first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .archives import Limits, check_cells
from .orient import RawTable


def _check_parquet_footer(path: Path, source: str, limits: Limits) -> None:
    """Refuse a Parquet footer whose row counts contradict each other, before decoding.

    A forged row count (a row group claiming more rows than its columns hold) makes
    polars' decoder panic; the footer alone shows it. In a flat table every column
    chunk holds one value (or null) per row of its row group.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        md = pq.read_metadata(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(
            f"{source}: could not be read: corrupt Parquet footer ({type(exc).__name__}); "
            "re-export the file"
        ) from None
    flat = [md.schema.column(j).max_repetition_level == 0 for j in range(md.num_columns)]
    total = 0
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        total += rg.num_rows
        for j in range(rg.num_columns):
            if flat[j] and rg.column(j).num_values != rg.num_rows:
                raise InputError(
                    f"{source}: corrupt or forged Parquet metadata: row group {i + 1} declares "
                    f"{rg.num_rows:,} rows but column {md.schema.column(j).name!r} holds "
                    f"{rg.column(j).num_values:,} values; re-export the file"
                )
    if total != md.num_rows:
        raise InputError(
            f"{source}: corrupt or forged Parquet metadata: the file declares {md.num_rows:,} "
            f"rows but its row groups hold {total:,}; re-export the file"
        )
    check_cells(md.num_rows, max(md.num_columns - 1, 1), limits, source)


def read_columnar(path: Path, fmt: str, source: str, limits: Limits) -> RawTable:
    """Parquet / Arrow IPC via a polars lazy scan: schema first, then only usable columns."""
    import polars as pl

    if fmt == "parquet":
        _check_parquet_footer(path, source, limits)
    lf = pl.scan_parquet(path) if fmt == "parquet" else pl.scan_ipc(path)
    schema = lf.collect_schema()
    names = list(schema.names())
    text_cols = [n for n in names if not schema[n].is_numeric()]
    num_cols = [n for n in names if schema[n].is_numeric()]
    notes: list[str] = []
    if "__index_level_0__" in text_cols:  # pandas index stored as a column
        text_cols.remove("__index_level_0__")
        text_cols.insert(0, "__index_level_0__")
    name_col = text_cols[0] if text_cols else None
    extra = [c for c in text_cols[1:] if c.lower() != "description"]
    if extra:
        raise InputError(
            f"{source}: column(s) {extra[:5]} are not numeric (only one name column is "
            f"allowed, found {name_col!r} too); drop them or convert them to numbers"
        )
    if len(text_cols) > 1:
        notes.append("Description column ignored")
    if not num_cols:
        raise InputError(f"{source}: no numeric columns; the table holds only names")
    if len(names) > len(text_cols) + len(num_cols):
        raise InputError(f"{source}: unusable columns")
    frame = lf.select(([name_col] if name_col else []) + num_cols).collect()
    if frame.height == 0:
        raise InputError(f"{source}: no data rows (the table has columns but no rows)")
    values = frame.select(num_cols)
    nulls = values.null_count().row(0)
    if any(nulls):
        j = next(i for i, v in enumerate(nulls) if v)
        i = int(values.get_column(num_cols[j]).is_null().arg_true()[0])
        raise InputError(
            f"{source}: missing value (null) at row {i + 1}, column {num_cols[j]!r}; impute "
            "or remove it before scoring",
            detail={"row": i + 1, "column": num_cols[j]},
        )
    X = values.cast(pl.Float64).to_numpy()
    if name_col is not None:
        row_names = [
            str(v) if v is not None else "" for v in frame.get_column(name_col).cast(pl.Utf8)
        ]
    else:
        row_names = [str(i + 1) for i in range(frame.height)]
        notes.append("no name column: rows numbered from 1")
    if not np.isfinite(X).all():
        i, j = (int(v) for v in np.argwhere(~np.isfinite(X))[0])
        raise InputError(
            f"{source}: NaN/Inf value at row {i + 1} ({row_names[i]!r}), column {num_cols[j]!r}; "
            "impute or remove it before scoring",
            detail={"row": i + 1, "column": num_cols[j]},
        )
    return RawTable(X, row_names, [str(c) for c in num_cols], notes=notes)
