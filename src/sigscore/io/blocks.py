"""Arithmetic on one row block (dense ndarray or CSR): float64 conversion, per-column sums
and sums of squares, per-row max over groups of columns. numba kernels are compiled (or
loaded from numba's cache) on first use only: small inputs never import numba."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import InputError

Block = np.ndarray | sp.csr_matrix


def as_float_block(block: Any) -> Block:
    if sp.issparse(block):
        out = sp.csr_matrix(block)
        if out.data.dtype != np.float64:
            out = sp.csr_matrix((_to_float64(out.data), out.indices, out.indptr), shape=out.shape)
        return out
    arr = np.asarray(block)
    if arr.dtype.kind not in "fiub":
        raise InputError(f"matrix values are not numeric (dtype {arr.dtype})")
    return arr.astype(np.float64, copy=False)


def _to_float64(values: np.ndarray) -> np.ndarray:
    """float64 copy of a 1-D value array; multi-threaded (numba) for large float32 blocks."""
    if values.dtype == np.float32 and values.size > 1_000_000:
        return _f32_to_f64(values)
    return values.astype(np.float64)


def _f32_to_f64(x: np.ndarray) -> np.ndarray:
    return _numba_kernels()[0](x)


def _csr_column_sums(
    data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n_cols: int
) -> np.ndarray:
    return _numba_kernels()[1](data, indices, indptr, n_cols)


@functools.cache
def _numba_kernels() -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    """``(f32_to_f64, csr_column_sums)``, compiled (or loaded from numba's cache) on first
    use: only blocks of over a million values need them, and importing numba costs ~0.3 s,
    which a small command-line run should not pay."""
    try:  # numba is a dependency; the guard keeps this module usable in minimal installs
        from numba import njit, prange
    except ImportError:  # pragma: no cover
        return _f32_to_f64_numpy, _csr_column_sums_numpy

    def f32_to_f64(x: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
        out = np.empty(x.size, dtype=np.float64)
        for i in prange(x.size):
            out[i] = x[i]
        return out

    def csr_column_sums(
        data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n_cols: int
    ) -> np.ndarray:  # pragma: no cover - compiled
        """(2, n_cols): column sums and sums of squares; rows split between two slabs so
        each thread accumulates into its own row of the output (no races)."""
        n_rows = indptr.size - 1
        n_slabs = 2
        acc = np.zeros((n_slabs, 2, n_cols))
        step = (n_rows + n_slabs - 1) // n_slabs
        for t in prange(n_slabs):
            for r in range(t * step, min(n_rows, (t + 1) * step)):
                for k in range(indptr[r], indptr[r + 1]):
                    v = data[k]
                    acc[t, 0, indices[k]] += v
                    acc[t, 1, indices[k]] += v * v
        return acc[0] + acc[1]

    jit = njit(parallel=True, cache=True)
    return jit(f32_to_f64), jit(csr_column_sums)


def _f32_to_f64_numpy(x: np.ndarray) -> np.ndarray:  # pragma: no cover - without numba
    return x.astype(np.float64)


def _csr_column_sums_numpy(
    data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n_cols: int
) -> np.ndarray:  # pragma: no cover - without numba
    m = sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, n_cols))
    return np.vstack(
        [np.asarray(m.sum(axis=0)).ravel(), np.asarray(m.multiply(m).sum(axis=0)).ravel()]
    )


def group_max(block: Block, codes: np.ndarray, n_out: int) -> Block:
    """Per row, the max over each group of columns (``codes`` gives each column's group)."""
    from ..genes.merge_kernels import MAX, merge_columns

    return merge_columns(block, codes, n_out, MAX)


def sums_of_block(block: Block) -> np.ndarray:
    if sp.issparse(block):
        if block.nnz > 1_000_000:
            return _csr_column_sums(block.data, block.indices, block.indptr, block.shape[1])
        s = np.asarray(block.sum(axis=0)).ravel()
        sq = np.asarray(block.multiply(block).sum(axis=0)).ravel()
    else:
        s = block.sum(axis=0)
        sq = np.square(block).sum(axis=0)
    return np.vstack([s, sq])
