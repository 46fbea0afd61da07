"""A per-user disk cache for lookup tables that are slow to build and never change.

Building the gene-identifier lookups from the packaged table takes about a second; a
command-line call would pay it on every run. The gene table is cached piece by piece
(:mod:`sigscore.genes.table`), so a run reads only the lookups it uses. The built object is pickled under the user's cache
folder (``$SIGSCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/sigscore`` or ``~/.cache/sigscore``),
keyed by the sigscore version and the bytes of the files it was built from, so an edited
table or a new release never reads a stale entry. Any failure to read or write the cache
falls back to building in memory; ``SIGSCORE_CACHE_DIR=off`` disables it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
_ENV = "SIGSCORE_CACHE_DIR"


def cache_dir() -> Path | None:
    """The cache folder, or None when disabled."""
    env = os.environ.get(_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sigscore"


def _key(name: str, sources: Sequence[Path]) -> str:
    from . import __version__

    digest = hashlib.sha256(f"{name}\0{__version__}\0{pickle.HIGHEST_PROTOCOL}".encode())
    for src in sources:
        digest.update(_file_digest(src))
    return digest.hexdigest()[:24]


_DIGESTS: dict[tuple[str, int, int, int], bytes] = {}


def _file_digest(path: Path) -> bytes:
    """SHA-256 of a file's bytes, computed once per process while its size, modification
    time and inode stay the same (several cache entries are keyed by the same table)."""
    st = path.stat()
    stamp = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    digest = _DIGESTS.get(stamp)
    if digest is None:
        digest = _DIGESTS[stamp] = hashlib.sha256(path.read_bytes()).digest()
    return digest


def cached(name: str, sources: Sequence[Path], build: Callable[[], T]) -> T:
    """``build()``, or its pickled result from an earlier run built from the same files."""
    folder = cache_dir()
    if folder is None:
        return build()
    try:
        path = folder / f"{name}-{_key(name, sources)}.pickle"
        with open(path, "rb") as fh:
            return pickle.load(fh)  # our own file, keyed by the content it was built from
    except Exception:  # missing, unreadable, truncated or from another layout: rebuild
        pass
    obj = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old or the new file
            for stale in folder.glob(f"{name}-*.pickle"):  # entries of older sources
                if stale != path:
                    stale.unlink(missing_ok=True)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass  # a read-only home or full disk only costs the rebuild next time
    return obj
