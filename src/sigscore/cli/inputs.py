"""What the commands read: expression files (each result stamped with its SHA-256), the
signature set and the index definition (the shipped ones from the per-user disk cache)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import SigscoreError
from .errors import info
from .options import check_choice, check_tier


def read_input(path: Path, *, genes_axis: str = "auto", layer: str | None = None) -> Any:
    """Read one expression file into :class:`~sigscore.io.expression.Expression`."""
    from ..io.read import read_matrix

    genes_axis = check_choice(genes_axis, ("auto", "rows", "columns"), "--genes-axis")
    try:
        expr = read_matrix(path, genes_axis=genes_axis, layer=layer)
    except SigscoreError as exc:
        # With many inputs in one run, every message must say which file it is about.
        if path.name not in exc.message:
            exc.message = f"{path}: {exc.message}"
            exc.args = (exc.message, *exc.args[1:])
        raise
    info(f"read {path}: {expr.shape[0]} observations × {expr.shape[1]} genes")
    for note in getattr(expr, "notes", []):
        info(f"  {note}")
    return expr


def stamp_checksum(df: Any, path: Path) -> Any:
    """``df`` with the input file's SHA-256 in its manifest (``input_sha256``)."""
    from ..io.checksum import file_sha256

    df.attrs.setdefault("sigscore", {}).setdefault("manifest", {})["input_sha256"] = file_sha256(
        path
    )
    return df


def per_input(
    paths: Sequence[Path],
    compute: Callable[[Any], Any],
    *,
    genes_axis: str = "auto",
    layer: str | None = None,
) -> list[tuple[Path, Any]]:
    """``compute(expression)`` for each input file, in order, each result's manifest
    stamped with the file's SHA-256 (``input_sha256``)."""
    return [
        (path, stamp_checksum(compute(read_input(path, genes_axis=genes_axis, layer=layer)), path))
        for path in paths
    ]


def load_sigset(tier: str, signatures: Path | None = None) -> Any:
    """The user's signature file, or the shipped set of ``tier``."""
    from ..signatures import load_signatures, read_signatures

    tier = check_tier(tier)
    if signatures is not None:
        return read_signatures(str(signatures), tier=tier)
    # Parsing the shipped YAML with line tracking costs more than scoring a small file:
    # keep the parsed set in the disk cache, keyed by the files' content.
    from .._cache import cached
    from ..signatures import model as module

    # the module's own source too: a changed class must never load an old pickle
    files = [*shipped_yaml(), Path(module.__file__)]
    return cached(f"signatures-{tier}", files, lambda: load_signatures(tier=tier))


def load_definition(
    tier: str, definition: Path | None, signatures: Path | None, sigset: Any
) -> Any:
    """The index definition given, or the shipped one (from the disk cache)."""
    from ..index import get_definition

    if definition is None and signatures is None:
        from .._cache import cached
        from ..index import definition as index_definition
        from ..signatures import model as sig_module

        files = [*shipped_yaml(), Path(index_definition.__file__), Path(sig_module.__file__)]
        return cached(f"index-definition-{tier}", files, lambda: get_definition(None, sigset))
    return get_definition(str(definition) if definition is not None else None, sigset)


def shipped_yaml() -> list[Path]:
    """The shipped signature and index-definition files (the disk cache's key)."""
    from ..signatures import shipped_signatures_dir

    return sorted(p for p in shipped_signatures_dir().iterdir() if p.suffix == ".yaml")
