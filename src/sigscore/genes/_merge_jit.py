"""numba kernels behind :mod:`.merge_kernels` for sparse rows (see its docstring).

Kept apart so that merging the columns of a dense matrix (a small bulk file) never imports
numba; :func:`.merge_kernels.merge_columns` imports this module for sparse input only.
"""

from __future__ import annotations

import numba
import numpy as np

from .merge_kernels import MAX, SUM


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
def merge_csr(data, indices, indptr, code, slot, group_code, size, op, out_data, out_idx):
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
