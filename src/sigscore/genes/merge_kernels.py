"""Merging duplicated gene columns without rebuilding the matrix around them.

Only a few columns are duplicated (older symbols that harmonise to one gene), so the kernels
make one pass over the stored values: a column that is alone in its group is copied with its
new index, and the members of a duplicated group are reduced (max, sum or mean) into the
group's slot. Implicit zeros of a sparse row count as values of their columns, exactly as in
the dense matrix. Imported lazily (numba) by :func:`sigscore.io.expression.merge_duplicate_genes`.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

MAX, SUM, MEAN = 0, 1, 2


@numba.njit(cache=True)
def _row_groups(data, indices, lo, hi, slot, acc, seen, present, stamp):
    """Reduce the duplicated-group entries of one row into ``acc``; returns how many groups
    occur and lists them (sorted) in ``present``."""
    n = 0
    for k in range(lo, hi):
        s = slot[indices[k]]
        if s < 0:
            continue
        x = data[k]
        if seen[s] != stamp:  # first member of group s seen in this row
            seen[s] = stamp
            present[n] = s
            n += 1
            acc[s, 0] = x  # max
            acc[s, 1] = 1.0  # stored members
            acc[s, 2] = x  # sum
        else:
            acc[s, 0] = max(acc[s, 0], x)
            acc[s, 1] += 1.0
            acc[s, 2] += x
    for i in range(1, n):  # insertion sort: a row holds few duplicated groups
        v = present[i]
        j = i - 1
        while j >= 0 and present[j] > v:
            present[j + 1] = present[j]
            j -= 1
        present[j + 1] = v
    return n


@numba.njit(cache=True)
def _group_value(acc, s, size, op):
    if op == MAX:
        v = acc[s, 0]
        return v if acc[s, 1] >= size[s] else max(v, 0.0)  # an implicit zero takes part
    if op == SUM:
        return acc[s, 2]
    return acc[s, 2] / size[s]


@numba.njit(cache=True)
def _merge_csr(data, indices, indptr, code, slot, group_code, size, op, out_data, out_idx):
    """Merged CSR rows written into ``out_data``/``out_idx`` (as long as the input: merging
    never adds entries); returns the new ``indptr``. ``code[c]`` is column c's output
    column; ``slot[c] >= 0`` marks members of duplicated groups (``group_code[slot]``)."""
    n_rows = indptr.size - 1
    n_groups = group_code.size
    acc = np.zeros((max(n_groups, 1), 3))
    seen = np.full(max(n_groups, 1), -1, np.int64)
    present = np.empty(max(n_groups, 1), np.int64)
    out_ptr = np.zeros(n_rows + 1, np.int64)
    w = 0
    for r in range(n_rows):
        lo, hi = indptr[r], indptr[r + 1]
        n = _row_groups(data, indices, lo, hi, slot, acc, seen, present, r)
        # merge two code-sorted streams: single columns (in column order, codes increase)
        # and the row's groups (sorted by slot, and slots follow group codes)
        i = 0
        k = lo
        while True:
            while k < hi and slot[indices[k]] >= 0:
                k += 1
            if k >= hi and i >= n:
                break
            if k < hi and (i >= n or code[indices[k]] < group_code[present[i]]):
                out_idx[w] = code[indices[k]]
                out_data[w] = data[k]
                w += 1
                k += 1
            else:
                v = _group_value(acc, present[i], size, op)
                if v != 0.0:
                    out_idx[w] = group_code[present[i]]
                    out_data[w] = v
                    w += 1
                i += 1
        out_ptr[r + 1] = w
    return out_ptr


def merge_columns(X: np.ndarray | sp.csr_matrix, codes: np.ndarray, n_out: int, op: int):
    """Columns of ``X`` reduced by group (``codes``: each column's output column, numbered
    in order of first appearance); ``op`` is :data:`MAX`, :data:`SUM` or :data:`MEAN`."""
    codes = np.asarray(codes, dtype=np.int64)
    size_of = np.bincount(codes, minlength=n_out)
    dup_codes = np.flatnonzero(size_of > 1)  # ascending, so slots follow output order
    slot_of_code = np.full(n_out, -1, dtype=np.int64)
    slot_of_code[dup_codes] = np.arange(dup_codes.size)
    slot = slot_of_code[codes]
    if not sp.issparse(X):
        first = np.full(n_out, -1, dtype=np.int64)
        rev = np.arange(codes.size)[::-1]
        first[codes[rev]] = rev
        out = X[:, first]  # the one copy a new dense matrix needs
        for g in dup_codes:
            block = X[:, np.flatnonzero(codes == g)]
            out[:, g] = (
                block.max(axis=1)
                if op == MAX
                else block.sum(axis=1) / (block.shape[1] if op == MEAN else 1)
            )
        return out
    M = X if X.has_canonical_format else sp.csr_matrix(X, copy=True)
    M.sum_duplicates()
    itype = np.int32 if max(n_out, M.nnz) < 2**31 else np.int64
    data = np.empty_like(M.data)
    idx = np.empty(M.nnz, dtype=itype)
    ptr = _merge_csr(
        M.data,
        M.indices,
        M.indptr,
        codes,
        slot,
        dup_codes,
        size_of[dup_codes].astype(np.float64),
        op,
        data,
        idx,
    )
    nnz = int(ptr[-1])
    # the unused tail is only trimmed when it is large (it shares the input's size otherwise)
    if nnz < 0.9 * data.size:
        data, idx = data[:nnz].copy(), idx[:nnz].copy()
    return sp.csr_matrix(
        (data[:nnz], idx[:nnz], ptr.astype(itype)), shape=(X.shape[0], n_out), copy=False
    )
