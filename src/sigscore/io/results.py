"""Result tables to files: the one writer the CLI, the service and the demo share.

* :func:`json_safe`: manifests, coverage and cells to JSON types (NaN/inf → ``null``,
  numpy scalars → Python, anything else → text), value by value;
* :func:`write_table`: a result frame to CSV/TSV (formula-injection safe, see
  :mod:`sigscore.io.csv_safety`), Parquet (metadata as JSON under the schema key
  ``sigscore``) or JSON (``{"sigscore": meta, "results": [records]}``), by extension;
* :func:`result_document`: the service's JSON result (columns, rows, coverage, manifest).

CSV/TSV/JSON hold shortest round-trip float representations, so reading them back gives
the same doubles. pandas and pyarrow are imported only when a table is written.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError

#: table formats by file extension
TABLE_FORMATS = ("csv", "tsv", "parquet", "json")


def json_safe(obj: Any) -> Any:
    """``obj`` in JSON types: NaN/inf → None, numpy scalars → Python, other objects → str.

    Done value by value: a text replace of ``NaN`` in the dumped JSON would also rewrite
    sample, gene or file names that contain it. Dict keys become text; tuples lists.
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if hasattr(obj, "item"):  # numpy scalar
        return json_safe(obj.item())
    return str(obj)


def _cell(value: Any) -> Any:
    """A table cell for JSON: every number a float (a column reads as one type), NaN → None."""
    if isinstance(value, list | tuple):
        return [_cell(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = float(value)
    return json_safe(value)


def table_format(path: str | Path) -> str:
    """The table format named by ``path``'s extension (csv, tsv, parquet or json)."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in TABLE_FORMATS:
        raise UsageError(
            f"cannot tell the output format from {Path(path).name!r}; use a name ending in "
            + ", ".join(f".{f}" for f in TABLE_FORMATS)
        )
    return fmt


def write_table(df: Any, path: str | Path | None, meta: dict[str, Any] | None = None) -> None:
    """Write ``df`` (index = sample) to ``path`` by extension, or CSV to stdout when None.

    Text cells, names and labels that a spreadsheet would run as a formula get a leading
    ``'`` in CSV/TSV (:func:`sigscore.io.csv_safety.csv_safe_frame`). Parquet files carry
    ``meta`` (manifest and coverage) as JSON under the schema metadata key ``sigscore``;
    JSON files are ``{"sigscore": meta, "results": [records]}`` with missing values as
    ``null``. A file that cannot be written is a :class:`~sigscore.errors.UsageError`.
    """
    from .csv_safety import csv_safe_frame

    out = df.copy()
    out.attrs = {}
    if path is None:
        csv_safe_frame(out).to_csv(sys.stdout)
        return
    path = Path(path)
    fmt = table_format(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt in ("csv", "tsv"):
            csv_safe_frame(out).to_csv(path, sep="," if fmt == "csv" else "\t")
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(out)
            md = dict(table.schema.metadata or {})
            md[b"sigscore"] = json.dumps(json_safe(meta or {})).encode()
            pq.write_table(table.replace_schema_metadata(md), path)
        else:
            # json (not pandas' to_json, capped at 15 digits) writes round-trip float reprs
            flat = out.reset_index()
            records = flat.astype(object).where(flat.notna(), None).to_dict(orient="records")
            doc = {"sigscore": json_safe(meta or {}), "results": records}
            path.write_text(json.dumps(doc, indent=1, default=str, allow_nan=False) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def result_document(df: Any, kind: str) -> dict[str, Any]:
    """A result frame as the service's JSON document: ``kind``, ``n_obs``, ``columns``,
    ``rows`` (``{"sample": name, column: value}``; numbers as floats that keep every bit,
    NaN as null), ``coverage`` and ``manifest`` (from ``df.attrs["sigscore"]``)."""
    meta = df.attrs.get("sigscore", {}) if hasattr(df, "attrs") else {}
    columns = [str(c) for c in df.columns]
    rows = []
    for name, values in zip(df.index, df.itertuples(index=False, name=None), strict=True):
        rec: dict[str, Any] = {"sample": str(name)}
        rec.update({c: _cell(v) for c, v in zip(columns, values, strict=True)})
        rows.append(rec)
    return {
        "kind": kind,
        "n_obs": len(rows),
        "columns": columns,
        "rows": rows,
        "coverage": json_safe(meta.get("coverage") or []),
        "manifest": json_safe(meta.get("manifest") or {}),
    }


__all__ = ["TABLE_FORMATS", "json_safe", "result_document", "table_format", "write_table"]
