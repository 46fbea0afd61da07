"""The entry point, :func:`read_matrix`: sniff, expand, parse, orient; errors with context.

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

import os
import tempfile
from pathlib import Path
from typing import Literal

from ..errors import InputError, SigscoreError, UnsupportedFormatError, UsageError
from .archives import Limits, check_cells, extract_tar, extract_zip, find_matrices, resolve_limits
from .binary import read_columnar
from .expression import Expression
from .hdf5 import read_10x_h5, read_h5ad
from .mtx import read_mtx_folder
from .orient import finalise, orient_raw
from .sniff import EXPORT_HINT, MTX_NAMES, SUPPORTED_FORMATS, UNSUPPORTED_FORMATS, sniff_format
from .text import read_text_table

__all__ = ["SUPPORTED_FORMATS", "read_matrix", "sniff_format"]


def _read_any(
    path: Path,
    fmt: str | None,
    genes_axis: str,
    layer: str | None,
    tmp: Path,
    limits: Limits,
    source: str,
    depth: int = 0,
) -> Expression:
    kind = fmt or sniff_format(path)
    if kind in UNSUPPORTED_FORMATS:
        suffix = path.suffix.lower()
        extra = ""
        if suffix in (".h5ad", ".h5", ".parquet", ".feather", ".arrow", ".csv", ".tsv", ".gct"):
            extra = f" (despite the {suffix} extension)"
        raise UnsupportedFormatError(
            f"{source}: this is {UNSUPPORTED_FORMATS[kind]}{extra}, not an expression matrix; "
            f"{EXPORT_HINT}",
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
            extract_zip(path, dest, limits, source)
        else:
            extract_tar(path, dest, tmp, limits, source)
        found = find_matrices(dest)
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
        raw = read_text_table(path, tmp, kind, source, limits)
    elif kind in ("parquet", "arrow"):
        raw = read_columnar(path, kind, source, limits)
    elif kind == "h5ad":
        raw = read_h5ad(path, layer, source, limits)
    elif kind == "10x_h5":
        raw = read_10x_h5(path, source, limits)
    else:  # mtx
        folder = path if path.is_dir() else path.parent
        if path.is_file() and path.name not in MTX_NAMES:
            raise InputError(
                f"{source}: a lone Matrix Market file has no gene or barcode names; pass the "
                "10x folder holding matrix.mtx, features.tsv and barcodes.tsv"
            )
        raw = read_mtx_folder(folder, tmp, limits, source)
    expr = orient_raw(raw, genes_axis, source)
    check_cells(expr.shape[0], expr.shape[1], limits, source)
    return finalise(expr)


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
    Parquet). Duplicate gene names are merged (:func:`sigscore.io.expression.merge_duplicate_genes`,
    ``"auto"`` rule) with a warning.

    HDF5 input (h5ad, 10x) that reaches outside itself (external links, external storage,
    virtual datasets, escaping soft links or references) is refused before any data is read
    (:func:`sigscore.io.confinement.check_hdf5_confined`).

    Raises :class:`InputError` (or :class:`UnsupportedFormatError`) for unusable files and
    :class:`UsageError` for bad arguments; no other exception escapes for a bad file, not
    even a panic inside a native library.
    """
    p = Path(path)
    source = p.name or str(p)
    limits = resolve_limits(max_decompressed_bytes, max_ratio, ratio_floor_bytes, max_cells)
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
