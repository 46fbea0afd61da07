"""``sigscore.tl.resistance_index`` and ``sigscore.tl.aggregate``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UsageError
from ._common import (
    check_adata,
    groups_of,
    matrix_label,
    prepare_target,
    resolve_progress,
    threads,
    uns_record,
)
from ._keys import (
    INDEX_KEY,
    check_free,
    index_columns,
    index_frame_from_adata,
    module_frame,
    release_key,
)


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
    from ..index import resistance_index as index_frame

    target = prepare_target(adata, copy, "resistance_index")
    matrix, raw = matrix_label(target, layer, use_raw)
    with threads(n_jobs):
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
    scores = module_frame(target, frame[[f"score_{m}" for m in modules]].set_axis(modules, axis=1))
    contrib = module_frame(
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
    check_free(target, key_added, list(values), "resistance_index")
    release_key(target, key_added, "resistance_index", step_method)
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
    target.uns[key_added] = uns_record(man, info.get("coverage", []), matrix=matrix, extra=extra)
    return target if copy else None


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
    from ..index import aggregate as index_aggregate

    check_adata(adata, "aggregate")
    groups = groups_of(adata, groupby)
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
