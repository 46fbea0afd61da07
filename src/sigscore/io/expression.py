"""One internal form for expression data: observations × genes, dense or CSR, with names.

Every entry point (library, plug-in, CLI, HTTP) converts its input with
:func:`as_expression` so that scoring code sees a single shape convention. Sparse input
stays sparse; nothing here densifies a whole sparse matrix.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError, UsageError
from .sources import MergedSource, RowSource, as_source, is_lazy

ValueScale = Literal["counts", "linear", "log", "zscore", "unknown"]


@dataclass
class Expression:
    """An expression matrix with observations in rows and genes in columns.

    ``X`` is a float ``numpy.ndarray`` or ``scipy.sparse.csr_matrix``. ``source`` names where
    it came from (a file name, "AnnData.X", ...) so errors can say which input is at fault;
    ``notes`` collects what was done to it on the way in (duplicates merged, layer chosen).
    """

    X: np.ndarray | sp.csr_matrix
    obs_names: pd.Index
    var_names: pd.Index
    source: str = "input"
    value_scale: ValueScale | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n_obs, n_var = self.X.shape
        if len(self.obs_names) != n_obs or len(self.var_names) != n_var:
            raise InputError(
                f"{self.source}: matrix is {n_obs} × {n_var} but {len(self.obs_names)} "
                f"observation names and {len(self.var_names)} gene names were given"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape

    @property
    def is_sparse(self) -> bool:
        return bool(getattr(self.X, "sparse", False)) or sp.issparse(self.X)

    @property
    def is_lazy(self) -> bool:
        """True when ``X`` is a row source whose rows live on disk, in zarr or in Dask."""
        return isinstance(self.X, RowSource) and self.X.lazy

    def column_subset(self, columns: np.ndarray) -> np.ndarray:
        """Dense ``obs × len(columns)`` block (only the requested genes are densified)."""
        block = self.X[:, columns]
        return block.toarray() if sp.issparse(block) else np.asarray(block)


#: Float types kept as given: scoring reads float32 in place (kernels and row blocks widen to
#: float64 as they go), so a float32 matrix is never copied whole to float64.
_KEPT_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _to_float_matrix(X: Any, source: str) -> np.ndarray | sp.csr_matrix:
    """float32/float64 as given (no copy); other numeric types as float64."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        if X.dtype.kind not in "fiub":
            raise InputError(f"{source}: sparse matrix has non-numeric dtype {X.dtype}")
        return X if X.dtype in _KEPT_FLOATS else X.astype(np.float64)
    arr = np.asarray(X)
    if arr.dtype.kind not in "fiub":
        raise InputError(
            f"{source}: matrix values are not numeric (dtype {arr.dtype}); "
            "check that the first column holds gene or sample names and the rest numbers"
        )
    if arr.ndim != 2:
        raise InputError(f"{source}: expected a 2-D matrix, got {arr.ndim} dimension(s)")
    return arr if arr.dtype in _KEPT_FLOATS else arr.astype(np.float64)


def check_finite(expr: Expression) -> None:
    """Raise :class:`InputError` naming the first NaN/Inf cell (sample and gene).

    An out-of-core matrix is checked block by block as it streams (see sigscore.io.sources);
    a :class:`~sigscore.io.sources.MergedSource` was made from a matrix checked here.
    """
    if isinstance(expr.X, RowSource):
        return
    data = expr.X.data if expr.is_sparse else expr.X
    bad = ~np.isfinite(data)
    if not bad.any():
        return
    if expr.is_sparse:
        pos = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(expr.X.indptr, pos, side="right") - 1)
        col = int(expr.X.indices[pos])
    else:
        row, col = (int(i) for i in np.argwhere(bad)[0])
    n_bad = int(bad.sum())
    raise InputError(
        f"{expr.source}: {n_bad} missing or infinite value(s) (NaN/Inf), first at sample "
        f"{expr.obs_names[row]!r}, gene {expr.var_names[col]!r}; impute or remove them before scoring",
        detail={
            "n_nonfinite": n_bad,
            "sample": str(expr.obs_names[row]),
            "gene": str(expr.var_names[col]),
        },
    )


def _from_anndata(adata: Any, layer: str | None, use_raw: bool) -> Expression:
    if use_raw and layer is not None:
        raise UsageError("use_raw=True and layer= cannot be combined; choose one matrix")
    if use_raw:
        if adata.raw is None:
            raise UsageError("use_raw=True but this AnnData has no .raw; use .X or a layer")
        X, var_names, source = adata.raw.X, adata.raw.var_names, "AnnData.raw.X"
    elif layer is not None:
        if layer not in adata.layers:
            raise UsageError(
                f"layer {layer!r} not found; available layers: {', '.join(adata.layers) or '(none)'}"
            )
        X, var_names, source = adata.layers[layer], adata.var_names, f"AnnData.layers[{layer!r}]"
    else:
        X, var_names, source = adata.X, adata.var_names, "AnnData.X"
    if X is None:
        raise InputError(f"{source} is empty (None)")
    if getattr(adata, "isbacked", False) and adata.filename is not None:
        # obs/var names of a backed file come from the file too, not only X: check it whole
        from .confinement import check_hdf5_confined

        check_hdf5_confined(adata.filename)
    if is_lazy(X):
        # Backed h5ad, zarr or Dask: keep the matrix where it is; scoring streams row blocks.
        src = as_source(X, source)
        src.var_names = pd.Index(pd.Index(var_names).astype(str))
        expr = Expression(
            src,
            pd.Index(adata.obs_names.astype(str)),
            src.var_names,
            source=source,
        )
        expr.notes.append(f"streamed out-of-core in row blocks ({type(src).__name__})")
    else:
        expr = Expression(
            _to_float_matrix(X, source),
            pd.Index(adata.obs_names.astype(str)),
            pd.Index(pd.Index(var_names).astype(str)),
            source=source,
        )
    expr.notes.append(f"scored matrix: {source}")
    return expr


def as_expression(
    data: Any,
    *,
    var_names: Sequence[str] | None = None,
    obs_names: Sequence[str] | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    genes_axis: Literal["columns", "rows"] = "columns",
    source: str | None = None,
) -> Expression:
    """Convert AnnData, pandas/polars DataFrames, numpy or scipy matrices to :class:`Expression`.

    DataFrames and matrices are taken as observations × genes unless ``genes_axis="rows"``
    (the usual bulk layout, genes × samples). A polars frame's first string column, if
    any, holds the row names. numpy/scipy input needs ``var_names``.
    """
    if isinstance(data, Expression):
        return data
    if genes_axis not in ("columns", "rows"):
        raise UsageError(f"genes_axis must be 'columns' or 'rows', not {genes_axis!r}")
    if type(data).__name__ == "AnnData":
        return _from_anndata(data, layer, use_raw)
    if layer is not None or use_raw:
        raise UsageError("layer= and use_raw= apply to AnnData input only")

    if type(data).__module__.startswith("polars"):
        import polars as pl

        if isinstance(data, pl.LazyFrame):
            data = data.collect()
        str_cols = [c for c, t in zip(data.columns, data.dtypes, strict=True) if t == pl.Utf8]
        index = data.get_column(str_cols[0]).to_list() if str_cols else None
        values = data.drop(str_cols[:1]) if str_cols else data
        frame = pd.DataFrame(values.to_numpy(), columns=values.columns, index=index)
        data, source = frame, source or "polars DataFrame"

    if isinstance(data, pd.DataFrame):
        frame = data.T if genes_axis == "rows" else data
        # check each distinct dtype once (a bulk frame has ~20,000 columns of one dtype)
        bad_types = {t for t in set(frame.dtypes) if not pd.api.types.is_numeric_dtype(t)}
        non_numeric = (
            [str(c) for c, t in zip(frame.columns, frame.dtypes, strict=True) if t in bad_types]
            if bad_types
            else []
        )
        if non_numeric:
            raise InputError(
                f"{source or 'DataFrame'}: column(s) {non_numeric[:5]} are not numeric; "
                "put sample/gene names in the index, not in a column"
            )
        return Expression(
            _to_float_matrix(frame.to_numpy(), source or "DataFrame"),
            pd.Index(frame.index.astype(str)),
            pd.Index(frame.columns.astype(str)),
            source=source or "DataFrame",
        )

    if sp.issparse(data) or isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        name = source or ("sparse matrix" if sp.issparse(data) else "array")
        X = _to_float_matrix(data, name)
        if genes_axis == "rows":
            X = X.T.tocsr() if sp.issparse(X) else X.T
        if var_names is None:
            raise UsageError(f"{name}: gene names are required (pass var_names=...)")
        obs = obs_names if obs_names is not None else [f"sample_{i}" for i in range(X.shape[0])]
        return Expression(
            X, pd.Index([str(v) for v in obs]), pd.Index([str(v) for v in var_names]), source=name
        )

    raise UsageError(
        f"cannot score data of type {type(data).__name__}; pass an AnnData, a pandas or polars "
        "DataFrame (samples × genes), or a numpy/scipy matrix with var_names"
    )


def detect_value_scale(X: np.ndarray | sp.csr_matrix, max_values: int = 200_000) -> ValueScale:
    """Guess the scale of expression values from a sample of them.

    counts: non-negative integers; zscore: negatives present and values centred near 0;
    log: max ≤ 50 (negatives allowed: log of values below 1); linear (TPM/CPM/FPKM): a
    larger range — also when a few values are negative, which no log scale reaches with
    such a maximum (the scorer warns about them, see ``sigscore.scoring.prepare``).
    """
    if isinstance(X, RowSource):
        X = X.sample_block()
    values = X.data if sp.issparse(X) else np.asarray(X).ravel()
    if values.size > max_values:
        values = values[np.linspace(0, values.size - 1, max_values).astype(np.int64)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "unknown"
    if values.min() < 0:
        if values.max() > 50 and abs(float(np.mean(values))) >= 0.5:
            return "linear"
        return "zscore" if abs(float(np.mean(values))) < 0.5 else "log"
    if np.all(np.abs(values - np.round(values)) < 1e-8) and values.max() > 1:
        return "counts"
    return "log" if values.max() <= 50 else "linear"


def duplicate_groups(names: Sequence[str], keys: Sequence[str]) -> dict[str, list[str]]:
    """``{key: [names sharing it]}`` for every key more than one column has, keys in order
    of first appearance: what :func:`merge_duplicate_genes` merges and reports."""
    _, codes, uniques, counts = _factorize(tuple(map(str, keys)))
    groups = {int(c): np.flatnonzero(codes == c) for c in np.flatnonzero(counts > 1)}
    return {str(uniques[c]): [str(names[i]) for i in cols] for c, cols in groups.items()}


def merge_duplicate_genes(
    expr: Expression,
    keys: Sequence[str],
    rule: Literal["auto", "sum", "max", "mean", "max_mean"] = "auto",
    *,
    defer: bool = False,
) -> tuple[Expression, dict[str, list[str]]]:
    """Collapse columns that share a key (e.g. the same harmonised symbol).

    Rules, all per sample unless stated:

    * ``sum`` adds the columns — right for raw counts, where two IDs of one gene share its reads;
    * ``max`` keeps, in each sample, the largest of the columns (GSEA's "Max_probe" collapse);
    * ``mean`` averages the columns;
    * ``max_mean`` keeps the one column with the highest mean over all samples. It is the
      common choice for microarray probes but depends on the other samples in the batch, so
      a sample would score differently alone; use it only for batch-relative work.

    ``auto`` picks ``sum`` for counts and ``max`` otherwise — both leave every sample's values
    independent of the batch, which single-sample scoring requires. Returns the new
    expression (columns named by key, in order of first appearance) and
    ``{key: [original names merged]}`` for every merged key.

    ``defer``: an in-memory matrix merged by sum, max or mean is not copied; its ``X`` is a
    :class:`~sigscore.io.sources.MergedSource` that merges row blocks as they are read
    (the scoring loop's way), or only the columns a method reads.
    """
    key_names = tuple(map(str, keys))
    if len(key_names) != expr.shape[1]:
        raise ValueError("one key per gene column is required")
    keys_arr, codes, uniques, counts = _factorize(key_names)
    if len(uniques) == len(key_names):
        return Expression(
            expr.X, expr.obs_names, keys_arr, expr.source, expr.value_scale, list(expr.notes)
        ), {}
    if rule == "auto":
        scale = expr.value_scale or detect_value_scale(expr.X)
        rule = "sum" if scale == "counts" else "max"
    if rule not in ("sum", "max", "mean", "max_mean"):
        raise UsageError(
            f"unknown duplicate rule {rule!r}; use 'sum', 'max', 'mean', 'max_mean' or 'auto'"
        )
    merged = duplicate_groups(expr.var_names, key_names)
    if rule == "max_mean":
        means = np.asarray(expr.X.mean(axis=0)).ravel()
        order = np.lexsort((-means, codes))  # within each key, highest mean first
        first = order[np.r_[True, codes[order][1:] != codes[order][:-1]]]
        X = expr.X[:, first[np.argsort(codes[first])]]
    elif not expr.is_lazy:
        from ..genes.merge_kernels import MAX, MEAN, SUM, merge_columns

        op = {"max": MAX, "sum": SUM, "mean": MEAN}[rule]
        if defer:
            X = MergedSource(expr.X, codes, len(uniques), op, expr.source)
        else:  # one pass over the stored values; only the duplicated columns are reduced
            X = merge_columns(expr.X, codes, len(uniques), op)
    elif rule == "max":
        # A row source (backed, zarr, Dask) applies the same per-row max to each block.
        X = expr.X.max_columns(codes, len(uniques))
    else:  # sum or mean, block by block
        scale = 1.0 / counts[codes] if rule == "mean" else np.ones(len(codes))
        agg = sp.csr_matrix(
            (scale, (np.arange(len(codes)), codes)), shape=(len(codes), len(uniques))
        )
        X = expr.X.sum_columns(agg)
    out = Expression(
        X,
        expr.obs_names,
        pd.Index(uniques.astype(str)),
        expr.source,
        expr.value_scale,
        list(expr.notes),
    )
    out.notes.append(f"merged {len(merged)} duplicated gene(s) by {rule}")
    return out, merged


@functools.lru_cache(maxsize=8)
def _factorize(keys: tuple[str, ...]) -> tuple[pd.Index, np.ndarray, pd.Index, np.ndarray]:
    """The keys as an Index, ``pd.factorize`` of them and each code's count (read-only
    arrays), remembered for the last few key lists: a service or notebook scores the same
    genes again and again, and building these for 15,000 names costs ~3 ms a call."""
    index = pd.Index(keys)
    codes, uniques = pd.factorize(index)
    counts = np.bincount(codes, minlength=len(uniques))
    for shared in (codes, counts):  # one result serves every later call
        shared.setflags(write=False)
    return index, codes, uniques, counts
