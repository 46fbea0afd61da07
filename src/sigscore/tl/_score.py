"""``sigscore.tl.score``: module scores into ``obs``/``obsm``/``uns``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._common import (
    group_means,
    groups_of,
    matrix_label,
    prepare_target,
    resolve_progress,
    threads,
    uns_record,
)
from ._keys import (
    SCORE_KEY,
    check_free,
    module_frame,
    release_key,
)


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
    from ..scoring import DEFAULT_METHOD
    from ..scoring import score as score_frame

    target = prepare_target(adata, copy, "score")
    matrix, raw = matrix_label(target, layer, use_raw)
    method = method or DEFAULT_METHOD
    with threads(n_jobs):
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
    scores = module_frame(target, frame)
    columns = [f"{key_added}_{c}" for c in scores.columns]
    check_free(target, key_added, columns, "score")
    release_key(target, key_added, "score", method)
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
    rec = uns_record(info.get("manifest", {}), info.get("coverage", []), matrix=matrix, extra=extra)
    if groupby is not None:
        rec["by_group"] = group_means(scores, groups_of(target, groupby))
    target.uns[key_added] = rec
    return target if copy else None
