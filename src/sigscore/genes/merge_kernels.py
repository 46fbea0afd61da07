"""Merging duplicated gene columns without rebuilding the matrix around them.

Only a few columns are duplicated (older symbols that harmonise to one gene), so the kernels
make one pass over the stored values: a column that is alone in its group is copied with its
new index, and the members of a duplicated group are reduced (max, sum or mean) into the
group's slot. Implicit zeros of a sparse row count as values of their columns, exactly as in
the dense matrix. The sparse kernels (numba) live in :mod:`.merge_jit`, imported on first
sparse use, so merging a dense matrix never imports numba.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

MAX, SUM, MEAN = 0, 1, 2


@dataclass(frozen=True)
class MergePlan:
    """How the columns of a matrix merge into ``n_out`` output columns (rule ``op``).

    ``target``: per input column, its output column when it is alone in its group, or
    ``-1 - slot`` for a member of the duplicated group ``slot``; per slot (in ascending
    output column), ``group_code`` (the group's output column) and ``group_size`` (its
    number of members, float64); ``members``: the input columns of all groups, ascending.
    """

    target: np.ndarray
    group_code: np.ndarray
    group_size: np.ndarray
    members: np.ndarray
    op: int
    n_out: int

    @classmethod
    def from_codes(cls, codes: np.ndarray, n_out: int, op: int) -> MergePlan:
        """The plan of ``codes`` (each input column's output column, see :func:`merge_columns`)."""
        codes = np.asarray(codes, dtype=np.int64)
        size_of = np.bincount(codes, minlength=n_out)
        dup_codes = np.flatnonzero(size_of > 1)  # ascending, so slots follow output order
        slot_of_code = np.full(n_out, -1, dtype=np.int64)
        slot_of_code[dup_codes] = np.arange(dup_codes.size)
        slot = slot_of_code[codes]
        target = np.where(slot >= 0, -1 - slot, codes)
        return cls(
            target=target,
            group_code=dup_codes.astype(np.int64),
            group_size=size_of[dup_codes].astype(np.float64),
            members=np.flatnonzero(slot >= 0),
            op=int(op),
            n_out=int(n_out),
        )


class UnmergedRows:
    """A CSR row block whose duplicated columns are still to be merged by ``plan``.

    For consumers that merge as they read (``MethodSpec.merges_in_kernel``): ``rows`` is
    the raw block (float32 or float64, canonical or not); :meth:`merged` is the merged
    block, exactly :func:`merge_columns`' result.
    """

    __slots__ = ("plan", "rows")

    def __init__(self, rows: sp.csr_matrix, plan: MergePlan) -> None:
        self.rows = rows
        self.plan = plan

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows.shape[0], self.plan.n_out)

    @property
    def dtype(self) -> np.dtype:
        return self.rows.dtype

    @property
    def nnz(self) -> int:
        """The raw block's stored values (at least the merged block's)."""
        return int(self.rows.nnz)

    def merged(self, out_dtype: np.dtype | type | None = None) -> sp.csr_matrix:
        """The merged block (:func:`merge_columns` of ``rows``)."""
        return merge_columns(self.rows, self.plan, self.plan.n_out, self.plan.op, out_dtype)


def merge_columns(
    X: np.ndarray | sp.csr_matrix,
    codes: np.ndarray | MergePlan,
    n_out: int,
    op: int,
    out_dtype: np.dtype | type | None = None,
):
    """Columns of ``X`` reduced by group (``codes``: each column's output column, numbered
    in order of first appearance, or their :class:`MergePlan`, made once for many blocks);
    ``op`` is :data:`MAX`, :data:`SUM` or :data:`MEAN`.

    ``out_dtype`` (sparse input only; default ``X``'s): a wider type written in the same
    pass, e.g. float64 blocks from float32 rows, equal to the same-type merge widened (each
    merged value is rounded to ``X``'s type first)."""
    plan = codes if isinstance(codes, MergePlan) else MergePlan.from_codes(codes, n_out, op)
    if not sp.issparse(X):
        t = plan.target  # each column's output column, back from the plan
        if plan.group_code.size:
            t = np.where(t >= 0, t, plan.group_code[np.maximum(-1 - t, 0)])
        codes = t
        return _merge_dense(X, codes, n_out, plan.group_code, op)
    from . import merge_jit  # numba: only sparse input needs it

    target, dup_codes, group_size = plan.target, plan.group_code, plan.group_size
    M = X
    for _ in range(2):  # the kernel stops at the first non-canonical row: canonicalise, retry
        itype = np.int32 if max(n_out, M.nnz) < 2**31 else np.int64
        data = np.empty(M.nnz, dtype=out_dtype or M.data.dtype)
        idx = np.empty(M.nnz, dtype=itype)
        ok, ptr = merge_jit.merge_rows(
            M.data, M.indices, M.indptr, target, dup_codes, group_size, op, data, idx
        )
        if ok:
            break
        data = idx = None  # freed before the canonical copy is made
        M = sp.csr_matrix(X, copy=True)
        M.sum_duplicates()
    nnz = int(ptr[-1])
    # Trimmed in place (a realloc, no copy): a slice would be a view of a larger buffer,
    # which scipy's format check copies again whenever the block is wrapped.
    data.resize(nnz, refcheck=False)
    idx.resize(nnz, refcheck=False)
    out = sp.csr_matrix((data, idx, ptr.astype(itype)), shape=(X.shape[0], n_out), copy=False)
    out.has_canonical_format = True  # rows came out strictly increasing; spares a later check
    return out


def _merge_dense(X: np.ndarray, codes: np.ndarray, n_out: int, dup_codes: np.ndarray, op: int):
    """The dense case of :func:`merge_columns`, in ``X``'s own layout (C or Fortran order).

    Every output column is first copied from its group's first member in one gather (the
    one copy a narrower matrix needs); only the duplicated groups are then overwritten by
    their reduction, each over its few columns.
    """
    first = np.full(n_out, -1, dtype=np.int64)
    rev = np.arange(codes.size)[::-1]
    first[codes[rev]] = rev
    fortran = X.flags.f_contiguous and not X.flags.c_contiguous
    # Output columns come in runs of consecutive input columns (a run ends where a later
    # member of a group was left out), so the copy is a few slice assignments in X's own
    # layout; X[:, idx] of a C-order matrix comes back column-major (the row-block kernels
    # copied it back) and np.take gathers element by element, 4-6x slower than slices.
    breaks = np.flatnonzero(np.diff(first) != 1) + 1
    if breaks.size <= max(64, n_out // 64):
        out = np.empty((X.shape[0], n_out), dtype=X.dtype, order="F" if fortran else "C")
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, n_out], strict=True):
            out[:, a:b] = X[:, first[a] : first[a] + (b - a)]
    elif fortran:
        out = np.take(X.T, first, axis=0).T
    else:
        out = np.take(X, first, axis=1)
    if dup_codes.size:
        order = np.argsort(codes, kind="stable")  # members of each group in column order
        starts = np.searchsorted(codes[order], dup_codes)
        stops = np.searchsorted(codes[order], dup_codes, side="right")
        for g, lo, hi in zip(dup_codes, starts, stops, strict=True):
            # X[:, cols] and these reductions are exactly what every earlier release
            # computed, so merged values stay bit-identical
            block = X[:, order[lo:hi]]
            out[:, g] = (
                block.max(axis=1)
                if op == MAX
                else block.sum(axis=1) / (block.shape[1] if op == MEAN else 1)
            )
    return out
