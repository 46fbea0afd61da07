"""Shared by the tools: AnnData checks, which matrix, progress, threads, uns records."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UsageError

log = logging.getLogger("sigscore")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def check_adata(adata: Any, fn: str) -> None:
    if type(adata).__name__ != "AnnData":
        raise UsageError(
            f"sigscore.tl.{fn} expects an AnnData (got {type(adata).__name__}); for DataFrames "
            "and matrices use sigscore.score(...)"
        )


def matrix_label(adata: Any, layer: str | None, use_raw: bool | None) -> tuple[str, bool]:
    """Which matrix is scored, and ``use_raw`` as a plain bool (None means .X)."""
    if use_raw and layer is not None:
        raise UsageError("use_raw=True and layer= cannot be combined; choose one matrix")
    if use_raw:
        if adata.raw is None:
            raise UsageError("use_raw=True but this AnnData has no .raw; use .X or layer=")
        return "raw.X", True
    if layer is not None:
        return f"layers[{layer!r}]", False
    return "X", False


def prepare_target(adata: Any, copy: bool, fn: str) -> Any:
    check_adata(adata, fn)
    if getattr(adata, "isbacked", False) and adata.filename is not None:
        # Backed: the file is read as scoring goes; one reaching outside itself is refused.
        from ..io.confinement import check_hdf5_confined

        check_hdf5_confined(adata.filename)
    if not copy:
        return adata
    if getattr(adata, "isbacked", False):
        raise UsageError(
            f"sigscore.tl.{fn}(copy=True) on a backed AnnData would load its matrix into "
            "memory; call it with copy=False (results go to obs/obsm/uns, the file is not "
            "changed) or load it first with adata.to_memory()"
        )
    return adata.copy()


def in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def resolve_progress(progress: bool | None) -> bool:
    """tqdm on by default in a terminal or notebook, off otherwise; ``progress`` forces."""
    if progress is not None:
        return bool(progress)
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty or in_notebook()


@contextmanager
def threads(n_jobs: int | None) -> Iterator[None]:
    """Run numba kernels on ``n_jobs`` threads (-1 or None: all), restoring the setting."""
    import numba

    available = int(numba.config.NUMBA_NUM_THREADS)
    if n_jobs is None or n_jobs < 0:
        wanted = available
    elif n_jobs == 0:
        raise UsageError("n_jobs must be a positive number of threads, or -1 for all cores")
    else:
        wanted = min(int(n_jobs), available)
    before = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def versions() -> dict[str, str]:
    out = {}
    for name in ("sigscore", "numpy", "scipy", "pandas", "anndata", "numba", "scanpy", "dask"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def h5ad_safe(obj: Any) -> Any:
    """A value anndata can write to h5ad: no None, no lists of dicts, no mixed lists."""
    if obj is None:
        return "None"
    if isinstance(obj, bool | int | float | str | np.generic):
        return obj
    if isinstance(obj, np.ndarray | pd.DataFrame):
        return obj
    if isinstance(obj, dict):
        return {str(k): h5ad_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        if all(isinstance(v, str) for v in obj):
            return np.array(obj, dtype=object) if obj else np.array([], dtype="U1")
        if all(isinstance(v, bool | int | float) and not isinstance(v, bool) for v in obj):
            return np.asarray(obj)
        return json.dumps(obj, default=str)
    return str(obj)


def coverage_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The coverage table (one row per module) with list fields joined, for ``uns``."""
    rows = []
    for rec in records:
        rows.append(
            {
                "module": str(rec.get("module")),
                "status": str(rec.get("status", "")),
                "n_genes": int(rec.get("n_genes", 0)),
                "n_found": int(rec.get("n_found", len(rec.get("found", [])))),
                "fraction": float(rec.get("fraction", np.nan)),
                "found": ", ".join(map(str, rec.get("found", []))),
                "missing": ", ".join(map(str, rec.get("missing", []))),
                "matched_via": ", ".join(
                    f"{k}<-{v}" for k, v in dict(rec.get("matched_via", {})).items()
                ),
            }
        )
    frame = pd.DataFrame(rows)
    if len(frame):
        frame = frame.set_index("module")
        frame.index = frame.index.astype(str)
    return frame


def uns_record(
    manifest: dict[str, Any],
    coverage: Sequence[dict[str, Any]],
    *,
    matrix: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    sig = manifest.get("signatures", {}) or {}
    rec: dict[str, Any] = {
        "method": manifest.get("method", ""),
        "params": h5ad_safe(dict(manifest.get("params", {}) or {})),
        "matrix": matrix,
        "signature_hash": str(sig.get("hash", "")),
        "signature_version": str(sig.get("version", "")),
        "sample_independent": bool(manifest.get("sample_independent", False)),
        "versions": versions(),
        "coverage": coverage_frame(coverage),
        "excluded_modules": h5ad_safe(list(manifest.get("excluded_sets", []) or [])),
        "manifest_json": json.dumps(manifest, default=str),
        "research_use_only": "Research use only; not a diagnostic.",
    }
    rec.update({k: h5ad_safe(v) for k, v in extra.items()})
    return rec


def group_means(frame: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    grouped = frame.groupby(groups.to_numpy(), sort=True, observed=True)
    out = grouped.mean()
    out.insert(0, "n_cells", grouped.size())
    out.index = out.index.astype(str)
    out.index.name = str(groups.name or "group")
    return out


def groups_of(adata: Any, groupby: str | Sequence[str]) -> pd.Series:
    cols = [groupby] if isinstance(groupby, str) else list(groupby)
    if not cols:
        raise UsageError("groupby needs at least one obs column")
    missing = [c for c in cols if c not in adata.obs.columns]
    if missing:
        raise UsageError(
            f"groupby column(s) {missing} not in adata.obs; available: "
            f"{', '.join(map(str, adata.obs.columns)) or '(none)'}"
        )
    if len(cols) == 1:
        s = adata.obs[cols[0]].astype(str)
    else:
        s = adata.obs[cols].astype(str).agg(" | ".join, axis=1)
    s.name = " | ".join(cols)
    return s
