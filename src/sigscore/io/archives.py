"""Archives, compressed streams and the limits that guard them ("bombs").

Every decompression or extraction writes through :func:`copy_capped`, which refuses more than
``Limits.max_bytes`` or an expansion ratio past ``Limits.max_ratio`` once past the floor.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InputError, SigscoreError, UsageError
from .sniff import compression_of, find_mtx_file, head_bytes

DEFAULT_MAX_DECOMPRESSED = 4 * 1024**3
_ENV_MAX = "SIGSCORE_MAX_DECOMPRESSED_BYTES"
#: Expansion ratio above which output is refused once past ``_RATIO_FLOOR`` bytes; real
#: gzipped count tables compress ~5-50:1, pathological "bombs" ~1000:1. The floor keeps
#: small, highly repetitive files (a few MB of zeros) readable.
MAX_RATIO = 200.0
_RATIO_FLOOR = 64 * 1024**2


@dataclass
class Limits:
    max_bytes: int
    max_ratio: float = MAX_RATIO
    ratio_floor: int = _RATIO_FLOOR
    max_cells: int | None = None  # observations × genes; None = no cap


def resolve_limits(
    max_decompressed_bytes: int | None,
    max_ratio: float | None = None,
    ratio_floor_bytes: int | None = None,
    max_cells: int | None = None,
) -> Limits:
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
    return Limits(
        max_decompressed_bytes,
        max_ratio=MAX_RATIO if max_ratio is None else float(max_ratio),
        ratio_floor=min(floor, max_decompressed_bytes),
        max_cells=max_cells,
    )


def check_cells(n_obs: int, n_genes: int, limits: Limits, source: str) -> None:
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


def copy_capped(
    src: Any, dst: Any, limits: Limits, compressed_size: int, source: str, written: list[int]
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


def decompressed_copy(path: Path, tmp: Path, limits: Limits, source: str) -> Path:
    """``path`` itself, or its decompressed copy in ``tmp`` (capped; truncation reported)."""
    comp = compression_of(head_bytes(path, 16))
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
            copy_capped(src, dst, limits, path.stat().st_size, source, written)
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


def _safe_member(name: str, source: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", name):
        raise InputError(
            f"{source}: refused: archive member {name!r} has an unsafe path (absolute or with "
            "'..'); re-create the archive with relative paths"
        )
    return p


def extract_zip(path: Path, dest: Path, limits: Limits, source: str) -> None:
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
                    copy_capped(src, dst, limits, path.stat().st_size, source, written)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise InputError(
                    f"{source}: archive member {info.filename!r} is corrupt ({exc})"
                ) from exc


def extract_tar(path: Path, dest: Path, tmp: Path, limits: Limits, source: str) -> None:
    plain = decompressed_copy(path, tmp, limits, source)
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
                    copy_capped(src, dst, limits, path.stat().st_size, source, written)
    except (tarfile.TarError, EOFError) as exc:
        raise InputError(f"{source}: corrupt or truncated tar archive ({exc})") from exc


_IGNORED = re.compile(r"^(\.|__MACOSX$|readme|license|licence|provenance|md5|sha\d*sum)", re.I)


def find_matrices(root: Path) -> list[Path]:
    """Candidate matrices under ``root``: 10x folders, and files that sniff as a data format."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not _IGNORED.match(n))
        if find_mtx_file(d) is not None:
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
