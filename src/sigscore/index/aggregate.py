"""Group-level summaries of per-cell data: the mean of index frames, pseudobulk profiles.

Pure table operations; the scoring of pseudobulk profiles is the caller's
(:func:`sigscore.index.api.aggregate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError
from ..io.chunks import chunk_rows_for
from ..io.expression import as_expression
from ..io.sources import as_source
from .align import aligned

#: ``as_expression`` options that :func:`pseudobulk_profiles` accepts (the rest score).
EXPRESSION_OPTIONS = ("use_raw", "genes_axis", "var_names", "obs_names")


def mean_by_group(
    frame: pd.DataFrame, groups: Any, mask: Any = None, min_cells: int = 1
) -> pd.DataFrame:
    """The mean of a per-cell index frame per group, with ``n_cells`` and merged flags.

    The mean contributions still add up to the mean index. Groups with fewer than
    ``min_cells`` (masked-in) cells are dropped.
    """
    g = aligned(groups, frame.index, "groups")
    keep = np.ones(len(frame), bool)
    if mask is not None:
        keep = aligned(mask, frame.index, "mask").to_numpy().astype(bool)
    sub = frame.loc[keep]
    num_cols = [c for c in sub.columns if c == "index" or c.startswith(("score_", "contrib_"))]
    grouped = sub[num_cols].groupby(g[keep].to_numpy(), sort=True)
    out = grouped.mean()
    out.insert(0, "n_cells", grouped.size())
    flags = (
        sub["flags"]
        .groupby(g[keep].to_numpy(), sort=True)
        .agg(lambda s: "; ".join(dict.fromkeys(f for x in s for f in str(x).split("; ") if f)))
    )
    out.insert(2, "modules_used", sub["modules_used"].groupby(g[keep].to_numpy()).first())
    out.insert(3, "flags", flags)
    out = out[out["n_cells"] >= min_cells]
    out.index.name = "group"
    man = dict(frame.attrs.get("sigscore", {}).get("manifest", {}))
    man["aggregation"] = {"how": "mean", "masked": mask is not None}
    out.attrs["sigscore"] = {
        "manifest": man,
        "coverage": frame.attrs.get("sigscore", {}).get("coverage", []),
    }
    return out


def pseudobulk_profiles(
    data: Any,
    groups: Any,
    mask: Any = None,
    *,
    layer: str | None = None,
    normalize: bool = True,
    min_cells: int = 1,
    **as_kw: Any,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Summed counts per group (groups × genes; log2(CPM + 1) when ``normalize``) and the
    number of cells of each group kept (those with at least ``min_cells``)."""
    expr = as_expression(data, layer=layer, **as_kw)
    g = aligned(groups, expr.obs_names, "groups").to_numpy()
    keep = np.ones(expr.shape[0], bool)
    if mask is not None:
        keep = aligned(mask, expr.obs_names, "mask").to_numpy().astype(bool)
    labels, codes = np.unique(g[keep], return_inverse=True)
    rows = np.flatnonzero(keep)
    indicator = sp.csr_matrix(
        (np.ones(rows.size), (codes, rows)), shape=(labels.size, expr.shape[0])
    )
    # Sum counts per group block by block, so backed/zarr/Dask matrices stream from disk.
    src = as_source(expr.X)
    summed = np.zeros((labels.size, expr.shape[1]))
    for block_rows, block in src.iter_chunks(chunk_rows_for(src)):
        part = indicator[:, block_rows] @ block
        summed += part.toarray() if sp.issparse(part) else np.asarray(part)
    if np.nanmin(summed) < 0:
        raise InputError("pseudobulk needs non-negative counts; pass layer=... with raw counts")
    n_cells = np.bincount(codes, minlength=labels.size)
    if normalize:
        lib = summed.sum(axis=1, keepdims=True)
        summed = np.log2(summed / np.where(lib > 0, lib, 1.0) * 1e6 + 1.0)
    names = pd.Index([str(x) for x in labels], name="group")
    bulk = pd.DataFrame(summed, index=names, columns=pd.Index(expr.var_names))
    keep_groups = n_cells >= min_cells
    bulk = bulk.loc[keep_groups]
    if not len(bulk):
        raise InputError(f"no group has at least {min_cells} cells")
    return bulk, n_cells[keep_groups]
