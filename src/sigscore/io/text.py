"""Text tables: CSV/TSV (any of tab, semicolon, comma), GCT 1.2, encodings, decimal commas."""

from __future__ import annotations

import csv
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, UnsupportedFormatError
from .archives import Limits, decompressed_copy
from .orient import RawTable, recognised
from .sniff import EXPORT_HINT, big_csv_fields, head_bytes, pick_delimiter, split_fields

_NA_TOKENS = frozenset({"NA", "NAN", "N/A", "#N/A", "NULL", "NONE", "NIL", "-NAN", "?", "."})
_INF_RE = re.compile(r"^[+-]?(inf|infinity)$", re.IGNORECASE)
_DEC_COMMA_RE = re.compile(r"^[+-]?\d+,\d+([eE][+-]?\d+)?$")
_DEC_POINT_RE = re.compile(r"^[+-]?\d*\.\d+([eE][+-]?\d+)?$")


@dataclass
class _TextLayout:
    delim: str
    header: list[str]
    header_line: int  # 1-based line number of the header
    n_fields: int  # fields per data row
    decimal_comma: bool
    encoding: str


def _read_head_lines(path: Path, encoding: str, max_lines: int = 30, max_chars: int = 8 << 20):
    """First lines (1-based numbers kept) without reading the whole file."""
    out: list[tuple[int, str]] = []
    read = 0
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        for i, line in enumerate(fh, start=1):
            read += len(line)
            out.append((i, line.rstrip("\r\n")))
            if len(out) >= max_lines or read > max_chars:
                break
    return out


def _detect_encoding(path: Path, tmp: Path, source: str, notes: list[str]) -> tuple[Path, str]:
    head = head_bytes(path, 1 << 16)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        out = tmp / (path.name + ".utf8")
        with open(path, encoding="utf-16") as src, open(out, "w", encoding="utf-8") as dst:
            shutil.copyfileobj(src, dst)
        notes.append("converted from UTF-16 to UTF-8")
        return out, "utf-8"
    if b"\x00" in head:
        raise UnsupportedFormatError(
            f"{source}: contains binary data (NUL bytes), not a text table; {EXPORT_HINT}"
        )
    if head.startswith(b"\xef\xbb\xbf"):
        notes.append("UTF-8 byte-order mark removed")
        return path, "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the buffer end
            notes.append("text is not UTF-8; read as Windows-1252/Latin-1")
            out = tmp / (path.name + ".utf8")
            with (
                open(path, encoding="cp1252", errors="replace") as src,
                open(out, "w", encoding="utf-8") as dst,
            ):
                shutil.copyfileobj(src, dst)
            return out, "utf-8"
    return path, "utf-8"


def _layout(path: Path, encoding: str, source: str, skip: int, fmt: str) -> _TextLayout:
    lines = [(n, ln) for n, ln in _read_head_lines(path, encoding, 30 + skip)[skip:] if ln.strip()]
    if not lines:
        if skip:
            raise InputError(f"{source}: no header line after the GCT preamble")
        raise InputError(f"{source}: the file is empty (no text lines); check the export")
    texts = [ln for _, ln in lines]
    if fmt == "gct":
        delim: str | None = "\t"
    else:
        sample = texts[:-1] if len(texts) > 2 else texts  # the last line may be cut
        delim = pick_delimiter(sample)
        if delim is None and fmt == "tsv":
            delim = "\t"
    hline, header_text = lines[0]
    if delim is None:
        raise InputError(
            f"{source}: only one column found (no tab, comma or semicolon separating fields on "
            f"line {hline}: {header_text[:60]!r}); a matrix needs names in the first column and "
            "numbers in the others"
        )
    header = [h.strip() for h in split_fields(header_text, delim)]
    if len(lines) < 2:
        raise InputError(
            f"{source}: header only, no data rows (line {hline} is the last non-empty line); "
            "the table has column names but no values"
        )
    first = split_fields(lines[1][1], delim)
    if len(first) not in (len(header), len(header) + 1):
        raise InputError(
            f"{source}: line {lines[1][0]} has {len(first)} fields, expected {len(header)} as in "
            f"the header on line {hline}; check the delimiter or a stray separator"
        )
    if len(header) < 2 and len(first) < 2:
        raise InputError(
            f"{source}: only one column found; a matrix needs names in the first column and "
            "numbers in the others"
        )
    decimal_comma = False
    if delim in (";", "\t"):
        cells = [c.strip() for t in texts[1:] for c in split_fields(t, delim)[1:]]
        decimal_comma = any(_DEC_COMMA_RE.match(c) for c in cells) and not any(
            _DEC_POINT_RE.match(c) for c in cells
        )
    return _TextLayout(delim, header, hline, len(first), decimal_comma, encoding)


def _parse_cell(s: str, decimal_comma: bool) -> tuple[float | None, str]:
    """(value, problem) for one cell; problem is "" when the cell is a finite number."""
    t = s.strip()
    if t == "":
        return None, "empty cell"
    if t.upper() in _NA_TOKENS:
        return None, f"missing value {t!r}"
    if _INF_RE.match(t):
        return None, f"infinite value {t!r}"
    try:
        v = float(t.replace(",", ".") if decimal_comma else t)
    except ValueError:
        return None, f"non-numeric value {t!r}"
    if math.isnan(v):
        return None, f"missing value {t!r}"
    if math.isinf(v):
        return None, f"infinite value {t!r} (overflows a 64-bit float)"
    return v, ""


def _diagnose_text(path: Path, lay: _TextLayout, source: str) -> InputError | None:
    """Scan line by line for the first ragged row or bad cell; None if nothing is wrong."""
    names = lay.header if lay.n_fields == len(lay.header) else ["", *lay.header]
    with (
        big_csv_fields(),
        open(path, encoding=lay.encoding, errors="replace", newline="") as fh,
    ):
        reader = csv.reader(fh, delimiter=lay.delim)
        line_no = 0
        for row in reader:
            start = line_no + 1
            line_no = reader.line_num
            if start <= lay.header_line or not any(c.strip() for c in row):
                continue
            if len(row) != lay.n_fields:
                return InputError(
                    f"{source}: line {start} has {len(row)} fields, expected {lay.n_fields} "
                    f"(as on line {lay.header_line + 1}); check for a stray "
                    f"{_delim_name(lay.delim)}, an unquoted name or a missing value",
                    detail={"line": start, "fields": len(row), "expected": lay.n_fields},
                )
            for j in range(1, len(row)):
                _, problem = _parse_cell(row[j], lay.decimal_comma)
                if problem:
                    col = names[j] if j < len(names) else ""
                    what = "impute or remove it" if "non-numeric" not in problem else "fix it"
                    return InputError(
                        f"{source}: {problem} at line {start}, column {j + 1} ({col!r}), row "
                        f"{row[0].strip()!r}; every cell outside the first row and column must "
                        f"be a finite number (missing values such as NA are not allowed): {what}",
                        detail={"line": start, "column": j + 1, "value": row[j]},
                    )
    return None


def _delim_name(d: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon"}.get(d, repr(d))


#: Text handed to numpy's parser at a time by the streaming reader (bounds its buffers).
_TEXT_BLOCK_BYTES = 8 << 20
#: From this many values on, a text matrix is held in float32 (half the memory; scoring
#: converts each row block to float64). Smaller tables keep float64, so results on them are
#: bit-identical to scoring the same numbers from a DataFrame.
FLOAT32_MIN_VALUES = 1 << 24


def _read_text_blocks(
    plain: Path, lay: _TextLayout, fmt: str
) -> tuple[np.ndarray, list[str]] | None:
    """Plain numeric tables in two streaming passes, without a parsed copy of the text.

    Pass 1 reads the row names (first field) and checks every line has the header's field
    count; pass 2 parses blocks of lines (numpy's C parser) straight into the one matrix
    (float32 from :data:`FLOAT32_MIN_VALUES` values on, float64 below). The matrix is laid
    out for the orientation the names suggest (Fortran order when the genes are the rows),
    so turning it into observations × genes needs no copy. Peak memory is the matrix, the
    names and one block of text. Returns None for anything unusual
    (quotes, decimal commas, missing or non-numeric cells): the general parser then reads
    the file and names the defect.
    """
    if lay.decimal_comma:
        return None
    delim, n_fields = lay.delim, lay.n_fields
    first_value = 2 if fmt == "gct" else 1
    names: list[str] = []
    with open(plain, encoding=lay.encoding, errors="replace") as fh:
        for _ in range(lay.header_line):
            fh.readline()
        for line in fh:
            if not line.strip():
                continue  # blank lines between rows are skipped, as the general parser does
            if '"' in line or line.count(delim) != n_fields - 1:
                return None
            names.append(line[: line.index(delim)].strip())
    if not names:
        return None
    header = lay.header
    col_names = header[first_value:] if n_fields == len(header) else header
    fr_r, n_r = recognised(names)
    fr_c, n_c = recognised(col_names)
    # only the memory layout depends on this guess; orient_raw decides the orientation
    order = "F" if (fr_r, n_r) > (fr_c, n_c) else "C"
    shape = (len(names), n_fields - first_value)
    dtype = np.float32 if shape[0] * shape[1] >= FLOAT32_MIN_VALUES else np.float64
    X = np.empty(shape, dtype=dtype, order=order)
    usecols = range(first_value, n_fields)
    row = 0
    block: list[str] = []
    size = 0

    def flush() -> bool:
        nonlocal row, block, size
        try:
            values = np.loadtxt(
                block,
                delimiter=delim,
                usecols=usecols,
                dtype=np.float64,
                comments=None,
                quotechar=None,
                ndmin=2,
            )
        except ValueError:
            return False
        if values.shape[0] != len(block) or not np.isfinite(values).all():
            return False
        X[row : row + len(block)] = values
        row += len(block)
        block, size = [], 0
        return True

    with open(plain, encoding=lay.encoding, errors="replace") as fh:
        for _ in range(lay.header_line):
            fh.readline()
        for line in fh:
            if not line.strip():
                continue
            block.append(line)
            size += len(line)
            if size >= _TEXT_BLOCK_BYTES and not flush():
                return None
    if block and not flush():
        return None
    return (X, names) if row == len(names) else None


def read_text_table(path: Path, tmp: Path, fmt: str, source: str, limits: Limits) -> RawTable:
    notes: list[str] = []
    plain = decompressed_copy(path, tmp, limits, source)
    if plain.stat().st_size == 0 or not head_bytes(plain, 1 << 16).strip():
        raise InputError(f"{source}: the file is empty; check the export or download")
    plain, encoding = _detect_encoding(plain, tmp, source, notes)
    gct_dims: tuple[int, int] | None = None
    skip = 0
    if fmt == "gct":
        gct_dims = _gct_preamble(plain, encoding, source)
        skip = 2
    lay = _layout(plain, encoding, source, skip, fmt)
    if fmt == "gct":
        if len(lay.header) < 3 or [h.lower() for h in lay.header[:2]] != ["name", "description"]:
            raise InputError(
                f"{source}: GCT line 3 must start with 'Name<TAB>Description' followed by sample "
                f"names, found {lay.header[:3]}; see the GCT 1.2 format description"
            )
        if lay.n_fields != len(lay.header):
            raise InputError(
                f"{source}: GCT line 4 has {lay.n_fields} fields, expected {len(lay.header)}"
            )
    if lay.decimal_comma:
        notes.append("decimal commas read as decimal points")
    if lay.delim != "," or fmt != "csv":
        notes.append(f"fields separated by {_delim_name(lay.delim)}")

    def fail(exc: Exception | None) -> InputError:
        found = _diagnose_text(plain, lay, source)
        if found is not None:
            return found
        return InputError(f"{source}: could not parse the table ({exc}); check its layout")

    streamed = _read_text_blocks(plain, lay, fmt)
    if streamed is not None:
        X, row_names = streamed
        if X.dtype == np.float32:
            notes.append("held as float32 (a large text matrix; scored in float64 row blocks)")
    else:  # quotes, decimal commas, bad cells ...: the general parser, which names defects
        import polars as pl  # only here: a plain table never pays for importing polars

        frame: pl.DataFrame | None
        try:
            frame = pl.read_csv(
                plain,
                has_header=False,
                skip_rows=lay.header_line,
                separator=lay.delim,
                infer_schema=False,
                quote_char='"',
                encoding="utf8-lossy",
                raise_if_empty=False,
            )
            polars_error: Exception | None = None
        except Exception as exc:  # polars raises ComputeError/ShapeError/NoDataError
            frame, polars_error = None, exc
        if frame is None or frame.width != lay.n_fields:
            # Either a real defect (the diagnosis names it) or layout polars cannot take, such
            # as blank lines between rows: then pandas' C parser (which skips them) takes over.
            found = _diagnose_text(plain, lay, source)
            if found is not None:
                raise found from polars_error
            try:
                frame = pl.from_pandas(
                    pd.read_csv(
                        plain,
                        sep=lay.delim,
                        header=None,
                        skiprows=lay.header_line,
                        names=[f"column_{i}" for i in range(lay.n_fields)],
                        dtype=str,
                        na_filter=False,
                        quotechar='"',
                        encoding="utf-8",
                        encoding_errors="replace",
                        engine="c",
                    )
                )
            except Exception as exc:
                raise fail(exc) from exc
        if frame.height == 0:
            raise InputError(
                f"{source}: header only, no data rows after line {lay.header_line}; the table has "
                "column names but no values"
            )
        if frame.width != lay.n_fields:
            raise fail(None)
        cols = frame.columns
        row_names = [str(v).strip() if v is not None else "" for v in frame.get_column(cols[0])]
        value_cols = cols[2:] if fmt == "gct" else cols[1:]

        def to_float(strip: bool) -> pl.DataFrame:
            col = pl.col(value_cols)
            if strip:  # only on the slow path: stripping 30k columns costs seconds
                col = col.str.strip_chars()
            if lay.decimal_comma:
                col = col.str.replace_all(",", ".", literal=True)
            return frame.select(col.cast(pl.Float64, strict=True))

        try:
            values = to_float(strip=False)
        except Exception:
            try:
                values = to_float(strip=True)
            except Exception as exc:
                raise fail(exc) from exc
        if sum(values.null_count().row(0)) > 0:
            raise fail(None)
        X = values.to_numpy()
        if not np.isfinite(X).all():
            raise fail(None)
    header = lay.header
    col_names = header[1:] if lay.n_fields == len(header) else header
    if fmt == "gct":
        col_names = header[2:]
        if gct_dims is not None and gct_dims != (X.shape[0], X.shape[1]):
            raise InputError(
                f"{source}: GCT line 2 declares {gct_dims[0]} rows × {gct_dims[1]} samples but the "
                f"table has {X.shape[0]} rows × {X.shape[1]} samples; correct line 2"
            )
        return RawTable(X, row_names, col_names, notes=notes)
    return RawTable(X, row_names, col_names, notes=notes)


def _gct_preamble(path: Path, encoding: str, source: str) -> tuple[int, int]:
    lines = [ln for _, ln in _read_head_lines(path, encoding, 3)]
    if not lines or lines[0].strip().split("\t")[0] not in ("#1.2",):
        version = lines[0].strip()[:10] if lines else ""
        raise InputError(
            f"{source}: GCT version {version!r} is not supported; line 1 must be '#1.2' "
            "(convert GCT 1.3 to 1.2 or to CSV)"
        )
    parts = lines[1].split("\t") if len(lines) > 1 else []
    try:
        n_rows, n_cols = int(parts[0]), int(parts[1])
    except (IndexError, ValueError) as exc:
        raise InputError(
            f"{source}: GCT line 2 must hold two integers (rows<TAB>samples), found "
            f"{(lines[1] if len(lines) > 1 else '')[:40]!r}"
        ) from exc
    return n_rows, n_cols
