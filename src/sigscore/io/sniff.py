"""Recognise a file's format by content (:func:`sniff_format`), never by extension alone.

Also the low-level CSV field helpers shared by sniffing and the text reader, and the
recognition of a 10x Matrix Market folder.
"""

from __future__ import annotations

import bz2
import csv
import lzma
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError

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
UNSUPPORTED_FORMATS: dict[str, str] = {
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

EXPORT_HINT = (
    "sigscore reads CSV/TSV (optionally gzipped), GCT, Parquet, Arrow/Feather, h5ad, 10x .h5 "
    "and Matrix Market folders; export the matrix as CSV (names in the first row and column)"
)

#: Hard cap on bytes written when decompressing or extracting (overridable per call / env).


#: Leading bytes that identify a format on their own (no two share a prefix).
_MAGIC: tuple[tuple[bytes | tuple[bytes, ...], str], ...] = (
    (b"PAR1", "parquet"),
    (b"ARROW1", "arrow"),
    (b"FEA1", "feather_v1"),
    (b"\x89PNG", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    ((b"GIF87a", b"GIF89a"), "gif"),
    (b"%PDF", "pdf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    ((b"RDX2\n", b"RDX3\n", b"X\n\x00"), "rds"),
)


def head_bytes(path: Path, n: int = 65536) -> bytes:
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


def compression_of(head: bytes) -> str | None:
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
        delim = pick_delimiter(lines[:-1] if len(lines) > 2 else lines)
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
        if find_mtx_file(p) is not None:
            return "mtx"
        raise InputError(
            f"{p}: is a folder without matrix.mtx[.gz]; pass a matrix file, or a 10x Matrix "
            "Market folder (matrix.mtx, features.tsv, barcodes.tsv)"
        )
    if not p.exists():
        raise InputError(f"{p}: file not found")
    head = head_bytes(p)
    if not head:
        return "csv" if not p.name.endswith((".tsv", ".txt")) else "tsv"
    name = p.name.lower()
    comp = compression_of(head)
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
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(p)
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
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


def count_fields(line: str, delim: str) -> int:
    """Field count of one line; quotes are honoured only when present (the common case is fast)."""
    if '"' not in line:
        return line.count(delim) + 1
    with big_csv_fields():
        return len(next(csv.reader([line], delimiter=delim), []))


def split_fields(line: str, delim: str) -> list[str]:
    with big_csv_fields():
        return next(csv.reader([line], delimiter=delim), [])


@contextmanager
def big_csv_fields() -> Iterator[None]:
    """Lift the csv module's 128 KiB field limit (a whole unsplit line can be one field)."""
    old = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def pick_delimiter(lines: Sequence[str]) -> str | None:
    """Tab, semicolon or comma: the first giving the same field count (> 1) on every line.

    Semicolon is tried before comma so that European CSV with decimal commas is split on
    ``;``. Falls back to the candidate with the most fields.
    """
    best: tuple[int, str | None] = (1, None)
    for delim in ("\t", ";", ","):
        counts = [count_fields(line, delim) for line in lines]
        if not counts:
            continue
        body = counts[1:] or counts
        if min(body) > 1 and len(set(body)) == 1 and counts[0] in (body[0], body[0] - 1):
            return delim
        if max(counts) > best[0]:
            best = (max(counts), delim)
    return best[1]


MTX_NAMES = ("matrix.mtx", "matrix.mtx.gz")


def find_mtx_file(folder: Path) -> Path | None:
    for n in MTX_NAMES:
        if (folder / n).is_file():
            return folder / n
    return None
