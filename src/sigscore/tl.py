"""scanpy-style tools: ``sigscore.tl.score``, ``tl.resistance_index``, ``tl.aggregate``.

They follow scverse conventions: the AnnData comes first, every option is keyword-only,
results are written into the object (``copy=False``, returns None) or into a copy that is
returned (``copy=True``), and ``key_added`` names what was written. Each step has its own
default key, so the steps never overwrite each other:

* :func:`score` (``key_added="sigscore"``): ``adata.obsm[key]`` — module scores
  (DataFrame, cells × modules) — and ``adata.obs[f"{key}_{module}"]``, one column each;
* :func:`resistance_index` (``key_added="sigscore_index"``): ``adata.obs[key]`` — the index
  — with ``obs[f"{key}_flags"]``, ``obs[f"{key}_modules_used"]`` (and ``obs[f"{key}_pct"]``
  with a reference), the module scores it used in ``obsm[key]`` / ``obs[f"{key}_{module}"]``
  and their signed contributions in ``obsm[f"{key}_contrib"]``;
* ``adata.uns[key]`` for each key — the step, parameters, package versions, signature hash,
  which matrix was scored, the coverage table, the obs/obsm entries written, and the full
  manifest as JSON; all of it survives ``adata.write_h5ad`` and ``anndata.read_h5ad``.

Running a step again under the same key replaces that key's entries only (stale module
columns of the earlier run are removed) and warns when the method or step changed; a key
whose columns would overwrite another sigscore key's columns is refused.

The matrix scored is ``.X`` unless ``layer=`` or ``use_raw=True`` says otherwise:
``use_raw=None`` never switches to ``.raw`` silently (cf. cellrank#746), and ``uns`` records
the choice. Backed (``read_h5ad(path, backed="r")``), zarr (:func:`sigscore.io.sources.
read_zarr_backed`) and Dask-array ``X`` are streamed in row blocks (:mod:`sigscore.io.sources`),
so memory is bounded by the chunk; under a ``dask.distributed`` client the blocks run on its
workers (``Client("tcp://scheduler:8786")`` for a cluster).
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from .errors import UsageError, user_stacklevel

__all__ = ["aggregate", "resistance_index", "score"]

SCORE_KEY = "sigscore"
INDEX_KEY = "sigscore_index"
_log = logging.getLogger("sigscore")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _check_adata(adata: Any, fn: str) -> None:
    if type(adata).__name__ != "AnnData":
        raise UsageError(
            f"sigscore.tl.{fn} expects an AnnData (got {type(adata).__name__}); for DataFrames "
            "and matrices use sigscore.score(...)"
        )


def _matrix_label(adata: Any, layer: str | None, use_raw: bool | None) -> tuple[str, bool]:
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


def _prepare_target(adata: Any, copy: bool, fn: str) -> Any:
    _check_adata(adata, fn)
    if getattr(adata, "isbacked", False) and adata.filename is not None:
        # Backed: the file is read as scoring goes; one reaching outside itself is refused.
        from .io.confinement import check_hdf5_confined

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


def _in_notebook() -> bool:
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
    return tty or _in_notebook()


@contextmanager
def _threads(n_jobs: int | None) -> Iterator[None]:
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


def _versions() -> dict[str, str]:
    out = {}
    for name in ("sigscore", "numpy", "scipy", "pandas", "anndata", "numba", "scanpy", "dask"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _h5ad_safe(obj: Any) -> Any:
    """A value anndata can write to h5ad: no None, no lists of dicts, no mixed lists."""
    if obj is None:
        return "None"
    if isinstance(obj, bool | int | float | str | np.generic):
        return obj
    if isinstance(obj, np.ndarray | pd.DataFrame):
        return obj
    if isinstance(obj, dict):
        return {str(k): _h5ad_safe(v) for k, v in obj.items()}
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


def _uns_record(
    manifest: dict[str, Any],
    coverage: Sequence[dict[str, Any]],
    *,
    matrix: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    sig = manifest.get("signatures", {}) or {}
    rec: dict[str, Any] = {
        "method": manifest.get("method", ""),
        "params": _h5ad_safe(dict(manifest.get("params", {}) or {})),
        "matrix": matrix,
        "signature_hash": str(sig.get("hash", "")),
        "signature_version": str(sig.get("version", "")),
        "sample_independent": bool(manifest.get("sample_independent", False)),
        "versions": _versions(),
        "coverage": coverage_frame(coverage),
        "excluded_modules": _h5ad_safe(list(manifest.get("excluded_sets", []) or [])),
        "manifest_json": json.dumps(manifest, default=str),
        "research_use_only": "Research use only; not a diagnostic.",
    }
    rec.update({k: _h5ad_safe(v) for k, v in extra.items()})
    return rec


def _group_means(frame: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    grouped = frame.groupby(groups.to_numpy(), sort=True, observed=True)
    out = grouped.mean()
    out.insert(0, "n_cells", grouped.size())
    out.index = out.index.astype(str)
    out.index.name = str(groups.name or "group")
    return out


def _groups_of(adata: Any, groupby: str | Sequence[str]) -> pd.Series:
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


# --------------------------------------------------------------------------------------
# where results go: one key per step, never two steps in the same obs columns
# --------------------------------------------------------------------------------------
def _owned_columns(adata: Any) -> dict[str, str]:
    """obs column → the sigscore key that wrote it (from the ``uns`` records)."""
    owners: dict[str, str] = {}
    for key, rec in adata.uns.items():
        if isinstance(rec, dict) and "obs_columns" in rec and "step" in rec:
            for col in np.asarray(rec["obs_columns"]).tolist():
                owners[str(col)] = str(key)
    return owners


def _release_key(adata: Any, key: str, step: str, method: str) -> None:
    """Remove what an earlier run wrote under ``key``; say so when it was another run."""
    old = adata.uns.get(key)
    if not isinstance(old, dict) or "step" not in old:
        if key in adata.obsm or key in adata.uns:
            warnings.warn(
                f"sigscore.tl.{step}: replacing adata.obsm/uns[{key!r}] written by something "
                "else; pass key_added= to keep it",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return
    before = f"{old.get('step')} with method {old.get('method')}"
    now = f"{step} with method {method}"
    message = (
        f"sigscore.tl.{step}: replacing the results under key_added={key!r} ({before}) by "
        f"{now}; other keys are kept (pass key_added= to keep both)"
    )
    if before != now:
        warnings.warn(message, UserWarning, stacklevel=user_stacklevel())
    else:
        _log.info(message)
    for col in np.asarray(old.get("obs_columns", [])).tolist():
        if col in adata.obs:
            del adata.obs[col]
    for name in np.asarray(old.get("obsm_keys", [])).tolist():
        if name in adata.obsm:
            del adata.obsm[name]


def _check_free(adata: Any, key: str, columns: Sequence[str], step: str) -> None:
    """Refuse to overwrite another sigscore key's columns; warn about foreign ones."""
    owners = _owned_columns(adata)
    clash = sorted({owners[c] for c in columns if owners.get(c, key) != key})
    if clash:
        raise UsageError(
            f"sigscore.tl.{step}(key_added={key!r}) would overwrite obs columns written under "
            f"key_added={clash[0]!r}; choose another key_added"
        )
    foreign = [c for c in columns if c in adata.obs and c not in owners]
    if foreign:
        warnings.warn(
            f"sigscore.tl.{step}: overwriting obs column(s) {', '.join(foreign[:5])} that "
            "sigscore did not write; pass key_added= to keep them",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _module_frame(adata: Any, frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        frame.to_numpy(dtype=np.float64),
        index=adata.obs_names.copy(),
        columns=[str(c) for c in frame.columns],
    )


# --------------------------------------------------------------------------------------
# tools
# --------------------------------------------------------------------------------------
def score(
    adata: Any,
    signatures: Any = None,
    method: str | None = None,
    *,
    layer: str | None = None,
    use_raw: bool | None = None,
    key_added: str = SCORE_KEY,
    groupby: str | Sequence[str] | None = None,
    chunk_size: int | None = None,
    copy: bool = False,
    n_jobs: int | None = 1,
    progress: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Score every module for every cell and store the result in ``adata``.

    Parameters
    ----------
    adata
        AnnData (cells × genes), in memory, backed (``read_h5ad(..., backed="r")``), zarr
        (:func:`sigscore.io.sources.read_zarr_backed`) or with a Dask ``X``.
    signatures
        ``None`` for the shipped modules, a ``SignatureSet``, a mapping or a file path.
    method
        ``None`` = :data:`sigscore.scoring.DEFAULT_METHOD` (singscore); single-cell methods:
        ``ucell``, ``aucell``, ``singscore``, ``module_score``, ``mean``.
    layer, use_raw
        The matrix to score: ``.X`` by default; ``use_raw=None`` means ``.X`` (never a
        silent switch to ``.raw``).
    key_added
        Where the results go (see the module docstring); rerunning under the same key
        replaces only that key's entries.
    groupby
        obs column(s): also store per-group mean scores in ``uns[key_added]["by_group"]``.
    chunk_size
        Rows per block (default: sized to a 256 MB working budget).
    copy
        Return a scored copy instead of writing into ``adata``.
    n_jobs
        Threads for the numba kernels (-1: all cores). A Dask client uses its own workers.
    progress
        tqdm bar; default on in a terminal or notebook.
    **kwargs
        Passed to :func:`sigscore.score` (``coverage_policy``, ``tier``, ``id_type``, method
        parameters such as ``max_rank``).
    """
    from .scoring import DEFAULT_METHOD
    from .scoring import score as score_frame

    target = _prepare_target(adata, copy, "score")
    matrix, raw = _matrix_label(target, layer, use_raw)
    method = method or DEFAULT_METHOD
    with _threads(n_jobs):
        frame = score_frame(
            target,
            signatures,
            method,
            layer=layer,
            use_raw=raw,
            chunk_size=chunk_size,
            progress=resolve_progress(progress),
            **kwargs,
        )
    info = frame.attrs.get("sigscore", {})
    scores = _module_frame(target, frame)
    columns = [f"{key_added}_{c}" for c in scores.columns]
    _check_free(target, key_added, columns, "score")
    _release_key(target, key_added, "score", method)
    target.obsm[key_added] = scores
    for col, name in zip(scores.columns, columns, strict=True):
        target.obs[name] = scores[col].to_numpy()
    extra: dict[str, Any] = {
        "step": "score",
        "key_added": key_added,
        "n_jobs": n_jobs if n_jobs else 1,
        "obs_columns": columns,
        "obsm_keys": [key_added],
    }
    if chunk_size is not None:
        extra["chunk_size"] = int(chunk_size)
    rec = _uns_record(
        info.get("manifest", {}), info.get("coverage", []), matrix=matrix, extra=extra
    )
    if groupby is not None:
        rec["by_group"] = _group_means(scores, _groups_of(target, groupby))
    target.uns[key_added] = rec
    return target if copy else None


def resistance_index(
    adata: Any,
    *,
    definition: Any = None,
    signatures: Any = None,
    method: str | None = None,
    reference: Any = None,
    layer: str | None = None,
    use_raw: bool | None = None,
    key_added: str = INDEX_KEY,
    chunk_size: int | None = None,
    copy: bool = False,
    n_jobs: int | None = 1,
    progress: bool | None = None,
    **kwargs: Any,
) -> Any:
    """The resistance index per cell (:func:`sigscore.index.resistance_index`), stored.

    Writes ``obs[key_added]`` (the index; default ``"sigscore_index"``), ``obs[f"{key}_pct"]``
    with a ``reference``, ``obs[f"{key}_flags"]`` and ``obs[f"{key}_modules_used"]``; the
    module scores it used in ``obsm[key]`` and ``obs[f"{key}_{module}"]``; their signed
    weighted contributions in ``obsm[f"{key}_contrib"]`` (they add up to the index exactly);
    and ``uns[key]`` with the index definition (name, version, hash). Results of
    :func:`score` (key ``"sigscore"``) are left as they are.
    """
    from .index import resistance_index as index_frame

    target = _prepare_target(adata, copy, "resistance_index")
    matrix, raw = _matrix_label(target, layer, use_raw)
    with _threads(n_jobs):
        frame = index_frame(
            target,
            signatures,
            method,
            reference,
            definition,
            layer=layer,
            use_raw=raw,
            chunk_size=chunk_size,
            progress=resolve_progress(progress),
            **kwargs,
        )
    info = frame.attrs.get("sigscore", {})
    man = info.get("manifest", {})
    modules = [c[len("score_") :] for c in frame.columns if c.startswith("score_")]
    scores = _module_frame(target, frame[[f"score_{m}" for m in modules]].set_axis(modules, axis=1))
    contrib = _module_frame(
        target, frame[[f"contrib_{m}" for m in modules]].set_axis(modules, axis=1)
    )
    values = {
        key_added: frame["index"].to_numpy(dtype=np.float64),
        f"{key_added}_flags": frame["flags"].astype(str).to_numpy(),
        f"{key_added}_modules_used": frame["modules_used"].astype(str).to_numpy(),
    }
    if "pct_index" in frame:
        values[f"{key_added}_pct"] = frame["pct_index"].to_numpy(dtype=np.float64)
    values.update({f"{key_added}_{m}": scores[m].to_numpy() for m in modules})
    step_method = str(man.get("method", method or ""))
    _check_free(target, key_added, list(values), "resistance_index")
    _release_key(target, key_added, "resistance_index", step_method)
    target.obsm[key_added] = scores
    target.obsm[f"{key_added}_contrib"] = contrib
    for name, col in values.items():
        target.obs[name] = col
    extra: dict[str, Any] = {
        "step": "resistance_index",
        "key_added": key_added,
        "n_jobs": n_jobs if n_jobs else 1,
        "obs_columns": list(values),
        "obsm_keys": [key_added, f"{key_added}_contrib"],
        "index_definition": {
            k: v for k, v in (man.get("index_definition") or {}).items() if k != "modules"
        },
        "index_modules": pd.DataFrame(
            (man.get("index_definition") or {}).get("modules", []) or {"module": []}
        ),
    }
    target.uns[key_added] = _uns_record(man, info.get("coverage", []), matrix=matrix, extra=extra)
    return target if copy else None


def index_columns(adata: Any, key_added: str = INDEX_KEY) -> dict[str, str]:
    """Where :func:`resistance_index` stored its results under ``key_added``.

    Keys ``index``, ``flags``, ``modules_used``, ``pct`` (obs columns), ``scores`` and
    ``contrib`` (obsm keys). Files written before the per-step keys (index in
    ``obs[f"{key}_index"]``) are read too.
    """
    cols = {
        "index": key_added,
        "flags": f"{key_added}_flags",
        "modules_used": f"{key_added}_modules_used",
        "pct": f"{key_added}_pct",
        "scores": key_added,
        "contrib": f"{key_added}_contrib",
    }
    if key_added not in adata.obs and f"{key_added}_index" in adata.obs:
        cols.update(  # layout of sigscore ≤ 0.1.0: the index lived next to tl.score's results
            index=f"{key_added}_index",
            flags=f"{key_added}_index_flags",
            pct=f"{key_added}_pct_index",
        )
    if cols["index"] not in adata.obs or cols["contrib"] not in adata.obsm:
        raise UsageError(
            f"no resistance index under key {key_added!r}; run sigscore.tl.resistance_index"
            f"(adata, key_added={key_added!r}) first"
        )
    return cols


def index_frame_from_adata(adata: Any, key_added: str = INDEX_KEY) -> pd.DataFrame:
    """Rebuild the per-cell index table stored by :func:`resistance_index`."""
    cols = index_columns(adata, key_added)
    contrib = pd.DataFrame(adata.obsm[cols["contrib"]], index=adata.obs_names)
    scores = pd.DataFrame(
        adata.obsm.get(cols["scores"], contrib.iloc[:, :0]), index=adata.obs_names
    )
    out = pd.DataFrame(index=adata.obs_names.copy())
    out["index"] = adata.obs[cols["index"]].to_numpy()
    out["modules_used"] = adata.obs.get(
        cols["modules_used"], pd.Series("", index=adata.obs_names)
    ).to_numpy()
    out["flags"] = adata.obs[cols["flags"]].to_numpy()
    for m in contrib.columns:
        out[f"score_{m}"] = scores[m].to_numpy() if m in scores else np.nan
        out[f"contrib_{m}"] = contrib[m].to_numpy()
    uns = adata.uns.get(key_added, {})
    manifest = json.loads(uns["manifest_json"]) if "manifest_json" in uns else {}
    out.attrs["sigscore"] = {"manifest": manifest, "coverage": []}
    return out


def aggregate(
    adata: Any,
    groupby: str | Sequence[str],
    *,
    how: str = "mean",
    mask: Any = None,
    key_added: str = INDEX_KEY,
    layer: str | None = None,
    min_cells: int = 1,
    **kwargs: Any,
) -> pd.DataFrame:
    """The resistance index per group of cells (:func:`sigscore.index.aggregate`).

    ``groupby`` names one or more ``obs`` columns (several are combined as "a | b").
    ``how="mean"`` averages the per-cell index, scores and contributions — those stored by
    :func:`resistance_index` under ``key_added`` when present, otherwise computed first;
    ``how="pseudobulk"`` sums the counts of ``layer`` per group and scores each sum. The
    table is returned and stored in ``adata.uns[f"{key_added}_aggregate"]``.
    """
    from .index import aggregate as index_aggregate

    _check_adata(adata, "aggregate")
    groups = _groups_of(adata, groupby)
    if isinstance(mask, str):
        if mask not in adata.obs:
            raise UsageError(
                f"mask column {mask!r} not found in adata.obs; give a boolean obs column "
                "(e.g. malignant cells) or a boolean array"
            )
        mask = adata.obs[mask].to_numpy()
    try:
        stored = how == "mean" and bool(index_columns(adata, key_added))
    except UsageError:
        stored = False
    if stored:
        data: Any = index_frame_from_adata(adata, key_added)
        groups = pd.Series(groups.to_numpy(), index=data.index, name=groups.name)
    else:
        data = adata
        groups = pd.Series(groups.to_numpy(), index=adata.obs_names, name=groups.name)
    result = index_aggregate(
        data, groups, how=how, mask=mask, layer=layer, min_cells=min_cells, **kwargs
    )
    result.index = result.index.astype(str)
    result.index.name = groups.name
    adata.uns[f"{key_added}_aggregate"] = result.copy()
    return result
