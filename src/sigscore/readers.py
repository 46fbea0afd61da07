"""Read expression matrices from files into :class:`sigscore.matrix.Expression`.

One entry point, :func:`read_matrix`, for CSV/TSV (optionally gzip/bz2/xz-compressed), GCT,
Parquet, Arrow/Feather, h5ad, 10x Genomics HDF5 and Matrix Market folders, alone or inside a
``.zip``/``.tar[.gz]``. The format is recognised by content (:func:`sniff_format`), never by
extension alone. Whatever goes wrong, the caller sees an :class:`~sigscore.errors.InputError`
(or :class:`~sigscore.errors.UnsupportedFormatError`) naming the file, the line/column where
that is known, and what to do; library exceptions are re-raised with that context.

Orientation: unless ``genes_axis`` says otherwise, the axis whose names are recognised as gene
identifiers (:func:`sigscore.genes.recognised_fraction`) is taken as the gene axis; the
result is always observations × genes, with the reason in ``Expression.notes``.

Format references: GCT 1.2 (GenePattern "File Formats Guide"); 10x Genomics feature-barcode
HDF5 v3 (Cell Ranger docs: ``matrix/{data,indices,indptr,shape,barcodes,features}``, CSC
features × barcodes) and the older v2 per-genome layout; Matrix Market coordinate format
(NIST, Boisvert et al. 1996), features × barcodes in 10x folders.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import math
import os
import re
import shutil
import stat
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .confinement import check_hdf5_confined
from .errors import InputError, SigscoreError, UnsupportedFormatError, UsageError
from .genes import recognised_fraction
from .matrix import (
    Expression,
    as_expression,
    check_finite,
    detect_value_scale,
    merge_duplicate_genes,
)

__all__ = ["SUPPORTED_FORMATS", "read_matrix", "sniff_format"]

#: Formats :func:`read_matrix` reads (names as returned by :func:`sniff_format`).
SUPPORTED_FORMATS: tuple[str, ...] = (
    "csv",
    "tsv",
    "gct",
    "parquet",
    "arrow",
    "h5ad",
    "10x_h5",
    "mtx",
    "zip",
    "tar",
)

#: Recognised but unsupported formats → advice shown to the user.
_UNSUPPORTED: dict[str, str] = {
    "xlsx": "an Excel workbook (.xlsx)",
    "xls": "an Excel 97-2003 workbook (.xls) or other OLE2 document",
    "ods": "an OpenDocument spreadsheet",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "gif": "a GIF image",
    "pdf": "a PDF document",
    "loom": "a loom file (HDF5)",
    "hdf5": "an HDF5 file that is neither AnnData (.h5ad) nor 10x Genomics (.h5)",
    "rds": "an R data file (.rds/.RData)",
    "7z": "a 7-Zip archive",
    "zstd": "a Zstandard-compressed file",
    "feather_v1": "a Feather v1 file",
    "binary": "binary data, not a text table",
}

_EXPORT_HINT = (
    "sigscore reads CSV/TSV (optionally gzipped), GCT, Parquet, Arrow/Feather, h5ad, 10x .h5 "
    "and Matrix Market folders; export the matrix as CSV (names in the first row and column)"
)

#: Hard cap on bytes written when decompressing or extracting (overridable per call / env).
DEFAULT_MAX_DECOMPRESSED = 4 * 1024**3
_ENV_MAX = "SIGSCORE_MAX_DECOMPRESSED_BYTES"
#: Expansion ratio above which output is refused once past ``_RATIO_FLOOR`` bytes; real
#: gzipped count tables compress ~5-50:1, pathological "bombs" ~1000:1. The floor keeps
#: small, highly repetitive files (a few MB of zeros) readable.
MAX_RATIO = 200.0
_RATIO_FLOOR = 64 * 1024**2

_NA_TOKENS = frozenset({"NA", "NAN", "N/A", "#N/A", "NULL", "NONE", "NIL", "-NAN", "?", "."})
_INF_RE = re.compile(r"^[+-]?(inf|infinity)$", re.IGNORECASE)
_DEC_COMMA_RE = re.compile(r"^[+-]?\d+,\d+([eE][+-]?\d+)?$")
_DEC_POINT_RE = re.compile(r"^[+-]?\d*\.\d+([eE][+-]?\d+)?$")
_SPARSE_MIN_CELLS = 1_000_000
_MIN_GENE_FRACTION = 0.05
_MIN_GENE_COUNT = 10


@dataclass
class _Limits:
    max_bytes: int
    max_ratio: float = MAX_RATIO
    ratio_floor: int = _RATIO_FLOOR
    max_cells: int | None = None  # observations × genes; None = no cap


@dataclass
class _Raw:
    """A parsed table before orientation: ``X`` is rows × columns as stored."""

    X: np.ndarray | sp.csr_matrix
    row_names: list[str]
    col_names: list[str]
    fixed_genes_axis: Literal["rows", "columns"] | None = None
    why_fixed: str = ""
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- sniffing


def _head(path: Path, n: int = 65536) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _decompress_head(head: bytes, kind: str, n: int = 262144) -> bytes:
    """Best-effort decompression of the first bytes (a truncated stream is fine here)."""
    try:
        if kind == "gzip":
            return zlib.decompressobj(wbits=47).decompress(head, n)
        if kind == "bz2":
            return bz2.BZ2Decompressor().decompress(head, n)
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(head, n)
    except (zlib.error, OSError, EOFError, lzma.LZMAError):
        return b""
    return b""


def _compression(head: bytes) -> str | None:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and len(head) > 9 and head[4:10] == b"\x31\x41\x59\x26\x53\x59":
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    return None


def _text_kind(head: bytes, name: str) -> str:
    """csv / tsv / gct / mtx / binary for uncompressed leading bytes."""
    if not head:
        return "csv" if not name.endswith((".tsv", ".txt", ".tab")) else "tsv"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="replace")
    else:
        if b"\x00" in head:
            return "binary"
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
        # Latin-1 text decodes with a few replacement characters; binary with many.
        controls = sum(
            1 for ch in text[:8192] if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\r\n\f")
        )
        if controls > max(8, 0.05 * min(len(text), 8192)):
            return "binary"
    if text.startswith("%%MatrixMarket"):
        return "mtx"
    if text.startswith(("#1.2", "#1.3")):
        return "gct"
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    if lines:
        delim = _pick_delimiter(lines[:-1] if len(lines) > 2 else lines)
        if delim == "\t":
            return "tsv"
        if delim in (",", ";"):
            return "csv"
    return "tsv" if name.endswith((".tsv", ".txt", ".tab")) else "csv"


def _hdf5_kind(path: Path) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
            enc = f.attrs.get("encoding-type", b"")
            enc = enc.decode() if isinstance(enc, bytes) else str(enc)
            if enc == "anndata" or {"X", "obs", "var"} <= keys:
                return "h5ad"
            # Only groups reached through hard links are looked into: an external or soft
            # link is judged by the confinement check when the file is read, never followed.
            groups = {
                k: f[k]
                for k in sorted(keys)
                if isinstance(f.get(k, getlink=True), h5py.HardLink)
                and isinstance(f.get(k), h5py.Group)
            }
            if "matrix" in groups and "indptr" in groups["matrix"]:
                return "10x_h5"
            for g in groups.values():
                if {"indptr", "indices", "data"} <= set(g.keys()):
                    return "10x_h5"  # 10x v2: one group per genome
            if {"matrix", "row_attrs", "col_attrs"} <= keys:
                return "loom"
            return "hdf5"
    except OSError as exc:
        raise InputError(
            f"{path.name}: HDF5 file cannot be opened, it looks truncated or corrupt "
            f"({str(exc).replace(str(path), path.name)}); re-download or re-export it"
        ) from None


def sniff_format(path: str | Path) -> str:
    """Name of the format of ``path``, judged by content (magic bytes), not extension.

    Returns one of :data:`SUPPORTED_FORMATS`, or the name of a recognised unsupported format
    (``"xlsx"``, ``"png"``, ``"binary"``, ...). Compression (gzip/bz2/xz) is looked through:
    a gzipped CSV is ``"csv"``, a ``.tar.gz`` is ``"tar"``. For text, the extension only
    breaks ties (a one-column file named ``.tsv``).
    """
    p = Path(path)
    if p.is_dir():
        if _find_mtx_file(p) is not None:
            return "mtx"
        raise InputError(
            f"{p}: is a folder without matrix.mtx[.gz]; pass a matrix file, or a 10x Matrix "
            "Market folder (matrix.mtx, features.tsv, barcodes.tsv)"
        )
    if not p.exists():
        raise InputError(f"{p}: file not found")
    head = _head(p)
    if not head:
        return "csv" if not p.name.endswith((".tsv", ".txt")) else "tsv"
    name = p.name.lower()
    comp = _compression(head)
    if comp is not None:
        inner = _decompress_head(head, comp)
        if len(inner) > 262 and inner[257:262] == b"ustar":
            return "tar"
        stem = re.sub(r"\.(gz|bz2|xz)$", "", name)
        if inner.startswith(b"\x89HDF"):
            return "binary"
        return _text_kind(inner, stem)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return _hdf5_kind(p)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1"):
        return "arrow"
    if head.startswith(b"FEA1"):
        return "feather_v1"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(p)
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "xls"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith((b"RDX2\n", b"RDX3\n", b"X\n\x00")):
        return "rds"
    return _text_kind(head, name)


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path.name}: corrupt or truncated zip archive ({exc})") from exc
    if "[Content_Types].xml" in names or any(n.startswith("xl/") for n in names):
        return "xlsx"
    if "mimetype" in names and any(n == "content.xml" for n in names):
        return "ods"
    return "zip"


# --------------------------------------------------------------------------- limits & io


def _limits(
    max_decompressed_bytes: int | None,
    max_ratio: float | None = None,
    ratio_floor_bytes: int | None = None,
    max_cells: int | None = None,
) -> _Limits:
    """The caps of one read; ``None`` means the default (module constants, or the env)."""
    if max_ratio is not None and not max_ratio >= 1:
        raise UsageError(f"max_ratio must be at least 1, not {max_ratio!r}")
    if ratio_floor_bytes is not None and ratio_floor_bytes < 0:
        raise UsageError("ratio_floor_bytes must not be negative")
    if max_cells is not None and max_cells <= 0:
        raise UsageError("max_cells must be positive")
    if max_decompressed_bytes is None:
        env = os.environ.get(_ENV_MAX)
        try:
            max_decompressed_bytes = int(env) if env else DEFAULT_MAX_DECOMPRESSED
        except ValueError as exc:
            raise UsageError(f"{_ENV_MAX}={env!r} is not an integer number of bytes") from exc
    if max_decompressed_bytes <= 0:
        raise UsageError("max_decompressed_bytes must be positive")
    floor = _RATIO_FLOOR if ratio_floor_bytes is None else ratio_floor_bytes
    return _Limits(
        max_decompressed_bytes,
        max_ratio=MAX_RATIO if max_ratio is None else float(max_ratio),
        ratio_floor=min(floor, max_decompressed_bytes),
        max_cells=max_cells,
    )


def _check_cells(n_obs: int, n_genes: int, limits: _Limits, source: str) -> None:
    """Refuse a matrix with more values than ``max_cells`` (early, from its declared shape)."""
    cap = limits.max_cells
    if cap is not None and n_obs * n_genes > cap:
        raise InputError(
            f"{source}: the matrix has {n_obs:,} × {n_genes:,} = {n_obs * n_genes:,} values, "
            f"more than the limit of {cap:,} (max_cells); score it in parts",
            detail={"n_values": n_obs * n_genes, "max_cells": cap},
        )


def _bomb(source: str, what: str) -> InputError:
    return InputError(
        f"{source}: refused: looks like a decompression bomb ({what}); if the file is genuine, "
        f"decompress it yourself or raise the limit (max_decompressed_bytes= or {_ENV_MAX})"
    )


def _copy_capped(
    src: Any, dst: Any, limits: _Limits, compressed_size: int, source: str, written: list[int]
) -> None:
    """Copy a stream, refusing once the total (``written[0]``) passes the size or ratio cap."""
    while True:
        chunk = src.read(1 << 20)
        if not chunk:
            return
        written[0] += len(chunk)
        if written[0] > limits.max_bytes:
            raise _bomb(source, f"more than {limits.max_bytes:,} bytes once decompressed")
        if written[0] > limits.ratio_floor and written[0] > limits.max_ratio * max(
            compressed_size, 1
        ):
            raise _bomb(
                source, f"expands more than {limits.max_ratio:.0f}:1 from {compressed_size:,} bytes"
            )
        dst.write(chunk)


_OPENERS: dict[str, Callable[..., Any]] = {
    "gzip": gzip.GzipFile,
    "bz2": bz2.BZ2File,
    "xz": lzma.LZMAFile,
}


def _plain(path: Path, tmp: Path, limits: _Limits, source: str) -> Path:
    """``path`` itself, or its decompressed copy in ``tmp`` (capped; truncation reported)."""
    comp = _compression(_head(path, 16))
    if comp is None:
        return path
    out = tmp / (re.sub(r"\.(gz|bz2|xz)$", "", path.name, flags=re.IGNORECASE) or "plain")
    n = 0
    while out.exists():
        n += 1
        out = tmp / f"{n}_{out.name}"
    written = [0]
    try:
        with _OPENERS[comp](path, "rb") as src, open(out, "wb") as dst:
            _copy_capped(src, dst, limits, path.stat().st_size, source, written)
    except SigscoreError:
        raise
    except EOFError as exc:
        raise InputError(
            f"{source}: truncated {comp} file: the compressed stream ends before its end marker; "
            "the download or copy is incomplete, fetch it again"
        ) from exc
    except (OSError, zlib.error, lzma.LZMAError, ValueError) as exc:
        raise InputError(
            f"{source}: corrupt {comp} data ({exc}); re-download or re-compress the file"
        ) from exc
    return out


# --------------------------------------------------------------------------- text tables


def _n_fields(line: str, delim: str) -> int:
    """Field count of one line; quotes are honoured only when present (the common case is fast)."""
    if '"' not in line:
        return line.count(delim) + 1
    with _big_fields():
        return len(next(csv.reader([line], delimiter=delim), []))


def _split(line: str, delim: str) -> list[str]:
    with _big_fields():
        return next(csv.reader([line], delimiter=delim), [])


@contextmanager
def _big_fields() -> Iterator[None]:
    """Lift the csv module's 128 KiB field limit (a whole unsplit line can be one field)."""
    old = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _pick_delimiter(lines: Sequence[str]) -> str | None:
    """Tab, semicolon or comma: the first giving the same field count (> 1) on every line.

    Semicolon is tried before comma so that European CSV with decimal commas is split on
    ``;``. Falls back to the candidate with the most fields.
    """
    best: tuple[int, str | None] = (1, None)
    for delim in ("\t", ";", ","):
        counts = [_n_fields(line, delim) for line in lines]
        if not counts:
            continue
        body = counts[1:] or counts
        if min(body) > 1 and len(set(body)) == 1 and counts[0] in (body[0], body[0] - 1):
            return delim
        if max(counts) > best[0]:
            best = (max(counts), delim)
    return best[1]


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
    head = _head(path, 1 << 16)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        out = tmp / (path.name + ".utf8")
        with open(path, encoding="utf-16") as src, open(out, "w", encoding="utf-8") as dst:
            shutil.copyfileobj(src, dst)
        notes.append("converted from UTF-16 to UTF-8")
        return out, "utf-8"
    if b"\x00" in head:
        raise UnsupportedFormatError(
            f"{source}: contains binary data (NUL bytes), not a text table; {_EXPORT_HINT}"
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
        delim = _pick_delimiter(sample)
        if delim is None and fmt == "tsv":
            delim = "\t"
    hline, header_text = lines[0]
    if delim is None:
        raise InputError(
            f"{source}: only one column found (no tab, comma or semicolon separating fields on "
            f"line {hline}: {header_text[:60]!r}); a matrix needs names in the first column and "
            "numbers in the others"
        )
    header = [h.strip() for h in _split(header_text, delim)]
    if len(lines) < 2:
        raise InputError(
            f"{source}: header only, no data rows (line {hline} is the last non-empty line); "
            "the table has column names but no values"
        )
    first = _split(lines[1][1], delim)
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
        cells = [c.strip() for t in texts[1:] for c in _split(t, delim)[1:]]
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
        _big_fields(),
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
    fr_r, n_r = _recognised(names)
    fr_c, n_c = _recognised(col_names)
    # only the memory layout depends on this guess; _orient decides the orientation
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


def _read_text(path: Path, tmp: Path, fmt: str, source: str, limits: _Limits) -> _Raw:
    notes: list[str] = []
    plain = _plain(path, tmp, limits, source)
    if plain.stat().st_size == 0 or not _head(plain, 1 << 16).strip():
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
        return _Raw(X, row_names, col_names, notes=notes)
    return _Raw(X, row_names, col_names, notes=notes)


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


# --------------------------------------------------------------------------- columnar


def _check_parquet_footer(path: Path, source: str, limits: _Limits) -> None:
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
    _check_cells(md.num_rows, max(md.num_columns - 1, 1), limits, source)


def _read_columnar(path: Path, fmt: str, source: str, limits: _Limits) -> _Raw:
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
    return _Raw(X, row_names, [str(c) for c in num_cols], notes=notes)


# --------------------------------------------------------------------------- single-cell


def _h5ad_shape(path: Path, key: str) -> tuple[int, int] | None:
    """Declared shape of an h5ad matrix (dense dataset or sparse group), read from metadata."""
    import h5py

    with h5py.File(path, "r") as f:
        obj = f.get(key)
        if isinstance(obj, h5py.Dataset) and obj.ndim == 2:
            return int(obj.shape[0]), int(obj.shape[1])
        if isinstance(obj, h5py.Group) and "shape" in obj.attrs:
            shape = [int(v) for v in obj.attrs["shape"]]
            return (shape[0], shape[1]) if len(shape) == 2 else None
    return None


def _read_h5ad(path: Path, layer: str | None, source: str, limits: _Limits) -> _Raw:
    import anndata as ad

    # Before anndata touches it: a file that borrows data from elsewhere is refused.
    check_hdf5_confined(path, source)
    if limits.max_cells is not None:
        shape = _h5ad_shape(path, "X" if layer is None else f"layers/{layer}")
        if shape is None and layer == "raw":
            shape = _h5ad_shape(path, "raw/X")
        if shape is not None:
            _check_cells(*shape, limits, source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata = ad.read_h5ad(path)
    except SigscoreError:
        raise
    except Exception as exc:
        raise InputError(
            f"{source}: cannot read as AnnData (.h5ad), the file looks truncated or corrupt "
            f"({type(exc).__name__}: {str(exc)[:200]}); re-export it with adata.write_h5ad()"
        ) from exc
    # layer="raw" (--layer raw) reaches .raw unless a layer is really named "raw"
    use_raw = layer == "raw" and "raw" not in adata.layers and adata.raw is not None
    expr = as_expression(adata, layer=None if use_raw else layer, use_raw=use_raw)
    matrix = "raw.X" if use_raw else ("layers[" + repr(layer) + "]" if layer else "X")
    return _Raw(
        expr.X,
        [str(v) for v in expr.obs_names],
        [str(v) for v in expr.var_names],
        fixed_genes_axis="columns",
        why_fixed="var of the AnnData",
        notes=[f"matrix: {matrix}"],
    )


def _decode(values: Any) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


def _gene_names(names: list[str], ids: list[str] | None, notes: list[str]) -> list[str]:
    """Prefer symbols; fall back to IDs when far more of those are recognised."""
    if ids is None or names == ids:
        return names
    fr_names, _ = _recognised(names)
    fr_ids, _ = _recognised(ids)
    if fr_ids > fr_names + 0.2:
        notes.append(
            f"gene IDs used as names (symbols recognised {fr_names:.0%}, IDs {fr_ids:.0%})"
        )
        return ids
    notes.append("gene symbols used as names (feature IDs also present in the file)")
    return names


def _keep_gene_expression(
    X: sp.csr_matrix, genes: list[str], types: list[str] | None, notes: list[str]
) -> tuple[sp.csr_matrix, list[str]]:
    if types is None or len(set(types)) <= 1:
        return X, genes
    keep = np.array([t == "Gene Expression" for t in types])
    if not keep.any():
        return X, genes
    notes.append(
        f"kept {int(keep.sum()):,} 'Gene Expression' features, dropped {int((~keep).sum()):,} "
        f"others ({', '.join(sorted(set(types) - {'Gene Expression'}))})"
    )
    return X[:, keep], [g for g, k in zip(genes, keep, strict=True) if k]


def _read_10x_h5(path: Path, source: str, limits: _Limits) -> _Raw:
    import h5py

    check_hdf5_confined(path, source)
    notes: list[str] = []
    try:
        with h5py.File(path, "r") as f:
            if "matrix" in f:
                g = f["matrix"]
                feats = g.get("features")
                if feats is None:
                    raise InputError(f"{source}: 10x HDF5 'matrix' group has no 'features' group")
                names = _decode(feats["name"][:])
                ids = _decode(feats["id"][:]) if "id" in feats else None
                types = _decode(feats["feature_type"][:]) if "feature_type" in feats else None
            else:
                key = next(k for k in f if isinstance(f[k], h5py.Group) and "indptr" in f[k])
                g = f[key]
                names = _decode(g["gene_names"][:]) if "gene_names" in g else _decode(g["genes"][:])
                ids = _decode(g["genes"][:]) if "genes" in g else None
                types = None
                notes.append(f"10x v2 layout, genome {key!r}")
            shape = tuple(int(s) for s in g["shape"][:])
            if len(shape) == 2:  # refuse an oversized matrix before reading its values
                _check_cells(shape[1], shape[0], limits, source)
            data = np.asarray(g["data"][:], dtype=np.float64)
            indices = np.asarray(g["indices"][:], dtype=np.int64)
            indptr = np.asarray(g["indptr"][:], dtype=np.int64)
            barcodes = _decode(g["barcodes"][:])
    except SigscoreError:
        raise
    except (OSError, KeyError, StopIteration, ValueError, TypeError) as exc:
        raise InputError(
            f"{source}: cannot read as a 10x Genomics HDF5 matrix ({type(exc).__name__}: "
            f"{str(exc)[:200]}); the file looks truncated, corrupt or not in 10x layout"
        ) from exc
    n_genes, n_cells = shape
    problems = []
    if len(names) != n_genes:
        problems.append(f"{len(names)} features for {n_genes} matrix rows")
    if len(barcodes) != n_cells:
        problems.append(f"{len(barcodes)} barcodes for {n_cells} matrix columns")
    if len(indptr) != n_cells + 1:
        problems.append(f"indptr has {len(indptr)} entries, expected {n_cells + 1}")
    elif indptr[-1] != len(data) or len(indices) != len(data):
        problems.append(f"indptr ends at {indptr[-1]} but there are {len(data)} values")
    elif len(indices) and (indices.min() < 0 or indices.max() >= n_genes):
        problems.append("feature indices out of range")
    if problems:
        raise InputError(
            f"{source}: inconsistent 10x HDF5 matrix: {'; '.join(problems)}; re-export the file"
        )
    # Stored as CSC genes × cells, i.e. CSR cells × genes with the same three arrays.
    X = sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))
    genes = _gene_names(names, ids, notes)
    X, genes = _keep_gene_expression(X, genes, types, notes)
    return _Raw(X, barcodes, genes, "columns", "10x layout: barcodes × features", notes)


_MTX_NAMES = ("matrix.mtx", "matrix.mtx.gz")


def _find_mtx_file(folder: Path) -> Path | None:
    for n in _MTX_NAMES:
        if (folder / n).is_file():
            return folder / n
    return None


def _read_table_lines(path: Path, tmp: Path, limits: _Limits, source: str) -> list[list[str]]:
    plain = _plain(path, tmp, limits, source)
    with open(plain, encoding="utf-8", errors="replace", newline="") as fh, _big_fields():
        return [row for row in csv.reader(fh, delimiter="\t") if row]


def _read_mtx_folder(folder: Path, tmp: Path, limits: _Limits, source: str) -> _Raw:
    import scipy.io

    notes: list[str] = []
    present = sorted(p.name for p in folder.iterdir())

    def pick(cands: Sequence[str], what: str) -> Path:
        for c in cands:
            if (folder / c).is_file():
                return folder / c
        raise InputError(
            f"{source}: Matrix Market folder lacks {what} (looked for {', '.join(cands)}; found "
            f"{', '.join(present) or 'nothing'}); a 10x folder needs matrix.mtx, features.tsv "
            "(or genes.tsv) and barcodes.tsv"
        )

    mtx = pick(_MTX_NAMES, "the matrix")
    feat = pick(("features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"), "features.tsv")
    bc = pick(("barcodes.tsv.gz", "barcodes.tsv"), "barcodes.tsv")
    plain = _plain(mtx, tmp, limits, f"{source}/{mtx.name}")
    try:
        M = scipy.io.mmread(plain)
    except Exception as exc:
        raise InputError(
            f"{source}/{mtx.name}: not a readable Matrix Market file ({type(exc).__name__}: "
            f"{str(exc)[:200]}); it may be truncated, re-export it"
        ) from exc
    X = sp.csr_matrix(M.T, dtype=np.float64)  # genes × cells on disk → cells × genes
    feats = _read_table_lines(feat, tmp, limits, f"{source}/{feat.name}")
    barcodes = [r[0] for r in _read_table_lines(bc, tmp, limits, f"{source}/{bc.name}")]
    n_cells, n_genes = X.shape
    if len(feats) != n_genes or len(barcodes) != n_cells:
        raise InputError(
            f"{source}: {mtx.name} is {n_genes} features × {n_cells} barcodes but {feat.name} "
            f"lists {len(feats)} features and {bc.name} {len(barcodes)} barcodes; the files do "
            "not belong together"
        )
    names = [r[1] if len(r) > 1 else r[0] for r in feats]
    ids = [r[0] for r in feats] if any(len(r) > 1 for r in feats) else None
    types = [r[2] for r in feats] if all(len(r) > 2 for r in feats) else None
    genes = _gene_names(names, ids, notes)
    X, genes = _keep_gene_expression(X, genes, types, notes)
    return _Raw(X, barcodes, genes, "columns", "Matrix Market: features × barcodes", notes)


# --------------------------------------------------------------------------- archives


def _safe_member(name: str, source: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", name):
        raise InputError(
            f"{source}: refused: archive member {name!r} has an unsafe path (absolute or with "
            "'..'); re-create the archive with relative paths"
        )
    return p


def _extract_zip(path: Path, dest: Path, limits: _Limits, source: str) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{source}: corrupt or truncated zip archive ({exc})") from exc
    with zf:
        infos = zf.infolist()
        declared = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos)
        if declared > limits.max_bytes:
            raise _bomb(source, f"declares {declared:,} bytes uncompressed")
        if declared > limits.ratio_floor and declared > limits.max_ratio * max(packed, 1):
            raise _bomb(source, f"declares a {declared / max(packed, 1):.0f}:1 expansion")
        written = [0]
        for info in infos:
            rel = _safe_member(info.filename, source)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise InputError(f"{source}: refused: archive member {info.filename!r} is a link")
            if info.flag_bits & 0x1:
                raise InputError(f"{source}: archive member {info.filename!r} is encrypted")
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    _copy_capped(src, dst, limits, path.stat().st_size, source, written)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise InputError(
                    f"{source}: archive member {info.filename!r} is corrupt ({exc})"
                ) from exc


def _extract_tar(path: Path, dest: Path, tmp: Path, limits: _Limits, source: str) -> None:
    plain = _plain(path, tmp, limits, source)
    written = [0]
    try:
        with tarfile.open(plain, "r:") as tf:
            for m in tf.getmembers():
                rel = _safe_member(m.name, source)
                if m.issym() or m.islnk():
                    raise InputError(
                        f"{source}: refused: archive member {m.name!r} is a link; archive the "
                        "files themselves"
                    )
                target = dest.joinpath(*rel.parts)
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not m.isfile():
                    raise InputError(f"{source}: refused: archive member {m.name!r} is not a file")
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(m)
                if src is None:
                    continue
                with src, open(target, "wb") as dst:
                    _copy_capped(src, dst, limits, path.stat().st_size, source, written)
    except (tarfile.TarError, EOFError) as exc:
        raise InputError(f"{source}: corrupt or truncated tar archive ({exc})") from exc


_IGNORED = re.compile(r"^(\.|__MACOSX$|readme|license|licence|provenance|md5|sha\d*sum)", re.I)


def _find_matrices(root: Path) -> list[Path]:
    """Candidate matrices under ``root``: 10x folders, and files that sniff as a data format."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not _IGNORED.match(n))
        if _find_mtx_file(d) is not None:
            found.append(d)
            dirnames[:] = []
            continue
        for n in sorted(filenames):
            if _IGNORED.match(n) or (
                (d / n).stat().st_size == 0 and not n.endswith((".csv", ".tsv"))
            ):
                continue
            found.append(d / n)
    return found


# --------------------------------------------------------------------------- orientation


def _recognised(names: Sequence[str]) -> tuple[float, int]:
    """(fraction, count) of names recognised as gene identifiers."""
    if len(names) == 0:
        return 0.0, 0
    frac = float(recognised_fraction(list(names)))
    return frac, round(frac * len(names))


def _orient(raw: _Raw, genes_axis: str, source: str) -> Expression:
    rows, cols = raw.row_names, raw.col_names
    fr_r, n_r = _recognised(rows)
    fr_c, n_c = _recognised(cols)
    ok_r = fr_r >= _MIN_GENE_FRACTION or n_r >= _MIN_GENE_COUNT
    ok_c = fr_c >= _MIN_GENE_FRACTION or n_c >= _MIN_GENE_COUNT
    stats = (
        f"{n_r:,} of {len(rows):,} row names and {n_c:,} of {len(cols):,} column names recognised"
    )
    if genes_axis == "auto":
        if not ok_r and not ok_c:
            seen_r = ", ".join(repr(n) for n in rows[:3])
            seen_c = ", ".join(repr(n) for n in cols[:3])
            raise InputError(
                f"no recognisable gene identifiers in rows or columns of {source} ({stats}); "
                f"first names seen: rows {seen_r}; columns {seen_c}; pass "
                "{opt:genes_axis=rows} or {opt:genes_axis=columns}, or check the ID type "
                "(symbols, Ensembl, Entrez or SYMBOL|ENTREZ are understood)",
                detail={"rows": rows[:5], "columns": cols[:5]},
            )
        if raw.fixed_genes_axis is not None:
            axis = raw.fixed_genes_axis
            why = raw.why_fixed
        else:
            axis = "rows" if (fr_r, n_r) > (fr_c, n_c) else "columns"
            why = "auto-detected"
    elif genes_axis in ("rows", "columns"):
        axis, why = genes_axis, "as requested"
    else:
        raise UsageError(f"genes_axis must be 'auto', 'rows' or 'columns', not {genes_axis!r}")
    n, tot = (n_r, len(rows)) if axis == "rows" else (n_c, len(cols))
    note = f"genes in {axis} ({n:,} of {tot:,} recognised; {why})"
    X = raw.X
    if axis == "rows":
        X = X.T.tocsr() if sp.issparse(X) else np.ascontiguousarray(X.T)
        obs, var = cols, rows
    else:
        obs, var = rows, cols
    expr = Expression(X, pd.Index(obs), pd.Index(var), source=source)
    expr.notes.append(note)
    expr.notes.extend(raw.notes)
    return expr


def orient(expr: Expression) -> Expression:
    """``expr`` (a table as given, rows × columns) with its gene axis found as for files.

    Used by :func:`sigscore.score` for DataFrames, with the files' recognition counts. A
    table's columns are genes by convention, and short name lists such as ``s1, s2`` are
    often gene aliases too, so the rows are taken as genes only when they are plausible
    gene names and either the columns are not, or the rows hold more recognised names at
    no less than half the columns' recognised fraction. When neither axis holds
    recognisable identifiers the table is kept as given, so custom gene sets with their
    own names can still match.
    """
    rows = [str(v) for v in expr.obs_names]
    cols = [str(v) for v in expr.var_names]
    fr_r, n_r = _recognised(rows)
    fr_c, n_c = _recognised(cols)
    ok_r = fr_r >= _MIN_GENE_FRACTION or n_r >= _MIN_GENE_COUNT
    ok_c = fr_c >= _MIN_GENE_FRACTION or n_c >= _MIN_GENE_COUNT
    if not ok_r and not ok_c:
        expr.notes.append("genes in columns (names on neither axis recognised; as given)")
        return expr
    flip = ok_r and (not ok_c or (n_r > n_c and fr_r >= fr_c / 2))
    raw = _Raw(expr.X, rows, cols, "rows" if flip else "columns", "auto-detected")
    out = _orient(raw, "auto", expr.source)
    out.notes = [*expr.notes, *out.notes]
    return out


_SCALE_NOTES = {
    "counts": "values look like raw counts (non-negative integers)",
    "log": "values look log-transformed",
    "zscore": "values look z-scored (centred near 0, negatives present)",
    "linear": "values look like linear-scale normalised expression (TPM/CPM/FPKM)",
}


def _finalise(expr: Expression) -> Expression:
    source = expr.source
    if expr.shape[0] == 0 or expr.shape[1] == 0:
        raise InputError(f"{source}: no data ({expr.shape[0]} samples × {expr.shape[1]} genes)")
    empty = np.asarray([v == "" for v in expr.var_names])
    if empty.any():
        keep = np.flatnonzero(~empty)
        expr = Expression(
            expr.X[:, keep], expr.obs_names, expr.var_names[keep], source, None, expr.notes
        )
        expr.notes.append(f"dropped {int(empty.sum())} gene(s) with an empty name")
    if expr.shape[1] == 1:
        raise InputError(
            f"{source}: only 1 gene ({expr.var_names[0]!r}) across {expr.shape[0]} samples; "
            "signature scores need many genes: check the delimiter, the orientation "
            "({opt:genes_axis}) or that the whole matrix was exported"
        )
    if (np.asarray([v == "" for v in expr.obs_names])).any():
        i = int(np.flatnonzero([v == "" for v in expr.obs_names])[0])
        raise InputError(f"{source}: sample {i + 1} has an empty name; give every sample a name")
    if not expr.obs_names.is_unique:
        dup = expr.obs_names[expr.obs_names.duplicated()].unique()
        raise InputError(
            f"{source}: duplicated sample name(s): {', '.join(repr(d) for d in dup[:5])}"
            f"{' ...' if len(dup) > 5 else ''} ({len(dup)} in all); sample names must be "
            "unique: rename or remove the duplicates",
            detail={"duplicates": [str(d) for d in dup[:20]]},
        )
    check_finite(expr)
    if not expr.is_sparse and expr.X.size > _SPARSE_MIN_CELLS:
        nnz = int(np.count_nonzero(expr.X))
        if nnz < 0.5 * expr.X.size:
            expr.X = sp.csr_matrix(expr.X)
            expr.notes.append(
                f"stored sparse (CSR): {1 - nnz / expr.X.shape[0] / expr.X.shape[1]:.0%} zeros"
            )
    expr.value_scale = detect_value_scale(expr.X)
    if expr.value_scale in _SCALE_NOTES:
        expr.notes.append(_SCALE_NOTES[expr.value_scale])
    if not expr.var_names.is_unique:
        expr, merged = merge_duplicate_genes(expr, list(expr.var_names), "auto")
        examples = ", ".join(f"{k} ({len(v)}×)" for k, v in list(merged.items())[:5])
        msg = (
            f"{source}: {len(merged)} gene name(s) occur more than once and were merged "
            f"({expr.notes[-1].split(' by ')[-1]}): {examples}"
        )
        expr.notes.append(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)
    return expr


# --------------------------------------------------------------------------- entry point


def _read_any(
    path: Path,
    fmt: str | None,
    genes_axis: str,
    layer: str | None,
    tmp: Path,
    limits: _Limits,
    source: str,
    depth: int = 0,
) -> Expression:
    kind = fmt or sniff_format(path)
    if kind in _UNSUPPORTED:
        suffix = path.suffix.lower()
        extra = ""
        if suffix in (".h5ad", ".h5", ".parquet", ".feather", ".arrow", ".csv", ".tsv", ".gct"):
            extra = f" (despite the {suffix} extension)"
        raise UnsupportedFormatError(
            f"{source}: this is {_UNSUPPORTED[kind]}{extra}, not an expression matrix; "
            f"{_EXPORT_HINT}",
            detail={"format": kind},
        )
    if kind not in SUPPORTED_FORMATS:
        raise UsageError(f"fmt={kind!r} is not one of {', '.join(SUPPORTED_FORMATS)}")
    if layer is not None and kind not in ("h5ad", "zip", "tar"):
        raise UsageError(f"{{opt:layer={layer}}} applies to h5ad input only; {source} is {kind}")
    if kind in ("zip", "tar"):
        if depth > 0:
            raise InputError(f"{source}: nested archive; extract the outer archive first")
        dest = tmp / f"extract{depth}"
        dest.mkdir()
        if kind == "zip":
            _extract_zip(path, dest, limits, source)
        else:
            _extract_tar(path, dest, tmp, limits, source)
        found = _find_matrices(dest)
        rels = [str(p.relative_to(dest)) for p in found]
        if not found:
            raise InputError(
                f"{source}: the archive holds no expression matrix (it is empty or holds only "
                "ignored files); put one matrix file or one 10x folder in it"
            )
        if len(found) > 1:
            raise InputError(
                f"{source}: the archive holds {len(found)} candidate matrices ({', '.join(rels[:10])}"
                f"{' ...' if len(rels) > 10 else ''}); sigscore reads one matrix per archive: "
                "extract it and pass the files one by one",
                detail={"members": rels},
            )
        inner = found[0]
        expr = _read_any(
            inner, None, genes_axis, layer, tmp, limits, f"{source}:{rels[0]}", depth + 1
        )
        expr.notes.append(f"read from archive member {rels[0]}")
        return expr
    if kind in ("csv", "tsv", "gct"):
        raw = _read_text(path, tmp, kind, source, limits)
    elif kind in ("parquet", "arrow"):
        raw = _read_columnar(path, kind, source, limits)
    elif kind == "h5ad":
        raw = _read_h5ad(path, layer, source, limits)
    elif kind == "10x_h5":
        raw = _read_10x_h5(path, source, limits)
    else:  # mtx
        folder = path if path.is_dir() else path.parent
        if path.is_file() and path.name not in _MTX_NAMES:
            raise InputError(
                f"{source}: a lone Matrix Market file has no gene or barcode names; pass the "
                "10x folder holding matrix.mtx, features.tsv and barcodes.tsv"
            )
        raw = _read_mtx_folder(folder, tmp, limits, source)
    expr = _orient(raw, genes_axis, source)
    _check_cells(expr.shape[0], expr.shape[1], limits, source)
    return _finalise(expr)


def read_matrix(
    path: str | Path,
    *,
    genes_axis: Literal["auto", "rows", "columns"] = "auto",
    layer: str | None = None,
    fmt: str | None = None,
    max_decompressed_bytes: int | None = None,
    max_ratio: float | None = None,
    ratio_floor_bytes: int | None = None,
    max_cells: int | None = None,
) -> Expression:
    """Read an expression matrix file into an observations × genes :class:`Expression`.

    ``fmt`` overrides content sniffing (one of :data:`SUPPORTED_FORMATS`); ``layer`` picks an
    h5ad layer; ``genes_axis`` overrides orientation detection. Archives and compressed
    streams are expanded into a temporary folder, refusing more than
    ``max_decompressed_bytes`` (default 4 GiB, or ``$SIGSCORE_MAX_DECOMPRESSED_BYTES``) or an
    expansion beyond ``max_ratio`` (default 200:1) once past ``ratio_floor_bytes`` (default
    64 MiB). ``max_cells`` caps observations × genes (default: no cap), checked from the
    declared shape before values are read where the format declares one (h5ad, 10x,
    Parquet). Duplicate gene names are merged (:func:`sigscore.matrix.merge_duplicate_genes`,
    ``"auto"`` rule) with a warning.

    HDF5 input (h5ad, 10x) that reaches outside itself (external links, external storage,
    virtual datasets, escaping soft links or references) is refused before any data is read
    (:func:`sigscore.confinement.check_hdf5_confined`).

    Raises :class:`InputError` (or :class:`UnsupportedFormatError`) for unusable files and
    :class:`UsageError` for bad arguments; no other exception escapes for a bad file, not
    even a panic inside a native library.
    """
    p = Path(path)
    source = p.name or str(p)
    limits = _limits(max_decompressed_bytes, max_ratio, ratio_floor_bytes, max_cells)
    if genes_axis not in ("auto", "rows", "columns"):
        raise UsageError(f"genes_axis must be 'auto', 'rows' or 'columns', not {genes_axis!r}")
    if fmt is not None and fmt not in SUPPORTED_FORMATS:
        raise UsageError(f"fmt={fmt!r} is not one of {', '.join(SUPPORTED_FORMATS)}")
    if not p.exists():
        raise InputError(f"{p}: file not found")
    try:
        with tempfile.TemporaryDirectory(prefix="sigscore-read-") as tmp:
            if p.is_file() and p.stat().st_size == 0:
                raise InputError(f"{source}: the file is empty (0 bytes); check the export")
            return _read_any(p, fmt, genes_axis, layer, Path(tmp), limits, source)
    except SigscoreError:
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: text is not valid UTF-8 or Latin-1 ({exc})") from exc
    except Exception as exc:  # any library failure becomes an InputError with context
        raise InputError(
            f"{source}: could not be read ({type(exc).__name__}: "
            f"{_scrub(str(exc), p, source)[:300]}); check that it is a complete, uncorrupted "
            "expression matrix"
        ) from exc
    except BaseException as exc:
        if not _is_native_panic(exc):
            raise
        # A Rust panic (polars, via pyo3) derives from BaseException. Its text and backtrace
        # are of no use to the user and may name internals: one short sentence instead.
        raise InputError(
            f"{source}: could not be read: the file's internal structure is inconsistent "
            "(the reader stopped on a failed consistency check); it is corrupt or was "
            "tampered with: re-export it"
        ) from None


def _is_native_panic(exc: BaseException) -> bool:
    """A panic of a Rust extension (pyo3's PanicException, e.g. from polars)."""
    return type(exc).__name__ == "PanicException" or type(exc).__module__ == "pyo3_runtime"


def _scrub(text: str, path: Path, source: str) -> str:
    """A library's message with the file's location replaced by its display name."""
    for loc in (str(path.resolve()), str(path)):
        text = text.replace(loc, source)
    parent = str(path.resolve().parent)
    return text.replace(parent + os.sep, "") if len(parent) > 1 else text
