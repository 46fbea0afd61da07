"""Arithmetic on one row block (dense ndarray or CSR): float64 conversion (float32 kept for
rank methods, :func:`float32_kept`), CSR blocks over slices without copies, per-column sums
and sums of squares, per-row max over groups of columns. numba kernels are compiled (or
loaded from numba's cache) on first use only: small inputs never import numba."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import InputError

Block = np.ndarray | sp.csr_matrix


# Set by :func:`float32_kept` around a run whose consumer only compares values.
_KEEP_FLOAT32: contextvars.ContextVar[bool] = contextvars.ContextVar("keep_float32", default=False)


@contextlib.contextmanager
def _flag_set(var: contextvars.ContextVar[bool], enabled: bool) -> Iterator[None]:
    """``var`` set to ``enabled`` within the context (this thread / task), then restored."""
    token = var.set(enabled)
    try:
        yield
    finally:
        var.reset(token)


def float32_kept(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Within this context (this thread / task), :func:`as_float_block` leaves float32 blocks
    float32 instead of widening them to float64.

    For consumers that only compare values (the rank methods): widening float32 to float64
    is exact, so the order and ties are the same, but it costs a pass over every stored
    value and doubles the bytes the kernels then read. Elsewhere (blocks built on a Dask
    worker, every other method) blocks stay float64.
    """
    return _flag_set(_KEEP_FLOAT32, enabled)


# Set by :func:`merge_deferred` around a run whose consumer merges duplicated columns itself.
_DEFER_MERGE: contextvars.ContextVar[bool] = contextvars.ContextVar("defer_merge", default=False)


def merge_deferred(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Within this context (this thread / task), a matrix whose duplicated gene columns are
    merged as it is read (:class:`sigscore.io.sources.MergedSource`) hands on its sparse row
    blocks unmerged, as :class:`sigscore.genes.merge_kernels.UnmergedRows`.

    For consumers that fix up the few duplicated columns of a row as they read it (the rank
    kernels, mean's and module_score's dot products): the merged copy of every block costs
    more than the scoring itself.
    """
    return _flag_set(_DEFER_MERGE, enabled)


def merge_is_deferred() -> bool:
    """Whether the current context asked for unmerged blocks (:func:`merge_deferred`)."""
    return _DEFER_MERGE.get()


def csr_block(
    data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """A CSR matrix over these arrays as they are: no validation and no copy.

    For arrays that already form a valid CSR (slices of another CSR matrix, or its values
    converted): scipy's constructor copies any slice holding under half of its base array
    (``prune``), i.e. every row block of a large matrix. Sortedness is not assumed (no
    format flag is cached), so ``has_canonical_format`` still checks when asked.
    """
    out = sp.csr_matrix(shape, dtype=data.dtype)
    out.data, out.indices, out.indptr = data, indices, indptr
    return out


def as_float_block(block: Any) -> Block:
    """A float64 block (CSR or dense ndarray); float32 stays float32 inside
    :func:`float32_kept`. A CSR block is passed on as it is, not re-wrapped."""
    keep = _KEEP_FLOAT32.get()
    if sp.issparse(block):
        out = block if type(block) is sp.csr_matrix else sp.csr_matrix(block)
        if out.data.dtype != np.float64 and not (keep and out.data.dtype == np.float32):
            out = csr_block(_to_float64(out.data), out.indices, out.indptr, out.shape)
        return out
    arr = np.asarray(block)
    if arr.dtype.kind not in "fiub":
        raise InputError(f"matrix values are not numeric (dtype {arr.dtype})")
    if keep and arr.dtype == np.float32:
        return arr
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


#: Stored values above which :func:`sums_of_block` sums a CSR block on two threads (numba,
#: rows split in two halves) rather than in one pass (scipy): the halves round differently.
PARALLEL_SUMS_MIN_NNZ = 1_000_000


def sums_of_block(block: Block) -> np.ndarray:
    """``(2, n_cols)``: the block's column sums and sums of squares (float64)."""
    if sp.issparse(block):
        if block.nnz > PARALLEL_SUMS_MIN_NNZ:
            return _csr_column_sums(block.data, block.indices, block.indptr, block.shape[1])
        s = np.asarray(block.sum(axis=0)).ravel()
        sq = np.asarray(block.multiply(block).sum(axis=0)).ravel()
    else:
        s = block.sum(axis=0)
        sq = np.square(block).sum(axis=0)
    return np.vstack([s, sq])
